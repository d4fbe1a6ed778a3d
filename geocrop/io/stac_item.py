"""A STAC item describing a crop-map COG, so catalogues and STAC browsers can index the output.

Extensions: classification v2 (``classification:classes`` on the data asset: value, machine ``name`` of
``[0-9A-Za-z_-]``, human ``title``, ``color_hint``; 255 listed as the nodata class) and projection v2
(``proj:code``, ``proj:shape``, ``proj:transform``, ``proj:bbox``, read from the COG). The item is not
validated against the JSON schemas (that fetches them over the network); it is built with pystac and read
back by pystac, which checks its structure.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pystac
import rasterio
from pystac.extensions.classification import Classification, ClassificationExtension
from pystac.extensions.projection import ProjectionExtension
from rasterio.warp import transform_bounds

from geocrop.errors import InputError, SourceError
from geocrop.io.atomic import write_text_atomic
from geocrop.io.classes import NODATA, ClassInfo, check_classes

__all__ = ["build_output_item", "class_slug", "write_output_item"]

DateLike = dt.date | dt.datetime | str


def class_slug(name: str) -> str:
    """A classification-extension ``name`` (letters, digits, ``_`` and ``-`` only) for a class name."""
    slug = re.sub(r"[^0-9A-Za-z_-]+", "_", name.strip()).strip("_")
    return slug or "class"


def _as_datetime(value: DateLike, *, end: bool) -> dt.datetime:
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value) if "T" in value else dt.date.fromisoformat(value)
        except ValueError as exc:
            raise InputError(f"date {value!r} is not ISO 8601; write it as YYYY-MM-DD") from exc
    if not isinstance(value, dt.datetime):
        clock = dt.time(23, 59, 59) if end else dt.time(0, 0, 0)
        value = dt.datetime.combine(value, clock)
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def build_output_item(
    item_path: str | os.PathLike[str],
    *,
    cog: str | os.PathLike[str],
    classes: Sequence[ClassInfo],
    datetime_range: tuple[DateLike, DateLike],
    model: str | Mapping[str, Any],
    sources: Sequence[str] = (),
    bbox: Sequence[float] | None = None,
    geometry: Mapping[str, Any] | None = None,
    extra_assets: Mapping[str, str | os.PathLike[str]] | None = None,
) -> pystac.Item:
    """The item for ``cog`` as it will sit at ``item_path`` (asset hrefs are relative to it).

    ``bbox``/``geometry`` are EPSG:4326 (default: the COG's footprint); ``model`` a name or a metadata
    mapping; ``sources`` the input scene ids; ``extra_assets`` e.g. ``{"style": "map.qml", "webmap":
    "map.html"}``.
    """
    items = check_classes(classes)
    cog_path = Path(cog)
    try:
        with rasterio.open(cog_path) as src:
            shape = [src.height, src.width]
            transform = list(src.transform)[:6]
            native_bounds = list(src.bounds)
            epsg = src.crs.to_epsg() if src.crs else None
            wkt = src.crs.to_wkt() if src.crs else None
            footprint = transform_bounds(src.crs, "EPSG:4326", *src.bounds, densify_pts=21)
    except rasterio.errors.RasterioIOError as exc:
        raise SourceError(f"crop map {cog_path}: cannot be read ({exc}); write the COG first") from exc
    box = [float(v) for v in (bbox if bbox is not None else footprint)]
    if len(box) != 4:
        raise InputError(f"bbox {bbox!r} needs 4 numbers (minx, miny, maxx, maxy) in EPSG:4326")
    if geometry is None:
        minx, miny, maxx, maxy = box
        ring = [[minx, miny], [maxx, miny], [maxx, maxy], [minx, maxy], [minx, miny]]
        geometry = {"type": "Polygon", "coordinates": [ring]}
    start, end = (_as_datetime(datetime_range[0], end=False), _as_datetime(datetime_range[1], end=True))
    properties: dict[str, Any] = {
        "title": f"Crop map {cog_path.stem}",
        "created": dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z"),
        "geocrop:model": model if isinstance(model, str) else dict(model),
        "geocrop:source_scene_ids": list(sources),
    }
    item = pystac.Item(
        id=cog_path.stem,
        geometry=dict(geometry),
        bbox=box,
        datetime=None,
        start_datetime=start,
        end_datetime=end,
        properties=properties,
    )
    proj = ProjectionExtension.ext(item, add_if_missing=True)
    if epsg is not None:
        proj.code = f"EPSG:{epsg}"
    else:
        proj.wkt2 = wkt
    proj.shape = shape
    proj.transform = transform
    proj.bbox = native_bounds
    href = os.path.relpath(cog_path.absolute(), Path(item_path).absolute().parent)
    asset = pystac.Asset(
        href=Path(href).as_posix(),
        media_type=pystac.MediaType.COG,
        roles=["data"],
        title="Crop classes (band 1), confidence % (band 2), class probabilities % (bands 3..)",
    )
    item.add_asset("data", asset)
    klasses = [
        Classification.create(value=c.value, name=class_slug(c.name), title=c.name, color_hint=c.hex6.upper())
        for c in items
    ]
    klasses.append(Classification.create(value=NODATA, name="nodata", title="no data", nodata=True))
    ClassificationExtension.ext(asset, add_if_missing=True).classes = klasses
    for key, extra in (extra_assets or {}).items():
        rel = Path(os.path.relpath(Path(extra).absolute(), Path(item_path).absolute().parent)).as_posix()
        media = {".qml": "application/xml", ".html": pystac.MediaType.HTML}.get(Path(extra).suffix)
        item.add_asset(key, pystac.Asset(href=rel, media_type=media, roles=[key]))
    return item


def write_output_item(
    path: str | os.PathLike[str],
    *,
    cog: str | os.PathLike[str],
    classes: Sequence[ClassInfo],
    bbox: Sequence[float] | None = None,
    datetime_range: tuple[DateLike, DateLike],
    model: str | Mapping[str, Any],
    sources: Sequence[str] = (),
    geometry: Mapping[str, Any] | None = None,
    extra_assets: Mapping[str, str | os.PathLike[str]] | None = None,
) -> Path:
    """Write the output item JSON atomically at ``path`` (see `build_output_item`); returns the path."""
    item = build_output_item(
        path,
        cog=cog,
        classes=classes,
        datetime_range=datetime_range,
        model=model,
        sources=sources,
        bbox=bbox,
        geometry=geometry,
        extra_assets=extra_assets,
    )
    payload = item.to_dict(include_self_link=False, transform_hrefs=False)
    return write_text_atomic(path, json.dumps(payload, indent=2) + "\n", what="STAC item")
