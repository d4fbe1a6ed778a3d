"""A STAC item describing a crop map, so catalogues and STAC browsers can index the output.

Extensions: classification v2 (``classification:classes`` on the class asset: value, machine ``name`` of
``[0-9A-Za-z_-]``, human ``title``, ``color_hint``; 255 listed as the nodata class), projection v2
(``proj:code``, ``proj:shape``, ``proj:transform``, ``proj:bbox``, read from the COG) and the ML-model
extension's descriptive fields for the model that made the map (``mlm:name``, ``mlm:architecture``,
``mlm:tasks``, ``mlm:framework``, ``mlm:output`` with its classes), completed by ``geocrop:model`` (the
bundle's file name and sha256) and ``geocrop:training`` (the bundle's provenance record, see
`geocrop.io.provenance`), and the processing extension (``processing:software``, ``processing:datetime``,
``processing:lineage``) with ``geocrop:processing``: where the map's time went, stage by stage, and what
its read took (`geocrop.inference.stages`). ``derived_from`` links point at the source scenes' STAC items.
Every href is a
URL or relative to the item, never an absolute local path. The item is not validated against the JSON
schemas (that fetches them over the network); it is built with pystac and read back by pystac.
"""

from __future__ import annotations

import datetime as dt
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

from geocrop._version import __version__
from geocrop.errors import InputError, SourceError
from geocrop.io.atomic import write_json_atomic
from geocrop.io.classes import NODATA, ClassInfo, check_classes

__all__ = ["MLM_EXTENSION", "PROCESSING_EXTENSION", "build_output_item", "class_slug", "write_output_item"]

DateLike = dt.date | dt.datetime | str
#: The ML-model extension whose fields describe the model (https://github.com/stac-extensions/mlm).
MLM_EXTENSION = "https://stac-extensions.github.io/mlm/v1.4.0/schema.json"
#: The processing extension (software, date and lineage of the map).
PROCESSING_EXTENSION = "https://stac-extensions.github.io/processing/v1.2.0/schema.json"


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


def _relative(target: str | os.PathLike[str], item_path: str | os.PathLike[str]) -> str:
    """``target`` relative to the folder of the item at ``item_path`` (POSIX separators)."""
    return Path(os.path.relpath(Path(target).absolute(), Path(item_path).absolute().parent)).as_posix()


def _scene_href(scene: Any, item_path: str | os.PathLike[str]) -> str | None:
    """A scene item's own location as a URL, or relative to the output item; None when it has none."""
    href = scene.get_self_href() if hasattr(scene, "get_self_href") else None
    if not href:
        return None
    if "://" in href and not href.startswith("file://"):
        return str(href)
    return _relative(href.removeprefix("file://"), item_path)


def _mlm_fields(model: Mapping[str, Any], items: Sequence[ClassInfo]) -> dict[str, Any]:
    classes = [
        {"value": c.value, "name": class_slug(c.name), "title": c.name, "color_hint": c.hex6.upper()}
        for c in items
    ]
    return {
        "mlm:name": str(model.get("name", "model")),
        "mlm:architecture": str(model.get("architecture", "unknown")),
        "mlm:tasks": ["classification", "semantic-segmentation"],
        "mlm:framework": "pytorch",
        "mlm:output": [
            {
                "name": "crop type per pixel",
                "tasks": ["classification"],
                "result": {
                    "shape": [-1, len(items)],
                    "dim_order": ["batch", "class"],
                    "data_type": "float32",
                },
                "classification:classes": classes,
                "post_processing_function": None,
            }
        ],
    }


def _processing_fields(
    created: str, model: Mapping[str, Any], n_scenes: int, processing: Mapping[str, Any] | None
) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "processing:software": {"geocrop": __version__},
        "processing:datetime": created,
        "processing:lineage": f"crop type per pixel by model {model.get('name', 'model')} from {n_scenes} "
        "Sentinel-2 L2A scenes regridded onto the model's temporal grid",
    }
    if processing is not None:
        fields["geocrop:processing"] = dict(processing)
    return fields


