"""With ``frozen_classifier`` mlp a frozen pretrained body trains an MLP classifier
(`TrainConfig.frozen_hidden`; the default, a logistic regression, is tested in test_frozen_logistic.py):
the body stays as pretrained, ``frozen_hidden`` 0 is the single linear layer of before, the trained
bundle's spec rebuilds the MLP, and evaluation keys the two apart."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from geocrop.data.labelled import LabelSource
from geocrop.errors import InputError
from geocrop.io.bundle import load_bundle
from geocrop.models.mlp_classifier import CLASSIFIER_KEY, MLPClassifier
from geocrop.models.registry import build_head, load_state
from geocrop.training.evaluate import _recipe
from geocrop.training.fit import TrainConfig, fit_head
from geocrop.training.head_bundle import read_pretrained_head
from geocrop.training.head_init import trained_spec
from geocrop.training.hparams import HeadConfig
from geocrop.training.temporal_config import TemporalPretrainConfig
from geocrop.training.temporal_pretrain import pretrain_temporal
from geocrop.training.train import TrainJob, train_model
from tests.io.cube_fixtures import write_long_table

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture(autouse=True, scope="module")
def _single_thread() -> Iterator[None]:  # small fits run faster on one thread, beside other tests
    threads, _ = torch.get_num_threads(), torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("frozen")
    table = write_long_table(folder / "t.parquet", samples=40, dates=10)
    config = TemporalPretrainConfig(
        out=folder / "p", s2=str(table), head="tempcnn", epochs=1, batch_size=16, device="cpu",
        head_params={"hidden": 8, "dense": 16},
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return table, pretrain_temporal(config, progress=False).bundle


def test_the_frozen_body_trains_an_mlp_and_zero_keeps_the_linear_layer(pretrained: tuple[Path, Path]) -> None:
    _, bundle = pretrained
    pre = read_pretrained_head(bundle)
    spec = {**pre.head, "n_classes": 3}
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 10, 12)).astype(np.float32), rng.integers(0, 3, 40)
    frozen = fit_head(
        spec,
        (x, y),
        (x[:8], y[:8]),
        config=TrainConfig(epochs=3, init=str(bundle), freeze_init=True, frozen_classifier="mlp"),
    )
    assert isinstance(frozen.head.classifier, MLPClassifier) and frozen.head.classifier[1].out_features == 256
    state = frozen.head.state_dict()
    for key, value in pre.tensors.items():  # the body (weights and batch-norm statistics) as pretrained
        assert np.array_equal(state[key].numpy(), value), key
    torch.manual_seed(0)  # the MLP's weights moved from their initialisation (fit_head seeds it the same)
    mlp = TrainConfig(init=str(bundle), freeze_init=True, frozen_classifier="mlp")
    start = build_head(trained_spec(spec, mlp)).state_dict()
    assert not np.array_equal(state["classifier.1.weight"].numpy(), start["classifier.1.weight"].numpy())
    linear = fit_head(
        spec,
        (x, y),
        (x[:8], y[:8]),
        config=TrainConfig(
            epochs=3, init=str(bundle), freeze_init=True, frozen_classifier="mlp", frozen_hidden=0
        ),
    )
    assert isinstance(linear.head.classifier, torch.nn.Linear)
    # fine-tuning and heads without a pretrained body keep the family's linear layer
    assert CLASSIFIER_KEY not in trained_spec(spec, TrainConfig(init=str(bundle)))
    assert CLASSIFIER_KEY not in trained_spec(spec, TrainConfig())
    with pytest.raises(InputError, match="`frozen_hidden` -1") as err:
        TrainConfig(frozen_hidden=-1)
    assert err.value.param == "frozen_hidden"


def test_evaluation_keys_frozen_classifiers_apart() -> None:
    mlp = TrainConfig(frozen_classifier="mlp")
    assert _recipe(mlp, "temporal_frozen", "tempcnn") == ("MLP 256", "-mlp256")
    assert _recipe(replace(mlp, frozen_hidden=0), "temporal_frozen", "tempcnn") == ("", "")
    assert _recipe(TrainConfig(), "temporal", "tempcnn") == ("", "")  # fine-tuned: no classifier recipe


@pytest.mark.slow
def test_a_trained_bundle_rebuilds_its_mlp(pretrained: tuple[Path, Path], tmp_path: Path) -> None:
    table, bundle = pretrained
    out = tmp_path / "m.safetensors"
    config = TrainConfig(epochs=2, init=str(bundle), freeze_init=True, frozen_classifier="mlp", device="cpu")
    head_config = HeadConfig("tempcnn", read_pretrained_head(bundle).head_params())
    train_model(TrainJob(LabelSource(table, "ewoc_code"), out, head_config, config=config))
    saved = load_bundle(out)
    spec = saved.metadata["head"]
    assert spec[CLASSIFIER_KEY] == {"hidden": 256, "dropout": 0.2}
    head = load_state(build_head(spec), saved.tensors, "head", found=spec)
    assert isinstance(head.classifier, MLPClassifier)
