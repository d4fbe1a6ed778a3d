"""Classification scores in numpy: overall accuracy, macro-F1, Cohen's kappa, per-class F1, and the
majority class's accuracy (the floor every model's overall accuracy must clear).

Macro-F1 is the mean F1 over the classes present in the reference **or** the predictions, so a class the
model never predicts scores 0 and pulls the mean down (a majority-class model scores 1/K of its class's
F1). Kappa compares accuracy with the agreement expected by chance from the two marginals.
"""

from __future__ import annotations

import numpy as np


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """(K, K) counts, reference by row, prediction by column."""
    idx = np.asarray(y_true, dtype=np.int64) * n_classes + np.asarray(y_pred, dtype=np.int64)
    return np.bincount(idx, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def per_class_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """(K,) F1 per class; NaN for a class absent from both reference and predictions."""
    cm = confusion(y_true, y_pred, n_classes).astype(np.float64)
    tp = np.diag(cm)
    denom = cm.sum(axis=0) + cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, 2 * tp / np.where(denom > 0, denom, 1), np.nan)


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    """Mean F1 over the classes present in the reference or the predictions."""
    f1 = per_class_f1(y_true, y_pred, n_classes)
    return float(np.nanmean(f1)) if np.isfinite(f1).any() else float("nan")


def kappa(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    """Cohen's kappa; 0 when chance agreement is total (a single class on both sides)."""
    cm = confusion(y_true, y_pred, n_classes).astype(np.float64)
    n = cm.sum()
    if n == 0:
        return float("nan")
    observed = np.trace(cm) / n
    expected = float((cm.sum(axis=0) * cm.sum(axis=1)).sum()) / n**2
    return 0.0 if expected >= 1 else float((observed - expected) / (1 - expected))


def overall_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Share of ``y_pred`` equal to ``y_true``; NaN for an empty set."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float((y_true == y_pred).mean()) if len(y_true) else float("nan")


def majority_accuracy(y_true: np.ndarray, y_train: np.ndarray | None = None) -> float:
    """Overall accuracy of predicting one class everywhere: the most common class of ``y_train`` (the
    data a model learned from; default ``y_true`` itself, i.e. the best any constant map can do).

    The floor a useful model's overall accuracy must clear (a map below it is worse than "everything is
    the common class"). NaN for an empty ``y_true``.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    ref = y_true if y_train is None else np.asarray(y_train, dtype=np.int64)
    if len(y_true) == 0 or len(ref) == 0:
        return float("nan")
    return overall_accuracy(y_true, np.full(len(y_true), int(np.bincount(ref).argmax())))


def scores(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> dict[str, float]:
    """{"oa", "macro_f1", "kappa"} of one prediction."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return {
        "oa": overall_accuracy(y_true, y_pred),
        "macro_f1": macro_f1(y_true, y_pred, n_classes),
        "kappa": kappa(y_true, y_pred, n_classes),
    }
