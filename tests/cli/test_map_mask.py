"""`geocrop map --mask`: an existing layer (e.g. cropland) says where to map; elsewhere nodata, no compute.

The mask is written in lon/lat (EPSG:4326) while the map is in UTM, so these tests also cover the
reprojection onto the map grid.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner, Result
from rasterio.transform import from_bounds

from geocrop.cli import main as main_module
from tests.inference.map_fixtures import END, START, TinyArea, tiny_area


@pytest.fixture(scope="module")
def area(tmp_path_factory: pytest.TempPathFactory) -> TinyArea:
    return tiny_area(tmp_path_factory.mktemp("area"))


@pytest.fixture(scope="module")
def unmasked(area: TinyArea, tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    out = tmp_path_factory.mktemp("plain") / "map.tif"
    result = run_map(area, out)
    assert result.exit_code == 0, result.output
    with rasterio.open(out) as src:
        return src.read(1)


def run_map(area: TinyArea, out: Path, *extra: str) -> Result:
    args = ["map", "--bbox", area.bbox, "--start", str(START), "--end", str(END), "--stac", str(area.catalog)]
    args += ["--model", str(area.bundle), "--out", str(out), "--chunk-size", "16", "--progress", "none"]
    return CliRunner().invoke(main_module.cli, [*args, *extra])


def write_lonlat_mask(path: Path, bbox: str, codes: np.ndarray, *, pad: float = 0.001) -> Path:
    """``codes`` (rows north to south) stretched over the AOI's lon/lat box, a little wider on every side."""
    minx, miny, maxx, maxy = (float(v) for v in bbox.split(","))
    transform = from_bounds(minx - pad, miny - pad, maxx + pad, maxy + pad, codes.shape[1], codes.shape[0])
    profile = dict(driver="GTiff", width=codes.shape[1], height=codes.shape[0], count=1, dtype="uint8")
    with rasterio.open(path, "w", **profile, crs="EPSG:4326", transform=transform) as dst:
        dst.write(codes.astype(np.uint8), 1)
    return path


def test_pixels_outside_the_mask_are_nodata_and_the_rest_unchanged(
    area: TinyArea, unmasked: np.ndarray, tmp_path: Path
) -> None:
    codes = np.zeros((200, 200), np.uint8)
    codes[:, :100] = 40  # the western half is "cropland" (ESA WorldCover's code)
    codes[:, 100:] = 10  # tree cover
    mask = write_lonlat_mask(tmp_path / "cropland.tif", area.bbox, codes)
    out = tmp_path / "masked.tif"
    result = run_map(area, out, "--mask", str(mask), "--mask-values", "40")
    assert result.exit_code == 0, result.output
    with rasterio.open(out) as src:
        masked = src.read(1)
    mapped = masked != 255
    assert 0 < mapped.sum() < (unmasked != 255).sum()
    assert np.array_equal(masked[mapped], unmasked[mapped])  # kept pixels: the same classes
    third = masked.shape[1] // 3
    was_mapped = unmasked != 255  # (the AOI's edge pixels are nodata in both)
    assert mapped[:, :third][was_mapped[:, :third]].all()  # the cropland (west) third: all mapped
    assert not mapped[:, -third:].any()  # the forest (east) third: none


def test_a_mask_that_keeps_nothing_in_a_tile_skips_it_and_default_values_are_non_zero(
    area: TinyArea, unmasked: np.ndarray, tmp_path: Path
) -> None:
    codes = np.zeros((200, 200), np.uint8)
    codes[:, :100] = 1  # default: any non-zero value is kept
    mask = write_lonlat_mask(tmp_path / "crop.tif", area.bbox, codes)
    out = tmp_path / "m.tif"
    result = run_map(area, out, "--mask", str(mask))
    assert result.exit_code == 0, result.output
    with rasterio.open(out) as src:
        masked = src.read(1)
    assert (masked[:, -2:] == 255).all() and (masked[:, :4] != 255).any()


def test_dry_run_names_the_mask(area: TinyArea, tmp_path: Path) -> None:
    mask = write_lonlat_mask(tmp_path / "crop.tif", area.bbox, np.ones((10, 10), np.uint8))
    result = run_map(area, tmp_path / "m.tif", "--mask", str(mask), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "mask: crop.tif (EPSG:4326; keeps any value but 0" in result.output


@pytest.mark.parametrize(
    ("case", "match"),
    [
        ("missing", "--mask"),
        ("not-a-raster", "is not a raster GDAL can read"),
        ("elsewhere", "does not overlap the area to map"),
        ("no-crs", "has no CRS"),
    ],
)
def test_bad_masks_are_refused_in_one_line(area: TinyArea, tmp_path: Path, case: str, match: str) -> None:
    mask = tmp_path / "mask.tif"
    if case == "not-a-raster":
        mask.write_text("not a raster")
    elif case == "elsewhere":
        write_lonlat_mask(mask, "100.0,10.0,100.01,10.01", np.ones((10, 10), np.uint8))
    elif case == "no-crs":
        profile = dict(driver="GTiff", width=4, height=4, count=1, dtype="uint8")
        with rasterio.open(mask, "w", **profile) as dst:
            dst.write(np.ones((1, 4, 4), np.uint8))
    out = tmp_path / "map.tif"
    result = run_map(area, out, "--mask", str(mask))
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.strip().splitlines() if ln.startswith("geocrop: error:")]
    assert len(lines) == 1 and match in lines[0] and "--mask" in lines[0], result.output
    assert not out.exists() and not Path(f"{out}.parts").exists()


def test_tiles_outside_the_mask_are_never_read() -> None:
    """`run_tiles` sinks a tile the mask drops entirely as nodata without slicing the cube."""
    from geocrop.inference.tiles import PredictorRef, plan_tiles, run_tiles

    class Unreadable:
        def __getitem__(self, key: object) -> None:
            raise AssertionError("a masked-out tile was read")

    sunk = {}
    run = run_tiles(
        Unreadable(),
        tiles=plan_tiles(4, 6, 2),
        ref=PredictorRef("memory:unused"),
        sink=lambda tile, arrays: sunk.__setitem__(tile.key, arrays),
        keep=lambda tile: np.zeros((tile.height, tile.width), bool),
        scheduler="sync",
    )
    assert len(sunk) == 6 and run.valid_pixels == 0
    assert all((a["classes"] == 255).all() and (a["confidence"] == 255).all() for a in sunk.values())
