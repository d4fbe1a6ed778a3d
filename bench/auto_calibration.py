"""Ways of calibrating ``--head auto``'s mean of two, compared on the grouped folds without refitting.

Reads `bench/auto_folds.py`'s lines (each candidate's held-out fold predictions and its predictions of the
selection split, where it was calibrated and ``auto`` chose). Every variant below is fitted on a fold's
selection split only and scored on that fold's held-out series, all folds pooled:

- ``members``: each member at its own calibration (temperature, and a deep member's class-prior share),
  the two probabilities averaged, nothing fitted on the mean;
- ``members + T``: the same mean, divided in log space by a temperature fitted on the log of the
  selection split's mean (the NLL fit of `geocrop.training.calibration.fit_temperature`);
- ``raw members + T``: the members at T = 1 (a deep member still moved by its fitted class-prior share),
  averaged, and one temperature fitted on the log of the mean: the mean calibrated as one model;
- ``members + T, both pairs``: ``members + T`` with the temperature fitted on the selection predictions
  of every mean of two that ``auto`` could choose (twice the rows, the same parcels);
- ``members, log pool`` and ``members, log pool + T``: the members' log-probabilities averaged
  (a geometric mean, renormalised) instead of their probabilities, without and with a temperature;
- ``log pool, also in the choice``: ``auto``'s rule rerun with every mean of two a log pool (the choice
  may change);
- last, not a method: ``members`` with a temperature fitted on each held-out fold itself, the least NLL
  any temperature of the mean can reach there (a bound for the temperature variants).

Each is scored by the negative log-likelihood and the Brier score (bin-free, proper: the ranking), the
15-bin ECE, the ECE with equal-mass bins and the classwise ECE, each beside the value exactly right
probabilities would show on as many series (its floor), and the bootstrap standard error of the 15-bin
ECE over series; a variant's NLL also as its paired difference to ``members`` with the bootstrap
standard error over series; and by macro-F1 and OA, mean ± std over the folds (a temperature changes no
decision; a log pool may). Then the same metrics for each single head, before (T = 1, a deep head fully
prior-corrected) and after its own calibration.

    python bench/auto_calibration.py runs.jsonl
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from geocrop.training.auto import choose
from geocrop.training.calibration import (
    adaptive_calibration_error,
    calibrated_proba,
    classwise_calibration_error,
    correction,
    ece_floor,
    expected_calibration_error,
    fit_temperature,
    log_shares,
    softmax,
)
from geocrop.training.metrics import scores

Probas = tuple[np.ndarray, np.ndarray]  # (selection, held-out) probabilities
SINGLES = ("gbm", "tempcnn", "inception")


def _lines(path: Path) -> dict[int, dict[str, dict[str, Any]]]:
    """fold -> method -> line."""
    folds: dict[int, dict[str, dict[str, Any]]] = {}
    for text in path.read_text(encoding="utf-8").splitlines():
        if text.strip():
            line = json.loads(text)
            folds.setdefault(int(line["fold"]), {})[line["method"]] = line
    return folds


def _offset(line: dict[str, Any]) -> np.ndarray | None:
    """(K,) shares whose log moves a member from its head prior to the training frequencies."""
    shares = np.asarray(line["class_shares"], dtype=np.float64)
    return correction(shares, frequencies=shares, head_prior=line["head_prior"])


def member(line: dict[str, Any], *, tempered: bool = True) -> Probas:
    """A candidate's default probabilities (its temperature unless not ``tempered``, its prior)."""
    t = (line["temperature"] or 1.0) if tempered else 1.0
    fix = _offset(line)
    return tuple(  # type: ignore[return-value]
        calibrated_proba(np.asarray(line[key], dtype=np.float64), temperature=t, shares=fix)
        for key in ("select_log_p", "log_p")
    )


def _log(p: np.ndarray) -> np.ndarray:
    return np.log(np.clip(p, 1e-7, None))


def _mean(a: Probas, b: Probas) -> Probas:
    return (a[0] + b[0]) / 2, (a[1] + b[1]) / 2


