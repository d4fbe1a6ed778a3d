"""Local raster stacks, as QGIS users hold them, as a Sentinel-2 source (``map``'s ``stac``).

Two layouts:

- **one multi-band GeoTIFF** whose bands are band x date, in any order, with a band-date table beside it
  (``stack.tif`` + ``stack.csv``): one row per band of the file, columns ``band`` (its 1-based index in
  the file), ``date`` (YYYY-MM-DD) and ``name`` (a Sentinel-2 band: ``B02``, ``B2``, ``S2-L2A-B02`` or
  its common name ``blue``, any case). Bands the table leaves out are not read.
- **a folder of single-date GeoTIFFs named by date** (``2023-05-01.tif``, ``20230501.tif``,
  ``S2_20230501.tif``), each holding the bands of one date: their names are the files' band descriptions
  (as GDAL and QGIS write them), else a ``bands.csv`` in the folder (columns ``band``, ``name``).

`open_stack` reads only headers and returns the layout `geocrop.io.cube_file` reads a NetCDF cube in:
dimensions ``(time, y, x)``, one variable per Sentinel-2 band, pixel-centre coordinates, the CRS as
``crs_wkt`` and the file's nodata value as each variable's ``nodata``. Each variable is a dask array
whose chunks read their window of the GeoTIFF(s) only when computed, so a stack becomes the same lazy
``(time, band, y, x)`` reflectance cube as any other source (values: `geocrop.io.cube_file`'s rule,
integers are reflectance x 1e4). Every date must hold every band named anywhere in the stack, and the
files of a folder must share one grid; otherwise one `InputError` names the gap or the file and the fix.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from geocrop.core.bands import S2_ASSET_KEYS, S2_BANDS
from geocrop.errors import InputError, SourceError

__all__ = ["TIFF_SUFFIXES", "is_stack_path", "open_stack", "stack_band_name"]

TIFF_SUFFIXES = (".tif", ".tiff")
#: A file named by its date: ``2023-05-01``, ``20230501``, with an optional word in front (``S2_``).
_DATED = re.compile(r"^(?:[A-Za-z0-9]+[_-])?(\d{4})-?(\d{2})-?(\d{2})$")
_COMMON = {key: band for band, key in S2_ASSET_KEYS.items()}
_CHUNK = 1024


def stack_band_name(name: str) -> str | None:
    """The Sentinel-2 band a stack names ``B02``, ``B2``, ``S2-L2A-B02`` or ``blue`` (any case), or None.

    (`geocrop.io.cube_file` reads the variables this module names, so it cannot be asked here.)"""
    text = name.strip().upper().replace("_", "-")
    for prefix in ("S2-", "S2", "L2A-"):
        text = text.removeprefix(prefix)
    if text[:1] == "B" and text[1:].isdigit():
        text = f"B{int(text[1:]):02d}"
    return text if text in S2_BANDS else _COMMON.get(name.strip().lower())


def _dated_tiffs(folder: Path) -> dict[Path, dt.date | None]:
    """The folder's GeoTIFFs (not recursive) and the date each name gives (None: not named by a date)."""
    found: dict[Path, dt.date | None] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in TIFF_SUFFIXES and path.is_file():
            m = _DATED.match(path.stem)
            try:
                found[path] = dt.date(int(m[1]), int(m[2]), int(m[3])) if m else None
            except ValueError:
                found[path] = None
    return found


def is_stack_path(path: Path) -> bool:
    """A GeoTIFF file, or a folder whose GeoTIFFs are all named by a date (provider names are not)."""
    if path.is_file():
        return path.suffix.lower() in TIFF_SUFFIXES
    if not path.is_dir():
        return False
    dates = _dated_tiffs(path)
    return bool(dates) and all(d is not None for d in dates.values())


@dataclass(frozen=True)
class _Grid:
    crs: Any
    transform: Any
    width: int
    height: int
    dtype: str
    nodata: float | None
    count: int
    descriptions: tuple[str | None, ...]


def _grid(path: Path) -> _Grid:
    import rasterio

    try:
        with rasterio.open(path) as src:
            return _Grid(
                src.crs, src.transform, src.width, src.height, src.dtypes[0], src.nodata, src.count,
                tuple(src.descriptions),
            )  # fmt: skip
    except rasterio.errors.RasterioIOError as exc:
        raise SourceError(f"raster stack: {path} could not be opened ({exc}); check the file") from exc


