"""`geocrop sample`: the click command, run inside geocrop's error-handling group (one-line errors)."""

from __future__ import annotations

from pathlib import Path

import click
import geopandas as gpd
import numpy as np
import pytest
import rasterio
from affine import Affine
from click.testing import CliRunner, Result

from geocrop.cli.assess import assess
from geocrop.cli.main import _ErrorHandlingGroup
from geocrop.cli.sample import sample
from tests.post.test_sampling import write_map


def run(*args: str) -> Result:
    """Invoke ``geocrop <args>`` on a group holding the new commands (as main.py will list them)."""
    group = _ErrorHandlingGroup(name="geocrop", commands=[sample, assess])
    return CliRunner().invoke(group, list(args), prog_name="geocrop")


def one_line_error(result: Result) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("geocrop: error: "), result.output
    return lines[0]


@pytest.fixture
def crop_map(tmp_path: Path) -> Path:
    write_map(tmp_path / "crops.tif")
    return tmp_path / "crops.tif"


def test_sample_stratified(crop_map: Path, tmp_path: Path) -> None:
    out = tmp_path / "points.gpkg"
    result = run(
        "sample", "--map", str(crop_map), "--stratified", "40", "--min-per-class", "5", "--out", str(out)
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"wrote {out} (40 points: wheat ") and "potato 5" in result.output
    assert len(gpd.read_file(out)) == 40


def test_sample_uncertain(crop_map: Path, tmp_path: Path) -> None:
    out = tmp_path / "u.gpkg"
    result = run(
        "sample", "--map", str(crop_map), "--uncertain", "8", "--min-distance", "200", "--out", str(out)
    )
    assert result.exit_code == 0, result.output
    assert "(8 points:" in result.output and "at least 200 apart" in result.output
    assert "uncertainty" in gpd.read_file(out).columns


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--stratified", "1000000"], "--stratified 1000000 is more than the 29600 mapped pixels"),
        (["--uncertain", "1000000"], "--uncertain 1000000: give 1 to 29600"),
        (["--stratified", "10", "--uncertain", "10"], "give either --stratified N or --uncertain N"),
        ([], "give either --stratified N or --uncertain N"),
        (["--stratified", "10", "--min-per-class", "50"], "raise --stratified or lower --min-per-class"),
        (["--uncertain", "50", "--min-distance", "1000"], "lower --min-distance or --uncertain"),
    ],
)
def test_sample_bad_requests(crop_map: Path, tmp_path: Path, args: list[str], expected: str) -> None:
    out = tmp_path / "points.gpkg"
    out.write_bytes(b"earlier points")
    line = one_line_error(run("sample", "--map", str(crop_map), "--out", str(out), *args))
    assert expected in line
    assert out.read_bytes() == b"earlier points"  # an existing output is never destroyed
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]


def test_sample_refuses_a_raster_that_is_not_a_geocrop_map(tmp_path: Path) -> None:
    plain = tmp_path / "plain.tif"
    with rasterio.open(
        plain, "w", driver="GTiff", width=8, height=8, count=1, dtype="uint8", crs="EPSG:32631",
        transform=Affine(10, 0, 0, 0, -10, 0),
    ) as ds:  # fmt: skip
        ds.write(np.zeros((1, 8, 8), np.uint8))
    line = one_line_error(
        run("sample", "--map", str(plain), "--stratified", "5", "--out", str(tmp_path / "p.gpkg"))
    )
    assert "--map" in line and "not a geocrop crop map" in line
    assert not (tmp_path / "p.gpkg").exists()


def test_sample_output_must_be_a_geopackage(crop_map: Path, tmp_path: Path) -> None:
    line = one_line_error(
        run("sample", "--map", str(crop_map), "--stratified", "5", "--out", str(tmp_path / "p.shp"))
    )
    assert "--out" in line and ".gpkg" in line


def test_sample_help_names_the_rule() -> None:
    result = CliRunner().invoke(click.Group(commands=[sample]), ["sample", "--help"])
    assert result.exit_code == 0 and "--min-per-class" in result.output and "--seed" in result.output
