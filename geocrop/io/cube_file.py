"""Local NetCDF / Zarr cubes as a Sentinel-2 (and Sentinel-1) source, opened with xarray.

A cube is read lazily and turned into one in-memory STAC item per time step (`cube_items`), so that
`geocrop.io.stac.search` filters it by area and dates like any other source and ``map --dry-run`` lists
its dates; `load_cube` then gives the same ``(time, band, y, x)`` float32 cube as
`geocrop.io.cube.load_s2` (or VV/VH backscatter in dB for Sentinel-1) on the caller's GeoBox.

Accepted layout (documented in docs/architecture.md, "Local cubes"):

- **dimensions**: time is ``time``, ``t`` or ``date``; rows ``y``/``northing``/``lat``/``latitude``;
  columns ``x``/``easting``/``lon``/``longitude``. A cube without a time dimension is refused.
- **bands**: one variable per band named ``B02``, ``B2``, ``S2-L2A-B02``, ``S2_B02`` (any case), or one
  variable with a ``band``/``bands`` dimension whose labels are such names. B02, B03, B04 and B08 are
  required; absent bands are filled by the cube loader's rule (`geocrop.io.bandmap.fill_plan`) and listed
  in ``attrs["missing_bands"]``. Sentinel-1: variables ``VV``/``VH``, ``S1-SIGMA0-VV``/``-VH``,
  ``sigma0_vv``... (any case).
- **CRS**: a CF grid-mapping variable (``crs``/``spatial_ref`` with ``crs_wkt`` or ``spatial_ref``), a
  ``crs``/``epsg`` attribute, or latitude/longitude dimensions (EPSG:4326).
- **values**: integer S2 bands are reflectance x 1e4 (L2A digital numbers, the processing-baseline offset
  already removed, as openEO and WorldCereal write them); float bands are reflectance in [0, 1] when
  their median is <= 2, else digital numbers (x 1e-4). CF ``scale_factor``/``add_offset``/``_FillValue``
  are applied by xarray first. **Nodata**: 65535, -1 and NaN (plus a variable's ``nodata`` attribute).
- **Sentinel-1** values become backscatter in dB: integers are WorldCereal's compressed uint16
  (``dB = 20 log10(DN) - 83``, openeo-gfmap's ``decompress_backscatter_uint16``; 0 and 65535 nodata);
  floats with a median below 1 are linear power (``dB = 10 log10(x)``), other floats are dB already.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pystac
import xarray as xr

from geocrop.core.bands import S2_BANDS
from geocrop.errors import InputError, SourceError
from geocrop.io.bandmap import S2_REQUIRED_BANDS, fill_missing_bands

TIME_DIMS = ("time", "t", "date")
Y_DIMS = ("y", "northing", "lat", "latitude")
X_DIMS = ("x", "easting", "lon", "longitude")
BAND_DIMS = ("band", "bands")
#: Values that mean "no observation" in a cube (WorldCereal/openEO write 65535 into uint16 and -1 into int16).
NODATA = (65535.0, -1.0)
S1_BANDS = ("VV", "VH")
#: Key of the asset (and item property) that marks an item made from a local cube.
CUBE_KEY = "geocrop:cube"
_S2_NAME = re.compile(r"^(?:S2[-_]?(?:L2A[-_])?)?B(8A|\d{1,2})$", re.I)
_S1_NAME = re.compile(r"^(?:S1[-_]?(?:SIGMA0[-_])?|SIGMA0[-_]?|GAMMA0[-_]?)?(VV|VH)$", re.I)


def is_cube_path(path: Path) -> bool:
    """True for a NetCDF file (suffix or HDF5/netCDF-3 signature) or a Zarr store."""
    if path.is_dir():
        return path.suffix.lower() == ".zarr" or any(
            (path / m).exists() for m in (".zgroup", ".zmetadata", "zarr.json")
        )
    if path.suffix.lower() in (".nc", ".nc4", ".netcdf", ".h5", ".hdf5"):
        return True
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError:
        return False
    return head.startswith((b"\x89HDF", b"CDF\x01", b"CDF\x02"))


def s2_band_name(name: str) -> str | None:
    m = _S2_NAME.match(name.strip())
    if not m:
        return None
    code = m.group(1).upper()
    band = "B8A" if code == "8A" else f"B{int(code):02d}"
    return band if band in S2_BANDS else None


def s1_band_name(name: str) -> str | None:
    m = _S1_NAME.match(name.strip())
    return m.group(1).upper() if m else None


@functools.lru_cache(maxsize=8)
def _open(path: str, mtime: float) -> xr.Dataset:
    from geocrop.io.raster_stack import is_stack_path, open_stack

    if is_stack_path(Path(path)):  # a GeoTIFF stack read into the same layout (geocrop.io.raster_stack)
        return open_stack(path)
    try:
        if Path(path).is_dir():
            return xr.open_zarr(path)
        return xr.open_dataset(path, chunks={})
    except Exception as exc:  # netCDF4/h5netcdf/zarr raise many types
        first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise SourceError(
            f"cube {path} could not be opened with xarray ({first}); give a valid NetCDF or Zarr"
        ) from exc


def open_cube(path: str | Path) -> xr.Dataset:
    """The dataset at ``path``, opened lazily (cached while the file is unchanged)."""
    p = Path(path).expanduser().absolute()
    return _open(str(p), p.stat().st_mtime)


def _dim(ds: xr.Dataset, names: Sequence[str]) -> str | None:
    return next((str(d) for d in ds.dims if str(d).lower() in names), None)


def _bands(ds: xr.Dataset, sensor: str) -> dict[str, tuple[str, Any]]:
    """``{band: (variable, label or None)}`` of the cube's bands for ``sensor`` ("s2" or "s1")."""
    namer = s2_band_name if sensor == "s2" else s1_band_name
    found: dict[str, tuple[str, Any]] = {}
    for var in ds.data_vars:
        band = namer(str(var))
        if band is not None and band not in found:
            found[band] = (str(var), None)
        bdim = _dim(ds[var].to_dataset(), BAND_DIMS)
        if bdim is not None and bdim in ds[var].coords:
            for label in ds[var][bdim].values:
                band = namer(str(label))
                if band is not None and band not in found:
                    found[band] = (str(var), label)
    return found


