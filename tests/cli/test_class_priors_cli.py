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

from geocrop.io.bundle import load_bundle
from tests.cli.test_predict_cli import _run, _train


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
