"""Choosing a deep head's epoch by cross-validation on a small labelled set (`geocrop.training.cv_epochs`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import numpy as np
import pytest
import torch

from geocrop.core.temporal import TemporalGrid
from geocrop.data.labelled import LabelledSeries
from geocrop.errors import InputError
from geocrop.training import fit
from geocrop.training.any_head import fit_any_head
from geocrop.training.cv_epochs import CV_FOLDS, SMALL_SET, at_others_epochs, cv_epochs, uses_cv
from geocrop.training.hparams import default_config


@pytest.fixture(autouse=True)
def _short_one_thread(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(fit, "MIN_STEPS", 1)  # adaptive plans of 20 epochs: a fast test
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _series(parcels_per_class: int, seed: int = 0) -> LabelledSeries:
    """Three classes told apart by where in time a bump sits; one series per parcel."""
    rng = np.random.default_rng(seed)
    n = 3 * parcels_per_class
    labels = (np.arange(n) % 3).astype(np.int64)
    values = rng.normal(0, 0.5, size=(n, 10, 12)).astype(np.float32)
    for i, c in enumerate(labels):
        values[i, 1 + 3 * c : 3 + 3 * c, :] += 1.0
    grid = TemporalGrid(dt.date(2021, 3, 1), dt.date(2021, 10, 31), 10)
    return LabelledSeries(values, labels, np.arange(n).astype(str), ("a", "b", "c"), grid)


def test_auto_cross_validates_small_labelled_sets_only() -> None:
    small, large = _series(SMALL_SET), _series(SMALL_SET + 1)
    auto = fit.TrainConfig(epoch_choice="auto")
    assert uses_cv(auto, small, np.arange(len(small)))
    assert not uses_cv(auto, large, np.arange(len(large)))
    assert uses_cv(fit.TrainConfig(epoch_choice="cv"), large, np.arange(len(large)))
    assert not uses_cv(fit.TrainConfig(), small, np.arange(len(small)))  # the inner split
    assert not uses_cv(fit.TrainConfig(epochs=5, epoch_choice="cv"), small, np.arange(len(small)))


def test_an_unknown_epoch_choice_names_the_setting() -> None:
    with pytest.raises(InputError) as err:
        fit.TrainConfig(epoch_choice="test")  # type: ignore[arg-type]
    assert err.value.param == "epoch_choice"


def test_cv_picks_an_epoch_of_the_full_sets_schedule_from_the_training_parcels_alone() -> None:
    series = _series(10)
    head = default_config("tempcnn")
    spec = head.spec(in_features=12, n_classes=3, steps=10)
    idx = np.arange(len(series))
    config = fit.TrainConfig(device="cpu", epoch_choice="cv")
    fixed, epoch, (y, log_p) = cv_epochs(
        spec, series, lambda i: series.values[i], idx, config=config, final_lr=head.lr
    )
    plan = fit.plan_training(config, len(idx))
    assert (fixed.epochs, fixed.batch_size, fixed.augment) == (plan.epochs, plan.batch_size, True)
    assert 1 <= epoch <= plan.epochs
    # every labelled series predicted once, out of fold, as log-probabilities
    assert sorted(y.tolist()) == sorted(series.labels.tolist()) and log_p.shape == (len(idx), 3)
    assert np.allclose(np.exp(log_p).sum(axis=1), 1, atol=1e-5)
    again = cv_epochs(spec, series, lambda i: series.values[i], idx, config=config, final_lr=head.lr)
    assert again[:2] == (fixed, epoch) and np.array_equal(again[2][1], log_p)  # seeded folds and fits
    assert CV_FOLDS == 3


def test_the_refit_trains_on_every_labelled_parcel_and_stops_at_the_chosen_epoch() -> None:
    series = _series(10)
    train_idx, val_idx = np.arange(24), np.arange(24, 30)
    config = fit.TrainConfig(device="cpu", epoch_choice="cv")
    features = lambda i: series.values[i]  # noqa: E731
    fitted = fit_any_head(default_config("tempcnn"), series, features, train_idx, val_idx, config=config)
    spec = fitted.spec
    _, chosen, _ = cv_epochs(
        spec, series, features, train_idx, config=config, final_lr=default_config("tempcnn").lr
    )
    assert fitted.best_epoch == chosen == len(fitted.history)
    planned = fit.plan_training(config, len(train_idx)).epochs
    assert {h.epochs for h in fitted.history} == {planned}  # the full schedule's lr, cut at the epoch
    assert fitted.held_out is None  # no inner split held back
    # calibrated on the out-of-fold predictions: one per training series
    assert fitted.temperature is not None and fitted.calibration["n"] == len(train_idx)
    # the held-out parcels' labels choose nothing: shuffled, the same weights come out
    swapped = LabelledSeries(
        series.values, series.labels.copy(), series.groups, series.class_names, series.grid
    )
    swapped.labels[val_idx] = np.roll(swapped.labels[val_idx], 1)
    other = fit_any_head(default_config("tempcnn"), swapped, features, train_idx, val_idx, config=config)
    assert other.best_epoch == fitted.best_epoch
    for a, b in zip(fitted.module.state_dict().values(), other.module.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_an_evaluation_names_and_keys_the_runs_whose_epoch_cross_validation_chose() -> None:
    from geocrop.training.evaluate import _recipe

    assert _recipe(fit.TrainConfig(epoch_choice="cv"), "supervised", "tempcnn") == ("epochs by cv", "-cv")
    assert _recipe(fit.TrainConfig(epoch_choice="cv"), "supervised", "rf") == ("", "")
    assert _recipe(fit.TrainConfig(), "supervised", "tempcnn") == ("", "")


def test_each_fold_is_calibrated_at_the_epoch_the_other_folds_chose_never_by_its_own_label() -> None:
    y = [np.array([0, 1]), np.array([1, 0]), np.array([0, 0])]
    # fold i's predictions at epoch e: probability 0.1 * (e + 1) on class 1, so the epoch shows in them
    held = [(labels, [np.tile([1 - 0.1 * (e + 1), 0.1 * (e + 1)], (2, 1)) for e in range(3)]) for labels in y]
    curves = [[0.9, 0.1, 0.1], [0.1, 0.2, 0.1], [0.1, 0.2, 0.1]]  # fold 0 alone prefers epoch 1
    labels, log_p = at_others_epochs(curves, held, 2)
    assert np.array_equal(labels, np.concatenate(y))
    epoch_of = np.round(np.exp(log_p[:, 1]) * 10).astype(int) - 1
    # fold 0 at the second epoch, which folds 1 and 2 chose; folds 1 and 2 at the first, which fold 0's
    # curve carries to the top of their mean (fold 1's and 2's own curves would pick the second)
    assert epoch_of.tolist() == [1, 1, 0, 0, 0, 0]
    assert at_others_epochs([], [], 2)[1].shape == (0, 2)
    solo = at_others_epochs(curves[:1], held[:1], 2)  # one fold alone: its own curve
    assert np.round(np.exp(solo[1][:, 1]) * 10).astype(int).tolist() == [1, 1]


def test_fit_head_keeps_every_epochs_selection_probabilities() -> None:
    series = _series(12)
    spec = default_config("tempcnn").spec(in_features=12, n_classes=3, steps=10)
    parts = [
        (series.values[i], series.labels[i]) for i in (np.arange(24), np.arange(30, 36), np.arange(24, 30))
    ]
    result = fit.fit_head(spec, parts[0], parts[1], config=fit.TrainConfig(device="cpu"), select=parts[2])
    assert len(result.epoch_proba) == len(result.history) and result.epoch_proba[0].shape == (6, 3)
    kept = result.epoch_proba[result.best_epoch - 1].argmax(axis=1)  # the selection split's, not val's
    assert result.kept is not None
    assert result.kept.select_f1 == pytest.approx(fit.macro_f1(parts[2][1], kept, 3))
