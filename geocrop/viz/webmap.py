"""A single self-contained HTML page showing the crop map: works offline, opens from a file or an e-mail.

The page is built with folium (Leaflet) but none of its CDN links survive: folium's defaults pull Leaflet,
jQuery, Bootstrap and Font Awesome from CDNs, which renders a blank page without a network. The page uses
only Leaflet core (image overlays, GeoJSON, layer and scale controls, plain-HTML panels), so folium's
links are dropped and Leaflet's JS and CSS are inlined (its control icons as data URIs).

Where Leaflet comes from: the PyPI package ``xstatic-leaflet`` (a dependency: Leaflet 1.9.3 files only, no
code, BSD-2-Clause like Leaflet; the same version folium 0.20 links to) - so every pip install has it and
nothing is downloaded at run time and no third-party JS is committed here. Debian's ``libjs-leaflet``
(``/usr/share/javascript/leaflet``) is the fallback; ``leaflet_dir=`` overrides both.

The class band is read at a capped size (overviews, nearest), warped to Web Mercator (so it lines up with
Leaflet's projection; the overlay bounds are given in EPSG:4326 as Leaflet wants) and embedded as an RGBA
PNG data URI with the class colours (nodata transparent). With the confidence COG
(`geocrop.io.cog.confidence_path`) the page also has confidence and uncertainty layers (colour ramps),
a panel to switch between the three and an opacity slider, and a click on a pixel opens a popup with its
class, confidence, uncertainty and class probabilities, read from a grid of at most ``query_size`` pixels
a side embedded in the page (base64 uint8). A banner at the top says what trained the model and, for a
model trained on simulated data, says so in red. The URL fragment ``#layer=uncertainty&opacity=0.5&
query=LAT,LON`` sets the panel and clicks a pixel on load (links to a pixel; the browser tests use it).
No base map offline: a plain background with the AOI outline and a scale bar; ``tiles="OpenStreetMap"``
(or any folium tile name/URL) adds an online layer.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import folium
from branca.element import Element, MacroElement
from jinja2 import Template

from geocrop.errors import InputError, OutputError
from geocrop.io.atomic import write_text_atomic
from geocrop.io.classes import ClassInfo, check_classes
from geocrop.viz.webmap_layers import (
    RAMPS,
    band_count,
    png_data_uri,
    read_mercator,
    render_classes_rgba,
    render_ramp_rgba,
)
from geocrop.viz.webmap_panel import add_panel, b64

__all__ = ["RAMPS", "find_leaflet", "render_classes_rgba", "render_ramp_rgba", "write_webmap"]

_DEBIAN_LEAFLET = Path("/usr/share/javascript/leaflet")


def find_leaflet(leaflet_dir: str | os.PathLike[str] | None = None) -> Path:
    """The folder with leaflet.js and leaflet.css: ``leaflet_dir``, else xstatic-leaflet, else Debian's."""
    candidates: list[Path] = []
    if leaflet_dir is not None:
        candidates.append(Path(leaflet_dir))
    else:
        try:
            from xstatic.pkg import leaflet as xstatic_leaflet

            candidates.append(Path(xstatic_leaflet.BASE_DIR))
        except ImportError:
            pass
        candidates.append(_DEBIAN_LEAFLET)
    for folder in candidates:
        if (folder / "leaflet.js").is_file() and (folder / "leaflet.css").is_file():
            return folder
    tried = ", ".join(str(c) for c in candidates)
    raise OutputError(
        f"web map: no local Leaflet (leaflet.js + leaflet.css) in {tried}; "
        "run `pip install xstatic-leaflet` or install Debian's libjs-leaflet"
    )


def _inline_css(folder: Path) -> str:
    """leaflet.css with its ``url(images/...)`` icons replaced by data URIs."""
    css = (folder / "leaflet.css").read_text(encoding="utf-8")

    def embed(match: re.Match[str]) -> str:
        image = folder / match.group(1)
        if not image.is_file():
            return match.group(0)
        data = base64.b64encode(image.read_bytes()).decode("ascii")
        return f"url(data:image/png;base64,{data})"

    return re.sub(r"url\((images/[A-Za-z0-9_.-]+\.png)\)", embed, css)


def _load_geojson(aoi_geojson: Any) -> dict[str, Any]:
    """A GeoJSON mapping (EPSG:4326) from a path, a JSON string, a mapping or a ``__geo_interface__``."""
    if hasattr(aoi_geojson, "__geo_interface__"):
        return dict(aoi_geojson.__geo_interface__)
    if isinstance(aoi_geojson, Mapping):
        return dict(aoi_geojson)
    if isinstance(aoi_geojson, str) and aoi_geojson.lstrip().startswith("{"):
        return dict(json.loads(aoi_geojson))
    path = Path(aoi_geojson)
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise InputError(
            f"AOI {path}: not a readable GeoJSON file ({exc}); pass a GeoJSON path or mapping"
        ) from exc