def build_output_item(
    item_path: str | os.PathLike[str],
    *,
    cog: str | os.PathLike[str],
    classes: Sequence[ClassInfo],
    datetime_range: tuple[DateLike, DateLike],
    model: str | Mapping[str, Any],
    sources: Sequence[str] = (),
    source_items: Sequence[Any] = (),
    provenance: Mapping[str, Any] | None = None,
    notice: str | None = None,
    bbox: Sequence[float] | None = None,
    geometry: Mapping[str, Any] | None = None,
    extra_assets: Mapping[str, str | os.PathLike[str]] | None = None,
    processing: Mapping[str, Any] | None = None,
) -> pystac.Item:
    """The item for ``cog`` as it will sit at ``item_path`` (asset hrefs are relative to it).

    ``bbox``/``geometry`` are EPSG:4326 (default: the COG's footprint); ``model`` a name or a mapping
    (``name``, ``architecture``, ``file``: a file name, ``sha256``, ...); ``sources`` the input scene ids;
    ``source_items`` the scenes' STAC items (``derived_from`` links); ``provenance`` the model's training
    record; ``notice`` a warning every reader must see (e.g. "model trained on simulated data");
    ``extra_assets`` e.g. ``{"confidence": "map_confidence.tif", "style": "map.qml", "webmap": "map.html"}``;
    ``processing`` the run's stage times and read counts (`StageTimes.as_properties`), written as
    ``geocrop:processing`` beside the processing extension's fields.
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
    model_info: dict[str, Any] = {"name": model} if isinstance(model, str) else dict(model)
    if "file" in model_info:
        model_info["file"] = Path(str(model_info["file"])).name  # never an absolute path
    properties: dict[str, Any] = {
        "title": f"Crop map {cog_path.stem}",
        "created": dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z"),
        **_mlm_fields(model_info, items),
        "geocrop:model": model_info,
        "geocrop:source_scene_ids": list(sources),
    }
    if provenance is not None:
        properties["geocrop:training"] = dict(provenance)
    properties.update(_processing_fields(properties["created"], model_info, len(sources), processing))
    if notice:
        properties["geocrop:warning"] = notice
        properties["description"] = f"WARNING: {notice}; this map is a demonstration, not a measurement."
    item = pystac.Item(
        id=cog_path.stem,
        geometry=dict(geometry),
        bbox=box,
        datetime=None,
        start_datetime=start,
        end_datetime=end,
        properties=properties,
    )
    item.stac_extensions.extend([MLM_EXTENSION, PROCESSING_EXTENSION])
    proj = ProjectionExtension.ext(item, add_if_missing=True)
    if epsg is not None:
        proj.code = f"EPSG:{epsg}"
    else:
        proj.wkt2 = wkt
    proj.shape = shape
    proj.transform = transform
    proj.bbox = native_bounds
    asset = pystac.Asset(
        href=_relative(cog_path, item_path),
        media_type=pystac.MediaType.COG,
        roles=["data"],
        title="Crop class per pixel (one paletted band; colours inside the file)",
    )
    item.add_asset("data", asset)
    klasses = [
        Classification.create(value=c.value, name=class_slug(c.name), title=c.name, color_hint=c.hex6.upper())
        for c in items
    ]
    klasses.append(Classification.create(value=NODATA, name="nodata", title="no data", nodata=True))
    ClassificationExtension.ext(asset, add_if_missing=True).classes = klasses
    titles = {
        "confidence": "Confidence % (band 1), uncertainty % = normalised entropy (band 2), "
        "class probabilities % (bands 3..)",
        "style": "QGIS layer style",
        "webmap": "Offline web page",
        "sidecar": "GDAL category names and attribute table of the class COG",
    }
    for key, extra in (extra_assets or {}).items():
        suffix = Path(extra).suffix
        media = {".qml": "application/xml", ".html": pystac.MediaType.HTML, ".tif": pystac.MediaType.COG}
        roles = ["data", "confidence"] if key == "confidence" else [key]
        item.add_asset(
            key,
            pystac.Asset(
                href=_relative(extra, item_path),
                media_type=media.get(suffix, "application/xml" if suffix == ".xml" else None),
                roles=roles,
                title=titles.get(key),
            ),
        )
    seen: set[str] = set()
    for scene in source_items:
        href = _scene_href(scene, item_path)
        if href and href not in seen:
            seen.add(href)
            item.add_link(
                pystac.Link("derived_from", href, media_type=pystac.MediaType.JSON, title=str(scene.id))
            )
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
    source_items: Sequence[Any] = (),
    provenance: Mapping[str, Any] | None = None,
    notice: str | None = None,
    geometry: Mapping[str, Any] | None = None,
    extra_assets: Mapping[str, str | os.PathLike[str]] | None = None,
    processing: Mapping[str, Any] | None = None,
) -> Path:
    """Write the output item JSON atomically at ``path`` (see `build_output_item`); returns the path."""
    item = build_output_item(
        path,
        cog=cog,
        classes=classes,
        datetime_range=datetime_range,
        model=model,
        sources=sources,
        source_items=source_items,
        provenance=provenance,
        notice=notice,
        bbox=bbox,
        geometry=geometry,
        extra_assets=extra_assets,
        processing=processing,
    )
    payload = item.to_dict(include_self_link=False, transform_hrefs=False)
    return write_json_atomic(path, payload, what="STAC item", indent=2, newline=True)
