"""One progress callback for every stage of geocrop's Python API, and the "like" inputs it accepts.

Every verb of `geocrop.api` takes ``progress=`` of one type, `Progress`: a callable that receives a frozen
`ProgressEvent` (which stage, how far, what is happening; defined in `geocrop.core.progress`, the type
the stages themselves report with), so a caller writes one function for all of them::

    def show(event: geocrop.ProgressEvent) -> None:
        print(f"{event.stage}: {event.percent} {event.message}")

The input normalisers (`as_date`, `as_path`, `as_aoi`, `as_bundle`) turn the forms people have (ISO
strings or `date` objects, ``str`` or `os.PathLike` paths, bboxes or anything with
``__geo_interface__``, a bundle path or the result object that wrote it) into the one form the library's
config objects take, and raise an `InputError` naming the argument as the caller wrote it;
`library_terms` re-words errors of config objects that still name CLI flags; `label_source` and
`train_config` build the typed objects `geocrop.api.train` and `geocrop.api.evaluate` share. Numpy-free,
torch-free: importing this module costs nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeAlias, runtime_checkable

from geocrop.core.progress import Progress, ProgressEvent, Stage, emit
from geocrop.errors import GeocropError, InputError, as_flag

if TYPE_CHECKING:
    from geocrop.data.labelled import LabelSource
    from geocrop.training.fit import TrainConfig

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
    "emit",
]

#: Where a model runs: ``auto`` is CUDA when torch sees a GPU, else the CPU.
Device = Literal["auto", "cpu", "cuda"]


@runtime_checkable
class GeoInterface(Protocol):
    """Anything with ``__geo_interface__`` (shapely geometries, GeoPandas rows, `geocrop.io.aoi.Aoi`)."""

    @property
    def __geo_interface__(self) -> Mapping[str, Any]: ...


DateLike: TypeAlias = "dt.date | dt.datetime | str"
PathLike: TypeAlias = "str | os.PathLike[str]"
#: A vector file, a ``(minx, miny, maxx, maxy)`` bbox in lon/lat (or ``"minx,miny,maxx,maxy"``), a GeoJSON
#: mapping, or anything with ``__geo_interface__``.
AoiLike: TypeAlias = "str | os.PathLike[str] | Sequence[float] | Mapping[str, Any] | GeoInterface"
#: A bundle path, or a result object that wrote one (``.bundle``: `TrainResult`, `PretrainResult`).
BundleLike: TypeAlias = "str | os.PathLike[str] | Any"


def as_date(value: Any, param: str) -> dt.date:
    """A `date` from a `date`, a `datetime` or an ISO string (``"2023-03-01"``)."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return dt.date.fromisoformat(text[:10] if len(text) > 10 and text[10] in "T " else text)
        except ValueError:
            pass
    raise InputError(
        f"`{param}` {value!r} is not a date; give a date or 'YYYY-MM-DD', e.g. '2023-03-01'", param=param
    )


def as_optional_date(value: Any, param: str) -> dt.date | None:
    return None if value is None else as_date(value, param)


def check_season(start: dt.date | None, end: dt.date | None) -> None:
    """`InputError` (``param="end"``) unless ``end`` is after ``start`` (a season has at least two days)."""
    if start is not None and end is not None and end <= start:
        raise InputError(f"`end` {end} is not after `start` {start}; give start < end", param="end")


def as_path(value: Any, param: str) -> Path:
    """A `Path` from a ``str`` or an `os.PathLike` (``~`` expanded)."""
    if isinstance(value, str | os.PathLike) and str(os.fspath(value)).strip():
        return Path(os.fspath(value)).expanduser()
    raise InputError(
        f"`{param}` {value!r} is not a path; give a file name as a str or pathlib.Path", param=param
    )


def as_optional_path(value: Any, param: str) -> Path | None:
    return None if value is None else as_path(value, param)


def as_source(value: Any, param: str) -> str:
    """A data source (STAC API URL, ``catalog.json``, GeoTIFF folder) as the string the readers take."""
    if isinstance(value, os.PathLike):
        return str(Path(os.fspath(value)).expanduser())
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise InputError(
        f"`{param}` {value!r} is not a source; give a STAC API URL, a catalog.json or a GeoTIFF folder",
        param=param,
    )


class _GeoJSON:
    """A GeoJSON mapping seen through ``__geo_interface__`` (what `geocrop.io.aoi.read_aoi` reads)."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.__geo_interface__ = dict(data)

    def __repr__(self) -> str:
        return f"GeoJSON {self.__geo_interface__.get('type', '?')}"


def as_aoi(value: Any, param: str = "aoi") -> Any:
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
        f"`{param}` {value!r} is not an area; give a vector file, a (minx, miny, maxx, maxy) lon/lat bbox, "
        "a GeoJSON mapping or an object with __geo_interface__",
        param=param,
    )


def as_bundle(value: Any, param: str) -> Path:
    """A bundle path from a path, or from a result object that wrote one (``.bundle``)."""
    bundle = getattr(value, "bundle", None)
    if isinstance(bundle, str | os.PathLike):
        return Path(os.fspath(bundle))
    if isinstance(value, str | os.PathLike):
        return as_path(value, param)
    raise InputError(
        f"`{param}` {value!r} is not a model bundle; give a .safetensors path or the result of "
        "geocrop.train / geocrop.pretrain",
        param=param,
    )


_FLAG = re.compile(r"--[a-z][a-z0-9-]*")


@contextlib.contextmanager
def library_terms(*names: str) -> Iterator[None]:
    """Re-word errors of config objects that still name CLI flags (``--end``) in this API's argument
    names (`` `end` ``, ``param`` set)."""
    try:
        yield
    except GeocropError as exc:
        if exc.param is None and exc.args and isinstance(exc.args[0], str):
            table = {as_flag(n): n for n in names}
            found: list[str] = []

            def swap(match: re.Match[str]) -> str:
                name = table.get(match.group(0))
                if name is None:
                    return match.group(0)
                found.append(name)
                return f"`{name}`"

            text = _FLAG.sub(swap, exc.args[0])
            if found:
                exc.args = (text, *exc.args[1:])
                exc.param = found[0]
        raise


def label_source(
    labels: PathLike,
    class_column: str,
    *,
    s2: PathLike | None,
    start: DateLike | None,
    end: DateLike | None,
    group_column: str | None,
    id_column: str | None,
    steps: int | Literal["auto"],
    min_parcels: int | Literal["auto"],
    class_map: PathLike | None,
    drop_unmapped: bool,
    nodata: Sequence[float],
    scale: float | None,
) -> LabelSource:
    from geocrop.data.labelled import LabelSource

    first, last = as_optional_date(start, "start"), as_optional_date(end, "end")
    check_season(first, last)
    if not isinstance(class_column, str) or not class_column.strip():
        raise InputError(
            f"`class_column` {class_column!r} is not a column name; give one", param="class_column"
        )
    return LabelSource(
        path=as_path(labels, "labels"),
        class_column=class_column,
        group_column=group_column,
        id_column=id_column,
        s2=None if s2 is None else as_source(s2, "s2"),
        start=first,
        end=last,
        steps=steps,
        min_parcels=min_parcels,
        class_map=None if class_map is None else os.fspath(class_map),
        drop_unmapped=drop_unmapped,
        nodata=tuple(float(v) for v in nodata),
        scale=scale,
    )


def train_config(
    *, epochs: int | None, batch_size: int | None, lr: float, seed: int, device: Device
) -> TrainConfig:
    from geocrop.training.fit import TrainConfig

    return TrainConfig(epochs=epochs, batch_size=batch_size, initial_lr=lr, seed=seed, device=device)
