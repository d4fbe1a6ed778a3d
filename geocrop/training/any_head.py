"""Any head family fitted on training series and scored on held-out ones: the step `train`, `evaluate`
and ``auto`` share.

`fit_any_head` fits a deep head (`geocrop.training.fit`: adaptive settings, an inner split drawn from the
training groups only to pick the epoch, class-balanced loss), a tree baseline (`geocrop.training.trees`)
or ``auto`` (`geocrop.training.auto`), then gives back the module, its spec and its validation
probabilities as the bundle will predict them: temperature-scaled on the inner split and corrected for the
training class frequencies (`geocrop.training.calibration`). `cached_features` encodes series through a
frozen backbone once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from geocrop.data.labelled import LabelledSeries
from geocrop.data.splits import split_fields
from geocrop.training.auto import Note, fit_auto
from geocrop.training.calibration import (
    HeadPrior,
    calibrated_proba,
    calibration_summary,
    class_shares,
    correction,
    fit_calibration,
    fit_temperature,
)
from geocrop.training.cv_epochs import HeldOut, cv_epochs, uses_cv
from geocrop.training.features import FrozenBackbone, encode
from geocrop.training.fit import EpochStats, ProgressFn, TrainConfig, fit_head
from geocrop.training.hparams import AUTO, HeadConfig
from geocrop.training.trees import TREE_KINDS, fit_trees

#: Share of the training groups a head with adaptive settings keeps back to pick its epoch.
INNER_SELECT = 0.2


def inner_split(series: LabelledSeries, train_idx: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(fit, select) indices: `INNER_SELECT` of the training groups, by class, pick the epoch.

    Drawn from the training part only, so the reported validation never chooses anything.
    """
    fit_groups, _ = split_fields(
        series.groups[train_idx],
        fractions=(1 - INNER_SELECT, INNER_SELECT),
        seed=seed + 7919,
        labels=series.labels[train_idx],
    )
    in_fit = np.isin(series.groups[train_idx], fit_groups)
    return train_idx[in_fit], train_idx[~in_fit]


@dataclass
class FittedHead:
    """What any head family gives back: the module, its spec and its validation probabilities.

    ``val_proba``: (N_val, K) what the bundle predicts at defaults, ``softmax(val_logits / temperature +
    log(class_shares / head prior))`` (`geocrop.training.calibration.correction`); ``val_logits``: the head's
    raw outputs; ``head_prior``: the prior they decide under (``uniform`` for a balanced loss, ``training``
    for the tree heads). ``class_shares``: the training part's
    class frequencies before balancing; ``temperature``: fitted on the inner split (None: not fitted);
    ``calibration``: ECE/NLL on that split before and after.
    """

    module: nn.Module
    spec: dict[str, Any]
    val_proba: np.ndarray
    history: list[EpochStats] = field(default_factory=list)
    resumed_from: int = 0
    best_epoch: int = 0
    val_logits: np.ndarray | None = None
    class_shares: np.ndarray | None = None
    head_prior: HeadPrior = "uniform"
    temperature: float | None = None
    calibration: dict[str, float] = field(default_factory=dict)
    #: ``auto`` only: what it tried, each candidate's inner scores and why it chose (`fit_auto`).
    selection: dict[str, Any] | None = None
    #: (indices, raw logits) of training series the head never fitted on: a deep head's epoch-selection
    #: split, a tree head's calibration split (its probe fit); None without one. ``auto`` chooses on them.
    held_out: tuple[np.ndarray, np.ndarray] | None = None


