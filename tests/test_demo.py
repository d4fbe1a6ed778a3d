"""The shipped demo bundle and `geocrop demo` (simulated sample area)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import rasterio
from click.testing import CliRunner
from rio_cogeo.cogeo import cog_validate

from geocrop.cli.main import cli
from geocrop.inference.plan import DEMO_BUNDLE
from geocrop.io.bundle import read_bundle_metadata
from geocrop.sim.scene import CROP_TYPES

REPO = Path(__file__).resolve().parents[1]


def test_shipped_demo_bundle_is_a_map_ready_model_of_the_simulated_crops() -> None:
    from geocrop.inference.engine import Predictor

    meta = read_bundle_metadata(DEMO_BUNDLE)
    names = [c["name"] for c in meta["classes"]]
    assert set(names) <= set(CROP_TYPES)
    assert len(names) >= 9
    predictor = Predictor(DEMO_BUNDLE, device="cpu")
    assert predictor.flops_per_pixel() > 0
    provenance = meta["provenance"]  # what makes `geocrop map` refuse it over real scenes
    assert provenance["data"] == "simulated" and provenance["labels"] == "labels.geojson"
    assert provenance["classes"] == names and provenance["season"] == ["2021-01-01", "2021-12-31"]
    assert "/" not in meta["training"]["labels"]  # no local path in the shipped metadata


@pytest.mark.slow
def test_geocrop_demo_maps_the_sample_area(tmp_path: Path) -> None:
    root = tmp_path / "sample_aoi"
    root.mkdir()
    shutil.copy(REPO / "sample_aoi" / "field.geojson", root / "field.geojson")
    result = CliRunner().invoke(cli, ["demo", "--root", str(root)])
    assert result.exit_code == 0, result.output
    cog = root / "out" / "crop_map.tif"
    assert f"crop map (COG): {cog}" in result.output
    is_valid, errors, _ = cog_validate(str(cog))
    assert is_valid, errors
    with rasterio.open(cog) as src:
        classes = src.read(1)
    mapped = classes[classes != 255]
    assert mapped.size > 0.5 * classes.size
    assert len(set(mapped.tolist())) >= 5
    html = (root / "out" / "crop_map.html").read_text()
    assert "L.map(" in html
    assert not re.search(r"<(script|link)[^>]+(src|href)=[\"']https?://", html), "page loads remote assets"
