"""Tree baselines and `geocrop predict` from the shell: a bundle classifies a table exactly as training
scored it, and `geocrop map` applies a tree bundle like any other."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from click.testing import CliRunner

from geocrop.cli.main import cli
from geocrop.core.bands import S2_BANDS
from geocrop.io.bundle import load_bundle
from tests.data.worldcereal_synth import write_class_map, write_extraction
from tests.inference.map_fixtures import DATES, END, START, tiny_area


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _run(args: list[str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, args)
    return result.exit_code, result.stdout, result.stderr


def _train(tmp_path: Path, head: str, *extra: str) -> tuple[Path, Path, Path]:
    table = write_extraction(tmp_path / "samples.parquet")
    classes = write_class_map(tmp_path / "classes.json")
    out = tmp_path / f"{head}.safetensors"
    args = [
        "train",
        "--labels",
        str(table),
        "--class-column",
        "ewoc_code",
        "--class-map",
        f"{classes}:CROPTYPE",
    ]
    code, stdout, stderr = _run([*args, "--head", head, "--device", "cpu", "--out", str(out), *extra])
    assert code == 0, stderr
    assert "macro-F1" in stdout
    return table, classes, out


@pytest.mark.parametrize("head", ["rf", "gbm", "inception", "tempcnn"])
def test_predict_reproduces_the_validation_scores(tmp_path: Path, head: str) -> None:
    extra = (
        ("--layers", "2", "--hidden", "16", "--kernel-size", "8", "--epochs", "3")
        if head == "inception"
        else ()
    )
    table, _, bundle = _train(tmp_path, head, *extra)
    meta = load_bundle(bundle).metadata
    training = meta["training"]
    assert "/" not in training["labels"]  # provenance without local paths
    assert len(training["train_ids"]) == training["n_train"] and len(training["val_ids"]) == training["n_val"]
    out = tmp_path / "predictions.csv"
    code, _stdout, stderr = _run(
        [
            "predict",
            "--model",
            str(bundle),
            "--samples",
            str(table),
            "--class-column",
            "ewoc_code",
            "--out",
            str(out),
        ]
    )
    assert code == 0, stderr
    frame = pd.read_csv(out)
    names = [c["name"] for c in meta["classes"]]
    assert len(frame) == 36 and list(frame.columns[-len(names) :]) == [f"p_{n}" for n in names]
    assert np.allclose(frame[[f"p_{n}" for n in names]].sum(axis=1), 1.0, atol=1e-3)
    val = frame.set_index("sample_id").loc[training["val_ids"]]
    truth = {"1101060000": "maize", "1101010001": "wheat", "1106000020": "sunflower"}
    oa = float((val["predicted"] == val["ewoc_code"].astype(str).map(truth)).mean())
    assert oa == pytest.approx(training["val_scores"]["oa"], abs=1e-9)  # same engine path as training


def test_a_tree_bundle_maps_like_any_other(tmp_path: Path) -> None:
    """rf trained on a table on the tiny area's dates, then `geocrop map` over that area."""
    area = tiny_area(tmp_path / "area")
    rng = np.random.default_rng(0)
    rows = []
    for s in range(30):
        crop = ("maize", "wheat", "grass")[s % 3]
        row: dict[str, object] = {"crop": crop}
        for t, day in enumerate(DATES):
            for k, band in enumerate(S2_BANDS):
                row[f"{band}_{day.isoformat()}"] = (
                    0.05 + 0.01 * k + 0.05 * (s % 3) * (t % 2) + rng.normal(0, 0.01)
                )
        rows.append(row)
    table = tmp_path / "wide.csv"
    pd.DataFrame(rows).to_csv(table, index=False)
    bundle = tmp_path / "rf.safetensors"
    code, _, stderr = _run(
        ["train", "--labels", str(table), "--class-column", "crop", "--head", "rf", "--out", str(bundle)]
    )
    assert code == 0, stderr
    assert load_bundle(bundle).metadata["temporal_grid"]["steps"] == len(DATES)  # auto: the table's cadence
    out = tmp_path / "map.tif"
    code, _, stderr = _run(
        ["map", "--bbox", area.bbox, "--start", str(START), "--end", str(END), "--stac", str(area.catalog),
         "--model", str(bundle), "--out", str(out), "--progress", "none", "--device", "cpu"]
    )  # fmt: skip
    assert code == 0, stderr
    with rasterio.open(out) as src:
        classes = src.read(1)
    assert set(np.unique(classes).tolist()) <= {0, 1, 2, 255} and (classes != 255).any()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--head", "rf", "--epochs", "5"], "--epochs only apply to deep heads"),
        (["--head", "gbm", "--hidden", "8"], "--hidden only apply to deep heads"),
        (["--steps", "auto", "--head", "rf", "--class-map", "{tmp}/nope.json"], "class map"),
        (["--head", "rf", "--class-map", "{classes}"], "holds 2 tables"),
        (["--head", "rf", "--steps", "one"], "neither 'auto' nor a number"),
    ],
)
def test_bad_train_options_are_one_line(tmp_path: Path, args: list[str], fragment: str) -> None:
    table = write_extraction(tmp_path / "samples.parquet")
    classes = write_class_map(tmp_path / "classes.json")
    out = tmp_path / "m.safetensors"
    argv = ["train", "--labels", str(table), "--class-column", "ewoc_code", "--out", str(out)]
    argv += [a.format(tmp=tmp_path, classes=classes) for a in args]
    code, _, stderr = _run(argv)
    lines = stderr.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("geocrop: error:"), stderr
    assert fragment in lines[0] and not out.exists()


