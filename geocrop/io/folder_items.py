"""Turn a folder of provider-named GeoTIFFs into in-memory STAC Items (no catalog needed).

Recognised names (searched recursively):

- Sentinel-2, SAFE granule style: ``T33UUU_20210301T101021_B02_10m.tif`` (also ``_SCL_20m``; the finest
  resolution of a band wins). One item per tile and sensing time.
- Sentinel-2, Earth Search style: ``<item id>/<asset>.tif`` where the item id holds a date
  (``S2A_33UUU_20210301_0_L2A``) and the asset is an Earth Search key (``blue``, ``scl``) or a band id
  (``B02``, ``SCL``).
- PlanetScope: ``20210301_101021_1_2403_3B_AnalyticMS_SR.tif`` (4-band; ``_8b``, ``_harmonized`` and
  ``_clip`` variants too) with ``..._3B_udm2.tif`` beside it.

Items carry no ``raster:bands`` scaling, so Sentinel-2 offsets follow the acquisition date
(:func:`geocrop.io.bandmap.s2_offset`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import pystac
import rasterio
from rasterio.warp import transform_geom
from shapely.geometry import box, mapping, shape

from geocrop.core.bands import S2_ASSET_KEYS
from geocrop.errors import InputError, NoDataError, SourceError
from geocrop.io.collections import PLANET_COLLECTIONS, S2_COLLECTIONS

_S2_SAFE = re.compile(r"^T(\d{2}[A-Z]{3})_(\d{8}T\d{6})_(B\d[0-9A]|SCL)(?:_(\d+)m)?\.tiff?$", re.I)
_S2_DATE = re.compile(r"(\d{8})(?:T(\d{6}))?")
_PLANET = re.compile(
    r"^(\d{8})_(\d{6})(?:_\d{1,2})?_([0-9a-f]{4})_3B_"
    r"(AnalyticMS_SR(?:_8b)?(?:_harmonized)?(?:_clip)?|udm2(?:_clip)?)\.tiff?$",
    re.I,
)
_BAND_TO_KEY = {**{b.upper(): k for b, k in S2_ASSET_KEYS.items()}, "SCL": "scl"}
_KEY_NAMES = {**{k: k for k in S2_ASSET_KEYS.values()}, "scl": "scl"}
_COG = "image/tiff; application=geotiff"


def _footprint(path: Path) -> tuple[dict[str, Any], int | None]:
    try:
        with rasterio.open(path) as ds:
            bounds, crs = ds.bounds, ds.crs
    except rasterio.errors.RasterioIOError as exc:
        raise SourceError(f"GeoTIFF {path} could not be opened: {exc}; replace or remove the file") from exc
    geom = mapping(box(*bounds))
    if crs is None:
        raise SourceError(f"GeoTIFF {path} has no CRS; write it with its georeferencing")
    geom4326 = transform_geom(crs, "EPSG:4326", geom)
    return dict(geom4326), crs.to_epsg()


def _item(
    item_id: str, when: dt.datetime, files: dict[str, Path], collection: str, extra: dict[str, Any]
) -> pystac.Item:
    geometry, epsg = _footprint(next(iter(files.values())))
    props: dict[str, Any] = {"proj:epsg": epsg, **extra}
    item = pystac.Item(
        id=item_id,
        geometry=geometry,
        bbox=list(shape(geometry).bounds),
        datetime=when,
        properties=props,
        collection=collection,
    )
    for key, path in sorted(files.items()):
        asset = pystac.Asset(href=str(path.resolve()), media_type=_COG, roles=["data"])
        if key in ("ortho_analytic_4b_sr", "ortho_analytic_8b_sr", "scl"):
            asset.extra_fields["raster:bands"] = [{"nodata": 0}]
        item.add_asset(key, asset)
    return item


def _s2_items(tifs: list[Path], collection: str) -> list[pystac.Item]:
    groups: dict[tuple[str, str], dict[str, tuple[int, Path]]] = defaultdict(dict)
    for path in tifs:
        m = _S2_SAFE.match(path.name)
        if m:
            tile, stamp, band, res = m.group(1).upper(), m.group(2).upper(), m.group(3).upper(), m.group(4)
            key = _BAND_TO_KEY.get(band)
            if key is None:
                continue
            rank = int(res) if res else 0
            item_id = f"S2_T{tile}_{stamp}"
            have = groups[(item_id, stamp)].get(key)
            if have is None or rank < have[0]:
                groups[(item_id, stamp)][key] = (rank, path)
            continue
        stem = path.stem
        key = _KEY_NAMES.get(stem.lower()) or _BAND_TO_KEY.get(stem.upper())
        date = _S2_DATE.search(path.parent.name)
        if key is not None and date is not None:
            stamp = date.group(1) + "T" + (date.group(2) or "000000")
            groups[(path.parent.name, stamp)][key] = (0, path)
    items = []
    for (item_id, stamp), files in sorted(groups.items()):
        when = dt.datetime.strptime(stamp, "%Y%m%dT%H%M%S").replace(tzinfo=dt.timezone.utc)
        items.append(_item(item_id, when, {k: p for k, (_, p) in files.items()}, collection, {}))
    return items


def _planet_items(tifs: list[Path], collection: str) -> list[pystac.Item]:
    groups: dict[str, dict[str, Path]] = defaultdict(dict)
    for path in tifs:
        m = _PLANET.match(path.name)
        if not m:
            continue
        scene = path.name[: path.name.upper().index("_3B_")]
        kind = m.group(4).lower()
        if kind.startswith("udm2"):
            key = "ortho_udm2"
        elif "_8b" in kind:
            key = "ortho_analytic_8b_sr"
        else:
            key = "ortho_analytic_4b_sr"
        groups[scene][key] = path
    items = []
    for scene, files in sorted(groups.items()):
        if "ortho_analytic_4b_sr" not in files and "ortho_analytic_8b_sr" not in files:
            continue
        date, time = scene.split("_")[:2]
        when = dt.datetime.strptime(date + time, "%Y%m%d%H%M%S").replace(tzinfo=dt.timezone.utc)
        items.append(_item(scene, when, files, collection, {"constellation": "planetscope"}))
    return items


def folder_items(folder: Path, *, collection: str) -> list[pystac.Item]:
    """Items of the files in ``folder`` that belong to ``collection`` (an S2 or PlanetScope id)."""
    tifs = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".tif", ".tiff") and p.is_file())
    if not tifs:
        raise SourceError(f"folder {folder} holds no GeoTIFF; give a STAC catalog or a folder of scenes")
    if collection.lower() in S2_COLLECTIONS:
        items = _s2_items(tifs, collection)
    elif collection.lower() in PLANET_COLLECTIONS:
        items = _planet_items(tifs, collection)
    else:
        raise InputError(
            f"collection {collection!r} is not known for GeoTIFF folders; use one of "
            f"{sorted(S2_COLLECTIONS | PLANET_COLLECTIONS)}"
        )
    if not items:
        raise NoDataError(
            f"folder {folder} has GeoTIFFs but none named like {collection} scenes "
            "(e.g. T33UUU_20210301T101021_B02_10m.tif or 20210301_101021_1_2403_3B_AnalyticMS_SR.tif)"
        )
    return items
