"""write_webmap: one offline HTML page (Leaflet inlined) with the crop map, AOI, legend and layer control."""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from PIL import Image
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from geocrop.errors import OutputError
from geocrop.io.classes import ClassInfo
from geocrop.io.cog import CogWriter, confidence_path
from geocrop.viz.webmap import RAMPS, find_leaflet, render_classes_rgba, render_ramp_rgba, write_webmap

SIZE = 300
TRANSFORM = Affine(10.0, 0.0, 399_960.0, 0.0, -10.0, 5_820_000.0)  # UTM 33N, 10 m
CLASSES = (
    ClassInfo(0, "winter wheat", "#e6c619"),
    ClassInfo(1, "maize & <beans>", "#2e8b57"),
    ClassInfo(3, "sugar beet", "#8a2be2"),
)


@pytest.fixture(scope="module")
def cog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three vertical stripes (0, 1, 3) with a nodata square in the middle."""
    classes = np.zeros((SIZE, SIZE), np.uint8)
    classes[:, 100:200] = 1
    classes[:, 200:] = 3
    classes[125:175, 125:175] = 255
    path = tmp_path_factory.mktemp("webmap") / "crops.tif"
    with CogWriter(
        path, crs="EPSG:32633", transform=TRANSFORM, width=SIZE, height=SIZE, classes=CLASSES
    ) as writer:
        writer.write_block(Window(0, 0, SIZE, SIZE), classes, np.full((SIZE, SIZE), 90, np.uint8))
    return path


@pytest.fixture(scope="module")
def aoi() -> dict[str, object]:
    """A rectangle inside the map, EPSG:4326."""
    w, s, e, n = transform_bounds("EPSG:32633", "EPSG:4326", 400_500, 5_817_500, 402_500, 5_819_500)
    return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}


@pytest.fixture(scope="module")
def page(cog: Path, aoi: dict[str, object]) -> Path:
    return write_webmap(cog.with_suffix(".html"), cog=cog, aoi_geojson=aoi, classes=CLASSES, opacity=1.0)


def test_page_is_self_contained(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    assert not re.search(r'<(script|link)[^>]+(src|href)="https?:', text), "a CDN link would be blank offline"
    assert "Leaflet 1.9.3" in text and "L.imageOverlay(" in text and "L.control.layers(" in text
    assert "L.control.scale()" in text and "tile.openstreetmap" not in text
    assert "url(images/" not in text  # Leaflet's control icons are inlined as data URIs
    assert "maize &amp; &lt;beans&gt;" in text and "winter wheat" in text  # legend, escaped
    assert '"crop map"' in text and '"AOI"' in text  # layer control entries
    assert not list(page.parent.glob(".*partial"))


def test_overlay_png_has_class_colours_transparent_nodata_and_4326_bounds(page: Path, cog: Path) -> None:
    text = page.read_text(encoding="utf-8")
    match = re.search(
        r'L\.imageOverlay\(\s*"data:image/png;base64,([^"]+)",\s*(\[\[[^\]]+\], \[[^\]]+\]\])', text
    )
    assert match, "the overlay must be an embedded PNG"
    rgba = np.asarray(Image.open(io.BytesIO(base64.b64decode(match.group(1)))).convert("RGBA"))
    colours = {tuple(px) for px in rgba.reshape(-1, 4) if px[3] == 255}
    assert {(0xE6, 0xC6, 0x19, 255), (0x2E, 0x8B, 0x57, 255), (0x8A, 0x2B, 0xE2, 255)} <= colours
    centre = rgba[rgba.shape[0] // 2, rgba.shape[1] // 2]
    assert centre[3] == 0  # the nodata hole is transparent
    (south, west), (north, east) = eval(match.group(2))
    w, s, e, n = transform_bounds("EPSG:32633", "EPSG:4326", 399_960, 5_817_000, 402_960, 5_820_000)
    tol = 2e-4  # about one 10 m pixel: the Web Mercator grid may trim a corner by a fraction of one
    assert west <= w + tol and south <= s + tol and east >= e - tol and north >= n - tol
    assert east - west < 2 * (e - w)  # and not absurdly larger


def test_render_classes_rgba() -> None:
    block = np.array([[0, 1, 3, 255, 9]], dtype=np.uint8)
    out = render_classes_rgba(block, CLASSES, opacity=0.5)
    assert out.shape == (1, 5, 4)
    assert tuple(out[0, 0]) == (0xE6, 0xC6, 0x19, 128)
    assert out[0, 3, 3] == 0 and out[0, 4, 3] == 0  # nodata and unknown values are transparent


def test_online_tiles_only_on_request(cog: Path, aoi: dict[str, object], tmp_path: Path) -> None:
    path = write_webmap(tmp_path / "o.html", cog=cog, aoi_geojson=aoi, classes=CLASSES, tiles="OpenStreetMap")
    assert "tile.openstreetmap.org" in path.read_text(encoding="utf-8")


def test_aoi_from_a_geojson_file_and_missing_leaflet(
    cog: Path, aoi: dict[str, object], tmp_path: Path
) -> None:
    import json

    aoi_file = tmp_path / "field.geojson"
    aoi_file.write_text(json.dumps({"type": "Feature", "properties": {}, "geometry": aoi}))
    out = write_webmap(tmp_path / "f.html", cog=cog, aoi_geojson=aoi_file, classes=CLASSES)
    assert "L.geoJson(" in out.read_text(encoding="utf-8")
    with pytest.raises(OutputError, match="xstatic-leaflet"):
        write_webmap(tmp_path / "g.html", cog=cog, aoi_geojson=aoi, classes=CLASSES, leaflet_dir=tmp_path)
    assert not (tmp_path / "g.html").exists()
    assert (find_leaflet() / "leaflet.js").is_file()


def _screenshot(html: Path, png: Path, profile: Path) -> subprocess.CompletedProcess[str]:
    chromium = shutil.which("chromium") or "chromium"
    args = [
        chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
        f"--screenshot={png}", "--window-size=800,600", html.as_uri(),
    ]  # fmt: skip
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


@pytest.mark.browser
def test_headless_chromium_draws_the_overlay(page: Path, tmp_path: Path) -> None:
    png = tmp_path / "shot.png"
    run = _screenshot(page, png, tmp_path / "profile")
    assert png.exists(), run.stderr[-2000:]
    shot = np.asarray(Image.open(png).convert("RGB")).astype(int)
    assert shot.shape == (600, 800, 3)

    def count(hex_colour: str) -> int:
        rgb = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)])
        return int((np.abs(shot - rgb).max(axis=2) <= 3).sum())

    for c in CLASSES:  # each stripe covers about a third of a map that fills most of the window
        assert count(c.color) > 5_000, f"{c.name} ({c.color}) not drawn"
    assert count("#000000") > 300  # the AOI outline
    assert count("#f2efe9") > 10_000  # the plain background outside the map


NOTICE = "model trained on simulated data"


@pytest.fixture(scope="module")
def full_page(cog: Path, aoi: dict[str, object]) -> Path:
    """The page with the confidence COG (layers, popup values) and the simulated-model banner."""
    return write_webmap(
        cog.with_name("full.html"),
        cog=cog,
        aoi_geojson=aoi,
        classes=CLASSES,
        confidence_cog=confidence_path(cog),
        notice=NOTICE,
        provenance="simulated data; labels labels.geojson",
    )


def test_page_has_panel_layers_popup_data_and_banner(full_page: Path) -> None:
    text = full_page.read_text(encoding="utf-8")
    assert not re.search(r'<(script|link)[^>]+(src|href)="https?:', text)
    assert text.count("L.imageOverlay(") == 3  # classes, confidence, uncertainty
    assert 'id="geocrop-banner"' in text and NOTICE in text and "labels.geojson" in text
    assert "geocrop-opacity" in text and 'map.on("click"' in text


def test_ramp_colours() -> None:
    out = render_ramp_rgba(np.array([[0, 100, 255]], np.uint8), RAMPS["confidence"])
    assert tuple(out[0, 0]) == (0x44, 0x01, 0x54, 255) and tuple(out[0, 1]) == (0xFD, 0xE7, 0x25, 255)
    assert out[0, 2, 3] == 0


def _dump_dom(url: str, profile: Path) -> str:
    chromium = shutil.which("chromium") or "chromium"
    args = [
        chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
        "--virtual-time-budget=5000", "--dump-dom", url,
    ]  # fmt: skip
    run = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert "</html>" in run.stdout, run.stderr[-2000:]
    return run.stdout


@pytest.mark.browser
def test_headless_chromium_shows_banner_and_pixel_popup(full_page: Path, cog: Path, tmp_path: Path) -> None:
    # The middle of the maize stripe (value 1): column 150, row 50 of the 300 px map.
    x, y = TRANSFORM * (150.5, 50.5)
    lon, lat = transform_bounds("EPSG:32633", "EPSG:4326", x, y, x, y)[:2]
    url = f"{full_page.as_uri()}#layer=uncertainty&opacity=0.4&query={lat:.7f},{lon:.7f}"
    dom = _dump_dom(url, tmp_path / "profile")
    banner = re.search(r'<div id="geocrop-banner"[^>]*>(.*?)</div></div>', dom, re.S)
    assert banner and NOTICE in banner.group(1)
    popup = re.search(r'<div class="geocrop-query">(.*?)</div>', dom, re.S)
    assert popup, "the click popup did not open"
    content = popup.group(1)
    assert "maize &amp; &lt;beans&gt;" in content  # the class under the click, escaped
    assert "confidence 90 %" in content
    assert "uncertainty n/a" in content  # this fixture was written without probabilities
    assert 'data-geocrop-layer="uncertainty"' in dom  # the layer switch ran
    assert 'id="geocrop-opacity-value">40 %' in dom  # the slider ran
    assert re.search(r'leaflet-image-layer[^"]*"[^>]*style="[^"]*opacity: 0.4', dom)
    nodata = _dump_dom(f"{full_page.as_uri()}#query=0,0", tmp_path / "profile2")
    assert "outside the crop map" in nodata


@pytest.mark.browser
def test_headless_chromium_draws_the_banner(full_page: Path, tmp_path: Path) -> None:
    png = tmp_path / "shot.png"
    run = _screenshot(full_page, png, tmp_path / "profile")
    assert png.exists(), run.stderr[-2000:]
    shot = np.asarray(Image.open(png).convert("RGB")).astype(int)
    red = (np.abs(shot[:80] - np.array([0xB0, 0x00, 0x20])).max(axis=2) <= 3).sum()
    assert red > 2_000, "the red simulated-data banner is not visible at the top of the page"
