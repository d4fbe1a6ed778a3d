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
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from geocrop.data.labelled import LabelledSeries
from geocrop.data.splits import grouped_folds, parcels_per_class
from geocrop.training.fit import TrainConfig, fit_head, plan_training

#: Folds the labelled parcels are dealt into to choose the epoch.
CV_FOLDS = 3
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
) -> tuple[TrainConfig, int]:
    """(fixed config, epoch): the schedule of the full labelled set made explicit, and the epoch of it
    with the best mean held-out macro-F1 over `CV_FOLDS` grouped folds of ``train_idx``."""
    plan = plan_training(config, len(train_idx))
    fixed = replace(config, epochs=plan.epochs, batch_size=plan.batch_size, augment=config.augmenting)
    labels, groups = series.labels[train_idx], series.groups[train_idx]
    folds = grouped_folds(labels, groups, k=CV_FOLDS, seed=config.seed + 7919)
    curves = []
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
    if not curves:  # too few parcels to hold any back: the whole schedule
        return fixed, plan.epochs
    return fixed, int(np.argmax(np.mean(curves, axis=0))) + 1
