"""`--class-priors` on `geocrop predict` and `geocrop map`: the training frequencies by default, uniform or a
file on demand, and a bad file refused in one line before anything is written."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio

from geocrop.core.bands import S2_BANDS
from geocrop.io.bundle import load_bundle
from tests.cli.test_predict_cli import _run, _train
from tests.inference.map_fixtures import DATES, END, START, tiny_area


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(samples table, rf bundle), trained once for the module."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table, _, bundle = _train(tmp_path_factory.mktemp("priors"), "rf")
    return table, bundle


def _predict(bundle: Path, table: Path, out: Path, *extra: str) -> pd.DataFrame:
    code, _, stderr = _run(
        ["predict", "--model", str(bundle), "--samples", str(table), "--out", str(out), *extra]
    )
    assert code == 0, stderr
    return pd.read_csv(out)


def test_predict_corrects_for_the_shares_asked_for(tmp_path: Path, trained: tuple[Path, Path]) -> None:
    """p(default) is p(uniform) x training shares, renormalised; a file's shares replace them."""
    table, bundle = trained
    meta = load_bundle(bundle).metadata
    names = [c["name"] for c in meta["classes"]]
    shares = np.asarray(meta["class_frequencies"])
    assert shares.sum() == pytest.approx(1.0) and meta["temperature"] > 0
    columns = [f"p_{n}" for n in names]
    uniform = _predict(bundle, table, tmp_path / "u.csv", "--class-priors", "uniform")[columns].to_numpy()
    default = _predict(bundle, table, tmp_path / "d.csv")[columns].to_numpy()
    expected = uniform * shares / (uniform * shares).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(default, expected, atol=2e-4)  # CSV keeps 5 decimals
    area = {n: float(k + 1) for k, n in enumerate(names)}
    (tmp_path / "area.json").write_text(json.dumps(area))
    given = _predict(bundle, table, tmp_path / "f.csv", "--class-priors", str(tmp_path / "area.json"))
    weights = np.array([area[n] for n in names])
    expected = uniform * weights / (uniform * weights).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(given[columns].to_numpy(), expected, atol=2e-4)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [("barley,1\n", "names class(es) 'barley' that model"), ("maize,-1\n", "give shares >= 0")],
)
def test_a_bad_priors_file_is_one_line_and_writes_nothing(
    tmp_path: Path, content: str, fragment: str
) -> None:
    table, _, bundle = _train(tmp_path, "rf")
    priors = tmp_path / "priors.csv"
    priors.write_text(content)
    out = tmp_path / "p.csv"
    code, _, stderr = _run(
        [
            "predict",
            "--model",
            str(bundle),
            "--samples",
            str(table),
            "--out",
            str(out),
            "--class-priors",
            str(priors),
        ]
    )
    lines = stderr.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "--class-priors" in lines[0] and fragment in lines[0], stderr
    assert not out.exists()


def test_map_refuses_a_bad_priors_file_before_writing(tmp_path: Path, trained: tuple[Path, Path]) -> None:
    _, bundle = trained
    (tmp_path / "priors.json").write_text('{"nope": 1}')
    out = tmp_path / "map.tif"
    code, _, stderr = _run(
        ["map", "--bbox", "10,50,10.01,50.01", "--start", "2021-04-01", "--end", "2021-07-10", "--model",
         str(bundle), "--out", str(out), "--class-priors", str(tmp_path / "priors.json"), "--stac",
         str(tmp_path / "nowhere.json")]
    )  # fmt: skip
    assert code == 2 and "--class-priors" in stderr and "names class(es) 'nope'" in stderr, stderr
    assert not any(p.name.startswith("map") for p in tmp_path.iterdir())


@pytest.mark.slow
def test_a_map_records_and_applies_its_priors(tmp_path: Path) -> None:
    """The same rf bundle mapped at defaults and with uniform priors: the probability bands differ by the
    training shares (uniform divides a tree head's raw output by them), and each COG says which it used."""
    area = tiny_area(tmp_path / "area")
    rng = np.random.default_rng(0)
    rows = []
    for s in range(40):
        k = 0 if s % 4 else 1 + (s // 4) % 2  # maize 30, wheat 5, grass 5: skewed shares
        row: dict[str, object] = {"crop": ("maize", "wheat", "grass")[k]}
        for t, day in enumerate(DATES):
            for b, band in enumerate(S2_BANDS):
                row[f"{band}_{day.isoformat()}"] = 0.05 + 0.01 * b + 0.05 * k * (t % 2) + rng.normal(0, 0.02)
        rows.append(row)
    table = tmp_path / "wide.csv"
    pd.DataFrame(rows).to_csv(table, index=False)
    bundle = tmp_path / "rf.safetensors"
    code, _, stderr = _run(
        ["train", "--labels", str(table), "--class-column", "crop", "--head", "rf", "--out", str(bundle)]
    )
    assert code == 0, stderr
    meta = load_bundle(bundle).metadata
    shares = np.asarray(meta["class_frequencies"])
    probs = {}
    for name, extra in (("default", []), ("uniform", ["--class-priors", "uniform"])):
        out = tmp_path / f"{name}.tif"
        args = ["map", "--bbox", area.bbox, "--start", str(START), "--end", str(END), "--model", str(bundle)]
        args += ["--stac", str(area.catalog), "--out", str(out), "--progress", "none", "--device", "cpu"]
        code, _, stderr = _run([*args, "--probabilities", *extra])
        assert code == 0, stderr
        with rasterio.open(out) as src:
            tag = src.tags()["class_priors"]
        with rasterio.open(tmp_path / f"{name}_confidence.tif") as src:
            probs[name] = src.read()[2:].astype(float)  # bands 3..: probability per class, %
        assert ("uniform class shares" in tag) == (name == "uniform") and "temperature" in tag
    live = (probs["default"] != 255).all(axis=0)
    expected = probs["default"][:, live] / shares[:, None]
    expected = 100 * expected / expected.sum(axis=0)
    assert np.abs(expected - probs["uniform"][:, live]).max() <= 3  # integer percentages, rounded twice
