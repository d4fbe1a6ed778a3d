"""Where and when a model learned, and how far a map or a table lies outside that.

A crop model learns the crops, soils, weather and calendar of its training samples: a model trained on
French parcels that maps Belgium, or a 2023 model run on 2025 imagery, may be far less accurate than its
recorded validation says. `geocrop train` records the training samples' **extent** (the lon/lat convex
hull of their locations, `training_extent`) and **season** in the bundle's provenance;
`geocrop map` (at plan time) and `geocrop predict` call `outside_warnings`, which says how far the area
lies outside that extent (km) and how many days of the dates lie outside the season.

Tolerances: an area within `NEAR_KM` of the hull counts as inside (fields next to the training parcels
share their climate and calendar), and dates within one step of the training grid of the season count
as inside it (the grid's own rounding). Distances are computed in an azimuthal equidistant projection
centred on the hull, exact enough at the hundreds of km that matter here.

Points come from a labels file: a samples table's ``lon``/``lat`` (or ``longitude``/``latitude``)
columns, else its WKB ``geometry`` column; a vector file's geometries (any CRS). Reading them is
best-effort: an extent that cannot be read is recorded as unknown and no area check is made.
"""

from __future__ import annotations

import datetime as dt
import logging
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from geocrop.errors import GeocropWarning

__all__ = [
    "NEAR_KM",
    "OutsideTrainingWarning",
    "area_outside",
    "dates_outside",
    "outside_warnings",
    "sample_points",
    "table_area",
    "training_extent",
    "warn_outside",
]

log = logging.getLogger(__name__)


class OutsideTrainingWarning(GeocropWarning):
    """A model is used on an area or dates outside where and when it learned."""


#: Distance from the training extent (km) within which an area counts as inside it.
NEAR_KM = 25.0
#: Hull vertices are stored to this many decimals of a degree (~1 m).
_DECIMALS = 5
_TABLE_SUFFIXES = (".csv", ".txt", ".parquet", ".pq", ".geoparquet")
_LON_LAT = (("lon", "lat"), ("longitude", "latitude"), ("x", "y"))


def _table_points(path: Path, ids: Sequence[str] | None, id_column: str) -> np.ndarray | None:
    import pandas as pd

    if path.suffix.lower() in (".csv", ".txt"):
        names = list(pd.read_csv(path, nrows=0).columns)
    else:
        import pyarrow.parquet as pq

        names = list(pq.read_schema(path).names)
    lower = {n.lower(): n for n in names}
    pair = next(((lower[x], lower[y]) for x, y in _LON_LAT if x in lower and y in lower), None)
    columns = list(pair) if pair else (["geometry"] if "geometry" in names else [])
    if not columns:
        return None
    keyed = id_column in names
    read = [*columns, id_column] if keyed else columns
    if path.suffix.lower() in (".csv", ".txt"):
        frame = pd.read_csv(path, usecols=read)
    else:
        frame = pd.read_parquet(path, columns=read)
    if ids is not None:
        wanted = {str(i) for i in ids}
        if keyed:
            frame = frame[frame[id_column].astype(str).isin(wanted)]
        else:  # a wide table's series ids are its row numbers
            frame = frame[np.isin(np.arange(len(frame)).astype(str), list(wanted))]
    if pair:
        xy = frame[list(pair)].to_numpy(dtype=np.float64)
    else:
        geoms = shapely.from_wkb(frame["geometry"].to_numpy())
        xy = shapely.get_coordinates(geoms)
    return xy[np.isfinite(xy).all(axis=1)]


def _vector_points(path: Path) -> np.ndarray | None:
    import geopandas as gpd

    frame = gpd.read_file(path)
    if frame.crs is None or frame.empty:
        return None
    hull = shapely.convex_hull(shapely.GeometryCollection(list(frame.geometry.dropna())))
    points = gpd.GeoSeries(shapely.points(shapely.get_coordinates(hull)), crs=frame.crs).to_crs(4326)
    return shapely.get_coordinates(points.to_numpy())


def sample_points(
    path: str | Path, *, ids: Sequence[str] | None = None, id_column: str = "sample_id"
) -> np.ndarray | None:
    """(N, 2) lon/lat of a labels file's samples (of the series ``ids`` when given and findable), or None.

    A vector file gives the vertices of its geometries' convex hull (enough for a hull or a distance).
    """
    labels = Path(path)
    try:
        if labels.suffix.lower() in _TABLE_SUFFIXES:
            points = _table_points(labels, ids, id_column)
            if points is None and labels.suffix.lower() == ".geoparquet":
                points = _vector_points(labels)
        else:
            points = _vector_points(labels)
    except Exception as exc:  # the extent is informative: an unreadable one is recorded as unknown
        log.debug("no sample locations read from %s: %s", labels, exc)
        return None
    if points is None or len(points) == 0:
        return None
    if (np.abs(points[:, 0]) > 180).any() or (np.abs(points[:, 1]) > 90).any():
        return None  # not lon/lat (a projected table without a CRS): no extent rather than a wrong one
    return points


def training_extent(points: np.ndarray | None) -> dict[str, Any] | None:
    """The provenance ``extent`` record of sample locations: ``{"hull": [[lon, lat], ...], "samples": n}``
    (the convex hull's ring, a point or a segment for one or two places; ``n`` distinct places), or None.
    """
    if points is None or len(points) == 0:
        return None
    places = np.unique(np.round(points, _DECIMALS), axis=0)  # a long table repeats each sample's place
    hull = shapely.convex_hull(shapely.multipoints(places))
    ring = shapely.get_coordinates(hull.exterior if hull.geom_type == "Polygon" else hull)
    return {"hull": np.round(ring, _DECIMALS).tolist(), "samples": len(places)}


