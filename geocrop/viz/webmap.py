"""A single self-contained HTML page showing the crop map: works offline, opens from a file or an e-mail.

The page is built with folium (Leaflet) but none of its CDN links survive: folium's defaults pull Leaflet,
jQuery, Bootstrap and Font Awesome from CDNs, which renders a blank page without a network. The page uses
only Leaflet core (image overlay, GeoJSON, layer and scale controls, a plain-HTML legend), so folium's
links are dropped and Leaflet's JS and CSS are inlined (its control icons as data URIs).

Where Leaflet comes from: the PyPI package ``xstatic-leaflet`` (a dependency: Leaflet 1.9.3 files only, no
code, BSD-2-Clause like Leaflet; the same version folium 0.20 links to) - so every pip install has it and
nothing is downloaded at run time and no third-party JS is committed here. Debian's ``libjs-leaflet``
(``/usr/share/javascript/leaflet``) is the fallback; ``leaflet_dir=`` overrides both.

The class band is read at a capped size (overviews, nearest), warped to Web Mercator (so it lines up with
Leaflet's projection; the overlay bounds are given in EPSG:4326 as Leaflet wants) and embedded as an RGBA
PNG data URI with the class colours (nodata transparent). No base map offline: a plain background with the
AOI outline and a scale bar; ``tiles="OpenStreetMap"`` (or any folium tile name/URL) adds an online layer.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import folium
import numpy as np
import numpy.typing as npt
import rasterio
from branca.element import Element, MacroElement
from jinja2 import Template
from PIL import Image
from rasterio.enums import Resampling
from rasterio.warp import calculate_default_transform, reproject, transform_bounds

from geocrop.errors import InputError, OutputError, SourceError
from geocrop.io.atomic import write_text_atomic
from geocrop.io.classes import NODATA, ClassInfo, check_classes

__all__ = ["find_leaflet", "render_classes_rgba", "write_webmap"]

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


def render_classes_rgba(
    classes_block: npt.NDArray[np.uint8], classes: Sequence[ClassInfo], *, opacity: float = 1.0
) -> npt.NDArray[np.uint8]:
    """(h, w) class values -> (h, w, 4) RGBA: class colours, unknown values and 255 fully transparent."""
    lut = np.zeros((256, 4), dtype=np.uint8)
    alpha = round(255 * min(max(opacity, 0.0), 1.0))
    for c in classes:
        lut[c.value] = (*c.rgb, alpha)
    lut[NODATA] = 0
    return lut[classes_block]


def _read_mercator(cog: Path, *, max_size: int) -> tuple[npt.NDArray[np.uint8], list[list[float]]]:
    """The class band at most ``max_size`` px a side, warped to EPSG:3857, and its [[S, W], [N, E]] bounds."""
    try:
        src = rasterio.open(cog)
    except rasterio.errors.RasterioIOError as exc:
        raise SourceError(f"crop map {cog}: cannot be read ({exc}); write the COG first") from exc
    with src:
        if src.crs is None:
            raise SourceError(f"crop map {cog} has no CRS; it cannot be placed on a map")
        scale = max(src.width / max_size, src.height / max_size, 1.0)
        h, w = max(1, round(src.height / scale)), max(1, round(src.width / scale))
        # Reading at a reduced shape uses the COG's overviews (mode-resampled classes).
        data = src.read(1, out_shape=(h, w), resampling=Resampling.nearest)
        src_transform = src.transform @ src.transform.scale(src.width / w, src.height / h)
        # Square Web Mercator pixels at about the read resolution.
        dst_transform, dst_w, dst_h = calculate_default_transform(src.crs, "EPSG:3857", w, h, *src.bounds)
        merc = np.full((int(dst_h), int(dst_w)), NODATA, dtype=np.uint8)
        reproject(
            data,
            merc,
            src_transform=src_transform,
            src_crs=src.crs,
            src_nodata=NODATA,
            dst_transform=dst_transform,
            dst_crs="EPSG:3857",
            dst_nodata=NODATA,
            resampling=Resampling.nearest,
        )
    left, top = dst_transform @ (0, 0)
    right, bottom = dst_transform @ (int(dst_w), int(dst_h))
    west, south, east, north = transform_bounds("EPSG:3857", "EPSG:4326", left, bottom, right, top)
    return merc, [[south, west], [north, east]]


def _png_data_uri(rgba: npt.NDArray[np.uint8]) -> str:
    buffer = io.BytesIO()
    Image.fromarray(rgba, mode="RGBA").save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


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


def write_webmap(
    html_path: str | os.PathLike[str],
    *,
    cog: str | os.PathLike[str],
    aoi_geojson: Any,
    classes: Sequence[ClassInfo],
    title: str = "geocrop crop map",
    opacity: float = 0.85,
    max_size: int = 2048,
    tiles: str | None = None,
    leaflet_dir: str | os.PathLike[str] | None = None,
) -> Path:
    """Write the offline crop-map page (one HTML file, Leaflet inlined) atomically; returns its path.

    ``aoi_geojson``: the AOI in EPSG:4326 as a GeoJSON path, string, mapping or ``__geo_interface__``
    object. ``tiles``: an optional online base layer (folium tile name or URL template); default none.
    """
    items = check_classes(classes)
    leaflet = find_leaflet(leaflet_dir)
    aoi = _load_geojson(aoi_geojson)
    merc, bounds = _read_mercator(Path(cog), max_size=max_size)
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
    folium.raster_layers.ImageOverlay(
        image=_png_data_uri(render_classes_rgba(merc, items, opacity=1.0)),
        bounds=bounds,
        opacity=opacity,
        name="crop map",
        interactive=False,
        zindex=1,
    ).add_to(fmap)
    folium.GeoJson(
        aoi,
        name="AOI",
        style_function=lambda _feature: {"color": "#000000", "weight": 2, "fill": False},
    ).add_to(fmap)
    folium.LayerControl(collapsed=False).add_to(fmap)
    root.html.add_child(Element(_legend_html(items, "Crop classes")), name="geocrop_legend")
    _FitBounds(bounds).add_to(fmap)
    _drop_cdn_links(root)
    page = root.render()
    remote = re.findall(r'<(?:script|link)[^>]+(?:src|href)="(https?:[^"]+)"', page)
    if remote:
        raise OutputError(
            f"web map: the page still links {remote[0]}; this is a geocrop bug, please report it"
        )
    return write_text_atomic(html_path, page, what="web map")