def _legend_html(classes: Sequence[ClassInfo], title: str) -> str:
    rows = "".join(
        '<div><span style="display:inline-block;width:14px;height:14px;margin-right:6px;'
        f'vertical-align:middle;border:1px solid #555;background:{c.color}"></span>'
        f"{html.escape(c.name)}</div>"
        for c in sorted(classes, key=lambda c: c.value)
    )
    return (
        '<div id="geocrop-legend" style="position:fixed;bottom:24px;right:12px;z-index:1000;'
        "background:rgba(255,255,255,0.92);padding:8px 10px;border:1px solid #999;border-radius:4px;"
        f'font:13px/1.5 sans-serif;max-height:60%;overflow:auto"><b>{html.escape(title)}</b>{rows}</div>'
    )


class _FitBounds(MacroElement):
    """``map.fitBounds(bounds, {animate: false})``: folium's FitBounds animates the zoom, and a screenshot
    (or a slow machine) then catches the map mid-animation at the wrong scale."""

    _template = Template(
        "{% macro script(this, kwargs) %}"
        "{{ this._parent.get_name() }}.fitBounds({{ this.bounds|tojson }}, {animate: false});"
        "{% endmacro %}"
    )

    def __init__(self, bounds: list[list[float]]) -> None:
        super().__init__()
        self._name = "FitBounds"
        self.bounds = bounds


def _drop_cdn_links(element: Any) -> None:
    """Empty folium's per-element CDN lists (set on the instance; the class lists stay untouched)."""
    if getattr(element, "default_js", None):
        element.default_js = []
    if getattr(element, "default_css", None):
        element.default_css = []
    for child in getattr(element, "_children", {}).values():
        _drop_cdn_links(child)


def _banner_html(notice: str | None, provenance: str | None) -> str:
    if not notice and not provenance:
        return ""
    if notice:
        text = f"&#9888; {html.escape(notice)}: this map is a demonstration, not a measurement."
        style = "background:#b00020;color:#fff;font-weight:bold"
    else:
        text = ""
        style = "background:rgba(255,255,255,0.92);color:#222"
    detail = (
        f'<div style="font-weight:normal;font-size:12px">Model trained on: {html.escape(provenance)}</div>'
        if provenance
        else ""
    )
    return (
        f'<div id="geocrop-banner" role="alert" class="{"simulated" if notice else "provenance"}" '
        f'style="position:fixed;top:0;left:50%;transform:translateX(-50%);z-index:1001;{style};'
        "padding:6px 14px;border-radius:0 0 6px 6px;font:14px/1.4 sans-serif;max-width:40%;"
        f'text-align:center;box-shadow:0 1px 4px rgba(0,0,0,0.4)">{text}'
        f"{detail}</div>"
    )


def _ramp_legend(name: str, title: str) -> str:
    gradient = ",".join(RAMPS[name])
    return (
        f'<div class="geocrop-legend-{name}" style="display:none"><b>{html.escape(title)}</b>'
        f'<div style="width:160px;height:12px;border:1px solid #555;background:linear-gradient(to right,'
        f'{gradient})"></div><div style="display:flex;justify-content:space-between;width:162px">'
        "<span>0 %</span><span>50 %</span><span>100 %</span></div></div>"
    )


