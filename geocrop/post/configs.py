"""The after-the-map verbs' options, each declared once (`geocrop.core.params`).

`geocrop.api`'s `field_results`, `smooth_map`, `assess`, `stratified_sample` and `uncertain_sample` take
these fields (a test holds each signature equal to its config), and ``geocrop fields``, ``smooth``,
``assess`` and ``sample`` derive their options from them. The checks each stage makes of its own inputs
(a window that is odd, a map that is geocrop's) stay in the stage's module; a declaration carries the
bounds an edge can show.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from geocrop.core.params import as_path, at_least, param, settle
from geocrop.errors import InputError
from geocrop.io.colour_table import colours_param

__all__ = [
    "AssessConfig",
    "FieldsConfig",
    "SmoothConfig",
    "StratifiedSampleConfig",
    "UncertainSampleConfig",
    "as_map",
]


def as_map(value: Any, name: str = "map") -> Path:
    """The class COG of a map given as a path or as the result of `geocrop.map_aoi` (``.cog``)."""
    cog = getattr(value, "cog", None)
    return as_path(cog if isinstance(cog, str | os.PathLike) else value, name)


def _columns(value: Any, name: str) -> tuple[str, ...] | None:
    """The attributes to keep; none named (an empty list, no --column): all of them (None)."""
    return tuple(str(c) for c in ([value] if isinstance(value, str) else value)) or None


_MAP = "Class COG of `geocrop map`"


def _page(value: Any, name: str) -> Path:
    """A web page's path: it must end in .html or .htm (checked before the stage writes anything)."""
    path = as_path(value, name)
    if path.suffix.lower() not in (".html", ".htm"):
        fixed = path.with_suffix(".html") if path.suffix else Path(f"{path}.html")
        raise InputError(
            f"`{name}` {path}: a web page's name must end in .html; give e.g. {fixed}", param=name
        )
    return path


@dataclass(frozen=True, kw_only=True)
class FieldsConfig:
    """One `geocrop fields` run."""

    map: Path = param(help=_MAP, convert=as_map)
    parcels: Path = param(help="Parcels (GeoPackage, GeoJSON, GeoParquet...)", convert=as_path)
    out: Path = param(help="Results, .gpkg or .parquet", convert=as_path, kind="table_out")
    columns: tuple[str, ...] | None = param(
        None, help="Parcel attribute to keep (repeat; default: all)", convert=_columns, flag="--column"
    )
    batch_size: int = param(10_000, help="Parcels read at a time", check=at_least(1))
    html: Path | None = param(
        None,
        help="Also write an offline web page of the map with each parcel in its majority class's colour",
        convert=_page,
        kind="page_out",
    )

    def __post_init__(self) -> None:
        settle(self)


@dataclass(frozen=True, kw_only=True)
class SmoothConfig:
    """One `geocrop smooth` run (docs/fields-and-smoothing.md explains the parameters)."""

    map: Path = param(help=_MAP, convert=as_map)
    out: Path = param(help="Smoothed class COG (.tif)", convert=as_path, kind="raster_out")
    method: Literal["bayes", "modal"] = param(
        "bayes",
        help="bayes: smooth the probabilities (map made with `probabilities`); modal: majority filter",
    )
    window: int = param(7, help="Neighbourhood size, odd, 3..21", unit="pixels")
    smoothness: float = param(10.0, help="bayes: logit variance; larger smooths more")
    neigh_fraction: float = param(0.5, help="bayes: share of neighbours in the prior")
    sieve: int = param(0, help="Merge patches below this many pixels (0: off)")
    html: Path | None = param(
        None, help="Also write an offline web page of the smoothed map", convert=_page, kind="page_out"
    )
    colors: Path | None = colours_param()

    def __post_init__(self) -> None:
        settle(self)


@dataclass(frozen=True, kw_only=True)
class AssessConfig:
    """One `geocrop assess` run."""

    map: Path = param(help=_MAP, convert=as_map)
    reference: Path = param(
        help="Labelled points (.gpkg, any CRS), e.g. from `geocrop sample` with `stratified`", convert=as_path
    )
    class_column: str = param(
        "reference",
        help="Column with each point's reference class: a map class name (any case) or value; another name "
        "(a crop the map lacks, 'other') is kept as a reference-only class",
    )
    out: Path | None = param(
        None, help="Report folder (created if missing)", convert=as_path, kind="folder_out"
    )

    def __post_init__(self) -> None:
        settle(self)


@dataclass(frozen=True, kw_only=True)
class _SampleConfig:
    map: Path = param(help=_MAP, convert=as_map)
    n: int = param(help="Points to draw", check=at_least(1))
    out: Path = param(help="Points to label (.gpkg)", convert=as_path, kind="vector_out")


@dataclass(frozen=True, kw_only=True)
class StratifiedSampleConfig(_SampleConfig):
    """One stratified draw (`geocrop sample --stratified N`)."""

    min_per_class: int = param(
        50,
        help="Stratified: the least points any mapped class gets; the rest go in proportion to area",
        check=at_least(2),
    )
    seed: int = param(0, help="Random seed (same seed, same points)")

    def __post_init__(self) -> None:
        settle(self)


@dataclass(frozen=True, kw_only=True)
class UncertainSampleConfig(_SampleConfig):
    """One draw of the most uncertain pixels (`geocrop sample --uncertain N`)."""

    min_distance: float | None = param(
        None,
        help="Uncertain: least distance between points, in map units (m); default: ~10 cells per point",
        check=at_least(0),
    )
    seed: int = param(0, help="Random seed (same seed, same points)")

    def __post_init__(self) -> None:
        settle(self)