def _hull(extent: Mapping[str, Any]) -> BaseGeometry | None:
    coords = extent.get("hull") if isinstance(extent, Mapping) else None
    if not coords:
        return None
    try:
        return shapely.convex_hull(shapely.multipoints(np.asarray(coords, dtype=np.float64)))
    except (TypeError, ValueError):
        return None


def _local(hull: BaseGeometry, geometry: BaseGeometry) -> tuple[BaseGeometry, BaseGeometry]:
    """``hull`` and ``geometry`` (lon/lat) in metres, in an azimuthal equidistant projection on the hull."""
    from pyproj import Transformer

    centre = hull.centroid
    aeqd = f"+proj=aeqd +lat_0={centre.y} +lon_0={centre.x} +datum=WGS84 +units=m"
    tf = Transformer.from_crs(4326, aeqd, always_xy=True)

    def project(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(tf.transform(xy[:, 0], xy[:, 1]))

    return shapely.transform(hull, project), shapely.transform(geometry, project)


def area_outside(extent: Mapping[str, Any], geometry: BaseGeometry) -> tuple[float, float] | None:
    """(nearest, farthest) km of ``geometry`` (lon/lat) from the training extent; 0 where it touches the
    extent. None when the bundle records no extent."""
    hull = _hull(extent)
    if hull is None or geometry.is_empty:
        return None
    local_hull, local_geom = _local(hull, geometry)
    near = float(local_geom.distance(local_hull)) / 1000
    # distance to a convex set is convex, so its largest value over the area is at a vertex of its hull
    corners = shapely.points(shapely.get_coordinates(shapely.convex_hull(local_geom)))
    far = float(shapely.distance(corners, local_hull).max()) / 1000
    return near, far


def dates_outside(season: Sequence[str] | None, start: dt.date, end: dt.date) -> tuple[int, int] | None:
    """(days before, days after) the training ``season`` that ``start``..``end`` reaches; None without
    a recorded season."""
    if not season or len(season) != 2:
        return None
    try:
        first, last = (dt.date.fromisoformat(str(d)[:10]) for d in season)
    except ValueError:
        return None
    return max(0, (first - start).days), max(0, (end - last).days)


def _describe_extent(extent: Mapping[str, Any]) -> str:
    xy = np.asarray(extent["hull"], dtype=np.float64)
    west, south = xy.min(axis=0)
    east, north = xy.max(axis=0)
    places = extent.get("samples", "?")
    return f"{places} sample places in lon {west:.2f}..{east:.2f}, lat {south:.2f}..{north:.2f}"


def outside_warnings(
    provenance: Mapping[str, Any],
    *,
    area: BaseGeometry | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    steps: int | None = None,
    what: str = "the area",
) -> list[str]:
    """Warnings (no prefix) for an ``area`` (lon/lat geometry) beyond `NEAR_KM` of the training extent and
    for dates ``start``..``end`` more than one grid step (of ``steps`` over the season) outside the
    training season; empty when inside or when the bundle records neither."""
    out: list[str] = []
    extent = provenance.get("extent")
    if area is not None and isinstance(extent, Mapping):
        distance = area_outside(extent, area)
        if distance is not None and distance[1] > NEAR_KM:
            near, far = distance
            where = (
                f"{what} {'lie' if what.endswith('s') else 'lies'} {near:,.0f} km outside the model's "
                f"training extent (up to {far:,.0f} km)"
                if near > NEAR_KM
                else f"part of {what} lies outside the model's training extent, up to {far:,.0f} km"
            )
            out.append(
                f"{where}; the model learned from {_describe_extent(extent)}: expect lower accuracy than "
                "its recorded validation, or train on labels from this region"
            )
    season = provenance.get("season")
    if start is not None and end is not None:
        gap = dates_outside(season, start, end)
        if gap is not None and season is not None:
            first, last = (dt.date.fromisoformat(str(d)[:10]) for d in season)
            step = (last - first).days / max((steps or 1) - 1, 1)
            before, after = (d if d > step else 0 for d in gap)
            if end < first:
                how = f"lie {(first - end).days:,} to {before:,} days before"
            elif start > last:
                how = f"lie {(start - last).days:,} to {after:,} days after"
            else:
                sides = [
                    f"begin {before:,} days before" if before else "",
                    f"end {after:,} days after" if after else "",
                ]
                how = " and ".join(side for side in sides if side)
            if before or after:
                out.append(
                    f"the dates {start}..{end} {how} the model's training season {first}..{last}: crops and "
                    "weather differ between seasons, expect lower accuracy than its recorded validation, or "
                    "train on labels of this season"
                )
    return out


def warn_outside(provenance: Mapping[str, Any], **where: Any) -> list[str]:
    """Issue `outside_warnings` (same arguments) as `OutsideTrainingWarning`s; returns their texts.

    Call it once every check of the command has passed, so a warning never precedes an error.
    """
    messages = outside_warnings(provenance, **where)
    for message in messages:
        warnings.warn(message, OutsideTrainingWarning, stacklevel=3)
    return messages


def table_area(path: str | Path, *, id_column: str = "sample_id") -> BaseGeometry | None:
    """The sample locations of a table as one lon/lat MultiPoint (for `outside_warnings`), or None."""
    points = sample_points(path, id_column=id_column)
    return None if points is None else shapely.multipoints(np.unique(np.round(points, _DECIMALS), axis=0))
