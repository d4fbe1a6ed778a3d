"""Areas of interest: read any common vector input into one valid EPSG:4326 polygon.

Accepted: GeoJSON (Feature, FeatureCollection or a bare geometry; a legacy ``crs`` member is honoured),
GeoPackage, GeoParquet, Shapefile, a bbox (tuple or ``"minx,miny,maxx,maxy"``, EPSG:4326), a shapely
geometry or anything with ``__geo_interface__``. Multi-part inputs become their union; self-intersecting
polygons are repaired with :func:`shapely.make_valid` and a warning. Anything else is an
:class:`~geocrop.errors.InputError` with a one-line message.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import shapely
from pyproj import CRS, Transformer
from shapely.geometry import box, shape
from shapely.geometry.base import BaseGeometry

from geocrop.errors import GeocropWarning, InputError

BBox = tuple[float, float, float, float]
_FIX = "give a GeoJSON/GeoPackage polygon or a bbox minx,miny,maxx,maxy"
_VECTOR_SUFFIXES = {".gpkg", ".shp", ".fgb", ".gml", ".kml", ".zip"}
_PARQUET_SUFFIXES = {".parquet", ".geoparquet"}
#: A string of numbers and commas (a bbox, maybe with the wrong count), not a file name.
_NUMBERS = re.compile(r"^\s*[-+.\deE]+(\s*,\s*[-+.\deE]*)+\s*$")


@dataclass(frozen=True)
class Aoi:
    """A polygonal area in EPSG:4326 (lon/lat), valid and non-empty.

    Attributes:
        geometry: shapely Polygon or MultiPolygon, the union of every input part.
        name: where it came from (file name or ``"bbox"``), for messages.
    """

    geometry: BaseGeometry
    name: str = "AOI"

    @property
    def bbox(self) -> BBox:
        """(minx, miny, maxx, maxy) in EPSG:4326."""
        minx, miny, maxx, maxy = self.geometry.bounds
        return (float(minx), float(miny), float(maxx), float(maxy))

    def utm_epsg(self) -> int:
        """EPSG code of the WGS 84 UTM zone holding the AOI's centroid (326xx north, 327xx south)."""
        c = self.geometry.centroid
        zone = min(max(math.floor((c.x + 180.0) / 6.0) + 1, 1), 60)
        return (32600 if c.y >= 0 else 32700) + zone

    def to_crs(self, crs: Any) -> BaseGeometry:
        """The geometry reprojected to ``crs`` (anything pyproj understands)."""
        return _reproject(self.geometry, CRS.from_epsg(4326), CRS.from_user_input(crs))

    @property
    def __geo_interface__(self) -> dict[str, Any]:
        return dict(shapely.geometry.mapping(self.geometry))


def _reproject(geom: BaseGeometry, src: CRS, dst: CRS) -> BaseGeometry:
    if src == dst:
        return geom
    tf = Transformer.from_crs(src, dst, always_xy=True)
    return shapely.transform(geom, lambda x, y: tf.transform(x, y), interleaved=False)


def _parse_bbox(values: Sequence[Any], name: str) -> BaseGeometry:
    values = list(values)
    if len(values) != 4:
        raise InputError(
            f"bbox {name} has {len(values)} numbers; give four, minx,miny,maxx,maxy in lon/lat (EPSG:4326)"
        )
    try:
        minx, miny, maxx, maxy = (float(v) for v in values)
    except (TypeError, ValueError) as exc:
        raise InputError(f"bbox {name} is not four numbers minx,miny,maxx,maxy; {_FIX}") from exc
    if not (minx < maxx and miny < maxy):
        raise InputError(f"bbox {name} has min >= max; give minx,miny,maxx,maxy with min < max")
    return box(minx, miny, maxx, maxy)


def _geojson_geometry(data: Any, name: str) -> tuple[BaseGeometry, CRS | None]:
    """Geometry (union of features) and the legacy ``crs`` member's CRS, if any."""
    if not isinstance(data, dict) or "type" not in data:
        raise InputError(f"AOI file {name} is not valid GeoJSON: no 'type' member; {_FIX}")
    crs: CRS | None = None
    crs_member = data.get("crs")
    if isinstance(crs_member, dict):
        try:
            crs = CRS.from_user_input(crs_member.get("properties", {}).get("name"))
        except Exception as exc:
            raise InputError(f"AOI file {name} has an unreadable 'crs' member: {exc}; {_FIX}") from exc
    kind = data["type"]
    if kind == "FeatureCollection":
        geoms = [f.get("geometry") for f in data.get("features") or [] if isinstance(f, dict)]
    elif kind == "Feature":
        geoms = [data.get("geometry")]
    else:
        geoms = [data]
    parts = []
    for g in geoms:
        if not g:
            continue
        try:
            parts.append(shape(g))
        except Exception as exc:
            raise InputError(f"AOI file {name} is not valid GeoJSON: {exc}; {_FIX}") from exc
    if not parts:
        raise InputError(f"AOI file {name} is not valid GeoJSON: it holds no geometry; {_FIX}")
    return shapely.union_all(parts), crs


