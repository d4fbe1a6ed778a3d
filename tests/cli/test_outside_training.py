"""`geocrop map` and `geocrop predict` warn when the area or the dates lie outside where and when the
model learned (the bundle's provenance ``extent`` and ``season``), saying how far, after every check."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner, Result

from geocrop.cli import main as main_module
from geocrop.io.bundle import load_bundle, save_bundle
from geocrop.io.extent import training_extent
from tests.data.worldcereal_synth import write_extraction
from tests.inference.map_fixtures import END, START, TinyArea, tiny_area


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.fixture(scope="module")
def area(tmp_path_factory: pytest.TempPathFactory) -> TinyArea:
    return tiny_area(tmp_path_factory.mktemp("area"))


def _centre(area: TinyArea) -> tuple[float, float]:
    west, south, east, north = (float(v) for v in area.bbox.split(","))
    return (west + east) / 2, (south + north) / 2


def _with_provenance(bundle: Path, out: Path, places: np.ndarray, season: list[str]) -> Path:
    loaded = load_bundle(bundle)
    provenance = {"data": "real", "labels": "t.parquet", "season": season, "extent": training_extent(places)}
    return save_bundle(out, loaded.tensors, {**loaded.metadata, "provenance": provenance})


def _map(area: TinyArea, bundle: Path, out: Path, *extra: str) -> Result:
    args = ["map", "--bbox", area.bbox, "--stac", str(area.catalog), "--model", str(bundle)]
    args += ["--out", str(out), "--progress", "none", "--dry-run", *extra]
    return CliRunner().invoke(main_module.cli, args)


def test_map_over_the_training_area_and_season_says_nothing(area: TinyArea, tmp_path: Path) -> None:
    lon, lat = _centre(area)
    places = np.array([[lon - 0.01, lat - 0.01], [lon + 0.01, lat + 0.01], [lon, lat + 0.02]])
    bundle = _with_provenance(area.bundle, tmp_path / "here.safetensors", places, [str(START), str(END)])
    result = _map(area, bundle, tmp_path / "m.tif", "--start", str(START), "--end", str(END))
    assert result.exit_code == 0, result.output
    assert "warning" not in result.stderr


def test_map_far_away_and_another_year_says_how_far(area: TinyArea, tmp_path: Path) -> None:
    lon, lat = _centre(area)
    far = np.array([[lon + 3.0, lat], [lon + 3.2, lat + 0.2], [lon + 3.0, lat + 0.2]])  # ~200 km east
    bundle = _with_provenance(area.bundle, tmp_path / "far.safetensors", far, ["2019-04-01", "2019-11-01"])
    result = _map(area, bundle, tmp_path / "m.tif", "--start", str(START), "--end", str(END))
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("geocrop: warning: ")]
    assert len(lines) == 2, result.stderr
    km = float(lines[0].split("lies ")[1].split(" km")[0])
    assert 180 < km < 230 and "outside the model's training extent" in lines[0]
    assert f"the dates {START}..{END} lie 517 to 617 days after the model's training season" in lines[1]
    assert not (tmp_path / "m.tif").exists()  # a dry run


def test_a_bad_argument_fails_alone_without_the_warnings(area: TinyArea, tmp_path: Path) -> None:
    lon, lat = _centre(area)
    bundle = _with_provenance(
        area.bundle, tmp_path / "far.safetensors", np.array([[lon + 3, lat]]), ["2019-04-01", "2019-11-01"]
    )
    result = _map(
        area, bundle, tmp_path / "m.tif", "--start", str(START), "--end", str(END), "--max-cloud", "150"
    )
    assert result.exit_code == 2 and "warning" not in result.stderr
    assert result.stderr.count("\n") == 1


def test_predict_on_samples_from_elsewhere_says_how_far(area: TinyArea, tmp_path: Path) -> None:
    table = write_extraction(tmp_path / "samples.parquet", per_class=2, dekads=6)
    frame = pd.read_parquet(table)
    ids = sorted(frame["sample_id"].unique())
    place = {s: (10.0 + 0.01 * i, 45.0) for i, s in enumerate(ids)}  # northern Italy
    frame["lon"] = frame["sample_id"].map(lambda s: place[s][0])
    frame["lat"] = frame["sample_id"].map(lambda s: place[s][1])
    # into the model's season (2021-04-01 ..): only the place is far, so predict has series to predict
    frame["timestamp"] = frame["timestamp"] + pd.DateOffset(years=-1, days=30)
    frame.to_parquet(table)
    model = load_bundle(area.bundle).metadata
    grid = model["temporal_grid"]
    france = np.array([[0.0, 44.0], [0.5, 44.5], [0.0, 44.5]])
    bundle = _with_provenance(area.bundle, tmp_path / "fr.safetensors", france, [grid["start"], grid["end"]])
    out = tmp_path / "p.csv"
    args = ["predict", "--model", str(bundle), "--samples", str(table), "--out", str(out), "--device", "cpu"]
    with warnings.catch_warnings():
        warnings.simplefilter("default")  # as in a shell, where no test fixture silences them
        result = CliRunner().invoke(main_module.cli, args)
    assert result.exit_code == 0, result.output
    assert out.exists()
    area_line = next(line for line in result.stderr.splitlines() if "training extent" in line)
    assert area_line.startswith("geocrop: warning: the samples lie ")
    assert 700 < float(area_line.split("lie ")[1].split(" km")[0].replace(",", "")) < 900
