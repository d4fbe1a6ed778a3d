"""A deep head's epoch count chosen by cross-validation on a small labelled set.

With 10 labelled parcels per class, the inner split of an adaptive fit (`INNER_SELECT` of the parcels,
two per class) takes a fifth of the few labels away from training and picks the epoch on a handful of
parcels. ``TrainConfig.epoch_choice`` ``cv`` instead deals the labelled parcels into `CV_FOLDS` folds
(grouped by parcel, stratified by class: `geocrop.data.splits.grouped_folds`), trains the head on each
fold's complement along the schedule the full set would get (`plan_training` on every labelled series,
the last epoch scored at each step), and keeps the epoch with the best mean macro-F1 on the held-out
folds. The head is then refitted on every labelled parcel along that same schedule and stopped at that
epoch. Only the training parcels are used: the reported validation never chooses anything.
``auto`` does so when the median class has at most `SMALL_SET` labelled parcels, the inner split above.

**Calibration from out-of-fold predictions.** ``cv`` keeps no inner split, so its head's temperature and
class-prior share (`geocrop.training.calibration.fit_calibration`) are fitted on the folds' held-out
predictions (`at_others_epochs`): each fold taken at the epoch the mean macro-F1 of the *other* folds
picks, so no series' own label chose the epoch it is scored at. One fit per fold gives every epoch's
predictions (`geocrop.training.fit.HeadResult.epoch_proba`): nothing is refitted. The inner split keeps
the kept epoch's predictions of its selection parcels: predicting each of them at an epoch other
selection parcels chose (halves, thirds, fifths, one parcel out) did not lower the held-out NLL on the
France folds (docs/evaluation/france-auto, `bench/auto_crossfit.py`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from geocrop.data.labelled import LabelledSeries
from geocrop.data.splits import grouped_folds, parcels_per_class
from geocrop.training.fit import TrainConfig, fit_head, plan_training

#: Folds the labelled parcels are dealt into to choose the epoch.
CV_FOLDS = 3
#: (labels (M,), log-probabilities (M, K)): held-out predictions a calibration is fitted on.
HeldOut = tuple[np.ndarray, np.ndarray]
#: ``epoch_choice`` ``auto`` cross-validates when the median class has at most this many labelled parcels.
SMALL_SET = 20


def uses_cv(config: TrainConfig, series: LabelledSeries, train_idx: np.ndarray) -> bool:
    """Whether a deep head fitted on ``train_idx`` chooses its epoch by cross-validation."""
    if not config.adaptive or config.epoch_choice == "inner":
        return False
    if config.epoch_choice == "cv":
        return True
    counts = parcels_per_class(series.labels, series.groups, train_idx)
    return bool(np.median(counts[counts > 0]) <= SMALL_SET)


def cv_epochs(
    spec: Mapping[str, Any],
    series: LabelledSeries,
    features: Callable[[np.ndarray], np.ndarray],
    train_idx: np.ndarray,
    *,
    config: TrainConfig,
    final_lr: float | None,
) -> tuple[TrainConfig, int, HeldOut]:
    """(fixed config, epoch, held out): the schedule of the full labelled set made explicit, the epoch of
    it with the best mean held-out macro-F1 over `CV_FOLDS` grouped folds of ``train_idx``, and the
    out-of-fold predictions to calibrate on, each fold at the epoch the other folds chose (module
    docstring; empty when no fold could be held out)."""
    plan = plan_training(config, len(train_idx))
    fixed = replace(config, epochs=plan.epochs, batch_size=plan.batch_size, augment=config.augmenting)
    labels, groups = series.labels[train_idx], series.groups[train_idx]
    folds = grouped_folds(labels, groups, k=CV_FOLDS, seed=config.seed + 7919)
    curves, held = [], []
    n_classes = int(spec["n_classes"])
    for fold in range(CV_FOLDS):
        fit_idx, held_idx = train_idx[folds != fold], train_idx[folds == fold]
        if len(held_idx) == 0 or len(fit_idx) < 2:
            continue
        with warnings.catch_warnings():  # an inner fit's underfit warnings say nothing about the refit
            warnings.simplefilter("ignore")
            result = fit_head(
                spec,
                (features(fit_idx), series.labels[fit_idx]),
                (features(held_idx), series.labels[held_idx]),
                config=fixed,
                final_lr=final_lr,
            )
        curves.append([h.val_f1 for h in result.history])
        held.append((series.labels[held_idx], result.epoch_proba))
    if not curves:  # too few parcels to hold any back: the whole schedule, nothing to calibrate on
        return fixed, plan.epochs, at_others_epochs([], [], n_classes)
    return fixed, int(np.argmax(np.mean(curves, axis=0))) + 1, at_others_epochs(curves, held, n_classes)


def at_others_epochs(
    curves: Sequence[Sequence[float]], held: Sequence[tuple[np.ndarray, Sequence[np.ndarray]]], n_classes: int
) -> HeldOut:
    """Out-of-fold predictions cross-fitted over epochs: each fold's labels and log-probabilities
    (``held[i]``: labels (N_i,), one (N_i, K) probability array per epoch) at the epoch with the best mean
    of the *other* folds' macro-F1 ``curves`` (its own curve alone without another fold). Log-probabilities
    serve as logits: any temperature's softmax is the same on them."""
    labels, log_p = [np.zeros(0, dtype=np.int64)], [np.zeros((0, n_classes))]
    for i, (y, proba) in enumerate(held):
        others = [c for j, c in enumerate(curves) if j != i] or [curves[i]]
        labels.append(np.asarray(y, dtype=np.int64))
        chosen = np.asarray(proba[int(np.argmax(np.mean(others, axis=0)))], dtype=np.float64)
        log_p.append(np.log(np.clip(chosen, 1e-30, None)))
    return np.concatenate(labels), np.concatenate(log_p)
