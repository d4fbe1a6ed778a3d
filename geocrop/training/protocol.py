"""The paper's comparison statistics (section 5.3, Eq. 2; section 6, Table 1), as pure numpy functions.

- Win-matrix (Eq. 2, the SCARF protocol): for competing methods i and j scored on the same N matched
  experiments, ``W[i, j] = (1/N) * sum_n 1(acc_i[n] > acc_j[n])``. Ties count for neither; the diagonal
  is 0.
- Relative gain of a pretrained variant over the supervised model with the same head configuration:
  ``(acc_pre - acc_sup) / acc_sup``, one value per configuration (and per pretrained bundle).
- Table 1: supervised accuracy mean +/- std over configurations, and mean (min, max) relative gain of each
  pretrained variant, per head family. std is the population std (ddof=0) over configurations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from geocrop.errors import InputError


def win_matrix(scores: Mapping[str, Sequence[float] | np.ndarray]) -> tuple[list[str], np.ndarray]:
    """Eq. 2 over matched experiments: ``scores[name][n]`` is method ``name``'s accuracy in experiment n.

    Returns the method names (in the mapping's order) and W (k, k) with W[i, j] = share of experiments
    where method i scored strictly higher than method j.
    """
    names = list(scores)
    arrays = [np.asarray(scores[k], dtype=float) for k in names]
    lengths = {a.shape for a in arrays}
    if len(lengths) > 1:
        raise InputError(
            f"win matrix needs the same experiments for every method, got shapes {sorted(lengths)}"
        )
    if not arrays or arrays[0].size == 0:
        raise InputError("win matrix needs at least one method with at least one experiment")
    acc = np.stack(arrays)  # (k, N)
    wins = (acc[:, None, :] > acc[None, :, :]).mean(axis=2)
    return names, wins


def relative_gain(
    pretrained: Sequence[float] | np.ndarray, supervised: Sequence[float] | np.ndarray
) -> np.ndarray:
    """(acc_pre - acc_sup) / acc_sup element-wise (matched configurations); NaN where acc_sup is 0."""
    pre = np.asarray(pretrained, dtype=float)
    sup = np.asarray(supervised, dtype=float)
    if pre.shape != sup.shape:
        raise InputError(f"relative gain needs matched accuracies, got shapes {pre.shape} and {sup.shape}")
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sup > 0, (pre - sup) / np.where(sup > 0, sup, 1.0), np.nan)


@dataclass(frozen=True)
class GainSummary:
    """mean, min and max of a set of relative gains (fractions, not percent) and how many there were."""

    mean: float
    min: float
    max: float
    n: int

    @classmethod
    def of(cls, gains: Sequence[float] | np.ndarray) -> GainSummary:
        g = np.asarray(gains, dtype=float)
        g = g[np.isfinite(g)]
        if g.size == 0:
            return cls(float("nan"), float("nan"), float("nan"), 0)
        return cls(float(g.mean()), float(g.min()), float(g.max()), int(g.size))

    def percent(self) -> str:
        """``"3.75% (-9.38%, 9.14%)"`` as in the paper's text."""
        if self.n == 0:
            return "n/a"
        m, lo, hi = (round(100 * v, 2) + 0.0 for v in (self.mean, self.min, self.max))  # no "-0.00%"
        return f"{m:.2f}% ({lo:.2f}%, {hi:.2f}%)"


@dataclass(frozen=True)
class TableRow:
    """One Table-1 row: a head family's supervised accuracy and each pretrained variant's gain."""

    family: str
    supervised_mean: float
    supervised_std: float
    n_configs: int
    gains: dict[str, GainSummary]


def table_row(
    family: str, supervised: Sequence[float] | np.ndarray, pretrained: Mapping[str, np.ndarray]
) -> TableRow:
    """Table-1 row from supervised accuracies (n_configs,) and, per variant, accuracies (n_configs, K)."""
    sup = np.asarray(supervised, dtype=float)
    gains = {}
    for variant, acc in pretrained.items():
        a = np.asarray(acc, dtype=float)
        if a.ndim == 1:
            a = a[:, None]
        gains[variant] = GainSummary.of(relative_gain(a, np.repeat(sup[:, None], a.shape[1], axis=1)).ravel())
    return TableRow(family, float(sup.mean()), float(sup.std()), int(sup.size), gains)


def matched_scores(supervised: np.ndarray, pretrained: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Flatten accuracies into matched experiments for `win_matrix`.

    supervised: (C,) per configuration; pretrained[v]: (C, K_v) per configuration and bundle. Experiment
    (c, k) for k < K = max K_v: each variant's bundle ``k % K_v`` (so with two corruption rates per variant,
    uni-modal 20 % meets bi-modal 20 %, as the paper pairs them) and the supervised run of configuration c.
    """
    sup = np.asarray(supervised, dtype=float)
    k = max([np.asarray(a).reshape(len(sup), -1).shape[1] for a in pretrained.values()] or [1])
    out = {"supervised": np.repeat(sup[:, None], k, axis=1).ravel()}
    for variant, acc in pretrained.items():
        a = np.asarray(acc, dtype=float).reshape(len(sup), -1)
        out[variant] = a[:, np.arange(k) % a.shape[1]].ravel()
    return out
