"""`geocrop simulate` through click's CliRunner on the tiny config."""

from __future__ import annotations

import json
from pathlib import Path

import pystac
from click.testing import CliRunner

from geocrop.cli.main import cli


def test_simulate_writes_then_reuses_the_tiny_area(tmp_path: Path) -> None:
    out = tmp_path / "data"
    runner = CliRunner()
    first = runner.invoke(cli, ["simulate", "--out", str(out), "--tiny", "--seed", "2"])
    assert first.exit_code == 0, first.output
    assert "SIMULATED" in first.output and "written" in first.output
    marker = json.loads((out / "geocrop-sample.json").read_text())
    assert marker["config"]["seed"] == 2 and marker["config"]["width"] == 24 and marker["simulated"] is True
    items = list(pystac.Catalog.from_file(str(out / "catalog.json")).get_items(recursive=True))
    assert len(items) == marker["n_s2_items"] + marker["n_planet_items"]
    assert (out / "labels.geojson").exists() and (out / "field.geojson").exists()
    second = runner.invoke(cli, ["simulate", "--out", str(out), "--tiny", "--seed", "2"])
    assert second.exit_code == 0 and "reused" in second.output


def test_simulate_refuses_a_foreign_folder(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("x")
    result = CliRunner().invoke(cli, ["simulate", "--out", str(tmp_path), "--tiny"])
    assert result.exit_code == 2
    assert "not a geocrop sample area" in result.output


def test_simulate_rejects_a_too_small_size(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["simulate", "--out", str(tmp_path / "x"), "--size", "4"])
    assert result.exit_code == 2
    assert "--size" in result.output
