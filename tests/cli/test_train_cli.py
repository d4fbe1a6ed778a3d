"""`geocrop train` / `geocrop evaluate` from the shell: success paths and bad inputs (exit 2, one line,
nothing written)."""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from shapely.geometry import box

from geocrop.cli.main import cli
from geocrop.io.bundle import load_bundle
from tests.io.stac_fixtures import EPSG, ORIGIN, synthetic_s2, write_catalog
from tests.training.heads_synth import write_backbone, write_table

TINY = ["--epochs", "2", "--batch-size", "16", "--train-pixels", "8", "--val-pixels", "4", "--device", "cpu"]
TINY += ["--steps", "12"]


@pytest.fixture(autouse=True)
def _quiet_one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
    torch.set_num_threads(before)


def _run(args: list[str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, args)
    return result.exit_code, result.stdout, result.stderr


def test_train_from_a_samples_table(tmp_path: Path) -> None:
    table = write_table(tmp_path / "samples.parquet", parcels=5, pixels=4)
    out = tmp_path / "models" / "lstm.safetensors"
    code, stdout, stderr = _run(
        ["train", "--labels", str(table), "--class-column", "crop", "--group-column", "parcel", *TINY,
         "--head", "lstm", "--hidden", "16", "--layers", "2", "--out", str(out)]
    )  # fmt: skip
    assert code == 0, stderr
    assert "epoch 1/2" in stdout and "epoch 2/2" in stdout and f"wrote {out}" in stdout
    meta = load_bundle(out).metadata
    assert meta["head"] == {"name": "lstm", "in_features": 12, "n_classes": 3, "hidden": 16, "layers": 2}
    beside = ["lstm.json", "lstm.safetensors", "lstm_confusion.csv", "lstm_confusion.png", "lstm_curve.png"]
    assert sorted(p.name for p in out.parent.iterdir()) == beside


def test_train_reports_json_progress(tmp_path: Path) -> None:
    """`--progress json`: stage events, one event per epoch carrying its line, then `done` with the
    bundle; nothing else on stdout (the QGIS plugin reads it)."""
    import json

    table = write_table(tmp_path / "samples.parquet", parcels=5, pixels=4)
    out = tmp_path / "m.safetensors"
    code, stdout, stderr = _run(
        ["train", "--labels", str(table), "--class-column", "crop", "--group-column", "parcel", *TINY,
         "--head", "transformer", "--d-model", "8", "--heads", "2", "--layers", "1", "--out", str(out),
         "--progress", "json"]
    )  # fmt: skip
    assert code == 0, stderr
    events = [json.loads(line) for line in stdout.splitlines()]
    events = [e for e in events if e["event"] != "warning"]  # e.g. two dates on one of the 12 steps
    assert [e["event"] for e in events] == ["progress"] * 6 + ["done"]
    fractions = [e["fraction"] for e in events[:-1]]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
    assert events[0]["message"].startswith("reading the labelled series")
    assert events[1]["message"].startswith("normalising")  # raw bands: no backbone to encode with
    assert [e["message"][:10] for e in events[3:5]] == ["epoch 1/2:", "epoch 2/2:"]
    assert [(e["epoch"], e["epochs"]) for e in events[3:5]] == [(1, 2), (2, 2)]  # structured, not parsed
    assert (
        events[2]["epochs"] == 2
        and events[2]["initial_lr"] == 1e-3
        and "lr 1e-03 -> 1e-05" in events[2]["message"]
    )
    assert {e["stage"] for e in events[:-1]} == {"train"}
    assert events[5]["message"] == f"wrote {out}"
    assert events[-1]["outputs"] == {"bundle": str(out)} and out.is_file()


def test_evaluate_reports_json_progress(tmp_path: Path) -> None:
    """`evaluate --progress json`: one JSON object per line; the first lists every run of the grid, each
    run says when it starts (with its initial learning rate) and ends, epochs are structured fields."""
    import json

    table = write_table(tmp_path / "samples.csv", parcels=5, pixels=4)
    out = tmp_path / "eval"
    args = ["evaluate", "--labels", str(table), "--class-column", "crop", "--group-column", "parcel", *TINY,
            "--families", "lstm", "--baselines", "none", "--folds", "2", "--out", str(out),
            "--progress", "json"]  # fmt: skip
    code, stdout, stderr = _run(args)
    assert code == 0, stderr
    events = [json.loads(line) for line in stdout.splitlines()]
    events = [e for e in events if e["event"] != "warning"]
    assert {e["event"] for e in events[:-1]} == {"progress"} and events[-1]["event"] == "done"
    assert events[-1]["outputs"] == {"report": str(out / "report.md")}
    grid = events[0]["runs"]
    assert [(r["fold"], r["method"], r["status"]) for r in grid] == [
        (0, "majority", "left"), (0, "lstm", "left"), (1, "majority", "left"), (1, "lstm", "left")
    ]  # fmt: skip
    starts = [e for e in events if e.get("runs") and e["runs"][0]["status"] == "running"]
    assert len(starts) == 2 and all(
        e["initial_lr"] == 1e-3 and "lr=1.00e-03->" in e["message"] for e in starts
    )
    epochs = [(e["epoch"], e["epochs"]) for e in events if "epoch" in e]
    assert epochs == [(1, 2), (2, 2), (1, 2), (2, 2)]
    ends = [e["runs"][0] for e in events if e.get("runs") and e["runs"][0]["status"] == "done"]
    assert [r["method"] for r in ends] == ["majority", "lstm", "majority", "lstm"]
    assert all(r["seconds"] is not None and 0 <= r["macro_f1"] <= 1 for r in ends)
    fractions = [e["fraction"] for e in events[:-1]]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_min_parcels_leaves_out_a_rare_crop(tmp_path: Path) -> None:
    """A crop with a single parcel cannot be split: with every class kept (--min-parcels 0) the error names
    --min-parcels; by default (auto: 3 parcels on so small a table) it is left out with a warning."""
    table = write_table(tmp_path / "all.parquet", parcels=5, pixels=4)
    frame = pd.read_parquet(table)
    frame = frame[(frame["crop"] != "rapeseed") | (frame["parcel"] == "rapeseed-0")]
    frame.to_parquet(table := tmp_path / "rare.parquet")
    out = tmp_path / "m.safetensors"
    args = ["train", "--labels", str(table), "--class-column", "crop", "--group-column", "parcel", *TINY,
            "--head", "lstm", "--hidden", "8", "--layers", "1", "--out", str(out)]  # fmt: skip
    code, _, stderr = _run([*args, "--min-parcels", "0"])
    assert code == 2 and "'rapeseed'" in stderr and "--min-parcels" in stderr and not out.exists()
    code, _, stderr = _run(args)
    assert code == 0, stderr
    assert "left out 1 crop type(s) with fewer than 3 parcels: 'rapeseed' (1)" in stderr
    classes = [c["name"] for c in load_bundle(out).metadata["classes"]]
    assert classes == ["maize", "wheat"]


def test_evaluate_from_the_shell(tmp_path: Path) -> None:
    table = write_table(tmp_path / "samples.csv", parcels=5, pixels=4)
    bi = write_backbone(tmp_path / "bi.safetensors")
    out = tmp_path / "eval"
    args = ["evaluate", "--labels", str(table), "--class-column", "crop", "--group-column", "parcel", *TINY]
    args += [
        "--bimodal",
        str(bi),
        "--families",
        "transformer",
        "--configs",
        "1",
        "--folds",
        "2",
        "--baselines",
        "rf",
        "--simulated",
        "--out",
        str(out),
    ]
    code, stdout, stderr = _run(args)
    assert code == 0, stderr
    # 2 folds x (transformer on raw bands, on the backbone, rf) = 6 trained runs (+ the majority class)
    assert "6 run(s) trained, 0 reused" in stdout
    report = (out / "report.md").read_text()
    assert "Simulated data" in report and "| majority |" in report and "| rf |" in report
    code, stdout, _ = _run(args)  # rerun: resumes, trains nothing
    assert code == 0 and "0 run(s) trained, 6 reused" in stdout


def _table(tmp_path: Path) -> Path:
    return write_table(tmp_path / "samples.csv", parcels=3, pixels=2)


def _cloudy_class(tmp_path: Path) -> Path:
    path = _table(tmp_path)
    frame = pd.read_csv(path)
    bands = [c for c in frame.columns if c.startswith("B")]
    frame.loc[frame["crop"] == "wheat", bands] = np.nan
    frame.to_csv(path, index=False)
    return path


def _empty_table(tmp_path: Path) -> Path:
    path = _table(tmp_path)
    pd.read_csv(path).iloc[0:0].to_csv(path, index=False)
    return path


def _mixed_crs(tmp_path: Path) -> Path:
    path = _table(tmp_path)
    frame = pd.read_csv(path)
    frame["crs"] = np.where(np.arange(len(frame)) % 2, "EPSG:32633", "EPSG:32634")
    frame.to_csv(path, index=False)
    return path


def _parcels_far_away(tmp_path: Path) -> Path:
    start = dt.date(2021, 5, 1)
    items = synthetic_s2(tmp_path / "s2", [start + dt.timedelta(days=10 * k) for k in range(3)], size=8)
    write_catalog(tmp_path / "stac", items)
    x0, y1 = ORIGIN[0] + 40_000.0, ORIGIN[1]
    rows = [
        {"crop": c, "geometry": box(x0 + 30 * k, y1 - 30, x0 + 30 * k + 25, y1)} for k, c in enumerate("abab")
    ]
    path = tmp_path / "parcels.gpkg"
    gpd.GeoDataFrame(rows, crs=f"EPSG:{EPSG}").to_file(path)
    return path


def _planet_backbone(tmp_path: Path) -> Path:
    return write_backbone(tmp_path / "planet.safetensors", bands=("blue", "green", "red", "nir"))


CASES: dict[str, tuple[Callable[[Path], Path], list[str], str]] = {
    "unknown class column": (_table, ["--class-column", "croptype"], "no class column 'croptype'"),
    "class with no pixels": (_cloudy_class, [], "'wheat' have no pixel"),
    "empty samples table": (_empty_table, [], "no labelled rows"),
    "mixed CRS": (_mixed_crs, [], "mixes 2 CRSs"),
    "labels outside the imagery": (
        _parcels_far_away,
        ["--s2", "{tmp}/stac/catalog.json", "--start", "2021-05-01", "--end", "2021-06-01"],
        "outside",
    ),
    "backbone with other bands": (_table, ["--backbone", "{tmp}/planet.safetensors"], "pretrained on bands"),
}


@pytest.mark.parametrize("command", ["train", "evaluate"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_inputs_exit_2_with_one_line_and_write_nothing(tmp_path: Path, case: str, command: str) -> None:
    make, extra, message = CASES[case]
    labels = make(tmp_path)
    bundle = (
        _planet_backbone(tmp_path) if "other bands" in case else write_backbone(tmp_path / "bi.safetensors")
    )
    extra = [e.replace("{tmp}", str(tmp_path)) for e in extra]  # a later --class-column wins
    if command == "evaluate":
        extra = [("--bimodal" if e == "--backbone" else e) for e in extra]
        if "--bimodal" not in extra:
            extra += ["--bimodal", str(bundle)]
        args = [
            "evaluate",
            "--labels",
            str(labels),
            "--class-column",
            "crop",
            *TINY,
            "--out",
            str(tmp_path / "o"),
        ]
    else:
        args = ["train", "--labels", str(labels), "--class-column", "crop", *TINY, "--head", "lstm"]
        args += ["--out", str(tmp_path / "o" / "m.safetensors")]
    before = sorted(p.name for p in tmp_path.iterdir())
    code, stdout, stderr = _run(args + extra)
    assert code == 2, (stdout, stderr)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("geocrop: error: "), stderr
    assert message in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing half-written


def test_flags_of_another_head_are_refused(tmp_path: Path) -> None:
    table = _table(tmp_path)
    code, _, stderr = _run(
        ["train", "--labels", str(table), "--class-column", "crop", "--head", "lstm", "--kernel-size", "40",
         "--out", str(tmp_path / "m.safetensors")]
    )  # fmt: skip
    assert code == 2 and "--kernel-size does not apply to --head lstm" in stderr