def _table(path: Path, columns: Sequence[str], what: str) -> list[dict[str, str]]:
    """The rows of a small CSV with ``columns`` (any case, spaces allowed around names)."""
    import csv

    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = [
                {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
                for row in csv.DictReader(fh)
            ]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SourceError(f"{what} {path} could not be read ({exc}); give a CSV file") from exc
    present = set(rows[0]) if rows else set()
    if not rows or not set(columns) <= present:
        raise InputError(
            f"{what} {path} has columns {', '.join(sorted(present)) or 'none'}; give the columns "
            f"{', '.join(columns)} with one row per band"
        )
    return rows


def _band(name: str, where: str) -> str:
    band = stack_band_name(name)
    if band is None:
        raise InputError(
            f"{where}: band name {name!r} is not a Sentinel-2 band; name it B01..B12 or B8A (or blue, green, "
            "red, nir, ...)"
        )
    return band


#: One layer of the stack: (file, 1-based band index in it).
Layer = tuple[Path, int]


def _single_file(path: Path) -> tuple[dict[dt.date, dict[str, Layer]], _Grid]:
    table = path.with_suffix(".csv")
    if not table.is_file():
        raise SourceError(
            f"raster stack {path.name} needs its band-date table {table.name} beside it: a CSV with "
            "columns band, date, name and one row per band of the file (e.g. 1,2023-05-01,B02)"
        )
    grid = _grid(path)
    layers: dict[dt.date, dict[str, Layer]] = {}
    for i, row in enumerate(_table(table, ("band", "date", "name"), "band-date table"), start=2):
        where = f"{table.name} line {i}"
        try:
            index, when = int(row["band"]), dt.date.fromisoformat(row["date"])
        except ValueError as exc:
            raise InputError(
                f"{where}: band {row['band']!r}, date {row['date']!r}; give a band number and a "
                "YYYY-MM-DD date"
            ) from exc
        if not 1 <= index <= grid.count:
            raise InputError(
                f"{where}: band {index}, but {path.name} has bands 1..{grid.count}; fix the index"
            )
        band = _band(row["name"], where)
        if band in layers.setdefault(when, {}):
            raise InputError(f"{where}: {band} of {when} is listed twice; keep one row per band and date")
        layers[when][band] = (path, index)
    return layers, grid


def _folder(folder: Path) -> tuple[dict[dt.date, dict[str, Layer]], _Grid]:
    files = _dated_tiffs(folder)
    named = folder / "bands.csv"
    listed = None
    if named.is_file():
        listed = {
            int(r["band"]): _band(r["name"], f"{named.name}")
            for r in _table(named, ("band", "name"), "band table")
        }
    layers: dict[dt.date, dict[str, Layer]] = {}
    first: tuple[Path, _Grid] | None = None
    for path, when in files.items():
        assert when is not None  # is_stack_path admitted only dated names
        grid = _grid(path)
        if first is None:
            first = (path, grid)
        elif (grid.crs, grid.transform, grid.width, grid.height) != (
            first[1].crs,
            first[1].transform,
            first[1].width,
            first[1].height,
        ):
            raise InputError(
                f"raster stack {folder.name}: {path.name} ({grid.width} x {grid.height} px, {grid.crs}) is "
                f"not on the grid of {first[0].name} ({first[1].width} x {first[1].height} px, "
                f"{first[1].crs}); "
                "resample the dates onto one grid (e.g. QGIS Align Rasters)"
            )
        if when in layers:
            raise InputError(f"raster stack {folder.name}: two files are dated {when}; keep one per date")
        names = listed or {
            i + 1: _band(d, f"{path.name} band {i + 1}") for i, d in enumerate(grid.descriptions) if d
        }
        if not names:
            raise InputError(
                f"raster stack {folder.name}: {path.name} has no band names; set its band descriptions "
                "(B02, B03, ...) or add a bands.csv (columns band, name) to the folder"
            )
        layers[when] = {band: (path, index) for index, band in names.items() if index <= grid.count}
    assert first is not None
    return layers, first[1]


def _complete(layers: Mapping[dt.date, Mapping[str, Layer]], source: Path) -> list[str]:
    """The stack's bands; `InputError` naming a date that lacks one of them."""
    bands = sorted({b for per_date in layers.values() for b in per_date})
    for when in sorted(layers):
        lacking = [b for b in bands if b not in layers[when]]
        if lacking:
            raise InputError(
                f"raster stack {source.name}: {when} lacks {', '.join(lacking)}, which other dates have; "
                "add those bands for that date or leave the date out"
            )
    return bands


class _LayerReader:
    """A ``(time, y, x)`` array-like over one band's layers: reads the window a dask chunk asks for."""

    def __init__(self, layers: Sequence[Layer], grid: _Grid) -> None:
        self.layers = list(layers)
        self.shape = (len(layers), grid.height, grid.width)
        self.dtype = np.dtype(grid.dtype)
        self.ndim = 3

    def __getitem__(self, key: tuple[slice, slice, slice]) -> np.ndarray:
        import rasterio
        from rasterio.windows import Window

        t, y, x = (k.indices(n) for k, n in zip(key, self.shape, strict=True))
        h, w = max(0, y[1] - y[0]), max(0, x[1] - x[0])
        out = np.empty((len(range(*t)), h, w), self.dtype)
        for i, index in enumerate(range(*t)):
            if h and w:
                path, band = self.layers[index]
                with rasterio.open(path) as src:
                    out[i] = src.read(band, window=Window(x[0], y[0], w, h))
        return out


def open_stack(path: str | Path) -> Any:
    """The raster stack at ``path`` as an ``xarray.Dataset`` in `geocrop.io.cube_file`'s layout (lazy)."""
    import dask.array as da
    import xarray as xr

    source = Path(path)
    layers, grid = _folder(source) if source.is_dir() else _single_file(source)
    if grid.crs is None:
        raise InputError(f"raster stack {source.name} has no CRS; save it with its georeferencing")
    t = grid.transform
    if t.b != 0 or t.d != 0:
        raise InputError(f"raster stack {source.name} has a rotated grid; warp it to a north-up grid first")
    bands = _complete(layers, source)
    dates = sorted(layers)
    xs = t.c + t.a * (np.arange(grid.width) + 0.5)
    ys = t.f + t.e * (np.arange(grid.height) + 0.5)
    variables = {}
    for band in bands:
        reader = _LayerReader([layers[d][band] for d in dates], grid)
        data = da.from_array(reader, chunks=(1, _CHUNK, _CHUNK), asarray=False, fancy=False, name=False)
        attrs = {} if grid.nodata is None else {"nodata": float(grid.nodata)}
        variables[band] = xr.Variable(("time", "y", "x"), data, attrs)
    coords = {"time": np.array(dates, "datetime64[ns]"), "y": ys, "x": xs}
    return xr.Dataset(variables, coords=coords, attrs={"crs_wkt": grid.crs.to_wkt()})