def cube_layout(path: str | Path, *, sensor: str = "s2") -> tuple[xr.Dataset, str, str, str, dict[str, Any]]:
    """``(dataset, time dim, y dim, x dim, bands)``; `InputError` naming what is missing and the fix."""
    ds = open_cube(path)
    tdim, ydim, xdim = _dim(ds, TIME_DIMS), _dim(ds, Y_DIMS), _dim(ds, X_DIMS)
    if tdim is None:
        raise InputError(
            f"cube {path} has no time dimension (dimensions {sorted(map(str, ds.dims))}); name it one of "
            f"{', '.join(TIME_DIMS)} with one date per step"
        )
    if ydim is None or xdim is None:
        raise InputError(
            f"cube {path} has no y/x dimensions (dimensions {sorted(map(str, ds.dims))}); name them y and x "
            "(or lat and lon)"
        )
    bands = _bands(ds, sensor)
    if sensor == "s2":
        lacking = [b for b in S2_REQUIRED_BANDS if b not in bands]
        if lacking:
            raise InputError(
                f"cube {path} lacks the required Sentinel-2 band(s) {', '.join(lacking)} (variables "
                f"{sorted(map(str, ds.data_vars))[:12]}); name the variables B02, B03, B04, B08 (or "
                "S2-L2A-B02 ...)"
            )
    elif not all(b in bands for b in S1_BANDS):
        raise InputError(
            f"cube {path} has no Sentinel-1 VV and VH variables (variables "
            f"{sorted(map(str, ds.data_vars))[:12]}); name them VV and VH (or S1-SIGMA0-VV, S1-SIGMA0-VH)"
        )
    return ds, tdim, ydim, xdim, bands


def cube_crs(ds: xr.Dataset, path: str | Path, ydim: str) -> Any:
    """The cube's CRS (an ``odc.geo.CRS``); `InputError` when it declares none."""
    from odc.geo import CRS

    candidates: list[Any] = []
    for var in ds.variables.values():
        gm = var.attrs.get("grid_mapping")
        if gm and gm in ds.variables:
            candidates.append(ds[gm].attrs.get("crs_wkt") or ds[gm].attrs.get("spatial_ref"))
    for name in ("spatial_ref", "crs"):
        if name in ds.variables:
            candidates += [ds[name].attrs.get("crs_wkt"), ds[name].attrs.get("spatial_ref")]
    candidates += [ds.attrs.get("crs"), ds.attrs.get("crs_wkt"), ds.attrs.get("epsg")]
    for cand in candidates:
        if cand:
            try:
                return CRS(int(cand) if str(cand).isdigit() else cand)
            except Exception:  # pyproj raises its own types for unparsable text
                continue
    if ydim.lower() in ("lat", "latitude"):
        return CRS("EPSG:4326")
    raise InputError(
        f"cube {path} declares no CRS; add a CF grid-mapping variable (crs with crs_wkt) or a crs attribute"
    )


