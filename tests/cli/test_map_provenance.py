"""`geocrop map` with a model trained on simulated data: refused over real scenes without the explicit flag;
with it (or over the simulated sample area) the terminal, the JSON progress, the STAC item and the web page
all say "model trained on simulated data"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from geocrop.cli import main as main_module
from geocrop.io.bundle import load_bundle, save_bundle
from tests.cli.test_map_cli import assert_clean_failure
from tests.inference.map_fixtures import END, START, TinyArea, tiny_area

NOTICE = "model trained on simulated data"


@pytest.fixture(scope="module")
def area(tmp_path_factory: pytest.TempPathFactory) -> TinyArea:
    return tiny_area(tmp_path_factory.mktemp("area"))


@pytest.fixture(scope="module")
def simulated_bundle(area: TinyArea, tmp_path_factory: pytest.TempPathFactory) -> Path:
    bundle = load_bundle(area.bundle)
    provenance = {"data": "simulated", "labels": "labels.geojson", "season": [str(START), str(END)],
                  "region": None, "classes": [], "accuracy": None}  # fmt: skip
    out = tmp_path_factory.mktemp("bundle") / "sim.safetensors"
    return save_bundle(out, bundle.tensors, {**bundle.metadata, "provenance": provenance})


def run_map(area: TinyArea, bundle: Path, out: Path, *extra: str, progress: str = "none") -> Result:
    args = ["map", "--bbox", area.bbox, "--start", str(START), "--end", str(END), "--stac", str(area.catalog)]
    args += ["--model", str(bundle), "--out", str(out), "--chunk-size", "16", "--progress", progress, *extra]
    return CliRunner().invoke(main_module.cli, args)


def test_simulated_model_over_real_scenes_is_refused_in_one_line(
    area: TinyArea, simulated_bundle: Path, tmp_path: Path
) -> None:
    out = tmp_path / "map.tif"
    for extra in ((), ("--dry-run",)):
        result = run_map(area, simulated_bundle, out, *extra)
        assert_clean_failure(result, out, "trained on simulated data")
        assert "--allow-simulated-model" in result.output
    assert not list(tmp_path.iterdir())


def test_with_the_flag_every_output_says_so(area: TinyArea, simulated_bundle: Path, tmp_path: Path) -> None:
    out, html = tmp_path / "map.tif", tmp_path / "map.html"
    dry = run_map(area, simulated_bundle, out, "--dry-run", "--allow-simulated-model")
    assert dry.exit_code == 0, dry.output
    assert f"WARNING: {NOTICE}" in dry.output and "trained on: simulated data" in dry.output
    result = run_map(area, simulated_bundle, out, "--allow-simulated-model", "--html", str(html))
    assert result.exit_code == 0, result.output
    assert f"geocrop: warning: {NOTICE}" in result.output  # stderr, one line
    assert f"WARNING: {NOTICE}" in result.output  # and in the summary
    item = json.loads(out.with_suffix(".json").read_text())
    assert item["properties"]["geocrop:warning"] == NOTICE
    assert item["properties"]["geocrop:training"]["data"] == "simulated"
    assert item["properties"]["mlm:name"] and len(item["properties"]["geocrop:model"]["sha256"]) == 64
    assert str(tmp_path) not in json.dumps(item) and str(simulated_bundle.parent) not in json.dumps(item)
    page = html.read_text()
    assert 'id="geocrop-banner"' in page and NOTICE in page


def test_json_progress_carries_the_warning_for_qgis(
    area: TinyArea, simulated_bundle: Path, tmp_path: Path
) -> None:
    result = run_map(area, simulated_bundle, tmp_path / "m.tif", "--allow-simulated-model", progress="json")
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    warnings = [e for e in events if e["event"] == "warning"]
    assert [(e["message"], e["text"]) for e in warnings] == [(NOTICE, NOTICE)]


def test_real_model_maps_without_a_notice(area: TinyArea, tmp_path: Path) -> None:
    out = tmp_path / "map.tif"
    result = run_map(area, area.bundle, out)
    assert result.exit_code == 0, result.output
    assert NOTICE not in result.output
    assert "geocrop:warning" not in json.loads(out.with_suffix(".json").read_text())["properties"]


def test_simulated_model_maps_the_simulated_sample_area_without_the_flag(
    simulated_bundle: Path, tmp_path: Path
) -> None:
    from geocrop.sim.sample_area import write_sample_area
    from geocrop.sim.scene import SimulationConfig

    sample = write_sample_area(tmp_path / "sample", SimulationConfig.tiny())
    out = tmp_path / "map.tif"
    args = ["map", "--aoi", str(sample.field), "--start", "2021-03-01", "--end", "2021-10-31"]
    args += ["--stac", str(sample.catalog), "--model", str(simulated_bundle), "--out", str(out)]
    result = CliRunner().invoke(main_module.cli, [*args, "--progress", "none"])
    assert result.exit_code == 0, result.output
    assert f"geocrop: warning: {NOTICE}" in result.output
    labels = json.loads(sample.labels.read_text())
    assert labels["geocrop:simulated"] is True  # what `geocrop train` reads to record "simulated"
