"""Training that fits the data it gets: adaptive settings, inner selection, class balance, augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geocrop.training.fit import (
    MIN_STEPS,
    TrainConfig,
    augment_batch,
    class_weights,
    fit_head,
    plan_training,
)
from geocrop.training.metrics import kappa, macro_f1, per_class_f1, scores


def test_settings_follow_the_number_of_series() -> None:
    small = plan_training(TrainConfig(), 300)
    assert small.batch_size == 32 and small.epochs * 10 >= MIN_STEPS and small.patience >= 10
    large = plan_training(TrainConfig(), 50_000)
    assert large.batch_size == 256 and large.epochs == 20  # the paper's settings once data is plentiful
    paper = plan_training(TrainConfig(epochs=20, batch_size=256), 300)
    assert (paper.epochs, paper.batch_size, paper.patience) == (20, 256, 0)
    assert not TrainConfig(epochs=20).augmenting and TrainConfig().augmenting


def test_class_weights_balance_the_classes() -> None:
    y = np.array([0] * 90 + [1] * 10)
    w = class_weights(y, 3)
    assert w[2] == 0 and w[1] / w[0] == pytest.approx(9.0)
    assert (w[y]).mean() == pytest.approx(1.0)


def test_scores_by_hand() -> None:
    y = np.array([0, 0, 0, 1, 1, 2])
    p = np.array([0, 0, 1, 1, 1, 0])
    f1 = per_class_f1(y, p, 3)
    assert f1 == pytest.approx([2 * 2 / (3 + 3), 2 * 2 / (2 + 3), 0.0])
    assert macro_f1(y, p, 3) == pytest.approx(np.mean(f1))
    # majority class: kappa 0, macro-F1 = its F1 / the classes in the reference
    majority = np.zeros(6, dtype=int)
    assert kappa(y, majority, 3) == 0.0 and macro_f1(y, majority, 3) == pytest.approx((2 * 3 / 9) / 3)
    assert scores(y, y, 3) == {"oa": 1.0, "macro_f1": 1.0, "kappa": 1.0}


def test_augmentation_is_seeded_and_small() -> None:
    x = torch.arange(2 * 10 * 3, dtype=torch.float32).reshape(2, 10, 3)
    a = augment_batch(x, torch.Generator().manual_seed(0))
    b = augment_batch(x, torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and a.shape == x.shape
    assert (a - x).abs().max() <= 2 * 3 + 1  # at most two steps of shift (3 per step here) plus noise


def _separable(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.normal(0, 1, (n, 8, 4)).astype(np.float32)
    x[np.arange(n), 3:6, y] += 3.0  # each class lifts its own feature mid-series
    return x, y


def test_inner_selection_keeps_the_best_epoch_and_stops_early() -> None:
    torch.set_num_threads(1)
    spec = {"name": "lstm", "in_features": 4, "n_classes": 3, "hidden": 8, "layers": 1}
    train, val, select = _separable(96, 0), _separable(30, 1), _separable(30, 2)
    result = fit_head(spec, train, val, config=TrainConfig(seed=0, device="cpu"), select=select)
    history = {h.epoch: h for h in result.history}
    best = max(history.values(), key=lambda h: h.select_f1)
    assert result.best_epoch == best.epoch
    assert len(result.history) < plan_training(TrainConfig(), 96).epochs  # stopped early
    assert result.val_proba is not None and result.val_proba.shape == (30, 3)
    assert result.kept is not None and result.val_accuracy == history[result.best_epoch].val_accuracy
    assert result.val_accuracy > 0.8


def test_series_augmentations_of_labelled_batches_are_declared_and_change_the_fit() -> None:
    from geocrop.core.params import declared
    from geocrop.errors import InputError

    assert {"resample_dates", "date_dropout"} <= {d.name for d in declared(TrainConfig)}
    with pytest.raises(InputError, match=r"`date_dropout` 1 is not a share in \[0, 1\)") as err:
        TrainConfig(date_dropout=1)
    assert err.value.param == "date_dropout"
    torch.set_num_threads(1)
    spec = {
        "name": "tempcnn",
        "in_features": 4,
        "n_classes": 3,
        "steps": 8,
        "hidden": 4,
        "dense": 8,
        "kernel_size": 3,
    }
    train, val = _separable(48, 0), _separable(12, 1)
    plain, augmented, again = (
        fit_head(spec, train, val, config=TrainConfig(epochs=2, seed=0, device="cpu", **kw))
        for kw in (
            {},
            {"resample_dates": True, "date_dropout": 0.2},
            {"resample_dates": True, "date_dropout": 0.2},
        )
    )
    assert not np.allclose(plain.val_proba, augmented.val_proba)  # the batches were augmented
    assert np.allclose(augmented.val_proba, again.val_proba)  # with seeded draws
