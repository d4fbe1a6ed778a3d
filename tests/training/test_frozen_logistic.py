"""A frozen pretrained body's classifier fitted as a logistic regression (`TrainConfig.frozen_classifier`
``logistic``): the regression is scikit-learn's on standardised features, its strength chosen by
cross-validation, folded into the head's own linear layer (no temperature), and calibrated like every deep
head (temperature and prior share) on the chosen strength's out-of-fold logits, so a bundle trained with
it predicts as training scored it."""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from geocrop.core.temporal import TemporalGrid
from geocrop.data.labelled import LabelledSeries, LabelSource
from geocrop.errors import InputError
from geocrop.io.bundle import load_bundle
from geocrop.models.mlp_classifier import CLASSIFIER_KEY
from geocrop.models.registry import build_head, load_state, state_to_numpy
from geocrop.training.any_head import fit_any_head, head_logits, training_shares
from geocrop.training.calibration import calibrated_proba, correction, fit_calibration, softmax
from geocrop.training.evaluate import _recipe
from geocrop.training.fit import TrainConfig, fit_head
from geocrop.training.frozen_logistic import (
    DEFAULT_C,
    MAX_FOLDS,
    LogisticFit,
    classifier_features,
    fit_logistic,
    fold_into,
)
from geocrop.training.head_bundle import read_pretrained_head
from geocrop.training.head_init import trained_spec
from geocrop.training.hparams import HeadConfig
from geocrop.training.metrics import macro_f1
from geocrop.training.train import TrainJob, train_model
from tests.training import test_frozen_classifier as mlp_tests

# the small pretrained TempCNN (a table of 40 series, 10 dates) and one torch thread, as the MLP's tests
pretrained = mlp_tests.pretrained
_single_thread = mlp_tests._single_thread


def _blobs(
    n_per_class: int, n_classes: int = 3, dim: int = 6, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 2, size=(n_classes, dim))
    y = np.repeat(np.arange(n_classes), n_per_class)
    # features on very different scales: the standardisation is what makes one C fit them all
    x = (centres[y] + rng.normal(0, 2, size=(len(y), dim))) * np.logspace(-2, 2, dim)
    return x, y


def test_the_fit_is_a_balanced_regression_on_standardised_features() -> None:
    x, y = _blobs(12)
    fit = fit_logistic(x, y, 3)
    assert fit.folds == MAX_FOLDS and set(fit.scores) and fit.c in fit.scores
    z = StandardScaler().fit_transform(x)
    ref = LogisticRegression(C=fit.c, class_weight="balanced", max_iter=5000).fit(z, y)
    assert np.allclose(fit.proba(x), softmax(ref.decision_function(z)), atol=1e-5)  # no temperature in it
    assert fit.held_out is not None
    held_labels, held_logits = fit.held_out  # each series from the fit at C on the other folds
    assert np.array_equal(held_labels, y) and held_logits.shape == (len(y), 3)
    assert not np.allclose(held_logits, fit.logits(x), atol=1e-3)  # not the final fit's own logits
    assert macro_f1(y, held_logits.argmax(axis=1), 3) == pytest.approx(fit.scores[fit.c])


def test_the_folds_follow_the_smallest_class_and_too_few_fall_back() -> None:
    x, y = _blobs(3)
    assert fit_logistic(x, y, 3).folds == 3  # each class has 3 series: 3 folds
    x1, y1 = x[[0, 3, 4, 6, 7]], y[[0, 3, 4, 6, 7]]  # class 0 has a single series: nothing to hold out
    one = fit_logistic(x1, y1, 3)
    assert (one.folds, one.c, one.held_out, one.scores) == (0, DEFAULT_C, None, {})


def test_a_class_without_series_is_never_predicted() -> None:
    x, y = _blobs(6)
    fit = fit_logistic(x, y, 4)  # a fourth class the training series do not have
    assert fit.proba(x)[:, 3].max() < 1e-30
    two = fit_logistic(x[y < 2], y[y < 2], 3)  # two classes: scikit-learn's single row, split in two
    assert np.array_equal(two.proba(x[y < 2]).argmax(axis=1), _sklearn_pred(two, x[y < 2], y[y < 2]))


def _sklearn_pred(fit: LogisticFit, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    ref = LogisticRegression(C=fit.c, class_weight="balanced", max_iter=5000)
    return ref.fit(StandardScaler().fit_transform(x), y).predict(StandardScaler().fit_transform(x))


def test_folding_into_a_linear_layer_gives_the_fits_logits() -> None:
    x, y = _blobs(8)
    fit = fit_logistic(x, y, 3)
    layer = fold_into(torch.nn.Linear(x.shape[1], 3).double(), fit)
    with torch.no_grad():
        out = layer(torch.from_numpy(x)).numpy()
    assert np.allclose(out, fit.logits(x), atol=1e-8)


def test_the_bundles_head_gives_the_fitted_models_probabilities(pretrained: tuple[Path, Path]) -> None:
    _, bundle = pretrained
    pre = read_pretrained_head(bundle)
    spec = {**pre.head, "n_classes": 3}
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(30, 10, 12)).astype(np.float32), np.repeat(np.arange(3), 10)
    config = TrainConfig(init=str(bundle), freeze_init=True, frozen_classifier="logistic")
    assert not config.adaptive  # no epochs, so no inner split is held back
    result = fit_head(spec, (x, y), (x[:6], y[:6]), config=config)
    assert len(result.history) == 1 and result.best_epoch == 1
    state = result.head.state_dict()
    for key, value in pre.tensors.items():  # the body as pretrained
        assert np.array_equal(state[key].numpy(), value), key
    saved_spec = trained_spec(spec, config)
    assert CLASSIFIER_KEY not in saved_spec  # the family's own linear layer: any bundle reader builds it
    head = load_state(build_head(saved_spec), state_to_numpy(result.head, "head"), "head", found=saved_spec)
    with torch.no_grad():
        bundle_proba = torch.softmax(head.eval()(torch.from_numpy(x)).double(), dim=1).numpy()
    refit = fit_logistic(classifier_features(head, x), y, 3)  # the same fit, made again from its inputs
    assert np.allclose(bundle_proba, refit.proba(classifier_features(head, x)), atol=1e-5)
    assert np.allclose(result.val_proba, bundle_proba[:6], atol=1e-5)