def _log_pool(a: Probas, b: Probas) -> Probas:
    return softmax((_log(a[0]) + _log(b[0])) / 2), softmax((_log(a[1]) + _log(b[1])) / 2)


def _tempered(p: Probas, fit_on: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Held-out probabilities of ``p`` under a temperature fitted on the log of ``fit_on`` (rows)."""
    t = fit_temperature(_log(fit_on), y)
    return softmax(_log(p[1]) / t), t


def variants(fold: dict[str, dict[str, Any]]) -> dict[str, tuple[np.ndarray, float]]:
    """variant -> (held-out probabilities, fitted T) of one fold's chosen mean of two."""
    chosen = fold["auto"]["selection"]["members"]
    if len(chosen) != 2:
        raise SystemExit(f"fold {fold['auto']['fold']}: auto chose {chosen}, not a mean of two")
    a, b = (fold[m] for m in chosen)
    y = np.asarray(a["select_true"])
    if b["select_true"] != a["select_true"]:
        raise SystemExit(f"fold {a['fold']}: {chosen} were calibrated on other selection series")
    cal = _mean(member(a), member(b))
    raw = _mean(member(a, tempered=False), member(b, tempered=False))
    pool = _log_pool(member(a), member(b))
    pairs = [p.split("+") for p in fold["auto"]["selection"]["scores"] if "+" in p]
    both = [_mean(member(fold[m]), member(fold[n]))[0] for m, n in pairs]
    out = {"members": (cal[1], 1.0)}
    out["members + T"] = _tempered(cal, cal[0], y)
    out["raw members + T"] = _tempered(raw, raw[0], y)
    out["members + T, both pairs"] = _tempered(cal, np.concatenate(both), np.tile(y, len(both)))
    out["members, log pool"] = (pool[1], 1.0)
    out["members, log pool + T"] = _tempered(pool, pool[0], y)
    # not a method: the temperature fitted on the held-out fold itself, the most any temperature can do
    out["members + T of the held-out fold (a bound)"] = _tempered(cal, cal[1], np.asarray(a["val_true"]))
    return out


def rechosen(
    lines: dict[str, dict[str, Any]], record: dict[str, Any], pool: Callable[[Probas, Probas], Probas] = _mean
) -> tuple[np.ndarray, str, dict[str, Probas]]:
    """``auto``'s rule (`geocrop.training.auto.choose`) rerun on a fold's selection split (``record``: its
    ``auto`` line's selection) with the candidates as ``lines`` calibrate them and every mean of two made by
    ``pool``: (held-out probabilities of the choice, the choice, each candidate's probabilities)."""
    members = {c: member(lines[c]) for c in record["candidates"]}
    pairs = [p for p in record["scores"] if "+" in p]
    options = dict(members)
    for pair in pairs:
        a, b = pair.split("+")
        options[pair] = pool(members[a], members[b])
    first = lines[record["candidates"][0]]
    choice, _, _ = choose(
        {name: p[0] for name, p in options.items()},
        np.asarray(first["select_true"]),
        record["majority_oa"],
        len(first["class_shares"]),
        groups=np.asarray(first["select_groups"]),
        pairs=pairs,
    )
    return options[choice][1], choice, members


def log_pool_choice(fold: dict[str, dict[str, Any]]) -> tuple[np.ndarray, str]:
    """(held-out probabilities, choice) of ``auto``'s rule rerun with every mean of two replaced by the
    log pool of the same members, on the same selection split."""
    proba, choice, _ = rechosen(fold, fold["auto"]["selection"], _log_pool)
    return proba, choice


def _nll(p: np.ndarray, y: np.ndarray) -> float:
    return float(-np.mean(_log(p)[np.arange(len(y)), y]))


def _brier(p: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(((p - np.eye(p.shape[1])[y]) ** 2).sum(axis=1)))


def _boot_se(p: np.ndarray, y: np.ndarray, draws: int = 200) -> float:
    rng = np.random.default_rng(0)
    rows = (rng.integers(0, len(y), len(y)) for _ in range(draws))
    return float(np.std([expected_calibration_error(p[r], y[r]) for r in rows]))


ERRORS: tuple[tuple[str, Callable[..., float]], ...] = (
    ("ECE", expected_calibration_error),
    ("ECE equal-mass", adaptive_calibration_error),
    ("classwise ECE", classwise_calibration_error),
)


def _nll_gain(p: np.ndarray, base: np.ndarray, y: np.ndarray, draws: int = 2000) -> str:
    """``p``'s NLL minus ``base``'s on the same series, ± its bootstrap standard error over series."""
    rows = np.arange(len(y))
    d = _log(base)[rows, y] - _log(p)[rows, y]
    rng = np.random.default_rng(0)
    se = np.std([d[rng.integers(0, len(d), len(d))].mean() for _ in range(draws)])
    return f"{d.mean():+.4f} ± {se:.4f}"


def row(
    name: str, parts: list[np.ndarray], ys: list[np.ndarray], t: str, base: list[np.ndarray] | None = None
) -> str:
    """One markdown row: the calibration of the folds' held-out probabilities ``parts`` pooled (its NLL
    against ``base``'s when given), and macro-F1 and OA as mean ± std over the folds."""
    p, y = np.concatenate(parts), np.concatenate(ys)
    gain = "" if base is None else f" ({_nll_gain(p, np.concatenate(base), y)})"
    folds = [scores(b, a.argmax(axis=1), a.shape[1]) for a, b in zip(parts, ys, strict=True)]
    f1, oa = ([f[k] for f in folds] for k in ("macro_f1", "oa"))
    cells = [f"{error(p, y):.4f} ({ece_floor(p, error=error):.3f})" for _, error in ERRORS]
    return (
        f"| {name} | {t} | {_nll(p, y):.4f}{gain} | {_brier(p, y):.4f} | {cells[0]} ± {_boot_se(p, y):.3f} | "
        f"{cells[1]} | {cells[2]} | {np.mean(f1):.3f} ± {np.std(f1):.3f} | "
        f"{np.mean(oa):.3f} ± {np.std(oa):.3f} |"
    )


def _single(line: dict[str, Any], *, calibrated: bool) -> np.ndarray:
    """A single head's held-out default probabilities, before (T = 1, a deep head taken as balanced:
    the full prior correction) or after its calibration."""
    shares = np.asarray(line["class_shares"], dtype=np.float64)
    z = np.asarray(line["log_p"], dtype=np.float64)
    if calibrated:
        return calibrated_proba(z, temperature=line["temperature"] or 1.0, shares=_offset(line))
    full = None if line["head_prior"] == "training" else shares
    return softmax(z if full is None else z + log_shares(full))


def main(path: Path) -> None:
    folds = _lines(path)
    order = sorted(folds)
    ys = [np.asarray(folds[f]["auto"]["val_true"]) for f in order]
    per_fold = [variants(folds[f]) for f in order]
    head = (
        "| {} | T per fold | {} | Brier | ECE, 15 bins (floor) ± SE "
        "| ECE, equal-mass (floor) | classwise ECE (floor) | macro-F1 | OA |"
    )
    n = sum(len(y) for y in ys)
    print(f"{n} held-out series, folds {order}; the floor in brackets: exact probabilities\n")
    print(head.format("`auto`'s mean, calibrated by", "NLL (minus members', ± SE)") + "\n" + "|---" * 9 + "|")
    base = [v["members"][0] for v in per_fold]
    for name in per_fold[0]:
        t = " ".join(f"{v[name][1]:.2f}" for v in per_fold)
        print(row(name, [v[name][0] for v in per_fold], ys, t, base))
    pooled = [log_pool_choice(folds[f]) for f in order]
    choices = " ".join(c for _, c in pooled)
    print(row("log pool, also in the choice", [p for p, _ in pooled], ys, choices, base))
    print("\n" + head.format("single head", "NLL") + "\n" + "|---" * 9 + "|")
    for family in SINGLES:
        for calibrated in (False, True):
            parts = [_single(folds[f][family], calibrated=calibrated) for f in order]
            t = " ".join(f"{folds[f][family]['temperature'] or 1:.2f}" for f in order) if calibrated else "1"
            print(row(f"{family}, {'after' if calibrated else 'before'}", parts, ys, t))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
