"""Both sides of every evaluated run: the prior-corrected default and the balanced decision, from one model.

A trained head can be applied two ways (`geocrop.training.calibration`): as if every class were equally
common (``class_priors="uniform"``: the balanced decision, which favours rare classes and macro-F1; for a
head trained with a balanced loss, its raw logits) or corrected for the training class frequencies
(geocrop's default: the posterior of the data it learned from, which favours overall accuracy and
unbiased class areas; for the tree heads, whose outputs follow those frequencies, their raw output).
`with_both_sides` keeps both in a run's record, with the raw log-probabilities, the temperature and the
class shares, so the report scores the two sides and the calibration of the same trained model without
retraining.

Report sections (markdown lines, rows for CSV):

- `sides_table`: OA, macro-F1 and the class-share error (`share_error`: how far the predicted class
  shares are from the true ones, what an area estimate inherits) of each method on both sides, beside the
  majority class's OA, ranked by the default's macro-F1;
- `calibration_table`: the expected calibration error of each method's default probabilities on the
  held-out folds, before (T = 1) and after temperature scaling, beside the ECE a perfectly calibrated
  model would show on as many samples (`geocrop.training.calibration.ece_floor`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from geocrop.training.calibration import calibrated_proba, correction, ece_floor, expected_calibration_error
from geocrop.training.metrics import scores
from geocrop.training.records import RunRecord

if TYPE_CHECKING:
    from geocrop.training.any_head import FittedHead

__all__ = ["calibration_table", "side", "sides_table", "with_both_sides"]


def with_both_sides(record: RunRecord, fitted: FittedHead, n_classes: int) -> RunRecord:
    """``record`` (scored on ``fitted.val_proba``, the default) plus the balanced side, the raw
    log-probabilities, the temperature and the class shares of ``fitted``."""
    if fitted.val_logits is None or fitted.class_shares is None:
        return record
    z = np.asarray(fitted.val_logits, dtype=np.float64)
    top = z.max(axis=1, keepdims=True)
    log_p = z - top - np.log(np.exp(z - top).sum(axis=1, keepdims=True))  # log-softmax: T-invariant form
    uniform = correction(None, frequencies=fitted.class_shares, head_prior=fitted.head_prior)
    balanced = calibrated_proba(log_p, shares=uniform).argmax(axis=1)
    return replace(
        record,
        balanced_scores=scores(np.asarray(record.val_true), balanced, n_classes),
        balanced_pred=[int(v) for v in balanced],
        val_logits=np.round(log_p, 3).tolist(),
        temperature=None if fitted.temperature is None else round(float(fitted.temperature), 5),
        class_shares=[round(float(v), 6) for v in fitted.class_shares],
        head_prior=fitted.head_prior,
    )


def side(record: RunRecord, which: str) -> dict[str, float] | None:
    """The scores of ``record`` with prior correction (``"default"``) or without (``"balanced"``); None
    when the record predates prior correction and ``which`` is the default (it holds the balanced side
    only). The majority class is the same on both sides."""
    if record.family == "majority":
        return record.scores
    if which == "balanced":
        return record.balanced_scores if record.balanced_scores is not None else record.scores
    return record.scores if record.val_logits is not None else None


def side_pred(record: RunRecord, which: str) -> list[int] | None:
    """The held-out predictions of ``record`` on one side (see `side`)."""
    if record.family == "majority" or which == "default":
        return record.val_pred if side(record, which) is not None else None
    return record.balanced_pred if record.balanced_pred is not None else record.val_pred


def share_error(y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    """Half the summed absolute difference between predicted and true class shares: the share of the
    samples whose class an area estimate counts in the wrong class, after errors that cancel (0: every
    class's area right, whatever the per-sample errors)."""
    y, p = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    if len(y) == 0:
        return float("nan")
    k = int(max(y.max(), p.max())) + 1
    true, pred = np.bincount(y, minlength=k) / len(y), np.bincount(p, minlength=k) / len(p)
    return float(0.5 * np.abs(true - pred).sum())


def _ms(values: Sequence[float]) -> str:
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}" if len(values) else "n/a"


def _by_method(records: Sequence[RunRecord], method: str) -> list[RunRecord]:
    return [r for r in records if r.method == method]


