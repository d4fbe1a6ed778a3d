"""After the map (`geocrop.post`): reference samples, accuracy and area estimates, fields, smoothing.

Each verb takes the map COG `map_aoi` wrote (a path, or its `MapResult`) and returns the step's frozen
result, which says where its outputs went.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geocrop.api_types import PathLike, Progress, Stage, as_optional_path, as_path, emit

if TYPE_CHECKING:
    from geocrop.post.assess_report import Assessment
    from geocrop.post.sampling import SampleResult

__all__ = ["assess", "stratified_sample", "uncertain_sample"]

#: A map: the class COG's path, or the `MapResult` that wrote it (``.cog``).
MapLike = Any


def as_map(value: MapLike, param: str = "map") -> Path:
    """The class COG of a map given as a path or as the result of `geocrop.map_aoi` (``.cog``)."""
    cog = getattr(value, "cog", None)
    return as_path(cog if isinstance(cog, str | os.PathLike) else value, param)


def _stage(progress: Progress | None, stage: Stage) -> Callable[[float, str], None] | None:
    return None if progress is None else lambda f, m: emit(progress, stage, f, m)


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
        progress=_stage(progress, "sample"),
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
        progress=_stage(progress, "sample"),
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
        progress=_stage(progress, "assess"),
    )
