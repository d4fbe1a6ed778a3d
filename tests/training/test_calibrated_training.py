"""What `train` records for prior correction and calibration: training shares, a fitted temperature, and
validation probabilities that are exactly the corrected, temperature-scaled logits."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from geocrop.data.labelled import LabelSource
from geocrop.io.bundle import load_bundle
from geocrop.training.any_head import cached_features, fit_any_head, training_shares
from geocrop.training.calibration import calibrated_proba, correction
from geocrop.training.features import raw_bands
from geocrop.training.fit import TrainConfig
from geocrop.training.hparams import HeadConfig, default_config
from geocrop.training.train import TrainJob, prepare_data, train_model
from tests.training.heads_synth import write_table


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _skewed_table(tmp_path: Path) -> Path:
    """maize on 12 parcels, wheat on 6, rapeseed on 4: class shares 12:6:4."""
    path = write_table(tmp_path / "full.csv", parcels=12, pixels=3)
    frame = pd.read_csv(path)
    number = frame["parcel"].str.split("-").str[1].astype(int)
    keep = (frame["crop"] == "maize") | ((frame["crop"] == "wheat") & (number < 6)) | (number < 4)
    frame[keep].to_csv(tmp_path / "samples.csv", index=False)
    return tmp_path / "samples.csv"


def test_a_bundle_records_training_shares_and_temperature(tmp_path: Path) -> None:
    source = LabelSource(_skewed_table(tmp_path), "crop", group_column="parcel", steps=12)
    job = TrainJob(source=source, out=tmp_path / "rf.safetensors", head=default_config("rf"))
    train_model(job)
    meta = load_bundle(job.out).metadata
    series, train_idx, _ = prepare_data(source, scheme="70-30", n_train=5000, n_val=1000, seed=0)
    expected = training_shares(series, train_idx)
    np.testing.assert_allclose(meta["class_frequencies"], expected)
    by_name = dict(zip(series.class_names, expected, strict=True))
    assert by_name["maize"] > by_name["wheat"] > by_name["rapeseed"]  # the table's 12:6:4 survives the split
    assert meta["temperature"] > 0 and meta["temperature"] == meta["training"]["calibration"]["temperature"]
    assert {"ece_before", "ece_after", "nll_before", "nll_after"} <= set(meta["training"]["calibration"])
    assert (
        meta["training"]["calibration"]["nll_after"] <= meta["training"]["calibration"]["nll_before"] + 1e-9
    )
    assert set(meta["training"]["val_scores_uniform"]) == {"oa", "macro_f1", "kappa"}


@pytest.mark.parametrize(
    "epochs", [pytest.param(None, marks=pytest.mark.slow, id="adaptive"), pytest.param(5, id="paper")]
)
def test_validation_probabilities_are_the_corrected_logits(tmp_path: Path, epochs: int | None) -> None:
    source = LabelSource(_skewed_table(tmp_path), "crop", group_column="parcel", steps=12)
    series, train_idx, val_idx = prepare_data(source, scheme="70-30", n_train=5000, n_val=1000, seed=0)
    rows = np.concatenate([train_idx, val_idx])
    features = cached_features(series, raw_bands(series.values[train_idx]), rows, torch.device("cpu"))
    head = HeadConfig("tempcnn", {"hidden": 8, "kernel_size": 3, "dense": 16}, 1e-4)
    config = TrainConfig(epochs=epochs, batch_size=16, device="cpu")
    fitted = fit_any_head(head, series, features, train_idx, val_idx, config=config)
    assert fitted.val_logits is not None and fitted.class_shares is not None
    np.testing.assert_allclose(fitted.class_shares, training_shares(series, train_idx))
    if epochs is None:  # the inner split that picks the epoch also fits the temperature
        assert fitted.temperature is not None and fitted.temperature > 0
        assert fitted.calibration["n"] > 0
    else:  # the paper's settings keep no inner split: nothing to fit on
        assert fitted.temperature is None and fitted.calibration == {}
    if epochs is None:  # and how balanced the head is: a partial prior, fitted with T
        assert isinstance(fitted.head_prior, float) and 0 <= fitted.head_prior <= 1
        assert fitted.calibration["head_prior"] == fitted.head_prior
    else:
        assert fitted.head_prior == "uniform"
    shares = correction(fitted.class_shares, frequencies=fitted.class_shares, head_prior=fitted.head_prior)
    expected = calibrated_proba(fitted.val_logits, temperature=fitted.temperature or 1.0, shares=shares)
    np.testing.assert_allclose(fitted.val_proba, expected, atol=1e-6)