def sides_table(
    records: Sequence[RunRecord], methods: Sequence[str]
) -> tuple[list[str], list[dict[str, Any]]]:
    """OA and macro-F1 with and without prior correction per method, beside the majority class's OA."""
    majority = {r.fold: r.scores["oa"] for r in records if r.family == "majority" and r.config_index == 0}
    rows = []
    for m in methods:
        runs = _by_method(records, m)
        row: dict[str, Any] = {"method": m, "runs": len(runs)}
        for which in ("default", "balanced"):
            got = [(r.fold, s) for r in runs if (s := side(r, which)) is not None]
            for metric in ("oa", "macro_f1"):
                v = [s[metric] for _, s in got]
                row[f"{which}_{metric}_mean"] = float(np.mean(v)) if v else float("nan")
                row[f"{which}_{metric}_std"] = float(np.std(v)) if v else float("nan")
            above = [s["oa"] >= majority[f] for f, s in got if f in majority]
            row[f"{which}_above_majority"] = f"{sum(above)}/{len(above)}" if above else ""
            errors = [share_error(r.val_true, p) for r in runs if (p := side_pred(r, which)) is not None]
            row[f"{which}_share_error_mean"] = float(np.mean(errors)) if errors else float("nan")
            row[f"{which}_share_error_std"] = float(np.std(errors)) if errors else float("nan")
        rows.append(row)
    rows.sort(key=lambda r: -np.nan_to_num(r["default_macro_f1_mean"], nan=-1.0))
    maj = list(majority.values())
    lines = [
        f"Majority class OA (each fold's training majority predicted everywhere): {_ms(maj)}.",
        "",
        "| method | OA, default | OA, uniform | macro-F1, default | macro-F1, uniform "
        "| class-share error, default | class-share error, uniform | folds with OA >= majority "
        "(default / uniform) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = [
            f"{r[f'{w}_{m}_mean']:.3f} ± {r[f'{w}_{m}_std']:.3f}"
            if np.isfinite(r[f"{w}_{m}_mean"])
            else "n/a"
            for m in ("oa", "macro_f1", "share_error")
            for w in ("default", "balanced")
        ]
        floor = f"{r['default_above_majority'] or 'n/a'} / {r['balanced_above_majority']}"
        lines.append(f"| {r['method']} | {' | '.join(cells)} | {floor} |")
    return lines, rows


def _calibration(run: RunRecord) -> tuple[np.ndarray, np.ndarray, np.ndarray, float] | None:
    """(probabilities before T, after T, labels, T) of a run's held-out fold, None without logits."""
    if run.val_logits is None or run.class_shares is None:
        return None
    z, y = np.asarray(run.val_logits, dtype=np.float64), np.asarray(run.val_true, dtype=np.int64)
    t = run.temperature or 1.0
    fix = correction(run.class_shares, frequencies=run.class_shares, head_prior=run.head_prior or "uniform")
    before = calibrated_proba(z, temperature=1.0, shares=fix)
    return before, calibrated_proba(z, temperature=t, shares=fix), y, t


def calibration_table(
    records: Sequence[RunRecord], methods: Sequence[str]
) -> tuple[list[str], list[dict[str, Any]]]:
    """Expected calibration error of each method's default probabilities on the held-out folds."""
    rows: list[dict[str, Any]] = []
    for m in methods:
        parts = [c for r in _by_method(records, m) if r.config_index == 0 and (c := _calibration(r))]
        if not parts:
            continue
        before = np.concatenate([p[0] for p in parts])
        after = np.concatenate([p[1] for p in parts])
        y = np.concatenate([p[2] for p in parts])
        per_fold = [expected_calibration_error(p[1], p[2]) for p in parts]
        rows.append(
            {
                "method": m,
                "runs": len(parts),
                "temperature_mean": float(np.mean([p[3] for p in parts])),
                "ece_before": expected_calibration_error(before, y),
                "ece_after": expected_calibration_error(after, y),
                "ece_floor": ece_floor(after),
                "ece_after_fold_mean": float(np.mean(per_fold)),
                "ece_after_fold_std": float(np.std(per_fold)),
                "n": len(y),
            }
        )
    rows.sort(key=lambda r: r["ece_after"])
    lines = [
        "| method | T (mean over folds) | ECE before T | ECE after T | ECE of a perfectly calibrated model "
        "| ECE after T, per fold |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['temperature_mean']:.2f} | {r['ece_before']:.3f} | {r['ece_after']:.3f} "
            f"| {r['ece_floor']:.3f} | {r['ece_after_fold_mean']:.3f} ± {r['ece_after_fold_std']:.3f} |"
        )
    return lines, rows
