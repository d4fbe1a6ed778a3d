"""Both sides of an evaluated run (prior-corrected default, balanced) and the report tables built on them."""

from __future__ import annotations

from typing import Any

import numpy as np

from geocrop.training.any_head import FittedHead
from geocrop.training.both_sides import (
    calibration_table,
    share_error,
    side,
    sides_table,
    with_both_sides,
)
from geocrop.training.calibration import calibrated_proba, softmax
from geocrop.training.metrics import scores
from geocrop.training.records import RunRecord


def _record(family: str, fold: int, y: np.ndarray, pred: np.ndarray, **extra: Any) -> RunRecord:
    return RunRecord(
        key=f"{family}-f{fold}", family=family, config_index=0, config={}, variant="supervised", bundle="",
        bundle_index=0, fold=fold, scores=scores(y, pred, 3), val_true=y.tolist(), val_pred=pred.tolist(),
        seconds=0.0, **extra,
    )  # fmt: skip


def _fitted(logits: np.ndarray, shares: np.ndarray, head_prior: str = "uniform") -> FittedHead:
    fix = shares if head_prior == "uniform" else None
    proba = calibrated_proba(logits, temperature=2.0, shares=fix)
    return FittedHead(
        module=None,  # type: ignore[arg-type]
        spec={},
        val_proba=proba,
        val_logits=logits,
        class_shares=shares,
        temperature=2.0,
        head_prior=head_prior,
    )


def test_the_balanced_side_is_the_same_head_without_correction() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 60)
    logits = rng.normal(0, 1, (60, 3)) + 2.0 * np.eye(3)[y]
    shares = np.array([0.7, 0.2, 0.1])
    fitted = _fitted(logits, shares)
    record = with_both_sides(_record("tempcnn", 0, y, fitted.val_proba.argmax(1)), fitted, 3)
    assert record.balanced_pred == logits.argmax(1).tolist()  # a balanced head's raw decision
    assert side(record, "balanced") == scores(y, logits.argmax(1), 3)
    assert side(record, "default") == record.scores
    # the stored log-probabilities reproduce the default decision; the shares and T travel with them
    again = calibrated_proba(np.array(record.val_logits), temperature=record.temperature or 1, shares=shares)
    assert (again.argmax(1) == np.array(record.val_pred)).mean() > 0.98  # 3 decimals: ties may flip
    np.testing.assert_allclose(np.exp(record.val_logits).sum(axis=1), 1, atol=5e-3)
    # a forest's votes already follow the training shares: its balanced side divides them out
    forest = with_both_sides(_record("rf", 0, y, logits.argmax(1)), _fitted(logits, shares, "training"), 3)
    assert forest.balanced_pred == (softmax(logits / 1) / shares).argmax(1).tolist()
    # records written before prior correction hold the balanced side only
    old = _record("tempcnn", 0, y, logits.argmax(1))
    assert side(old, "default") is None and side(old, "balanced") == old.scores


def test_sides_and_calibration_tables() -> None:
    rng = np.random.default_rng(1)
    records = []
    for fold in range(3):
        # a calibrated balanced model: labels drawn from softmax(logits + log shares)
        logits = rng.normal(0, 2, (200, 3))
        shares = np.array([0.6, 0.3, 0.1])
        p = softmax(logits + np.log(shares))
        y = np.minimum((rng.random((200, 1)) > np.cumsum(p, axis=1)).sum(axis=1), 2)
        records.append(_record("majority", fold, y, np.zeros(200, dtype=np.int64)))
        fitted = _fitted(logits * 2.0, shares)  # twice too sharp, T = 2 fixes it
        records.append(with_both_sides(_record("tempcnn", fold, y, fitted.val_proba.argmax(1)), fitted, 3))
    lines, rows = sides_table(records, ["majority", "tempcnn"])
    assert [r["method"] for r in rows] == ["tempcnn", "majority"]  # ranked by the default's macro-F1
    deep = rows[0]
    assert deep["default_oa_mean"] > deep["balanced_oa_mean"]  # the prior correction buys accuracy
    assert deep["default_above_majority"] == "3/3" and "Majority class OA" in lines[0]
    assert deep["default_share_error_mean"] < deep["balanced_share_error_mean"]  # areas follow the prior
    assert rows[1]["default_share_error_mean"] > 0.3  # "everything is class 0" gets the areas wrong
    cal_lines, cal = calibration_table(records, ["majority", "tempcnn"])
    assert [r["method"] for r in cal] == ["tempcnn"]  # the majority class has no probabilities
    assert cal[0]["ece_after"] < cal[0]["ece_before"] and cal[0]["temperature_mean"] == 2.0
    assert cal[0]["ece_after"] < 2 * cal[0]["ece_floor"] + 0.02
    assert any(line.startswith("| tempcnn | 2.00 |") for line in cal_lines)


def test_share_error_by_hand() -> None:
    assert share_error([0, 0, 1, 2], [0, 0, 1, 2]) == 0.0
    assert share_error([0, 0, 1, 2], [1, 0, 0, 2]) == 0.0  # errors that cancel leave the areas right
    assert share_error([0, 0, 1, 1], [0, 0, 0, 2]) == 0.5  # two of four samples counted elsewhere
