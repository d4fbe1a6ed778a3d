"""One progress callback for every stage of geocrop's Python API, and the "like" inputs it accepts.

Every verb of `geocrop.api` takes ``progress=`` of one type, `Progress`: a callable that receives a frozen
`ProgressEvent` (which stage, how far, what is happening; defined in `geocrop.core.progress`, the type
the stages themselves report with), so a caller writes one function for all of them::

    def show(event: geocrop.ProgressEvent) -> None:
        print(f"{event.stage}: {event.percent} {event.message}")

The input normalisers (`as_path`, `as_aoi`, `as_bundle` from `geocrop.core.params`; `as_date` and the
season rule `check_season` from `geocrop.core.temporal`, the one date parser) turn the forms people have
(ISO strings or `date` objects, ``str`` or `os.PathLike` paths, bboxes or anything with
``__geo_interface__``, a bundle path or the result object that wrote it) into the one form the library's
config objects take, and raise an `InputError` naming the argument as the caller wrote it. Torch-free.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeAlias, runtime_checkable

from geocrop.core.params import Device, as_aoi, as_bundle, as_path, as_source
from geocrop.core.progress import Progress, ProgressEvent, Stage, emit
from geocrop.core.temporal import DateLike, as_date, check_season

__all__ = [
    "AoiLike",
    "BundleLike",
    "DateLike",
    "Device",
    "PathLike",
    "Progress",
    "ProgressEvent",
    "Stage",
    "as_aoi",
    "as_bundle",
    "as_date",
    "as_path",
    "as_source",
    "check_season",
    "emit",
]


@runtime_checkable
class GeoInterface(Protocol):
    """Anything with ``__geo_interface__`` (shapely geometries, GeoPandas rows, `geocrop.io.aoi.Aoi`)."""

    @property
    def __geo_interface__(self) -> Mapping[str, Any]: ...


PathLike: TypeAlias = "str | os.PathLike[str]"
#: A vector file, a ``(minx, miny, maxx, maxy)`` bbox in lon/lat (or ``"minx,miny,maxx,maxy"``), a GeoJSON
#: mapping, or anything with ``__geo_interface__``.
AoiLike: TypeAlias = "str | os.PathLike[str] | Sequence[float] | Mapping[str, Any] | GeoInterface"
#: A bundle path, or a result object that wrote one (``.bundle``: `TrainResult`, `PretrainResult`).
BundleLike: TypeAlias = "str | os.PathLike[str] | Any"


def as_optional_date(value: Any, param: str) -> dt.date | None:
    return None if value is None else as_date(value, param)


def as_optional_path(value: Any, param: str) -> Path | None:
    return None if value is None else as_path(value, param)
