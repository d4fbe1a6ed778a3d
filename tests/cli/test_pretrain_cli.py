"""`geocrop pretrain` from the shell: bad input is one line + exit 2 with nothing half-written; e2e (slow)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from geocrop.cli.main import cli
from geocrop.data.pairs import build_pairs_from_arrays

FINAL_OUTPUTS = ("encoder.safetensors", "encoder.json", "history.json", "history.csv")


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["pretrain", *args])


def assert_one_line_error(result: Result, *needles: str) -> str:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("geocrop: error: "), result.output
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def assert_nothing_final(out: Path) -> None:
    assert not any((out / name).exists() for name in FINAL_OUTPUTS)
    assert not (out / "checkpoints").exists()


def test_missing_source_is_one_line(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = run("--s2", str(tmp_path / "nowhere" / "catalog.json"), "--planet", "x", "--out", str(out))
    assert_one_line_error(result, "nowhere")
    assert_nothing_final(out)


def test_bimodal_without_planet_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = run("--s2", str(tmp_path), "--second-modality", "planetscope", "--out", str(out))
    assert_one_line_error(result, "--planet", "unimodal")
    assert not out.exists()


def test_no_pairs_and_no_source_is_refused(tmp_path: Path) -> None:
    assert_one_line_error(run("--out", str(tmp_path / "run"), "--epochs", "1"), "build pairs first")


def test_resuming_with_another_architecture_names_both(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    s2 = rng.random((2, 12, 16, 16), dtype=np.float32)
    planet = rng.random((2, 4, 48, 48), dtype=np.float32)
    days = np.array(["2021-06-01", "2021-06-11"], dtype="datetime64[D]")
    out = tmp_path / "run"
    build_pairs_from_arrays(
        s2=s2, s2_dates=days, planet=planet, planet_dates=days, out_dir=out / "pairs", pixels_per_date=100
    )
    small = ("--out", str(out), "--epochs", "1", "--batch-size", "32", "--depth", "1", "--device", "cpu")
    first = run(*small, "--width", "16")
    assert first.exit_code == 0, first.output
    assert "held-out retrieval" in first.output
    bundle = (out / "encoder.safetensors").read_bytes()
    line = assert_one_line_error(run(*small, "--width", "32"), "'width': 16", "'width': 32")
    assert "another --out" in line
    assert (out / "encoder.safetensors").read_bytes() == bundle  # the finished outputs are untouched


@pytest.fixture(scope="module")
def areas(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three tiny simulated areas: the base one, one a year later, one 50 km east (no overlap)."""
    from geocrop.sim import SimulationConfig, write_sample_area

    root = tmp_path_factory.mktemp("areas")
    base = dataclasses.replace(SimulationConfig.tiny(), width=12, height=12)
    east = (base.origin[0] + 50_000.0, base.origin[1])
    configs = {
        "base": base,
        "later": dataclasses.replace(base, year=base.year + 1),
        "east": dataclasses.replace(base, origin=east),
    }
    return {k: write_sample_area(root / k, c).catalog for k, c in configs.items()}


def test_sensors_without_overlap_are_refused(areas: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = run("--s2", str(areas["base"]), "--planet", str(areas["east"]), "--out", str(out))
    assert_one_line_error(result, "do not overlap")
    assert_nothing_final(out)


def test_no_matching_dates_are_refused(areas: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = run("--s2", str(areas["base"]), "--planet", str(areas["later"]), "--out", str(out))
    assert_one_line_error(result, "--tolerance-days")
    assert_nothing_final(out)


def test_aoi_outside_the_data_is_refused(areas: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "run"
    aoi = "10.0,50.0,10.01,50.01"
    result = run("--s2", str(areas["base"]), "--planet", str(areas["base"]), "--aoi", aoi, "--out", str(out))
    assert_one_line_error(result, "outside")
    assert_nothing_final(out)


@pytest.mark.slow
def test_end_to_end_on_the_simulated_sample_area(tmp_path: Path) -> None:
    """simulate -> pretrain --epochs 2 (paper architecture, CPU): retrieval far above chance. Simulated data.

    1,000 pixels per date (73 dates) keeps it to minutes on a 2-core machine; the default takes every pixel.
    """
    from geocrop.sim import SimulationConfig, write_sample_area

    area = write_sample_area(tmp_path / "area", SimulationConfig())
    out = tmp_path / "run"
    cat = str(area.catalog)
    args = ["--s2", cat, "--planet", cat, "--fields", str(area.labels), "--epochs", "2", "--out", str(out)]
    args += ["--pixels-per-date", "1000"]
    result = run(*args, "--device", "cpu")
    assert result.exit_code == 0, result.output
    history = json.loads((out / "history.json").read_text())["epochs"]
    last = history[-1]
    print("SIMULATED sample area:", json.dumps(history))
    assert last["retrieval_top1"] > 20 * last["chance"]
    again = run(*args, "--device", "cpu")  # same command again: already finished, nothing retrained
    assert again.exit_code == 0 and json.loads((out / "history.json").read_text())["epochs"] == history
    uni = run(
        "--s2",
        cat,
        "--mode",
        "unimodal",
        "--epochs",
        "1",
        "--pixels-per-date",
        "200",
        "--out",
        str(tmp_path / "uni"),
    )
    assert uni.exit_code == 0, uni.output