@pytest.mark.parametrize(
    ("out_name", "fragment"),
    [("p.txt", "must end in .csv or .parquet"), ("samples.parquet", "is the samples table itself")],
)
def test_bad_predict_outputs_leave_everything(tmp_path: Path, out_name: str, fragment: str) -> None:
    table, _, bundle = _train(tmp_path, "rf")
    before = table.read_bytes()
    code, _, stderr = _run(
        ["predict", "--model", str(bundle), "--samples", str(table), "--out", str(tmp_path / out_name)]
    )
    assert code == 2 and fragment in stderr and stderr.count("\n") == 1
    assert table.read_bytes() == before and not (tmp_path / "p.txt").exists()


def test_predict_another_year_with_its_own_season(tmp_path: Path) -> None:
    """The same series a year later, with --start/--end of that year: the same predictions."""
    table, _, bundle = _train(tmp_path, "rf")
    grid = load_bundle(bundle).metadata["temporal_grid"]
    later = tmp_path / "later.parquet"
    frame = pd.read_parquet(table)
    frame.assign(timestamp=frame["timestamp"] + pd.Timedelta(days=365)).to_parquet(later)
    shifted = [(pd.Timestamp(grid[k]) + pd.Timedelta(days=365)).date().isoformat() for k in ("start", "end")]
    outs = []
    for samples, season in ((table, []), (later, ["--start", shifted[0], "--end", shifted[1]])):
        out = tmp_path / f"{samples.stem}.csv"
        code, _, stderr = _run(
            ["predict", "--model", str(bundle), "--samples", str(samples), "--out", str(out), *season]
        )
        assert code == 0, stderr
        outs.append(pd.read_csv(out))
    assert outs[0]["predicted"].tolist() == outs[1]["predicted"].tolist()
    code, _, stderr = _run(
        [
            "predict",
            "--model",
            str(bundle),
            "--samples",
            str(later),
            "--out",
            str(tmp_path / "x.csv"),
            "--start",
            shifted[0],
        ]
    )
    assert code == 2 and "give both start and end" in stderr and not (tmp_path / "x.csv").exists()


def test_a_bad_table_is_one_stderr_line_in_a_real_process(tmp_path: Path) -> None:
    """Default progress mode, stderr a file (not a terminal): no bar, no empty line before the error."""
    import subprocess
    import sys

    table = write_extraction(tmp_path / "samples.parquet")
    out = tmp_path / "m.safetensors"
    argv = ["train", "--labels", str(table), "--class-column", "crop", "--head", "rf", "--out", str(out)]
    done = subprocess.run([sys.executable, "-m", "geocrop.cli.main", *argv], capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.splitlines() == [done.stderr.strip()], done.stderr
    assert done.stderr.startswith("geocrop: error: samples table") and not out.exists()