def _geobox(ds: xr.Dataset, path: str | Path, ydim: str, xdim: str) -> Any:
    from affine import Affine
    from odc.geo.geobox import GeoBox

    xs, ys = np.asarray(ds[xdim].values, float), np.asarray(ds[ydim].values, float)
    if xs.size < 2 or ys.size < 2:
        raise InputError(f"cube {path} is smaller than 2 x 2 pixels; give a larger cube")
    rx, ry = float(xs[1] - xs[0]), float(ys[1] - ys[0])
    affine = Affine(rx, 0.0, xs[0] - rx / 2, 0.0, ry, ys[0] - ry / 2)
    return GeoBox((ys.size, xs.size), affine, cube_crs(ds, path, ydim))


def cube_items(path: str | Path, *, collection: str, sensor: str = "s2") -> list[pystac.Item]:
    """One in-memory STAC item per time step of the cube at ``path`` (no pixel is read)."""
    from shapely.geometry import mapping, shape

    ds, tdim, ydim, xdim, bands = cube_layout(path, sensor=sensor)
    gbox = _geobox(ds, path, ydim, xdim)
    footprint = dict(mapping(shape(gbox.extent.to_crs("EPSG:4326").geom)))
    times = np.asarray(ds[tdim].values)
    if not np.issubdtype(times.dtype, np.datetime64):
        raise InputError(f"cube {path}: dimension {tdim!r} holds {times.dtype} values, not dates; give dates")
    href = str(Path(path).expanduser().absolute())
    items = []
    for i, when in enumerate(times.astype("datetime64[s]")):
        stamp = dt.datetime.fromisoformat(str(when)).replace(tzinfo=dt.timezone.utc)
        item = pystac.Item(
            id=f"{Path(path).stem}:{stamp.date().isoformat()}",
            geometry=footprint,
            bbox=list(shape(footprint).bounds),
            datetime=stamp,
            properties={CUBE_KEY: {"sensor": sensor, "time_index": i, "bands": sorted(bands)}},
            collection=collection,
        )
        item.add_asset(CUBE_KEY, pystac.Asset(href=href, media_type="application/x-netcdf", roles=["data"]))
        items.append(item)
    return items


def is_cube_item(item: pystac.Item) -> bool:
    return CUBE_KEY in item.assets


def _layer(ds: xr.Dataset, var: str, label: Any, tdim: str) -> xr.DataArray:
    da = ds[var]
    bdim = next((d for d in da.dims if str(d).lower() in BAND_DIMS), None)
    if bdim is not None:
        da = da.sel({bdim: label}, drop=True)
    return da


def _as_float(da: xr.DataArray) -> xr.DataArray:
    nodata = [*NODATA, *([float(da.attrs["nodata"])] if "nodata" in da.attrs else [])]
    raw = da.astype(np.float32)
    return raw.where(~raw.isin(nodata))


def _reflectance(da: xr.DataArray) -> xr.DataArray:
    values = _as_float(da)
    if np.issubdtype(da.dtype, np.integer):
        return values * np.float32(1e-4)
    sample = np.asarray(values.isel({d: slice(0, 64) for d in values.dims}).values)
    finite = sample[np.isfinite(sample)]
    return values * np.float32(1e-4) if finite.size and float(np.median(finite)) > 2 else values