def fit_any_head(
    head: HeadConfig,
    series: LabelledSeries,
    features: Callable[[np.ndarray], np.ndarray],
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    *,
    config: TrainConfig,
    checkpoint: Path | None = None,
    progress: ProgressFn | None = None,
    note: Note | None = None,
    shares: np.ndarray | None = None,
    calibrate: bool = True,
) -> FittedHead:
    """Fit ``head`` (deep or tree family, or ``auto``) on ``train_idx`` and score ``val_idx``.

    ``features(idx)`` gives the (len(idx), T, F) inputs of those series (normalised bands or frozen
    backbone features). Deep heads with adaptive settings keep back `INNER_SELECT` of the training groups
    to pick their epoch (`inner_split`). ``auto`` chooses its head on inner folds of ``train_idx``
    (`geocrop.training.auto`; ``note`` gets an event per inner fit) and refits it on all of them.

    ``shares``: the class frequencies the default probabilities are corrected for (None: the training
    parcels', `training_shares`). ``calibrate``: fit the temperature on the inner split (deep heads with
    adaptive settings: the split that picks the epoch, or the out-of-fold predictions when cross-validation
    picks it, or those of a frozen body's logistic classifier; trees: a second fit without it). See
    `FittedHead`.
    """
    if head.family == AUTO:
        chosen = fit_auto(
            head,
            series,
            features,
            train_idx,
            val_idx,
            fit=fit_any_head,  # each candidate is fitted as --head <family> would be
            split=inner_split,
            outputs=head_logits,
            config=config,
            checkpoint=checkpoint,
            progress=progress,
            note=note,
        )
        assert isinstance(chosen, FittedHead)
        return chosen
    n_classes = len(series.class_names)
    x_va, y_va = features(val_idx), series.labels[val_idx]
    if shares is None:
        shares = training_shares(series, train_idx)
    # tree outputs follow the training frequencies despite their class weights (`calibration` docstring)
    head_prior: HeadPrior = "training" if head.family in TREE_KINDS else "uniform"
    fix = correction(shares, frequencies=shares, head_prior=head_prior)
    if head.family in TREE_KINDS:
        module = fit_trees(
            head.family, features(train_idx), series.labels[train_idx], n_classes=n_classes, seed=config.seed
        )
        calibration: dict[str, float] = {}
        held_out = None
        if calibrate:  # trees keep no inner split: a second fit without it gives held-out logits
            fit_idx, sel_idx = inner_split(series, train_idx, config.seed)
            if len(sel_idx) and len(np.unique(series.labels[fit_idx])) > 1:
                probe = fit_trees(
                    head.family,
                    features(fit_idx),
                    series.labels[fit_idx],
                    n_classes=n_classes,
                    seed=config.seed,
                )
                held_out = (sel_idx, head_logits(probe, features(sel_idx)))
                calibration = _calibrate(held_out[1], series.labels[sel_idx], fix)
        fitted = _fitted(module, dict(module.spec), x_va, (shares, fix, head_prior), calibration)
        fitted.held_out = held_out
        return fitted
    spec = head.spec(in_features=int(x_va.shape[-1]), n_classes=n_classes, steps=int(x_va.shape[1]))
    select, stop = None, None
    fit_idx, sel_idx = train_idx, train_idx[:0]
    calibrate_on: HeldOut | None = None  # (labels, logits) of training series the fit did not train on
    if uses_cv(config, series, train_idx):  # small labelled set: the epoch by cross-validation, then all
        config, stop, calibrate_on = cv_epochs(
            spec, series, features, train_idx, config=config, final_lr=head.lr
        )
    elif config.adaptive:
        fit_idx, sel_idx = inner_split(series, train_idx, config.seed)
        select = (features(sel_idx), series.labels[sel_idx])
    result = fit_head(
        spec,
        (features(fit_idx), series.labels[fit_idx]),
        (x_va, y_va),
        config=config,
        final_lr=head.lr,
        checkpoint=checkpoint,
        progress=progress,
        select=select,
        stop_after=stop,
    )
    calibration = {}
    held_out = None
    if select is not None and len(select[1]):
        held_out = (sel_idx, head_logits(result.head, select[0]))
        calibrate_on = (select[1], held_out[1])  # at the epoch they kept (`cv_epochs` docstring: why)
    elif result.held_out is not None:  # a frozen body's logistic classifier: its out-of-fold logits
        calibrate_on = result.held_out
    if calibrate and calibrate_on is not None and len(calibrate_on[0]):
        # temperature and how balanced the head really is (`fit_calibration`)
        calibration, partial = _calibrate_deep(calibrate_on[1], calibrate_on[0], shares)
        if partial is not None:
            head_prior = partial
            fix = correction(shares, frequencies=shares, head_prior=head_prior)
    fitted = _fitted(
        result.head,
        spec,
        x_va,
        (shares, fix, head_prior),
        calibration,
        history=result.history,
        resumed_from=result.resumed_from,
        best_epoch=result.best_epoch,
    )
    fitted.held_out = held_out
    return fitted


