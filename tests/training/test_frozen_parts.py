"""A frozen pretrained InceptionTime reads season parts (`geocrop.models.season_parts`): `trained_spec`
asks for `season_parts` of the pretrained grid's steps, fine-tuned and raw heads keep the time mean, the
trained head survives a bundle round trip, and `geocrop map` runs such a bundle on the simulated sample
area (SIMULATED data and random weights: a test of the code path, not of accuracy)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from geocrop.io.bundle import load_bundle, save_bundle
from geocrop.models.registry import build_head, load_state, state_to_numpy
from geocrop.models.season_parts import PARTS_KEY, season_parts
from geocrop.training.evaluate import _recipe
from geocrop.training.fit import TrainConfig, fit_head
from geocrop.training.head_bundle import read_pretrained_head
from geocrop.training.head_init import trained_spec
from geocrop.training.temporal_config import TemporalPretrainConfig
from geocrop.training.temporal_pretrain import pretrain_temporal
from tests.inference.inference_helpers import tiny_metadata
from tests.io.cube_fixtures import write_long_table

pytestmark = pytest.mark.filterwarnings("ignore")
DATES = 12  # two season parts


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("parts")
    table = write_long_table(folder / "t.parquet", samples=30, dates=DATES)
    config = TemporalPretrainConfig(
        out=folder / "p", s2=str(table), head="inception", epochs=1, batch_size=16, device="cpu",
        head_params={"layers": 1, "hidden": 8, "kernel_size": 4},
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pretrain_temporal(config, progress=False).bundle


def test_only_a_frozen_inception_body_reads_season_parts(pretrained: Path) -> None:
    pre = read_pretrained_head(pretrained)
    assert pre.steps == DATES and PARTS_KEY not in pre.head
    spec = {**pre.head, "n_classes": 3}
    frozen = TrainConfig(init=str(pretrained), freeze_init=True)
    assert trained_spec(spec, frozen)[PARTS_KEY] == season_parts(DATES) == 2
    assert PARTS_KEY not in trained_spec(spec, TrainConfig(init=str(pretrained)))  # fine-tuned
    assert PARTS_KEY not in trained_spec(spec, TrainConfig())
    assert trained_spec({**spec, PARTS_KEY: 1}, frozen)[PARTS_KEY] == 1  # a spec that says keeps its own
    tempcnn = {"name": "tempcnn", "in_features": 12, "n_classes": 3, "steps": DATES}
    assert PARTS_KEY not in trained_spec(tempcnn, frozen)  # a family that flattens time already


def test_evaluation_keys_frozen_inception_runs_with_parts_apart_from_the_time_mean_of_before() -> None:
    name, suffix = _recipe(TrainConfig(), "temporal_frozen", "inception")  # whichever classifier it trains
    assert name.endswith(", season parts") and suffix.endswith("-parts")
    assert (name, suffix) != _recipe(TrainConfig(), "temporal_frozen", "tempcnn")
    assert _recipe(TrainConfig(), "temporal", "inception") == ("", "")  # fine-tuned: the time mean


def test_a_frozen_inception_with_parts_round_trips_through_a_bundle(pretrained: Path, tmp_path: Path) -> None:
    pre = read_pretrained_head(pretrained)
    spec = {**pre.head, "n_classes": 3}
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(30, DATES, 12)).astype(np.float32), rng.integers(0, 3, 30)
    config = TrainConfig(epochs=2, init=str(pretrained), freeze_init=True)
    fitted = fit_head(spec, (x, y), (x[:8], y[:8]), config=config)
    assert _classifier_width(fitted.head) == 8 * 2  # 8 channels x 2 parts
    saved_spec = trained_spec(spec, config)  # what `geocrop train` writes in the bundle
    meta = {**tiny_metadata(backbone=False, steps=DATES), "head": saved_spec}
    path = save_bundle(tmp_path / "m.safetensors", state_to_numpy(fitted.head, "head"), meta)
    bundle = load_bundle(path)
    again = load_state(build_head(bundle.metadata["head"]), bundle.tensors, "head", found=saved_spec)
    with torch.no_grad():
        want = fitted.head.eval()(torch.from_numpy(x)).numpy()
        got = again.eval()(torch.from_numpy(x)).numpy()
    assert bundle.metadata["head"][PARTS_KEY] == 2 and np.array_equal(got, want)


def _classifier_width(head: torch.nn.Module) -> int:
    """How many features the head's classifier (a linear layer, or an MLP that starts with a batch norm)
    reads."""
    first = next(
        m for m in head.classifier.modules() if isinstance(m, torch.nn.Linear | torch.nn.BatchNorm1d)
    )
    return first.in_features if isinstance(first, torch.nn.Linear) else first.num_features


def test_geocrop_map_runs_an_inception_with_parts_on_the_simulated_sample_area(tmp_path: Path) -> None:
    import rasterio
    from click.testing import CliRunner

    from geocrop.cli.main import cli
    from geocrop.sim import SimulationConfig, write_sample_area

    area = write_sample_area(tmp_path / "sample", SimulationConfig.tiny())
    season = ("2021-03-01", "2021-10-31")
    meta = tiny_metadata(backbone=False, steps=24, season=season)
    meta["head"] = {
        "name": "inception", "in_features": 12, "n_classes": 3, "layers": 1, "hidden": 8, "kernel_size": 4,
        PARTS_KEY: season_parts(24), "classifier": {"hidden": 8, "dropout": 0.2},
    }  # fmt: skip
    torch.manual_seed(0)
    bundle = save_bundle(tmp_path / "m.safetensors", state_to_numpy(build_head(meta["head"]), "head"), meta)
    out = tmp_path / "map.tif"
    args = ["map", "--aoi", str(area.field), "--start", season[0], "--end", season[1], "--stac"]
    args += [str(area.catalog), "--model", str(bundle), "--out", str(out), "--progress", "none"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    with rasterio.open(out) as src:
        classes = src.read(1)
    assert (classes < 3).any() and set(np.unique(classes)) <= {0, 1, 2, 255}
