"""The web page of a map made from another map (smoothed) or summarised over parcels (fields).

Both reuse `geocrop.viz.webmap`'s offline page: the class COG with its confidence and uncertainty
layers, the legend in the map's own class colours, the banner saying what trained the model and the
pixel popup. What a derived map lacks is the AOI it was made for: the outline drawn is the geometry of
the STAC item beside the COG (``geocrop map`` and ``geocrop smooth`` write one), else the COG's
footprint. The provenance line is that item's ``geocrop:training`` record, and the red notice the map's
own ``warning`` tag (a model trained on simulated data over real scenes).

`write_fields_page` adds the parcels of a ``geocrop fields`` table as a layer, each filled with the
colour of its majority class, with a tooltip of its class, share and confidence.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path
from typing import Any

from geocrop.errors import GeocropWarning
from geocrop.io.cog import confidence_path
from geocrop.io.map_reader import MapLayers, open_map
from geocrop.io.provenance import describe_provenance, read_provenance

__all__ = ["MAX_PAGE_PARCELS", "write_fields_page", "write_map_page"]

#: Parcels drawn on a fields page at most (each is inlined as GeoJSON; beyond this a page grows past
#: tens of MB and browsers slow down): the first ones of the table, with a warning naming how many.
MAX_PAGE_PARCELS = 20_000


def _footprint(layers: MapLayers) -> dict[str, Any]:
    """The COG's bounds in EPSG:4326 as a GeoJSON polygon feature."""
    from rasterio.transform import array_bounds
    from rasterio.warp import transform_bounds

    bottom, left, top, right = array_bounds(layers.height, layers.width, layers.transform)
    west, south, east, north = transform_bounds(layers.crs, "EPSG:4326", left, bottom, right, top)
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [ring]}}


def _item(layers: MapLayers) -> dict[str, Any]:
    """The STAC item written beside the map, or {} when there is none (or it cannot be read)."""
    path = layers.path.with_suffix(".json")
    try:
        item = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, ValueError):
        return {}
    return item if isinstance(item, dict) else {}


def write_map_page(
    html_path: str | os.PathLike[str],
    *,
    cog: str | os.PathLike[str],
    title: str,
    parcels: Any = None,
) -> Path:
    """The offline page of the geocrop map ``cog`` (`geocrop.viz.webmap.write_webmap`), outlined by its
    STAC item's geometry (else its footprint); ``parcels``: a GeoJSON mapping of extra polygons drawn
    in their ``color`` property with a ``tooltip`` property, or None."""
    from geocrop.viz.webmap import write_webmap

    layers = open_map(cog)
    item = _item(layers)
    geometry = item.get("geometry")
    outline = {"type": "Feature", "properties": {}, "geometry": geometry} if geometry else _footprint(layers)
    training = (item.get("properties") or {}).get("geocrop:training")
    provenance = describe_provenance(read_provenance({"provenance": training})) if training else None
    conf = confidence_path(layers.path)
    return write_webmap(
        html_path,
        cog=layers.path,
        aoi_geojson=outline,
        classes=layers.classes,
        confidence_cog=conf if conf.is_file() else None,
        notice=layers.tags.get("warning"),
        provenance=provenance,
        title=title,
        parcels=parcels,
    )


def _class_code(value: Any) -> int | None:
    """A parcel's majority class value; None for a parcel without a clear pixel (null, or NaN)."""
    return None if value is None or value != value else int(value)


def _share(value: Any) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.0%}"


def write_fields_page(
    html_path: str | os.PathLike[str], *, cog: str | os.PathLike[str], fields: str | os.PathLike[str]
) -> Path:
    """The map's page with the parcels of the ``geocrop fields`` table ``fields`` drawn over it."""
    import geopandas as gpd

    layers = open_map(cog)
    colours = {c.value: c.color for c in layers.classes}
    path = Path(fields)
    table = gpd.read_parquet(path) if path.suffix.lower() == ".parquet" else gpd.read_file(path)
    if len(table) > MAX_PAGE_PARCELS:
        warnings.warn(
            f"the web page draws the first {MAX_PAGE_PARCELS:,} of {len(table):,} parcels; the table "
            f"{path.name} holds them all",
            GeocropWarning,
            stacklevel=2,
        )
        table = table.iloc[:MAX_PAGE_PARCELS]
    shown = table.to_crs("EPSG:4326")
    features = []
    for row, geom in zip(shown.itertuples(index=False), shown.geometry, strict=True):
        if geom is None or geom.is_empty:
            continue
        code = _class_code(getattr(row, "class_value", None))
        name = str(row.class_name) if code is not None else "no clear pixel"
        confidence = _share(getattr(row, "confidence", None))
        tip = f"{name}: {_share(row.class_share)} of its pixels, confidence {confidence}"
        features.append(
            {
                "type": "Feature",
                "geometry": geom.__geo_interface__,
                "properties": {
                    "color": "#000000" if code is None else colours.get(code, "#000000"),
                    "tooltip": name if code is None else tip,
                },
            }
        )
    return write_map_page(
        html_path,
        cog=layers.path,
        title="geocrop crop map per parcel",
        parcels={"type": "FeatureCollection", "features": features},
    )