def training_shares(series: LabelledSeries, train_idx: np.ndarray) -> np.ndarray:
    """(K,) class frequencies of every series in the training parcels of ``train_idx``, before the
    per-class balancing drew ``train_idx`` from them: what a prior-corrected map assumes by default."""
    in_train = np.isin(series.groups, np.unique(series.groups[train_idx]))
    return class_shares(series.labels[in_train], len(series.class_names))


def head_logits(module: nn.Module, x: np.ndarray, batch: int = 4096) -> np.ndarray:
    """(N, K) float64 raw outputs of ``module`` (eval mode, on the CPU) for inputs x (N, T, F)."""
    module = module.cpu().eval()
    out = []
    with torch.inference_mode():
        for s in range(0, len(x), batch):
            out.append(module(torch.from_numpy(np.ascontiguousarray(x[s : s + batch], np.float32))).double())
    return torch.cat(out).numpy() if out else np.zeros((0, 0))


def _calibrate(logits: np.ndarray, labels: np.ndarray, shares: np.ndarray | None) -> dict[str, float]:
    """The temperature fitted on held-out ``logits`` under the default correction ``shares`` (None: none:
    the held-out labels follow the training frequencies), with ECE/NLL before and
    after (`geocrop.training.calibration`)."""
    temperature = fit_temperature(logits, labels, shares=shares)
    return calibration_summary(logits, labels, temperature=temperature, shares=shares)


def _calibrate_deep(
    logits: np.ndarray, labels: np.ndarray, shares: np.ndarray
) -> tuple[dict[str, float], float | None]:
    """(summary, s): the temperature and partial head prior ``shares ** s`` of a head trained with a
    balanced loss, fitted on held-out ``logits`` (`geocrop.training.calibration.fit_calibration`), with
    ECE/NLL before (T = 1, the full prior correction) and after; s None when the correction is nothing
    (uniform shares)."""
    full = correction(shares, frequencies=shares, head_prior="uniform")
    if full is None:
        return _calibrate(logits, labels, None), None
    temperature, s = fit_calibration(logits, labels, frequencies=shares)
    fix = correction(shares, frequencies=shares, head_prior=s)
    summary = calibration_summary(logits, labels, temperature=temperature, shares=fix, before_shares=full)
    return {**summary, "head_prior": s}, s


def _fitted(
    module: nn.Module,
    spec: dict[str, Any],
    x_va: np.ndarray,
    priors: tuple[np.ndarray, np.ndarray | None, HeadPrior],
    calibration: dict[str, float],
    **history: Any,
) -> FittedHead:
    shares, fix, head_prior = priors  # training frequencies, default correction, head prior
    logits = head_logits(module, x_va)
    temperature = calibration.get("temperature")
    proba = calibrated_proba(logits, temperature=temperature or 1.0, shares=fix).astype(np.float32)
    return FittedHead(
        module,
        spec,
        proba,
        **history,
        val_logits=logits,
        class_shares=shares,
        head_prior=head_prior,
        temperature=temperature,
        calibration=calibration,
    )


def cached_features(
    series: LabelledSeries, backbone: FrozenBackbone, rows: np.ndarray, device: torch.device
) -> Callable[[np.ndarray], np.ndarray]:
    """``features(idx)`` for any ``idx`` within ``rows``, encoding ``rows`` once."""
    rows = np.asarray(rows)
    encoded = encode(series.values[rows], backbone, device=device)
    position = np.full(len(series), -1, dtype=np.int64)
    position[rows] = np.arange(len(rows))

    def features(idx: np.ndarray) -> np.ndarray:
        return encoded[position[np.asarray(idx)]]

    return features
