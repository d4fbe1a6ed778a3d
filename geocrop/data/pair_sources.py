"""Open the two sensors for pairing: STAC search, lazy co-registered cubes, the field raster, provenance.

`geocrop.data.pairs.build_pairs` calls `open_pair_sources` and then samples date by date, so only one date
of each cube is ever computed at a time. The Planet cube is loaded on the S2 GeoBox refined 3x
(`geocrop.io.cube.load_planet` refines it), which makes S2 pixel ``(i, j)`` sit on Planet pixels ``(3i..3i+2,
3j..3j+2)``. Without an AOI the area is the union of the S2 scenes' footprints.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from geocrop.errors import InputError, NoDataError, SourceError

#: Search window when no dates are given.
_ALL_TIME = ("1970-01-01", "2100-12-31")
#: Parcel id columns looked for, in this order; otherwise parcels are numbered in file order.
_ID_COLUMNS = ("parcel_id", "field_id", "id", "fid")


@dataclass(frozen=True)
class PairSources:
    """Lazy cubes ready for pairing (``planet``/``planet_dates`` None for S2-only pairs)."""

    s2: Any
    s2_dates: npt.NDArray[np.datetime64]
    planet: Any | None
    planet_dates: npt.NDArray[np.datetime64] | None
    fields: npt.NDArray[np.int64] | None
    provenance: dict[str, Any]


def _days(cube: Any) -> npt.NDArray[np.datetime64]:
    return np.asarray(cube["time"].values, dtype="datetime64[D]")


def open_pair_sources(
    *,
    s2: str | Path,
    planet: str | Path | None,
    aoi: Any | None,
    start: str | dt.date | None,
    end: str | dt.date | None,
    fields: str | Path | None = None,
    tolerance_days: int = 0,
    s2_collection: str = "sentinel-2-l2a",
    planet_collection: str = "planetscope",
    second_modality: str | None = None,
    s1: str | Path | None = None,
    s1_collection: str = "sentinel-1",
    allow_any_asset_href: bool = False,
) -> PairSources:
    """Search both sources, load them lazily on co-registered grids and rasterise the parcels if given.

    ``second_modality="sentinel-1"`` takes the second view from ``s1`` (default: the S2 source, e.g. a
    cube's S1 variables or a catalog's ``s1_collection``) as VV/VH dB on the S2 grid, in place of Planet.

    Raises:
        SourceError: a source or the fields file is missing or unreadable.
        NoDataError: no S2 scene over the AOI and dates (the AOI is outside the data), or no Planet scene
            over the same ground.
    """
    from shapely.geometry import box

    from geocrop.io.aoi import Aoi, read_aoi
    from geocrop.io.cube import load_planet, load_s1, load_s2
    from geocrop.io.stac import search

    trust = allow_any_asset_href  # read assets wherever the catalogs point
    t0, t1 = start or _ALL_TIME[0], end or _ALL_TIME[1]
    area = read_aoi(aoi) if aoi is not None else None
    bbox = area.bbox if area is not None else (-180.0, -90.0, 180.0, 90.0)
    try:
        s2_items = search(
            s2, collection=s2_collection, bbox=area or bbox, start=t0, end=t1, allow_any_asset_href=trust
        )
    except NoDataError as exc:
        where = f"the AOI {area.name} {tuple(round(v, 4) for v in bbox)}" if area else "any area"
        raise NoDataError(
            f"no {s2_collection} scenes in {s2} cover {where} between {t0} and {t1}: the AOI is outside the "
            "data or the dates miss it; check `aoi`, `start` and `end`",
            param="aoi",
        ) from exc
    if area is None:
        bounds = np.array([it.bbox for it in s2_items if it.bbox is not None], dtype=float)
        if len(bounds) == 0:
            raise SourceError(f"the {s2_collection} items in {s2} have no bbox; give `aoi`", param="aoi")
        area = Aoi(
            box(bounds[:, 0].min(), bounds[:, 1].min(), bounds[:, 2].max(), bounds[:, 3].max()), "S2 extent"
        )
    s2_cube = load_s2(s2_items, aoi=area, chunks={"time": 1})
    provenance: dict[str, Any] = {
        "s2_source": str(s2),
        "s2_collection": s2_collection,
        "s2_scenes": len(s2_items),
        "aoi": str(aoi) if aoi is not None else None,
        "aoi_bbox": [round(v, 6) for v in area.bbox],
        "start": str(start) if start else None,
        "end": str(end) if end else None,
        "filled_bands": list(s2_cube.attrs.get("missing_bands", [])),
    }
    planet_cube = None
    planet_dates = None
    if planet is not None:
        pad = dt.timedelta(days=tolerance_days)
        p0 = _shift(t0, -pad)
        p1 = _shift(t1, pad)
        try:
            planet_items = search(
                planet, collection=planet_collection, bbox=area, start=p0, end=p1, allow_any_asset_href=trust
            )
        except NoDataError as exc:
            raise NoDataError(
                f"no {planet_collection} scenes in {planet} overlap the Sentinel-2 data "
                f"({tuple(round(v, 4) for v in area.bbox)}, {t0}..{t1}); the two sensors do not overlap in "
                "space or time: check both sources cover the same AOI and dates"
            ) from exc
        planet_cube = load_planet(planet_items, geobox=s2_cube.odc.geobox, chunks={"time": 1})
        planet_dates = _days(planet_cube)
        provenance |= {
            "planet_source": str(planet),
            "planet_collection": planet_collection,
            "planet_scenes": len(planet_items),
            "tolerance_days": tolerance_days,
        }
    if second_modality == "sentinel-1":
        s1_source = s1 if s1 is not None else s2
        pad = dt.timedelta(days=tolerance_days)
        try:
            s1_items = search(
                s1_source,
                collection=s1_collection,
                bbox=area,
                start=_shift(t0, -pad),
                end=_shift(t1, pad),
                allow_any_asset_href=trust,
            )
        except NoDataError as exc:
            raise NoDataError(
                f"no Sentinel-1 data in {s1_source} overlaps the Sentinel-2 data "
                f"({tuple(round(v, 4) for v in area.bbox)}, {t0}..{t1}); the two sensors do not overlap in "
                "space or time, or the source holds no S1: give an `s1` source (or `planet`), or `mode` "
                "unimodal",
                param="s1",
            ) from exc
        planet_cube = load_s1(s1_items, geobox=s2_cube.odc.geobox, aoi=area, chunks={"time": 1})
        planet_dates = _days(planet_cube)
        provenance |= {
            "second_modality": "sentinel-1",
            "s1_source": str(s1_source),
            "s1_collection": s1_collection,
            "s1_scenes": len(s1_items),
            "tolerance_days": tolerance_days,
        }
    raster = None
    if fields is not None:
        raster = rasterize_fields(fields, geobox=s2_cube.odc.geobox)
        provenance["fields"] = str(fields)
    return PairSources(s2_cube, _days(s2_cube), planet_cube, planet_dates, raster, provenance)


def _shift(value: str | dt.date, delta: dt.timedelta) -> str:
    day = value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])
    try:
        return (day + delta).isoformat()
    except OverflowError:
        return day.isoformat()


def rasterize_fields(path: str | Path, *, geobox: Any) -> npt.NDArray[np.int64]:
    """Burn parcel polygons into an (H, W) int64 raster of field ids on ``geobox`` (0 = no field).

    Ids come from the first of ``parcel_id``, ``field_id``, ``id``, ``fid`` present; otherwise parcels are
    numbered 1..n in file order. Crop labels are never read.
    """
    import geopandas as gpd
    from rasterio.features import rasterize

    try:
        frame = gpd.read_file(path)
    except Exception as exc:  # fiona/pyogrio raise many types for an unreadable file
        raise SourceError(
            f"cannot read the fields file {path} ({exc}); give a GeoJSON/GPKG of parcels"
        ) from exc
    if frame.empty:
        raise InputError(f"the fields file {path} holds no parcels; give a file with parcel polygons")
    if frame.crs is None:
        frame = frame.set_crs(4326)
    frame = frame.to_crs(geobox.crs.to_wkt())
    column = next((c for c in _ID_COLUMNS if c in frame.columns), None)
    ids = (
        np.arange(1, len(frame) + 1)
        if column is None
        else np.unique(frame[column], return_inverse=True)[1] + 1
    )
    shapes = ((geom, int(i)) for geom, i in zip(frame.geometry, ids, strict=True) if geom is not None)
    height, width = geobox.shape
    burnt = rasterize(shapes, out_shape=(height, width), transform=geobox.transform, fill=0, dtype="int32")
    return np.asarray(burnt, dtype=np.int64)
