"""`geocrop pretrain --second-modality s1 --s1 CATALOG`: Sentinel-1 RTC items through STAC as the second view.

The S1 catalog is written here the way Planetary Computer's ``sentinel-1-rtc`` items look: one COG per
polarisation (assets ``vv`` and ``vh``), linear gamma0 as float32, 0 as nodata, on the simulated S2 area's
grid and dates. The values follow the S2 scene (a made-up link, so the pairs carry a signal): simulated
data, a test instrument; the figures say nothing about real S1.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
from click.testing import CliRunner
from shapely.geometry import box, mapping

from geocrop.cli.main import cli


def _s2_scenes(catalog: Path) -> list[tuple[dt.datetime, Path]]:
    """(datetime, red-band COG) of every S2 item of a static catalog."""
    root = pystac.Catalog.from_file(str(catalog))
    scenes = []
    for item in root.get_items(recursive=True):
        if item.collection_id != "sentinel-2-l2a" or item.datetime is None:
            continue
        red = next(a for k, a in item.assets.items() if k.lower() in ("red", "b04"))
        scenes.append((item.datetime, Path(red.get_absolute_href() or "")))
    return sorted(scenes)


def write_s1_rtc_catalog(s2_catalog: Path, out: Path) -> Path:
    """A static catalog of ``sentinel-1-rtc`` items (vv, vh COGs) on the S2 grid, one per S2 date."""
    catalog = pystac.Catalog("s1", "simulated Sentinel-1 RTC (test instrument)")
    collection = pystac.Collection(
        "sentinel-1-rtc",
        "simulated",
        pystac.Extent(pystac.SpatialExtent([[-180, -90, 180, 90]]), pystac.TemporalExtent([[None, None]])),
    )
    catalog.add_child(collection)
    for k, (when, red_path) in enumerate(_s2_scenes(s2_catalog)):
        with rasterio.open(red_path) as src:
            red = src.read(1).astype(np.float32)
            profile = src.profile | {"dtype": "float32", "nodata": 0.0, "count": 1, "driver": "GTiff"}
            bounds = rasterio.warp.transform_bounds(src.crs, "EPSG:4326", *src.bounds)
        scale = np.nanmax(red) or 1.0
        vv = (0.02 + 0.2 * (1 - red / scale) + 0.005 * k).astype(np.float32)  # rougher where less red
        vh = (0.2 * vv + 0.001).astype(np.float32)
        item_id = f"S1A_RTC_{when:%Y%m%d}"
        item = pystac.Item(
            item_id,
            geometry=mapping(box(*bounds)),
            bbox=list(bounds),
            datetime=when,
            properties={"proj:epsg": profile["crs"].to_epsg()},
        )
        for name, values in (("vv", vv), ("vh", vh)):
            path = out / "data" / f"{item_id}_{name}.tif"
            path.parent.mkdir(parents=True, exist_ok=True)
            with rasterio.open(path, "w", **profile) as dst:
                dst.write(values, 1)
            item.add_asset(name, pystac.Asset(str(path), media_type=pystac.MediaType.GEOTIFF, roles=["data"]))
        collection.add_item(item)
    catalog.normalize_hrefs(str(out))
    catalog.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    return out / "catalog.json"


@pytest.fixture(scope="module")
def area(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from geocrop.sim import SimulationConfig, write_sample_area

    root = tmp_path_factory.mktemp("s1area")
    s2 = write_sample_area(root / "s2", dataclasses.replace(SimulationConfig.tiny(), width=12, height=12))
    return s2.catalog, write_s1_rtc_catalog(s2.catalog, root / "s1")


def test_pretrain_pairs_s2_with_s1_rtc_items_from_stac(area: tuple[Path, Path], tmp_path: Path) -> None:
    s2, s1 = area
    out = tmp_path / "run"
    args = ["pretrain", "--s2", str(s2), "--second-modality", "s1", "--s1", str(s1)]
    args += ["--s1-collection", "sentinel-1-rtc", "--epochs", "1", "--batch-size", "32", "--depth", "1"]
    args += ["--width", "16", "--device", "cpu", "--out", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    meta = json.loads((out / "encoder.json").read_text())
    assert meta["second_modality"] == "sentinel-1" and meta["s1_bands"] == ["VV", "VH"]
    sources = meta["provenance"]["pairs"]["provenance"]
    assert sources["s1_collection"] == "sentinel-1-rtc" and sources["s1_scenes"] == sources["s2_scenes"]
    history = json.loads((out / "history.json").read_text())["epochs"]
    assert np.isfinite(history[-1]["loss"]) and 0 <= history[-1]["retrieval_top1"] <= 1
    assert 0 <= history[-1]["retrieval_top1_back"] <= 1  # S1 -> S2, the way back
    assert "retrieval_top1_back" in (out / "history.csv").read_text().splitlines()[0]
    # the S1 encoder reads 2 features (VV, VH dB), not Planet's 36
    from safetensors import safe_open

    with safe_open(str(out / "encoder.safetensors"), "numpy") as f:
        shapes = [f.get_tensor(k).shape for k in f.keys() if k.startswith("s1_backbone.")]  # noqa: SIM118
    matrices = [shape for shape in shapes if len(shape) == 2]
    assert matrices and min(shape[1] for shape in matrices) == 2  # the input layer: VV, VH


def test_s1_catalog_outside_the_s2_dates_is_refused(area: tuple[Path, Path], tmp_path: Path) -> None:
    s2, s1 = area
    out = tmp_path / "run"
    args = ["pretrain", "--s2", str(s2), "--second-modality", "s1", "--s1", str(s1)]
    args += ["--s1-collection", "sentinel-1-rtc", "--start", "2030-01-01", "--end", "2030-12-31"]
    result = CliRunner().invoke(cli, [*args, "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("geocrop: error:") and len(result.output.strip().splitlines()) == 1
    assert not (out / "encoder.safetensors").exists()


def test_s1_window_pairs_each_pixel_with_its_neighbourhood(area: tuple[Path, Path], tmp_path: Path) -> None:
    """--s1-window 3: the S1 encoder reads the 3x3 VV/VH neighbourhood (18 values) under each S2 pixel."""
    s2, s1 = area
    out = tmp_path / "run"
    args = ["pretrain", "--s2", str(s2), "--second-modality", "s1", "--s1", str(s1), "--s1-window", "3"]
    args += ["--s1-collection", "sentinel-1-rtc", "--epochs", "1", "--batch-size", "32", "--depth", "1"]
    result = CliRunner().invoke(cli, [*args, "--width", "16", "--device", "cpu", "--out", str(out)])
    assert result.exit_code == 0, result.output
    meta = json.loads((out / "encoder.json").read_text())
    assert len(meta["s1_bands"]) == 18 and meta["s1_bands"][:2] == ["r0c0.VV", "r0c0.VH"]
    assert len(meta["s1_normalization"]["mean"]) == 18
    again = CliRunner().invoke(cli, [*args[:-2], "--s1-window", "1", "--width", "16", "--out", str(out)])
    assert again.exit_code == 2 and "another --out" in again.output  # pairs built with another window


def test_neighbourhoods_lay_each_window_out_as_a_finer_grid() -> None:
    from geocrop.data.pair_sampling import neighbourhoods, sample_pairs

    s1 = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    grid = neighbourhoods(s1, 3)
    assert grid.shape == (2, 9, 12)
    # pixel (1, 2)'s block is its 3x3 neighbourhood; at the corner (0, 0) the edge repeats
    assert np.array_equal(grid[0, 3:6, 6:9], s1[0, 0:3, 1:4])
    assert np.array_equal(grid[1, 0:3, 0:3], s1[1][np.ix_([0, 0, 1], [0, 0, 1])])
    s2 = np.ones((12, 3, 4), np.float32)
    rows = sample_pairs(s2, grid, mask=np.ones((3, 4), bool), n=None, rng=np.random.default_rng(0), window=3)
    assert rows.shape == (12, 12 + 18)


def test_s1_window_on_a_table_is_refused(tmp_path: Path) -> None:
    table = Path(__file__).resolve().parents[2] / "../shared/realdata/worldcereal"
    path = (table / "extractions_2023_FRA_LPIS_dekad.geoparquet").resolve()
    if not path.is_file():
        pytest.skip("the real WorldCereal table is not in ../shared/realdata")
    out = tmp_path / "run"
    args = ["pretrain", "--s2", str(path), "--second-modality", "s1", "--s1-window", "3", "--out", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert "--s1-window 3 needs imagery" in result.output and not out.exists()
