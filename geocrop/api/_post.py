"""After the map (`geocrop.post`): reference samples, accuracy and area estimates, fields, smoothing.

Each verb takes the map COG `map_aoi` wrote (a path, or its `MapResult`) and returns the step's frozen
result, which says where its outputs went.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from geocrop.api_types import PathLike, Progress, as_optional_path, as_path

if TYPE_CHECKING:
    from geocrop.post.assess_report import Assessment
    from geocrop.post.fields import FieldsResult
    from geocrop.post.sampling import SampleResult
    from geocrop.post.smooth import SmoothResult

__all__ = ["SmoothMethod", "assess", "field_results", "smooth_map", "stratified_sample", "uncertain_sample"]

#: ``bayes``: Bayesian smoothing of the class probabilities (needs a map made with ``probabilities``);
#: ``modal``: a majority filter (+ sieve) of the classes, for any map.
SmoothMethod = Literal["bayes", "modal"]

#: A map: the class COG's path, or the `MapResult` that wrote it (``.cog``).
MapLike = Any


def as_map(value: MapLike, param: str = "map") -> Path:
    """The class COG of a map given as a path or as the result of `geocrop.map_aoi` (``.cog``)."""
    cog = getattr(value, "cog", None)
    return as_path(cog if isinstance(cog, str | os.PathLike) else value, param)


def stratified_sample(
    *,
    map: MapLike,
    n: int,
    out: PathLike,
    min_per_class: int = 50,
    seed: int = 0,
    progress: Progress | None = None,
) -> SampleResult:
    """``n`` reference points drawn at random within the map's classes (strata), written to ``out``
    (.gpkg) with an empty ``reference`` column to fill in; every class gets at least ``min_per_class``,
    the rest is shared in proportion to area (docs/area-estimation.md). Label them, then `assess`."""
    from geocrop.post.sampling import stratified_sample as run

    return run(
        map=as_map(map),
        n=n,
        out=as_path(out, "out"),
        min_per_class=min_per_class,
        seed=seed,
        progress=progress,
    )


def uncertain_sample(
    *,
    map: MapLike,
    n: int,
    out: PathLike,
    min_distance: float | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> SampleResult:
    """The ``n`` pixels where the map is least sure (highest uncertainty), at least ``min_distance``
    metres apart, written to ``out`` (.gpkg) to label next: the points that teach a model most."""
    from geocrop.post.sampling import uncertain_sample as run

    return run(
        map=as_map(map),
        n=n,
        out=as_path(out, "out"),
        min_distance=min_distance,
        seed=seed,
        progress=progress,
    )


def assess(
    *,
    map: MapLike,
    reference: PathLike,
    class_column: str = "reference",
    out: PathLike | None = None,
    progress: Progress | None = None,
) -> Assessment:
    """Accuracy and area estimates of the map from a stratified reference sample (Olofsson et al. 2014):
    error matrix in counts and area proportions, overall/user's/producer's accuracy and class areas with
    95 % confidence intervals; a report (markdown, plots, JSON, CSV) in the folder ``out`` when given."""
    from geocrop.post.assess_report import assess as run

    return run(
        map=as_map(map),
        reference=as_path(reference, "reference"),
        class_column=class_column,
        out=as_optional_path(out, "out"),
        progress=progress,
    )


def field_results(
    *,
    map: MapLike,
    parcels: PathLike,
    out: PathLike,
    columns: Sequence[str] | None = None,
    batch_size: int = 10_000,
    progress: Progress | None = None,
) -> FieldsResult:
    """One row per parcel of ``parcels`` (any vector file, any CRS) written to ``out`` (.gpkg or .parquet):
    its majority class and share, mean confidence, pixel count and clear share, and with a probability
    map the mean class probabilities; ``columns`` the parcel attributes to keep (default: all)."""
    from geocrop.post.fields import field_results as run

    return run(
        map=as_map(map),
        parcels=as_path(parcels, "parcels"),
        out=as_path(out, "out"),
        columns=None if columns is None else list(columns),
        batch_size=batch_size,
        progress=progress,
    )


def smooth_map(
    *,
    map: MapLike,
    out: PathLike,
    method: SmoothMethod = "bayes",
    window: int = 7,
    smoothness: float = 10.0,
    neigh_fraction: float = 0.5,
    sieve: int = 0,
    progress: Progress | None = None,
) -> SmoothResult:
    """The map with its salt-and-pepper removed, as a new class COG at ``out`` (+ confidence COG, style,
    STAC item) in `map_aoi`'s layout; docs/fields-and-smoothing.md explains the parameters."""
    from geocrop.post.smooth import smooth_map as run

    return run(
        map=as_map(map),
        out=as_path(out, "out"),
        method=method,
        window=window,
        smoothness=smoothness,
        neigh_fraction=neigh_fraction,
        sieve=sieve,
        progress=progress,
    )