def test_the_head_is_calibrated_once_on_its_out_of_fold_logits(pretrained: tuple[Path, Path]) -> None:
    _, bundle = pretrained
    pre = read_pretrained_head(bundle)
    rng = np.random.default_rng(2)
    labels = np.repeat(np.arange(3), (30, 15, 9))  # uneven classes: a prior share to fit
    values = rng.normal(size=(len(labels), 10, 12)).astype(np.float32)
    values[:, 2:6, :] += labels[:, None, None].astype(np.float32)
    grid = TemporalGrid(dt.date(2021, 3, 1), dt.date(2021, 10, 31), 10)
    series = LabelledSeries(values, labels, np.arange(len(labels)).astype(str), ("a", "b", "c"), grid)
    val_idx = np.concatenate([np.arange(0, 6), np.arange(30, 33), np.arange(45, 47)])
    train_idx = np.setdiff1d(np.arange(len(labels)), val_idx)
    config = TrainConfig(init=str(bundle), freeze_init=True, frozen_classifier="logistic", device="cpu")
    head = HeadConfig("tempcnn", pre.head_params())
    fitted = fit_any_head(head, series, lambda i: series.values[i], train_idx, val_idx, config=config)
    # the regression made again from the trained head's features: its layer holds it raw (T = 1) ...
    features = classifier_features(fitted.module, values[train_idx])
    refit = fit_logistic(features, labels[train_idx], 3)
    raw = head_logits(fitted.module, values[val_idx])
    assert np.allclose(raw, refit.logits(classifier_features(fitted.module, values[val_idx])), atol=1e-4)
    # ... and the one temperature and prior share are fitted on its out-of-fold logits, as any deep head's
    assert refit.held_out is not None and fitted.calibration["n"] == len(train_idx)
    shares = training_shares(series, train_idx)
    temperature, share = fit_calibration(refit.held_out[1], refit.held_out[0], frequencies=shares)
    assert fitted.temperature == pytest.approx(temperature, rel=1e-4) and fitted.temperature != 1.0
    assert isinstance(fitted.head_prior, float) and fitted.head_prior == pytest.approx(share, abs=1e-4)
    fix = correction(shares, frequencies=shares, head_prior=fitted.head_prior)
    assert np.allclose(
        fitted.val_proba, calibrated_proba(raw, temperature=temperature, shares=fix), atol=1e-4
    )


def test_evaluation_keys_the_logistic_classifier_apart() -> None:
    config = TrainConfig(frozen_classifier="logistic")
    assert _recipe(config, "temporal_frozen", "tempcnn") == ("logistic", "-logistic")
    assert _recipe(config, "temporal", "tempcnn") == ("", "")  # fine-tuned: no classifier recipe
    assert TrainConfig(frozen_classifier="logistic").adaptive  # without a frozen body: as before
    with pytest.raises(InputError, match="frozen_classifier") as err:
        TrainConfig(frozen_classifier="svm")  # type: ignore[arg-type]
    assert err.value.param == "frozen_classifier"


@pytest.mark.slow
def test_a_trained_bundle_predicts_as_training_scored_it(
    pretrained: tuple[Path, Path], tmp_path: Path
) -> None:
    import geocrop

    table, bundle = pretrained
    out = tmp_path / "m.safetensors"
    config = TrainConfig(init=str(bundle), freeze_init=True, frozen_classifier="logistic", device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        head = HeadConfig("tempcnn", read_pretrained_head(bundle).head_params())
        job = TrainJob(LabelSource(table, "ewoc_code"), out, head, config=config)
        train_model(job)
        meta = load_bundle(out).metadata
        predictions = tmp_path / "p.csv"
        geocrop.predict(model=out, samples=table, out=predictions, class_column="ewoc_code", device="cpu")
    training = meta["training"]
    assert CLASSIFIER_KEY not in meta["head"]
    protocol = meta["provenance"]["accuracy"]["protocol"]  # the map's provenance names no epoch it never had
    assert "logistic regression" in protocol and "last epoch" not in protocol
    frame = pd.read_csv(predictions).set_index("sample_id").loc[training["val_ids"]]
    oa = float((frame["predicted"].astype(str) == frame["ewoc_code"].astype(str)).mean())
    assert oa == pytest.approx(training["val_scores"]["oa"], abs=1e-9)
    # calibrated like any deep head: one temperature and a fitted prior share, recorded in the bundle
    assert meta["temperature"] is not None and meta["temperature"] > 0
    assert isinstance(meta["head_prior"], float) and 0 <= meta["head_prior"] <= 1
