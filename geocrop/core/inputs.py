"""The forms a caller may give an option in, normalised for a config (a declaration's ``convert``).

Each takes ``(value, name)`` and returns the value in the config's type, or raises an `InputError` that
names the argument (``param=name``): paths as ``str`` or `os.PathLike`, data sources, areas (a file, a
bbox, GeoJSON or ``__geo_interface__``), bundles (a path or the result object that wrote one) and lists
of numbers. Dates: `geocrop.core.temporal.as_date`. `geocrop.core.params` re-exports them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from geocrop.errors import InputError

__all__ = ["as_aoi", "as_bundle", "as_floats", "as_path", "as_source"]


def as_path(value: Any, name: str) -> Path:
    """A `Path` from a ``str`` or an `os.PathLike` (``~`` expanded)."""
    if isinstance(value, str | os.PathLike) and str(os.fspath(value)).strip():
        return Path(os.fspath(value)).expanduser()
    raise InputError(
        f"`{name}` {value!r} is not a path; give a file name as a str or pathlib.Path", param=name
    )


def as_floats(value: Any, name: str) -> tuple[float, ...]:
    """A tuple of numbers from any iterable of numbers (a repeatable option's values)."""
    try:
        return tuple(float(v) for v in ([value] if isinstance(value, int | float) else value))
    except (TypeError, ValueError):
        raise InputError(f"`{name}` {value!r} is not a list of numbers; give numbers", param=name) from None


def as_source(value: Any, name: str) -> str:
    """A data source (STAC API URL, ``catalog.json``, GeoTIFF folder) as the string the readers take."""
    if isinstance(value, os.PathLike):
        return str(Path(os.fspath(value)).expanduser())
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise InputError(
        f"`{name}` {value!r} is not a source; give a STAC API URL, a catalog.json or a GeoTIFF folder",
        param=name,
    )


class _GeoJSON:
    """A GeoJSON mapping seen through ``__geo_interface__`` (what `geocrop.io.aoi.read_aoi` reads)."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.__geo_interface__ = dict(data)

    def __repr__(self) -> str:
        return f"GeoJSON {self.__geo_interface__.get('type', '?')}"


def as_aoi(value: Any, name: str = "aoi") -> Any:
    """An AOI in a form `geocrop.io.aoi.read_aoi` reads: a `Path`, a bbox tuple or string, a geometry."""
    if isinstance(value, os.PathLike):
        return Path(os.fspath(value)).expanduser()
    if isinstance(value, str) and value.strip():
        return value.strip()
    if hasattr(value, "__geo_interface__"):
        return value
    if isinstance(value, Mapping) and "type" in value:
        return _GeoJSON(value)
    if isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 4:
        try:
            return tuple(float(v) for v in value)
        except (TypeError, ValueError):
            pass
    raise InputError(
        f"`{name}` {value!r} is not an area; give a vector file, a (minx, miny, maxx, maxy) lon/lat bbox, "
        "a GeoJSON mapping or an object with __geo_interface__",
        param=name,
    )


def as_bundle(value: Any, name: str) -> Path:
    """A bundle path from a path, or from a result object that wrote one (``.bundle``)."""
    bundle = getattr(value, "bundle", None)
    if isinstance(bundle, str | os.PathLike):
        return Path(os.fspath(bundle))
    if isinstance(value, str | os.PathLike):
        return as_path(value, name)
    raise InputError(
        f"`{name}` {value!r} is not a model bundle; give a .safetensors path or the result of "
        "geocrop.train / geocrop.pretrain",
        param=name,
    )
