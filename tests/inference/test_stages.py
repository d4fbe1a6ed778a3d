"""Where a map's time went: the stage split, the read-ahead bound, and the split in the log and STAC item."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

from geocrop.cli.main import cli
from geocrop.errors import InputError
from geocrop.inference.stages import STAGES, StageClock, StageTimes, split_spans
from geocrop.inference.tiles import PredictorRef, Tile
from geocrop.io.reading import ReadSettings
from tests.inference.inference_helpers import random_block, run, write_tiny_bundle
from tests.inference.map_fixtures import END, START, TinyArea, tiny_area
from tests.inference.remote_fixtures import map_tiny, served_area
from tests.io.stac_fixtures import rustac_executable


def test_overlapping_spans_are_split_by_priority_and_unioned_per_stage() -> None:
    spans = [("engine", 0.0, 10.0), ("read", 5.0, 15.0), ("read", 12.0, 20.0), ("write", 19.0, 21.0)]
    seconds, busy = split_spans(spans)
    # engine owns 0..10; read the time it ran alone (10..19); write owns 19..21 (over the read)
    assert seconds == pytest.approx({"search": 0, "read": 9, "regrid": 0, "engine": 10, "write": 2})
    assert busy == pytest.approx({"search": 0, "read": 15, "regrid": 0, "engine": 10, "write": 2})
    assert sum(seconds.values()) == pytest.approx(21.0)  # the covered wall time, never more


def test_clock_summary_never_sums_past_the_wall_time() -> None:
    clock = StageClock()

    def work(stage: str) -> None:
        with clock.span(stage):
            time.sleep(0.05)

    threads = [threading.Thread(target=work, args=(s,)) for s in ("read", "read", "engine", "regrid")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    times = clock.summary(read_bytes=5, read_requests=2)
    assert sum(times.seconds.values()) <= times.wall
    assert times.busy["read"] >= 0.04 and times.seconds["engine"] >= 0.04
    assert times.other >= 0 and times.as_properties()["read_requests"] == 2
    with pytest.raises(ValueError, match="unknown stage"):
        clock.add("download", 0.0, 1.0)


def test_read_settings_are_checked_in_library_terms() -> None:
    with pytest.raises(InputError) as caught:
        ReadSettings(threads=0)
    assert caught.value.param == "read_threads" and "`read_threads` 0" in str(caught.value)
    options = ReadSettings(cache_mb=64).gdal_options()
    assert options["CPL_VSIL_CURL_CACHE_SIZE"] == str(64 * 1024 * 1024)
    assert options["GDAL_DISABLE_READDIR_ON_OPEN"] == "EMPTY_DIR"


def test_the_read_settings_travel_with_the_reads() -> None:
    import pickle

    from geocrop.io.odc_read import CheckedRioDriver

    driver = pickle.loads(pickle.dumps(CheckedRioDriver(ReadSettings().gdal_options())))
    env = driver.capture_env()
    assert (
        env["GDAL_DISABLE_READDIR_ON_OPEN"] == "EMPTY_DIR" and env["CPL_VSIL_NETWORK_STATS_ENABLED"] == "YES"
    )


@pytest.mark.parametrize("ahead", [1, 3])
def test_tiles_are_read_ahead_but_never_more_than_read_ahead_plus_one_held(
    tmp_path: Path, ahead: int
) -> None:
    ref = PredictorRef(str(write_tiny_bundle(tmp_path / "m.safetensors")), "cpu")
    cube = random_block(h=24, w=24, seed=3)
    held, most, lock = [0], [0], threading.Lock()

    def prepare(values: np.ndarray) -> np.ndarray:
        with lock:
            held[0] += 1
            most[0] = max(most[0], held[0])
        time.sleep(0.01)
        return values

    def slow_sink_release(tile: Tile) -> None:
        time.sleep(0.02)  # a slow engine/writer: readers run ahead until the bound stops them
        with lock:
            held[0] -= 1

    clock = StageClock()
    canvas = run(
        cube,
        ref,
        6,
        prepare=prepare,
        read=ReadSettings(read_ahead=ahead),
        clock=clock,
        after_tile=slow_sink_release,
    )
    assert canvas.writes == 16 and held[0] == 0
    assert most[0] == ahead + 1  # reads ran ahead of the engine, up to the bound and no further
    times = clock.summary()
    assert all(times.busy[s] > 0 for s in ("read", "regrid", "engine", "write"))


@pytest.fixture(scope="module")
def area(tmp_path_factory: pytest.TempPathFactory) -> TinyArea:
    return tiny_area(tmp_path_factory.mktemp("area"))


def _check_split(times: StageTimes, item_path: Path) -> None:
    assert set(times.seconds) == set(STAGES) == set(times.busy)
    assert all(v >= 0 for v in (*times.seconds.values(), *times.busy.values(), times.other))
    assert sum(times.seconds.values()) <= times.wall + 1e-6
    assert times.seconds["engine"] > 0 and times.busy["read"] > 0 and times.busy["write"] > 0
    props = json.loads(item_path.read_text())["properties"]
    processing = props["geocrop:processing"]
    assert processing == json.loads(json.dumps(times.as_properties()))
    assert sum(processing["stage_seconds"].values()) <= processing["wall_seconds"] + 0.005
    assert props["processing:software"]["geocrop"] and props["processing:lineage"]


def test_map_reports_where_its_time_went(area: TinyArea, tmp_path: Path) -> None:
    result = map_tiny(area, tmp_path / "m.tif", str(area.catalog))
    assert result.stages is not None and result.stages.tiles == 4
    with rasterio.open(result.cog) as src:
        assert result.stages.pixels == src.width * src.height
    _check_split(result.stages, result.stac_item)
    assert result.stages.read_requests == 0  # local files: no network requests


@pytest.mark.skipif(rustac_executable() is None, reason="rustac is not installed (pip install rustac)")
def test_remote_map_counts_the_requests_and_bytes_the_server_answered(area: TinyArea, tmp_path: Path) -> None:
    """COGs behind a loopback range server, items from a STAC API: the bytes GDAL counts are the bytes the
    server sent; its requests count every metadata request and each read once (multi-range reads once)."""
    with served_area(area, tmp_path / "api") as (files, url):
        files.reset()
        result = map_tiny(
            area, tmp_path / "m.tif", url, allow_any_asset_href=True, read_disk_cache=tmp_path / "cache"
        )
        served = files.stats()
    assert result.stages is not None
    _check_split(result.stages, result.stac_item)
    assert served["requests"] > 0
    # GDAL counts a read of several byte ranges once, though it sends one request per range
    assert 0 < served["HEAD"] <= result.stages.read_requests <= served["requests"]
    assert result.stages.read_bytes == served["bytes"]
    assert result.stages.busy["search"] > 0


def test_map_dash_v_logs_the_split(area: TinyArea, tmp_path: Path) -> None:
    out = tmp_path / "m.tif"
    args = ["map", "-v", "--bbox", area.bbox, "--start", str(START), "--end", str(END), "--out", str(out),
            "--model", str(area.bundle), "--stac", str(area.catalog), "--chunk-size", "16",
            "--progress", "none", "--read-threads", "2", "--read-ahead", "1"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if "time: search" in x)
    for stage in STAGES:
        assert f"{stage} " in line
    assert "wall" in line and "Read: local files" in line
    bad = CliRunner().invoke(cli, [*args[:-4], "--read-threads", "0", "--out", str(tmp_path / "b.tif")])
    assert bad.exit_code == 2 and "--read-threads 0 is outside 1..256" in bad.output
    assert not (tmp_path / "b.tif").exists()
