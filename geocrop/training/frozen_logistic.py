"""A frozen pretrained body's classifier fitted as a logistic regression, to convergence.

A classifier trained by gradient descent on a frozen body needs an epoch count, and geocrop picks it on
an inner split that holds back a fifth of the labelled parcels: with 10 parcels per class that is two
per class taken from training to choose on a handful. A multinomial logistic regression on the body's
features (``TrainConfig.frozen_classifier`` ``logistic``) is convex: fitted to convergence it has no
epoch to pick, so every labelled parcel trains it. What it does need is its L2 strength, and that is
chosen from the labelled parcels themselves:

- the features are what the head's ``classifier`` layer reads (TempCNN's dense output, InceptionTime's
  time average, or whatever a pooling option of the body gives), read by a hook on that layer;
- each is standardised (mean 0, spread 1 on the training series) and the regression is class-balanced;
- ``C`` (inverse L2 strength) is chosen from `C_GRID` by k-fold cross-validation on the labelled series
  (by parcel and class, `geocrop.data.splits.grouped_folds`), k = the smallest class's count up to
  `MAX_FOLDS`: the best pooled out-of-fold macro-F1, ties to the lower out-of-fold NLL; with fewer than 2
  series in some class, `DEFAULT_C`;
- the chosen ``C``'s out-of-fold logits (``LogisticFit.held_out``, untempered) are what the head is
  calibrated on, so calibration needs no inner split either.

`fold_into` then writes the standardisation and the regression into the head's own linear
``classifier`` layer (``W / scale``, ``b - W @ (mean / scale)``): the trained head is an ordinary head of
its family (raw logits, no temperature), its bundle the plain spec, and ``map``/``predict`` run unchanged.

`fit_head` calls `fit_frozen_logistic` for a frozen body with this classifier (and makes its one history
row of the `FrozenFit`'s ``stats``: this module does not import `geocrop.training.fit`) and hands the
out-of-fold logits on (``HeadResult.held_out``); `TrainConfig.adaptive` is False for it, so
`geocrop.training.any_head` keeps no inner split and calibrates the head as it does every deep head, on
those held-out logits: one temperature and the share of the training class prior the head decides under
(`geocrop.training.any_head._calibrate_deep`). Without it the regression, class-balanced, got the full
prior correction of a perfectly balanced head, which cost macro-F1 on the France table's rare crops;
how balanced its outputs are is fitted, as for the other deep heads, not assumed.
``fit_head`` sees series, not parcels: its folds treat each series as its own parcel (exact on tables of
one series per parcel, such as the WorldCereal extractions; optimistic where a parcel has many pixels).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from torch import nn

from geocrop.data.splits import grouped_folds
from geocrop.training.calibration import nll, softmax
from geocrop.training.head_init import freeze_body
from geocrop.training.metrics import macro_f1

__all__ = [
    "C_GRID",
    "DEFAULT_C",
    "MAX_FOLDS",
    "FrozenFit",
    "LogisticFit",
    "classifier_features",
    "fit_frozen_logistic",
    "fit_logistic",
    "fold_into",
    "linear_classifier",
]

#: Inverse L2 strengths cross-validation chooses from (on standardised features).
C_GRID = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
#: ``C`` when a class has too few labelled series to cross-validate (the value that scored 0.722 on the
#: frozen TempCNN's features with all France labels, docs/evaluation/france-few-labels/all-labels.md).
DEFAULT_C = 0.1
#: Most folds the labelled series are dealt into to choose ``C``.
MAX_FOLDS = 5
#: Logit of a class absent from the training series (it is never predicted).
ABSENT_LOGIT = -1e4
#: lbfgs iterations: enough to converge on standardised features of a few thousand series.
MAX_ITER = 5000


@dataclass(frozen=True)
class LogisticFit:
    """A fitted regression: standardisation (``mean``, ``scale``: (D,)), weights on standardised features
    (``coef`` (K, D), ``intercept`` (K,), a class absent from training at `ABSENT_LOGIT`), the chosen
    ``c``, the folds that chose it (0: none, `DEFAULT_C`), each ``C``'s out-of-fold macro-F1 and
    ``held_out``: (labels (N,), logits (N, K)) of the training series, each from the fit at ``c`` on the
    other folds (None without folds): what a calibration is fitted on."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    c: float
    folds: int
    scores: dict[float, float] = field(default_factory=dict)
    held_out: tuple[np.ndarray, np.ndarray] | None = None

    def logits(self, features: np.ndarray) -> np.ndarray:
        """(N, K) float64 raw logits of features (N, D)."""
        z = (np.asarray(features, dtype=np.float64) - self.mean) / self.scale
        return z @ self.coef.T + self.intercept

    def proba(self, features: np.ndarray) -> np.ndarray:
        """(N, K) class probabilities of features (N, D)."""
        return softmax(self.logits(features))