def _read_file(path: Path) -> tuple[BaseGeometry, CRS | None]:
    name = path.name
    if not path.exists():
        raise InputError(f"AOI file {path} does not exist; {_FIX}")
    suffix = path.suffix.lower()
    if suffix in {".geojson", ".json"}:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"AOI file {name} is not valid GeoJSON: {exc}; {_FIX}") from exc
        return _geojson_geometry(data, name)
    import geopandas as gpd  # heavy import, only for non-GeoJSON vector files

    try:
        frame = gpd.read_parquet(path) if suffix in _PARQUET_SUFFIXES else gpd.read_file(path)
    except Exception as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"AOI file {name} could not be read as a vector file: {msg}; {_FIX}") from exc
    geoms = [g for g in frame.geometry if g is not None and not g.is_empty]
    if not geoms:
        raise InputError(f"AOI file {name} holds no geometry; {_FIX}")
    if frame.crs is None:
        hint = " (its .prj file is missing)" if suffix == ".shp" else ""
        raise InputError(
            f"AOI file {name} does not say its coordinate system{hint}; add it (for a Shapefile, the .prj "
            "beside it) or save the AOI as GeoJSON in EPSG:4326 or as a GeoPackage"
        )
    return shapely.union_all(geoms), CRS.from_user_input(frame.crs)


def _polygonal(geom: BaseGeometry, name: str) -> BaseGeometry:
    """Repair (with a warning), keep the polygonal parts, and reject empty or non-areal input."""
    if not geom.is_valid:
        reason = shapely.is_valid_reason(geom)
        warnings.warn(
            f"AOI {name} is not a valid polygon ({reason}); repaired with shapely.make_valid",
            GeocropWarning,
            stacklevel=3,
        )
        geom = shapely.make_valid(geom)
    if geom.geom_type == "GeometryCollection":
        parts = [g for g in getattr(geom, "geoms", []) if g.geom_type in ("Polygon", "MultiPolygon")]
        geom = shapely.union_all(parts) if parts else shapely.Polygon()
    if geom.is_empty or geom.geom_type not in ("Polygon", "MultiPolygon") or geom.area <= 0:
        kind = "empty" if geom.is_empty else f"a {geom.geom_type}, not an area"
        raise InputError(f"AOI {name} is {kind}; {_FIX}")
    return geom


def read_aoi(spec: Any, *, crs: Any = None) -> Aoi:
    """Read an area of interest into an :class:`Aoi` (EPSG:4326, valid, one union geometry).

    Args:
        spec: a path (GeoJSON/GPKG/GeoParquet/Shapefile), a bbox tuple or ``"minx,miny,maxx,maxy"``
            string, a shapely geometry, or anything with ``__geo_interface__``.
        crs: the CRS of ``spec`` when it does not carry one (bbox, bare geometry, GeoJSON without a
            ``crs`` member); default EPSG:4326. A CRS stored in the file always wins.
    """
    src_crs: CRS | None = None
    if isinstance(spec, Aoi):
        return spec
    if isinstance(spec, BaseGeometry):
        name, geom = "geometry", spec
    elif isinstance(spec, (tuple, list)) and len(spec) == 4:
        name = "bbox " + ",".join(str(v) for v in spec)
        geom = _parse_bbox(spec, name)
    elif isinstance(spec, str) and (spec.count(",") == 3 or _NUMBERS.match(spec)) and not Path(spec).exists():
        name = f"bbox {spec}"
        geom = _parse_bbox(spec.split(","), spec)
    elif isinstance(spec, (str, Path)):
        path = Path(spec)
        name = path.name
        geom, src_crs = _read_file(path)
    elif hasattr(spec, "__geo_interface__"):
        name = type(spec).__name__
        geom, src_crs = _geojson_geometry(spec.__geo_interface__, name)
    else:
        raise InputError(f"AOI {spec!r} is not a path, bbox or geometry; {_FIX}")
    source = src_crs or (CRS.from_user_input(crs) if crs is not None else CRS.from_epsg(4326))
    geom = _polygonal(geom, name)
    wgs84 = CRS.from_epsg(4326)
    if source.is_geographic and source.equals(wgs84, ignore_axis_order=True):
        minx, miny, maxx, maxy = geom.bounds
        if minx < -180.5 or maxx > 180.5 or miny < -90.5 or maxy > 90.5:
            bounds = f"({minx:.1f},{miny:.1f},{maxx:.1f},{maxy:.1f})"
            if name.startswith("bbox"):
                fix = "give lon/lat degrees, longitude first: minx,miny,maxx,maxy in EPSG:4326"
            elif src_crs is None and crs is None:
                fix = (
                    "it carries no CRS, so it is read as lon/lat (EPSG:4326): reproject it to EPSG:4326, or "
                    "save it as a GeoPackage, which stores its CRS"
                )
            else:
                fix = "check the coordinate order (longitude first) or reproject it to EPSG:4326"
            raise InputError(f"AOI {name} has coordinates outside the lon/lat range {bounds}; {fix}")
    geom = _polygonal(_reproject(geom, source, wgs84), name)
    return Aoi(geometry=geom, name=name)
