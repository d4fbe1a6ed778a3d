"""Load STAC items into masked reflectance cubes on one shared pixel grid (odc-stac, optionally lazy).

- :func:`s2_geobox`: the AOI's bounding box in its UTM zone at 10 m, snapped outwards to multiples of the
  pixel size (so Sentinel-2's own 10/20/60 m grids line up with it).
- :func:`planet_geobox`: the same grid refined 3x (10/3 m, same origin): S2 pixel ``(i, j)`` covers Planet
  pixels ``(3i..3i+2, 3j..3j+2)`` (the paper's Figure 4).
- :func:`load_s2` / :func:`load_planet`: ``(time, band, y, x)`` float32 reflectance in [0, 1], NaN where
  SCL/UDM2 say not clear (:mod:`geocrop.core.masks`), at nodata and outside the AOI. Scenes of one solar
  day are mosaicked (``groupby="solar_day"``). Missing S2 bands follow :mod:`geocrop.io.bandmap`'s rule.

The grids live in :mod:`geocrop.io.grid` (re-exported here). A corrupt or truncated COG raises
:class:`~geocrop.errors.SourceError` naming the file, in eager loads and
when a lazy cube is computed (the reader itself converts the error: `geocrop.io.odc_read`).
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pystac
import xarray as xr
from odc.geo.geobox import GeoBox

from geocrop.core.bands import PLANET_BANDS, S2_BANDS
from geocrop.core.masks import SCL_CLEAR_CLASSES
from geocrop.errors import GeocropWarning, NoDataError, SourceError
from geocrop.io.aoi import Aoi
from geocrop.io.bandmap import (
    S2_REQUIRED_BANDS,
    BandAsset,
    PlanetAssets,
    fill_missing_bands,
    planet_assets,
    s2_band_assets,
    scl_asset_key,
)
from geocrop.io.cube_file import is_cube_item, load_cube
from geocrop.io.dataset_pool import DatasetPool
from geocrop.io.grid import S2_RESOLUTION, aoi_mask, planet_geobox, s2_geobox
from geocrop.io.odc_read import odc_load
from geocrop.io.reading import ReadSettings

_SCL = "SCL"
_UDM2_CLEAR = "udm2_clear"


def _solar_day(item: pystac.Item, lon: float) -> dt.date:
    when = item.datetime or item.common_metadata.start_datetime
    if when is None:
        raise SourceError(f"STAC item {item.id} has no datetime; it cannot be placed in time")
    return (when + dt.timedelta(hours=lon / 15.0)).date()


def _clone(
    item: pystac.Item, assets: Mapping[str, tuple[pystac.Asset, str, float | None, int]]
) -> pystac.Item:
    """A copy of ``item`` whose assets are renamed to canonical band names with explicit dtype/nodata."""
    clone = pystac.Item(
        id=item.id,
        geometry=item.geometry,
        bbox=item.bbox,
        datetime=item.datetime,
        properties={k: v for k, v in item.properties.items() if k in ("datetime", "proj:epsg", "proj:code")},
        collection="geocrop",
    )
    for name, (asset, dtype, nodata, count) in assets.items():
        bands = [{"data_type": dtype, "nodata": nodata} for _ in range(count)]
        extra = {k: v for k, v in asset.extra_fields.items() if k in ("proj:shape", "proj:transform")}
        extra["raster:bands"] = bands
        clone.add_asset(
            name,
            pystac.Asset(
                href=_abs_href(asset), media_type=asset.media_type, roles=["data"], extra_fields=extra
            ),
        )
    return clone


def _abs_href(asset: pystac.Asset) -> str:
    """The asset's href made absolute against its item (static catalogs store relative hrefs).

    An absolute local path or a URL is kept as is: resolving "/data/x.tif" against an API item's
    ``http://`` self link would wrongly turn it into a URL on the API server.
    """
    href = asset.href
    if "://" in href or Path(href).is_absolute():
        return href
    return asset.get_absolute_href() or href


def _dtype(asset: pystac.Asset, default: str) -> str:
    rb = asset.extra_fields.get("raster:bands")
    if isinstance(rb, list) and rb and isinstance(rb[0], dict) and rb[0].get("data_type"):
        return str(rb[0]["data_type"])
    return default


def _intersecting(items: Sequence[pystac.Item], aoi: Aoi) -> list[pystac.Item]:
    from shapely.geometry import box, shape

    out = []
    for it in items:
        fp = shape(it.geometry) if it.geometry else box(*it.bbox[:2], *it.bbox[-2:]) if it.bbox else None
        if fp is None or fp.intersects(aoi.geometry):
            out.append(it)
    if not out:
        raise NoDataError(
            f"AOI {aoi.name} lies in none of the {len(items)} scenes found; check the AOI's location "
            "or the source"
        )
    return out


def load_s2(
    items: Sequence[pystac.Item],
    *,
    aoi: Aoi,
    resolution: float = S2_RESOLUTION,
    chunks: Mapping[str, int] | None = None,
    crs: Any = None,
    bands: Sequence[str] = S2_BANDS,
    clear_classes: Sequence[int] = SCL_CLEAR_CLASSES,
    resampling: str = "bilinear",
    geobox: GeoBox | None = None,
    read: ReadSettings | None = None,
    datasets: DatasetPool | None = None,
) -> xr.DataArray:
    """Sentinel-2 L2A items -> (time, band, y, x) float32 reflectance on the AOI's UTM 10 m grid.

    NaN where SCL is not in ``clear_classes``, at nodata, and outside the AOI. Bands no item provides are
    filled by :func:`geocrop.io.bandmap.fill_plan` (warned, listed in ``attrs["missing_bands"]``);
    ``attrs["scene_ids"]`` lists the items used. Lazy (dask) when ``chunks`` (e.g. ``{"x": 512,
    "y": 512}``) is given. ``geobox`` overrides the grid derived from ``aoi``/``resolution``/``crs``.
    ``read``: GDAL settings for the reads (`geocrop.io.reading.ReadSettings`; default GDAL's own).
    ``datasets``: keeps remote files open across the lazy cube's reads (`geocrop.io.dataset_pool`; the
    caller closes it when done with the cube).
    """
    if not items:
        raise NoDataError(f"no Sentinel-2 scenes to load for AOI {aoi.name}; widen the search")
    items = _intersecting(items, aoi)
    gbox = geobox if geobox is not None else s2_geobox(aoi, resolution=resolution, crs=crs)
    if any(is_cube_item(it) for it in items):  # a local NetCDF/Zarr cube (geocrop.io.cube_file)
        return _masked(load_cube(items, geobox=gbox, bands=bands, chunks=chunks), aoi, gbox, chunks)
    mapped = [(it, s2_band_assets(it, tuple(bands))) for it in items]
    present = set().union(*(set(m) for _, m in mapped))
    missing_required = [b for b in S2_REQUIRED_BANDS if b in bands and b not in present]
    if missing_required:
        coll = items[0].collection_id or "the source"
        raise SourceError(
            f"collection {coll} has no asset for bands {missing_required} (item {items[0].id}); use a "
            "Sentinel-2 L2A collection such as sentinel-2-l2a"
        )
    clones, groups, scale_info = [], [], []
    lon = float(gbox.extent.centroid.to_crs("EPSG:4326").points[0][0])
    has_scl = False
    for it, m in mapped:
        spec: dict[str, tuple[pystac.Asset, str, float | None, int]] = {
            b: (it.assets[a.asset], _dtype(it.assets[a.asset], "uint16"), a.nodata, 1) for b, a in m.items()
        }
        scl = scl_asset_key(it)
        if scl is not None:
            has_scl = True
            spec[_SCL] = (it.assets[scl], _dtype(it.assets[scl], "uint8"), 0, 1)
        clones.append(_clone(it, spec))
        # Items of one solar day are fused; a different scaling (baseline) splits them into two steps.
        sig = tuple((b, m[b].scale, m[b].offset) for b in sorted(m))
        groups.append((_solar_day(it, lon), sig))
        scale_info.append(m)
    keys = sorted(set(groups))
    load_bands = [b for b in bands if b in present] + ([_SCL] if has_scl else [])
    ds = odc_load(
        clones,
        read,
        datasets,
        bands=load_bands,
        geobox=gbox,
        chunks=chunks,
        groupby=lambda _item, _parsed, idx: groups[idx],
        resampling={"*": resampling, _SCL: "nearest"},
    )
    # Per (time, band) scale, offset and nodata, from any member item of each group (identical by key).
    first = {g: scale_info[groups.index(g)] for g in keys}
    pres = [b for b in bands if b in present]
    scale = np.array([[_attr(first[g], b, "scale", 1e-4) for b in pres] for g in keys], np.float32)
    offset = np.array([[_attr(first[g], b, "offset", 0.0) for b in pres] for g in keys], np.float32)
    dims2 = ("time", "band")
    dn = ds[pres].to_array("band").transpose("time", "band", "y", "x")
    nodata = xr.DataArray([_nodata(scale_info, b) for b in pres], dims="band")
    refl = dn.astype(np.float32) * xr.DataArray(scale, dims=dims2) + xr.DataArray(offset, dims=dims2)
    valid = dn != nodata
    if has_scl:
        valid = valid & ds[_SCL].isin(list(clear_classes))
    else:
        warnings.warn(
            f"the {len(items)} Sentinel-2 scenes have no SCL asset: clouds are not masked, only nodata",
            GeocropWarning,
            stacklevel=2,
        )
    inside = aoi_mask(gbox, aoi, chunks)
    if inside is not None:
        valid = valid & inside
    refl = refl.where(valid).clip(0.0, 1.0).astype(np.float32)
    refl = refl.assign_coords(band=pres)
    missing = [b for b in bands if b not in present]
    if missing:
        refl = fill_missing_bands(
            refl, bands=tuple(bands), present=pres, source="Sentinel-2 source", stacklevel=2
        )
    refl = refl.assign_coords(spatial_ref=ds.spatial_ref) if "spatial_ref" in ds.coords else refl
    refl = _whole_bands(refl, chunks)
    refl.name = "reflectance"
    refl.attrs = {
        "missing_bands": missing,
        "scene_ids": [it.id for it in items],
        "sensor": "sentinel-2-l2a",
        "clear_classes": list(clear_classes),
    }
    return refl


def _masked(cube: xr.DataArray, aoi: Aoi, gbox: GeoBox, chunks: Mapping[str, int] | None) -> xr.DataArray:
    """``cube`` with NaN outside ``aoi`` (attrs kept)."""
    inside = aoi_mask(gbox, aoi, chunks)
    if inside is None:
        return cube
    out = cube.where(inside)
    out.attrs = dict(cube.attrs)
    out.name = cube.name
    return out


def load_s1(
    items: Sequence[pystac.Item],
    *,
    geobox: GeoBox,
    aoi: Aoi | None = None,
    chunks: Mapping[str, int] | None = None,
) -> xr.DataArray:
    """Sentinel-1 items -> (time, band, y, x) float32 backscatter in dB, bands ``VV``, ``VH``, on ``geobox``.

    Items of a local cube (`geocrop.io.cube_file`) or of a STAC collection with ``vv``/``vh`` assets
    (Planetary Computer's ``sentinel-1-rtc``: linear gamma0, converted to dB; 0 and negative are nodata).
    Acquisitions of one solar day are mosaicked.
    """
    if not items:
        raise NoDataError("no Sentinel-1 scenes to load; check the S1 source covers the S2 area and dates")
    if any(is_cube_item(it) for it in items):
        cube = load_cube(items, geobox=geobox, sensor="s1", chunks=chunks)
        return _masked(cube, aoi, geobox, chunks) if aoi is not None else cube
    from geocrop.io.cube_file import backscatter_db

    lon = float(geobox.extent.centroid.to_crs("EPSG:4326").points[0][0])
    clones, groups = [], []
    for it in items:
        keys = {k.lower(): k for k in it.assets}
        if "vv" not in keys or "vh" not in keys:
            raise SourceError(
                f"Sentinel-1 item {it.id} has no vv and vh assets (it has {sorted(it.assets)}); use a dual-"
                "polarisation collection such as sentinel-1-rtc"
            )
        spec = {
            b.upper(): (it.assets[keys[b]], _dtype(it.assets[keys[b]], "float32"), None, 1)
            for b in ("vv", "vh")
        }
        clones.append(_clone(it, spec))
        groups.append(_solar_day(it, lon))
    ds = odc_load(
        clones,
        bands=["VV", "VH"],
        geobox=geobox,
        chunks=chunks,
        groupby=lambda _item, _parsed, idx: groups[idx],
        resampling="bilinear",
    )
    raw = ds[["VV", "VH"]].to_array("band").transpose("time", "band", "y", "x").astype(np.float32)
    db = backscatter_db(raw.where(raw > 0), integer=False)
    out = xr.DataArray(db).assign_coords(band=["VV", "VH"])
    out = _masked(out, aoi, geobox, chunks) if aoi is not None else out
    out.name = "backscatter"
    out.attrs = {"scene_ids": [it.id for it in items], "sensor": "sentinel-1", "missing_bands": []}
    return out


def _whole_bands(cube: xr.DataArray, chunks: Mapping[str, int] | None) -> xr.DataArray:
    """Lazy cubes get one chunk over all bands, so a block is (time, band, y, x) as a mapper wants it."""
    if chunks is None or cube.chunks is None:
        return cube
    return cube.chunk({"band": -1})


def _attr(m: Mapping[str, BandAsset], band: str, name: str, default: float) -> float:
    return float(getattr(m[band], name)) if band in m else default


def _nodata(scale_info: Sequence[Mapping[str, BandAsset]], band: str) -> float:
    for m in scale_info:
        if band in m and m[band].nodata is not None:
            return float(m[band].nodata)  # type: ignore[arg-type]
    return 0.0


def load_planet(
    items: Sequence[pystac.Item],
    *,
    geobox: GeoBox,
    chunks: Mapping[str, int] | None = None,
    aoi: Aoi | None = None,
    refine: bool = True,
    resampling: str = "bilinear",
) -> xr.DataArray:
    """PlanetScope SR items -> (time, band, y, x) float32 reflectance (blue, green, red, nir).

    ``geobox`` is the S2 cube's GeoBox; the Planet cube lands on :func:`planet_geobox` of it (pass
    ``refine=False`` when ``geobox`` is already the Planet grid). NaN where UDM2 band 1 (clear) != 1, at
    nodata (0) and outside ``aoi`` when given. 4-band and 8-band (SuperDove) scenes may be mixed: each
    layout is loaded on its own and the results are merged in time order.
    """
    if not items:
        raise NoDataError("no PlanetScope scenes to load; widen the search or drop the Planet source")
    gbox = planet_geobox(geobox) if refine else geobox
    lon = float(gbox.extent.centroid.to_crs("EPSG:4326").points[0][0])
    parts: dict[tuple[Any, ...], list[tuple[pystac.Item, PlanetAssets]]] = {}
    for it in items:
        pa = planet_assets(it)
        if pa is None:
            raise SourceError(
                f"PlanetScope item {it.id} has no surface-reflectance asset (ortho_analytic_4b_sr or "
                "ortho_analytic_8b_sr); order the SR product"
            )
        key = (pa.band_indices, pa.udm2 is not None, pa.scale, _dtype(it.assets[pa.analytic], "uint16"))
        parts.setdefault(key, []).append((it, pa))
    inside = aoi_mask(gbox, aoi, chunks)
    cubes = [_planet_part(members, gbox, lon, chunks, resampling, inside) for members in parts.values()]
    refl = cubes[0] if len(cubes) == 1 else xr.concat(cubes, dim="time").sortby("time")
    refl = _whole_bands(refl, chunks)
    refl.name = "reflectance"
    refl.attrs = {"scene_ids": [it.id for it in items], "sensor": "planetscope", "missing_bands": []}
    return refl


def _planet_part(
    members: list[tuple[pystac.Item, PlanetAssets]],
    gbox: GeoBox,
    lon: float,
    chunks: Mapping[str, int] | None,
    resampling: str,
    inside: xr.DataArray | None,
) -> xr.DataArray:
    """Reflectance of Planet items that share one file layout (band positions, UDM2, scale, dtype)."""
    pa0 = members[0][1]
    dtype = _dtype(members[0][0].assets[pa0.analytic], "uint16")
    clones, groups = [], []
    for it, pa in members:
        clone = _clone(it, {})
        href = _abs_href(it.assets[pa.analytic])
        for name, idx in zip(PLANET_BANDS, pa.band_indices, strict=True):
            # Declaring the file's bands up to idx makes odc-stac read band idx as "<name>.<idx>".
            extra: dict[str, Any] = {"raster:bands": [{"data_type": dtype, "nodata": 0}] * idx}
            clone.add_asset(name, pystac.Asset(href=href, roles=["data"], extra_fields=extra))
        if pa.udm2 is not None:
            extra = {"raster:bands": [{"data_type": "uint8"}]}
            clone.add_asset(
                _UDM2_CLEAR,
                pystac.Asset(href=_abs_href(it.assets[pa.udm2]), roles=["data"], extra_fields=extra),
            )
        clones.append(clone)
        groups.append(_solar_day(it, lon))
    names = {n: (f"{n}.{i}" if i > 1 else n) for n, i in zip(PLANET_BANDS, pa0.band_indices, strict=True)}
    has_udm2 = pa0.udm2 is not None
    ds = odc_load(
        clones,
        bands=[names[b] for b in PLANET_BANDS] + ([_UDM2_CLEAR] if has_udm2 else []),
        geobox=gbox,
        chunks=chunks,
        groupby=lambda _item, _parsed, idx: groups[idx],
        resampling={"*": resampling, _UDM2_CLEAR: "nearest"},
    )
    ds = ds.rename({v: k for k, v in names.items() if v != k})
    dn = ds[list(PLANET_BANDS)].to_array("band").transpose("time", "band", "y", "x")
    valid = dn != 0
    if has_udm2:
        valid = valid & (ds[_UDM2_CLEAR] == 1)
    else:
        warnings.warn(
            f"{len(members)} PlanetScope scenes have no UDM2 asset: clouds are not masked, only nodata",
            GeocropWarning,
            stacklevel=3,
        )
    if inside is not None:
        valid = valid & inside
    refl = (dn.astype(np.float32) * np.float32(pa0.scale)).where(valid).clip(0.0, 1.0).astype(np.float32)
    return refl.assign_coords(band=list(PLANET_BANDS))


__all__ = ["load_planet", "load_s1", "load_s2", "planet_geobox", "s2_geobox"]