def backscatter_db(values: np.ndarray | xr.DataArray, *, integer: bool) -> Any:
    """Sentinel-1 backscatter in dB from WorldCereal's compressed uint16 (``integer``), linear power or dB.

    ``dB = 20 log10(DN) - 83`` for the compressed integers (openeo-gfmap's `decompress_backscatter_uint16`
    is ``10 ** ((20 log10(DN) - 83) / 10)`` in linear power); DN 0 and 65535 are nodata.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        if integer:
            bad = (values <= 0) | (values >= 65535)
            out = 20.0 * np.log10(values) - 83.0
            return (out.where(~bad) if isinstance(out, xr.DataArray) else np.where(bad, np.nan, out)).astype(
                np.float32
            )
        finite = np.asarray(values)[np.isfinite(np.asarray(values))]
        if finite.size and float(np.median(finite)) < 1.0 and float(finite.min()) >= 0.0:
            out = 10.0 * np.log10(values)
            return (
                out.where(values > 0) if isinstance(out, xr.DataArray) else np.where(values > 0, out, np.nan)
            )
        return values


def load_cube(
    items: Sequence[pystac.Item],
    *,
    geobox: Any,
    bands: Sequence[str] = S2_BANDS,
    sensor: str = "s2",
    chunks: Mapping[str, int] | None = None,
) -> xr.DataArray:
    """``(time, band, y, x)`` float32 of the cube items' time steps on ``geobox``, NaN where no data.

    S2: reflectance in [0, 1], ``bands`` in order, absent ones filled (``attrs["missing_bands"]``). S1:
    VV and VH in dB. The cube's grid is taken as is when it lines up with ``geobox`` (same CRS and pixel
    size, origins a whole number of pixels apart), else reprojected (bilinear).
    """
    paths = {str(it.assets[CUBE_KEY].href) for it in items}
    if len(paths) != 1:
        raise InputError(f"scenes come from {len(paths)} cube files; give one cube per source")
    path = paths.pop()
    ds, tdim, ydim, xdim, found = cube_layout(path, sensor=sensor)
    index = [int(it.properties[CUBE_KEY]["time_index"]) for it in items]
    wanted = [b for b in bands if b in found] if sensor == "s2" else list(S1_BANDS)
    layers = []
    for band in wanted:
        var, label = found[band]
        raw = _layer(ds, var, label, tdim).isel({tdim: index})
        if sensor == "s2":
            value = _reflectance(raw).clip(0.0, 1.0)
        else:
            value = backscatter_db(_as_float(raw), integer=np.issubdtype(raw.dtype, np.integer))
        layers.append(value.astype(np.float32).expand_dims(band=[band]))
    cube = xr.concat(layers, dim="band").transpose(tdim, "band", ydim, xdim)
    cube = cube.rename({tdim: "time", ydim: "y", xdim: "x"})
    cube = _on_grid(cube, _geobox(ds, path, ydim, xdim), geobox)
    if chunks is not None:
        cube = cube.chunk({"time": int(chunks.get("time", 1)) if "time" in chunks else -1, "band": -1,
                           "y": int(chunks.get("y", 1024)), "x": int(chunks.get("x", 1024))})  # fmt: skip
    missing = [b for b in bands if b not in found] if sensor == "s2" else []
    if missing:
        cube = fill_missing_bands(
            cube, bands=tuple(bands), present=wanted, source=f"Sentinel-2 cube {path}", stacklevel=3
        )
    cube = cube.assign_coords(time=np.asarray(cube["time"].values, "datetime64[ns]"))
    cube.name = "reflectance" if sensor == "s2" else "backscatter"
    cube.attrs = {
        "missing_bands": missing,
        "scene_ids": [it.id for it in items],
        "sensor": "sentinel-2-l2a" if sensor == "s2" else "sentinel-1",
        "source": path,
    }
    return cube


def _on_grid(cube: xr.DataArray, own: Any, target: Any) -> xr.DataArray:
    """``cube`` (on GeoBox ``own``) on GeoBox ``target``: exact re-indexing when the grids line up."""
    from odc.geo.xr import xr_coords

    coords = xr_coords(target)
    a, b = own.affine, target.affine

    def whole(v: float) -> bool:
        return abs(v - round(v)) < 1e-6

    aligned = (
        (own.crs == target.crs or (own.crs.epsg is not None and own.crs.epsg == target.crs.epsg))
        and np.isclose(a.a, b.a)
        and np.isclose(a.e, b.e)
        and whole((b.c - a.c) / a.a)
        and whole((b.f - a.f) / a.e)
    )
    if aligned:
        tol = abs(float(a.a)) / 2
        out = cube.reindex(
            y=np.asarray(coords["y"].values),
            x=np.asarray(coords["x"].values),
            method="nearest",
            tolerance=tol,
        )
        return out.assign_coords(coords)
    from odc.geo.xr import assign_crs, xr_reproject

    src = assign_crs(cube, own.crs)
    return xr_reproject(src, target, resampling="bilinear", dst_nodata=np.nan)