def linear_classifier(head: nn.Module) -> nn.Linear:
    """``head.classifier``, the linear layer every temporal head family ends in (ValueError otherwise)."""
    layer = getattr(head, "classifier", None)
    if not isinstance(layer, nn.Linear):
        raise ValueError(f"{type(head).__name__} has no linear `classifier` layer to fit")
    return layer


def classifier_features(head: nn.Module, x: np.ndarray, batch: int = 1024) -> np.ndarray:
    """(N, D) float64 inputs of ``head.classifier`` for series x (N, T, F), the head in eval mode (CPU)."""
    head = head.cpu().eval()
    layer = linear_classifier(head)
    seen: list[torch.Tensor] = []
    hook = layer.register_forward_hook(lambda _m, args, _out: seen.append(args[0].detach()))
    try:
        with torch.inference_mode():
            for s in range(0, len(x), batch):
                head(torch.from_numpy(np.ascontiguousarray(x[s : s + batch], dtype=np.float32)))
    finally:
        hook.remove()
    return torch.cat(seen).double().numpy() if seen else np.zeros((0, layer.in_features))


def _standardiser(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = features.mean(axis=0)
    scale = features.std(axis=0)
    return mean, np.where(scale > 1e-12, scale, 1.0)  # a constant feature stays 0 after centring


def _regression(
    features: np.ndarray, labels: np.ndarray, n_classes: int, c: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(mean, scale, coef (K, D), intercept (K,)) of a class-balanced multinomial fit at ``c``."""
    mean, scale = _standardiser(features)
    z = (features - mean) / scale
    coef = np.zeros((n_classes, features.shape[1]))
    intercept = np.full(n_classes, ABSENT_LOGIT)
    present = np.unique(labels)
    if len(present) == 1:  # one class: it always wins
        intercept[present[0]] = 0.0
        return mean, scale, coef, intercept
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=MAX_ITER, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # MAX_ITER is ample on standardised inputs
        model.fit(z, labels)
    w, b = model.coef_, model.intercept_
    if len(present) == 2:  # scikit-learn fits one row for two classes: logit difference w @ z + b
        w, b = np.stack([-w[0] / 2, w[0] / 2]), np.array([-b[0] / 2, b[0] / 2])
    coef[model.classes_] = w
    intercept[model.classes_] = b
    return mean, scale, coef, intercept


def _out_of_fold(
    features: np.ndarray, labels: np.ndarray, folds: np.ndarray, n_classes: int, c: float, seed: int
) -> np.ndarray:
    """(N, K) logits of each series from the fit on the other folds."""
    out = np.zeros((len(labels), n_classes))
    for fold in np.unique(folds):
        held = folds == fold
        mean, scale, coef, intercept = _regression(features[~held], labels[~held], n_classes, c, seed)
        out[held] = ((features[held] - mean) / scale) @ coef.T + intercept
    return out


def fit_logistic(
    features: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    *,
    groups: np.ndarray | None = None,
    seed: int = 0,
) -> LogisticFit:
    """The regression of ``labels`` (N,) on ``features`` (N, D), ``C`` cross-validated and its out-of-fold
    logits kept (see the module docstring). ``groups``: each series' parcel (None: each series its own)."""
    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    counts = np.bincount(labels, minlength=n_classes)
    k = int(min(MAX_FOLDS, counts[counts > 0].min())) if len(labels) else 0
    c, scores = DEFAULT_C, {}
    held_out = None
    if k >= 2 and (counts > 0).sum() > 1:
        parcels = np.arange(len(labels)) if groups is None else np.asarray(groups)
        folds = grouped_folds(labels, parcels, k=k, seed=seed + 7919)
        best: tuple[float, float] | None = None
        chosen_logits = None
        for grid_c in C_GRID:
            oof = _out_of_fold(features, labels, folds, n_classes, grid_c, seed)
            score = macro_f1(labels, oof.argmax(axis=1), n_classes)
            scores[grid_c] = score
            key = (score, -nll(oof, labels))
            if best is None or key > best:
                best, c, chosen_logits = key, grid_c, oof
        assert chosen_logits is not None
        held_out = (labels, chosen_logits)
    else:
        k = 0
    mean, scale, coef, intercept = _regression(features, labels, n_classes, c, seed)
    return LogisticFit(mean, scale, coef, intercept, float(c), k, scores, held_out)


def fold_into(layer: nn.Linear, fit: LogisticFit) -> nn.Linear:
    """Write ``fit`` (standardisation, weights) into ``layer`` so that it outputs ``fit.logits`` of its
    input; returns ``layer``."""
    weight = fit.coef / fit.scale
    bias = fit.intercept - fit.coef @ (fit.mean / fit.scale)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(weight).to(layer.weight.dtype))
        layer.bias.copy_(torch.from_numpy(bias).to(layer.bias.dtype))
    return layer


@dataclass(frozen=True)
class FrozenFit:
    """A head whose linear classifier holds a fitted `LogisticFit`, its (N_val, K) validation
    probabilities (uncalibrated: T = 1, the head's own prior) and ``stats``: the keywords of the one
    `geocrop.training.fit.EpochStats` row it counts as (epoch 1 of 1, no learning rate)."""

    head: nn.Module
    val_proba: np.ndarray
    fit: LogisticFit
    stats: dict[str, Any]


def fit_frozen_logistic(
    head: nn.Module,
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    *,
    seed: int = 0,
) -> FrozenFit:
    """Fit ``head``'s linear ``classifier`` (its body pretrained, kept frozen) on ``train`` = (x (N, T, F),
    y (N,)) as a logistic regression; score ``val``."""
    t0 = time.perf_counter()
    freeze_body(head)
    layer = linear_classifier(head)
    for p in layer.parameters():  # the classifier is fitted here, not by gradients
        p.requires_grad_(False)
    n_classes = layer.out_features
    (x_tr, y_tr), (x_va, y_va) = train, val
    features = classifier_features(head, x_tr)  # one pass of the frozen body serves the fit and its loss
    fit = fit_logistic(features, np.asarray(y_tr), n_classes, seed=seed)
    fold_into(layer, fit)
    val_logits = fit.logits(classifier_features(head, x_va))
    proba = softmax(val_logits).astype(np.float32)
    pred = proba.argmax(axis=1)
    stats: dict[str, Any] = {
        "epoch": 1,
        "train_loss": nll(fit.logits(features), np.asarray(y_tr)),
        "val_loss": nll(val_logits, np.asarray(y_va)),
        "val_accuracy": float((pred == np.asarray(y_va)).mean()),
        "lr": 0.0,
        "seconds": time.perf_counter() - t0,
        "val_f1": macro_f1(np.asarray(y_va), pred, n_classes),
        "epochs": 1,
    }
    return FrozenFit(head.eval(), proba, fit, stats)
