"""The pages of `smooth --html` and `fields --html`, drawn by real headless Chromium: the smoothed map in
the colours a table chose, and the parcels filled in their majority class's colour over the map."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import geocrop
from tests.post import test_fields, test_smooth
from tests.viz.test_webmap import _screenshot


def _pixels(png: Path, colour: str, tolerance: int = 3) -> int:
    shot = np.asarray(Image.open(png).convert("RGB")).astype(int)
    rgb = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(shot - rgb).max(axis=2) <= tolerance).sum())


@pytest.mark.browser
def test_chromium_draws_the_smoothed_map_in_the_chosen_colours(tmp_path: Path) -> None:
    probs = test_smooth.random_probs(np.random.default_rng(0), 60, 60)
    m = test_smooth.write_map(tmp_path / "crops.tif", probs)
    table = tmp_path / "colours.json"
    table.write_text('{"wheat": "#0000ff", "maize": "#00ff00", "beet": "#ff00ff"}', encoding="utf-8")
    result = geocrop.smooth_map(map=m, out=tmp_path / "s.tif", html=tmp_path / "s.html", colors=table)
    assert result.html == tmp_path / "s.html"
    png = tmp_path / "s.png"
    run = _screenshot(result.html, png, tmp_path / "profile")
    assert png.exists(), run.stderr[-2000:]
    for colour in ("#0000ff", "#00ff00", "#ff00ff"):  # each class covers part of a map filling the window
        assert _pixels(png, colour, tolerance=40) > 2_000, colour
    assert _pixels(png, "#e6ab02", tolerance=10) < 50  # wheat's own colour is gone from the map


@pytest.mark.browser
def test_chromium_draws_the_parcels_over_the_map(tmp_path: Path) -> None:
    m = test_fields.write_map(tmp_path / "crops.tif", size=40)
    parcels = test_fields.write_parcels(tmp_path / "fields.gpkg")
    result = geocrop.field_results(map=m, parcels=parcels, out=tmp_path / "r.gpkg", html=tmp_path / "f.html")
    assert result.html is not None
    png = tmp_path / "f.png"
    run = _screenshot(result.html, png, tmp_path / "profile")
    assert png.exists(), run.stderr[-2000:]
    assert _pixels(png, "#222222", tolerance=12) > 100  # the parcel outlines
    without = geocrop.field_results(map=m, parcels=parcels, out=tmp_path / "plain.gpkg")
    assert without.html is None