def write_webmap(
    html_path: str | os.PathLike[str],
    *,
    cog: str | os.PathLike[str],
    aoi_geojson: Any,
    classes: Sequence[ClassInfo],
    confidence_cog: str | os.PathLike[str] | None = None,
    notice: str | None = None,
    provenance: str | None = None,
    title: str = "geocrop crop map",
    opacity: float = 0.85,
    max_size: int = 2048,
    query_size: int = 512,
    tiles: str | None = None,
    leaflet_dir: str | os.PathLike[str] | None = None,
    parcels: Mapping[str, Any] | None = None,
) -> Path:
    """Write the offline crop-map page (one HTML file, Leaflet inlined) atomically; returns its path.

    ``aoi_geojson``: the AOI in EPSG:4326 as a GeoJSON path, string, mapping or ``__geo_interface__``
    object. ``confidence_cog``: the confidence COG (adds the confidence and uncertainty layers and their
    values in the popup). ``notice``: a warning shown as a red banner (e.g. "model trained on simulated
    data"); ``provenance``: one line on what trained the model, shown in the banner. ``query_size``: the
    largest side of the grid the click popup reads. ``tiles``: an optional online base layer (folium tile
    name or URL template); default none. ``parcels``: a GeoJSON FeatureCollection (EPSG:4326) drawn as a
    layer, each polygon filled with its ``color`` property and showing its ``tooltip`` property on hover.
    """
    items = check_classes(classes)
    leaflet = find_leaflet(leaflet_dir)
    aoi = _load_geojson(aoi_geojson)
    cog_path = Path(cog)
    conf_path = Path(confidence_cog) if confidence_cog is not None else None
    shown = read_mercator(cog_path, max_size=max_size)
    bounds = shown.bounds
    (south, west), (north, east) = bounds
    fmap = folium.Map(
        location=[(south + north) / 2, (west + east) / 2],
        tiles=None,
        control_scale=True,
        zoom_snap=0.25,
    )
    root: Any = fmap.get_root()  # a branca Figure: header, html and script sections
    root.title = title
    root.header.add_child(Element(f"<style>{_inline_css(leaflet)}</style>"), name="leaflet_css_inline")
    root.header.add_child(
        Element(f"<script>{(leaflet / 'leaflet.js').read_text(encoding='utf-8')}</script>"),
        name="leaflet_js_inline",
    )
    root.header.add_child(Element("<style>.leaflet-container{background:#f2efe9}</style>"), name="geocrop_bg")
    if tiles is not None:
        folium.TileLayer(tiles, name="base map (online)").add_to(fmap)
    class_layer = folium.raster_layers.ImageOverlay(
        image=png_data_uri(render_classes_rgba(shown.data[0], items, opacity=1.0)),
        bounds=bounds,
        opacity=opacity,
        name="crop map",
        interactive=False,
        zindex=1,
    )
    class_layer.add_to(fmap)
    value_layers: dict[str, Any] = {}
    layer_choices = [["classes", "Crop classes"]]
    if conf_path is not None:
        values = read_mercator(conf_path, max_size=max_size, bands=(1, 2))
        for band, (name, label) in enumerate((("confidence", "Confidence"), ("uncertainty", "Uncertainty"))):
            layer = folium.raster_layers.ImageOverlay(
                image=png_data_uri(render_ramp_rgba(values.data[band], RAMPS[name])),
                bounds=values.bounds,
                opacity=opacity,
                name=name,
                interactive=False,
                zindex=1,
                show=False,
                control=False,
            )
            layer.add_to(fmap)
            value_layers[name] = layer
            layer_choices.append([name, label])
    folium.GeoJson(
        aoi,
        name="AOI",
        style_function=lambda _feature: {"color": "#000000", "weight": 2, "fill": False},
    ).add_to(fmap)
    if parcels is not None:
        folium.GeoJson(
            dict(parcels),
            name="parcels",
            style_function=lambda f: {
                "color": "#222222",
                "weight": 1,
                "fillColor": f["properties"]["color"],
                "fillOpacity": 0.6,
            },
            tooltip=folium.GeoJsonTooltip(fields=["tooltip"], labels=False),
        ).add_to(fmap)
    folium.LayerControl(collapsed=False, position="bottomleft").add_to(fmap)
    legend = _legend_html(items, "Crop classes")
    legend = legend.replace("</div>", "", 0)
    ramps = "".join(
        _ramp_legend(n, t) for n, t in (("confidence", "Confidence"), ("uncertainty", "Uncertainty"))
    )
    root.html.add_child(Element(legend), name="geocrop_legend")
    root.html.add_child(
        Element(
            '<div id="geocrop-ramp-legend" style="position:fixed;bottom:24px;left:50%;z-index:1000;'
            "transform:translateX(-50%);background:rgba(255,255,255,0.92);padding:4px 8px;"
            f'font:12px/1.4 sans-serif">{ramps}</div>'
            if value_layers
            else ""
        ),
        name="geocrop_ramp_legend",
    )
    root.html.add_child(Element(_banner_html(notice, provenance)), name="geocrop_banner")
    query = read_mercator(cog_path, max_size=min(query_size, max_size))
    n_values = band_count(conf_path) if conf_path is not None else 0
    query_values = (
        read_mercator(conf_path, max_size=min(query_size, max_size), bands=tuple(range(1, n_values + 1)))
        if conf_path is not None
        else None
    )
    if query_values is not None and query_values.data.shape[1:] != query.data.shape[1:]:
        query_values = None  # grids differ (they never should: same size, same CRS); popup shows classes only
    t = query.transform
    config = {
        "left": t.c, "top": t.f, "xres": t.a, "yres": -t.e,
        "width": int(query.data.shape[2]), "height": int(query.data.shape[1]),
        "opacity": opacity, "layers": layer_choices,
        "legend": [{"value": c.value, "name": c.name, "color": c.color} for c in items],
        "classes": b64(query.data[0]),
        "confidence": b64(query_values.data[0]) if query_values is not None else None,
        "uncertainty": b64(query_values.data[1]) if query_values is not None else None,
        "probs": b64(query_values.data[2:]) if query_values is not None and n_values > 2 else None,
    }  # fmt: skip
    _FitBounds(bounds).add_to(fmap)
    add_panel(fmap, config, class_layer, value_layers)
    _drop_cdn_links(root)
    page = root.render()
    remote = re.findall(r'<(?:script|link)[^>]+(?:src|href)="(https?:[^"]+)"', page)
    if remote:
        raise OutputError(
            f"web map: the page still links {remote[0]}; this is a geocrop bug, please report it"
        )
    return write_text_atomic(html_path, page, what="web map")
