"""Every long command's ``--help`` ends with what it cost and a quick variant, and each figure it quotes
is one the README's cost table (or docs/pretraining.md's timing) measured."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from geocrop.cli.costs import COSTS
from geocrop.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]
MEASURED = (ROOT / "README.md").read_text(encoding="utf-8") + (ROOT / "docs" / "pretraining.md").read_text(
    encoding="utf-8"
)
#: A quoted figure: a duration, a load range, a pixel size.
FIGURE = re.compile(r"\d+(?:\.\d+)? (?:min|s)\b|load (?:of )?\d+(?:\.\d+)?-\d+(?:\.\d+)?|\d+ x \d+ px")


@pytest.mark.parametrize("command", sorted(COSTS))
def test_help_says_what_it_costs_and_the_quick_variant(command: str) -> None:
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    cost, quick = COSTS[command]
    assert f"Cost: {cost}." in text and f"Quick: {quick}." in text
    figures = FIGURE.findall(cost + " " + quick)
    assert figures, f"{command}: the note quotes no measured figure"
    flat = " ".join(MEASURED.split())
    for figure in figures:
        assert figure in flat, f"{command}: {figure!r} is not in README.md's cost table or pretraining.md"


def test_every_long_command_takes_progress() -> None:
    for command in (*COSTS, "predict"):
        result = CliRunner().invoke(cli, [command, "--help"])
        assert "--progress [rich|json|none]" in result.output, command


def test_pretrain_and_predict_report_json_progress(tmp_path: Path) -> None:
    import json
    import warnings

    from tests.cli.test_pretrain_temporal_cli import SMALL
    from tests.data.worldcereal_synth import write_class_map, write_extraction
    from tests.io.cube_fixtures import write_long_table

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = write_long_table(tmp_path / "t.parquet", samples=40, dates=8)
        args = ["pretrain", "--mode", "temporal", "--s2", str(table), "--out", str(tmp_path / "run"), *SMALL]
        result = CliRunner().invoke(cli, [*args, "--progress", "json"])
        assert result.exit_code == 0, result.output
        events = [json.loads(line) for line in result.stdout.splitlines()]
        assert [e["message"][:7] for e in events if e["event"] == "log"] == ["epoch 1", "epoch 2"]
        assert events[-1] == {
            "event": "done",
            "outputs": {"bundle": str(tmp_path / "run" / "head.safetensors")},
        }
        quiet = CliRunner().invoke(cli, [*args[:-2], "--out", str(tmp_path / "run2"), "--no-progress"])
        assert quiet.exit_code == 0 and "pretrained 2 epochs" in quiet.stdout

        samples = write_extraction(tmp_path / "samples.parquet")
        classes = write_class_map(tmp_path / "classes.json")
        bundle = tmp_path / "rf.safetensors"
        train = ["train", "--labels", str(samples), "--class-column", "ewoc_code", "--class-map"]
        train += [f"{classes}:CROPTYPE", "--head", "rf", "--out", str(bundle), "--progress", "none"]
        assert CliRunner().invoke(cli, train).exit_code == 0
        out = tmp_path / "p.csv"
        predict = ["predict", "--model", str(bundle), "--samples", str(samples), "--out", str(out)]
        result = CliRunner().invoke(cli, [*predict, "--progress", "json"])
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events[0]["event"] == "progress" and events[-1] == {
        "event": "done",
        "outputs": {"predictions": str(out)},
    }
