"""Parcels for `geocrop fields`: any vector file read as Arrow batches of WKB geometry, and the overlap check.

GeoParquet is read through pyarrow (its row groups, WKB geometry, the CRS of its ``geo`` metadata); every
other format through GDAL (`pyogrio.open_arrow`). Either way the caller sees one `ParcelBatches`: an
iterator of record batches, the geometry column's name, the CRS and, where the format knows them, the
feature count and the bounds (for `check_overlap`, the cheap refusal before any map pixel is read).
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import shapely
from pyproj import CRS as ProjCRS
from pyproj import Transformer

from geocrop.errors import InputError
from geocrop.io.map_reader import MapLayers

__all__ = [
    "ParcelBatches",
    "check_overlap",
    "check_polygons",
    "empty_message",
    "no_overlap_message",
    "open_parcels",
]

_PARQUET_IN = (".parquet", ".geoparquet")


@dataclass
class ParcelBatches:
    """Parcel batches (Arrow, WKB geometry) of one file, with its CRS, feature count and bounds (None where
    the format does not say)."""

    batches: Iterator[pa.RecordBatch]
    geometry: str
    crs: str
    count: int | None
    bounds: tuple[float, float, float, float] | None


@contextlib.contextmanager
def open_parcels(path: Path, batch_size: int) -> Iterator[ParcelBatches]:
    """The parcels of ``path`` as Arrow batches: GeoParquet through pyarrow, anything else through GDAL."""
    if not path.is_file():
        raise InputError(
            f"`parcels` {path} does not exist; give a GeoPackage, GeoJSON, ... file", param="parcels"
        )
    if path.suffix.lower() in _PARQUET_IN:
        yield _parquet_batches(path, batch_size)
        return
    import pyogrio
    import pyogrio.errors

    try:
        info = pyogrio.read_info(path, force_total_bounds=True)
        opened = pyogrio.open_arrow(path, batch_size=batch_size, use_pyarrow=True)
        meta, reader = opened.__enter__()
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        raise InputError(
            f"`parcels` {path} is not a vector file GDAL can read ({exc}); give a GeoPackage, GeoJSON, "
            "Shapefile, FlatGeobuf or GeoParquet file",
            param="parcels",
        ) from exc
    try:
        if not meta.get("crs"):
            raise InputError(
                f"`parcels` {path} has no CRS; set it (e.g. ogr2ogr -a_srs EPSG:4326)", param="parcels"
            )
        count = int(info["features"]) if int(info.get("features", -1)) >= 0 else None
        if count == 0:
            raise InputError(empty_message(path), param="parcels")
        box = tuple(float(v) for v in info.get("total_bounds") or (math.nan,) * 4)
        bounds = (box[0], box[1], box[2], box[3]) if all(math.isfinite(v) for v in box) else None
        geometry = meta.get("geometry_name") or "wkb_geometry"
        yield ParcelBatches(iter(reader), geometry, str(meta["crs"]), count, bounds)
    finally:
        opened.__exit__(None, None, None)


def _parquet_batches(path: Path, batch_size: int) -> ParcelBatches:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
        geo = json.loads((pf.schema_arrow.metadata or {}).get(b"geo", b"{}"))
    except (OSError, pa.ArrowException, ValueError) as exc:
        raise InputError(f"`parcels` {path} cannot be read ({exc}); check the file", param="parcels") from exc
    column = geo.get("primary_column")
    spec = geo.get("columns", {}).get(column, {})
    if not column or spec.get("encoding", "WKB").upper() != "WKB":
        raise InputError(
            f"`parcels` {path} is Parquet without WKB GeoParquet geometry; write it with GeoPandas "
            "GeoDataFrame.to_parquet (or give a GeoPackage)",
            param="parcels",
        )
    crs = spec.get("crs", "OGC:CRS84")
    crs_text = "OGC:CRS84" if crs is None else json.dumps(crs) if isinstance(crs, dict) else str(crs)
    return ParcelBatches(pf.iter_batches(batch_size=batch_size), column, crs_text, pf.metadata.num_rows, None)


#: shapely type ids of geometries that cover an area: Polygon, MultiPolygon, GeometryCollection.
_AREAL = (3, 6, 7)


def check_polygons(geoms: np.ndarray, path: Path) -> None:
    """Refuse points and lines: a parcel's map pixels are those whose centre lies inside it, so a point
    or a line has none, and calling that "no overlap" would name the wrong cause."""
    types = shapely.get_type_id(geoms)
    bad = (types >= 0) & ~np.isin(types, _AREAL)
    if not bad.any():
        return
    kinds = sorted({shapely.get_type_id(g) for g in geoms[bad]})
    names = ", ".join(_TYPE_NAMES.get(int(k), "other") for k in kinds)
    raise InputError(
        f"`parcels` {path.name} hold {int(bad.sum())} {names} geometries (of {len(geoms)} read): a parcel's "
        "class is summarised over the map pixels inside it, so polygons are needed; give the parcel "
        "polygons (to check the map at points, use `geocrop assess`)",
        param="parcels",
    )


_TYPE_NAMES = {0: "Point", 1: "LineString", 2: "LinearRing", 4: "MultiPoint", 5: "MultiLineString"}


def check_overlap(parcels: ParcelBatches, layers: MapLayers, path: Path) -> None:
    """Refuse before any work when the parcels' bounding box misses the map's (the cheap case)."""
    if parcels.bounds is None:
        return
    to_map = Transformer.from_crs(ProjCRS.from_user_input(parcels.crs), layers.crs.to_wkt(), always_xy=True)
    minx, miny, maxx, maxy = to_map.transform_bounds(*parcels.bounds, densify_pts=21)
    mx0, my0, mx1, my1 = layers.bounds
    if not all(math.isfinite(v) for v in (minx, miny, maxx, maxy)) or (
        maxx < mx0 or minx > mx1 or maxy < my0 or miny > my1
    ):
        raise InputError(no_overlap_message(path, layers), param="parcels")


def empty_message(path: Path) -> str:
    return f"`parcels` {path} holds no parcel (the file is empty); give a file of parcel polygons"


def no_overlap_message(path: Path, layers: MapLayers) -> str:
    return (
        f"`parcels` {path.name} do not overlap `map` {layers.path.name}; give parcels inside the mapped "
        "area (check both files' CRS)"
    )
