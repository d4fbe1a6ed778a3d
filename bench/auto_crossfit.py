"""Where a deep head's temperature is fitted: the kept epoch's selection predictions, or cross-fitted ones.

The inner split of a deep head (`geocrop.training.any_head.inner_split`) picks its epoch (the best of up
to 200 by its own macro-F1) and then fits its temperature and class-prior share
(`geocrop.training.calibration.fit_calibration`) on its predictions at that epoch: predictions selected
to look good there. Cross-fitting removes that: each part of the selection split is predicted at the
epoch the *other* parts' macro-F1 picks (`at_others_epochs`). This script reads `bench/auto_folds.py`'s
lines and its ``--epochs`` folder (each deep candidate's selection-split probabilities at every epoch of
its one fit), refits nothing, and compares the predictions the calibration is fitted on:

- ``kept epoch (before)``: the selection split at the epoch it kept (the library's rule; its row
  reproduces the temperatures of the runs, checked below);
- ``cross-fitted, halves x8`` (thirds, fifths): the selection parcels dealt into 2 (3, 5) grouped parts,
  by class, each part at the epoch the others chose, over 8 random deals (every series 8 times);
- ``cross-fitted, one parcel out``: each parcel at the epoch every other selection parcel chose;
- each ``..., T only``: the same rows, the class-prior share kept from ``kept epoch``.

For each, every deep head's held-out default probabilities, and ``auto``'s rule rerun on the same
selection split with its members so calibrated (`geocrop.training.auto.choose`: the choice may change,
since a member's prior share moves its decisions), scored as `bench/auto_calibration.py` scores them
(NLL, Brier, three ECEs beside their floors, macro-F1 and OA over the folds); NLL also as the paired
difference to ``kept epoch``.

    OMP_NUM_THREADS=1 python bench/auto_folds.py --out runs.jsonl --epochs EPOCHS_DIR
    python bench/auto_crossfit.py runs.jsonl EPOCHS_DIR

``--cv CV_RUNS`` instead scores the deep heads of ``auto_folds.py --epoch-choice cv`` runs (the epoch by
cross-validation, `geocrop.training.cv_epochs`), uncalibrated (T = 1 and the full prior correction: that
mode before it was calibrated) and calibrated on their out-of-fold predictions, beside the same heads
with the inner split (``runs.jsonl``) on the same folds:

    python bench/auto_crossfit.py --cv cv_runs.jsonl runs.jsonl
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from geocrop.data.splits import grouped_folds
from geocrop.training.calibration import correction, fit_calibration, fit_temperature
from geocrop.training.metrics import macro_f1

sys.path.insert(0, str(Path(__file__).resolve().parent))
from auto_calibration import _lines, _single, rechosen, row

DEEP = ("tempcnn", "inception")
Fit = tuple[float, float]  # (T, s)


#: (name, parts, repeats) of the cross-fits compared; 0 parts: one parcel at a time (leave-one-out).
CROSS_FITS = (("halves x8", 2, 8), ("thirds x8", 3, 8), ("fifths x8", 5, 8), ("one parcel out", 0, 1))


def at_others_epochs(
    log_p: np.ndarray, y: np.ndarray, groups: np.ndarray, *, parts: int, repeats: int
) -> tuple[np.ndarray, np.ndarray]:
    """(labels, log-probabilities), ``repeats`` x N rows: for each of ``repeats`` grouped deals of the
    selection series into ``parts`` parts (by class, `geocrop.data.splits.grouped_folds`), each part at
    the epoch of ``log_p`` (epochs, N, K) whose predictions give the other parts their best macro-F1
    (the first such epoch, as early stopping keeps it)."""
    labels, taken = [], []
    for r in range(repeats):
        part = grouped_folds(y, groups, k=parts, seed=r)
        for side in np.unique(part):
            chooser, scored = part != side, part == side
            f1 = [macro_f1(y[chooser], p[chooser].argmax(axis=1), log_p.shape[2]) for p in log_p]
            labels.append(y[scored])
            taken.append(log_p[int(np.argmax(f1))][scored])
    return np.concatenate(labels), np.concatenate(taken)


def fits(npz: Any, shares: np.ndarray) -> dict[str, Fit]:
    """variant -> (T, s) of one deep candidate from its per-epoch selection predictions."""
    log_p, y, groups = npz["log_p"].astype(np.float64), npz["y"], npz["groups"]
    kept = fit_calibration(log_p[int(npz["best_epoch"]) - 1], y, frequencies=shares)
    out = {"kept epoch (before)": kept}
    for name, parts, repeats in CROSS_FITS:
        k = parts or len(np.unique(groups))
        rows = at_others_epochs(log_p, y, groups, parts=k, repeats=repeats)
        out[f"cross-fitted, {name}"] = fit_calibration(rows[1], rows[0], frequencies=shares)
        out[f"cross-fitted, {name}, T only"] = (_t_only(rows, kept, shares), kept[1])
    return out


def _t_only(rows: tuple[np.ndarray, np.ndarray], kept: Fit, shares: np.ndarray) -> float:
    """The temperature of ``rows`` under the kept epoch's prior share."""
    return fit_temperature(
        rows[1], rows[0], shares=correction(shares, frequencies=shares, head_prior=kept[1])
    )


def _as(line: dict[str, Any], fit: Fit) -> dict[str, Any]:
    return {**line, "temperature": fit[0], "head_prior": fit[1]}


def fold_variant(fold: dict[str, dict[str, Any]], fitted: dict[str, Fit]) -> dict[str, Any]:
    """One fold under one variant: each candidate's line recalibrated, and ``auto`` rechosen."""
    lines = {c: (_as(fold[c], fitted[c]) if c in fitted else fold[c]) for c in fold if c != "auto"}
    proba, choice, members = rechosen(lines, fold["auto"]["selection"])
    return {"auto": (proba, choice), **{c: (members[c][1], lines[c]) for c in members}}


def main(runs: Path, epochs: Path) -> None:
    folds = _lines(runs)
    order = sorted(folds)
    per_fold: list[dict[str, dict[str, Fit]]] = []
    for f in order:
        shares = np.asarray(folds[f]["auto"]["class_shares"], dtype=np.float64)
        found = {c: fits(np.load(epochs / f"fold{f}_{c}.npz"), shares) for c in DEEP}
        per_fold.append(found)
        for c in DEEP:  # the library's own fit must be the kept epoch's row
            t_run, t_bench = folds[f][c]["temperature"], found[c]["kept epoch (before)"][0]
            if abs(t_run - t_bench) > 1e-3:
                raise SystemExit(f"fold {f} {c}: T {t_run:.4f} in the run, {t_bench:.4f} here: other fits")
    names = list(per_fold[0][DEEP[0]])
    ys = [np.asarray(folds[f]["auto"]["val_true"]) for f in order]
    results = {
        name: [fold_variant(folds[f], {c: per_fold[i][c][name] for c in DEEP}) for i, f in enumerate(order)]
        for name in names
    }
    head = (
        "| {} | T (s) per fold | NLL (minus kept epoch's, ± SE) | Brier | ECE, 15 bins (floor) ± SE "
        "| ECE, equal-mass (floor) | classwise ECE (floor) | macro-F1 | OA |"
    )
    base_name = names[0]
    for method in (*DEEP, "auto"):
        print("\n" + head.format(f"{method}, fitted on") + "\n" + "|---" * 9 + "|")
        base = [r[method][0] for r in results[base_name]]
        for name in names:
            parts = [r[method][0] for r in results[name]]
            if method == "auto":
                t = " ".join(r["auto"][1] for r in results[name])
            else:
                t = " ".join(f"{p[method][name][0]:.2f} ({p[method][name][1]:.2f})" for p in per_fold)
            print(row(name, parts, ys, t, None if name == base_name else base))


def _share(head_prior: Any) -> str:
    return f"{head_prior:.2f}" if isinstance(head_prior, float) else str(head_prior)


def main_cv(cv_runs: Path, runs: Path) -> None:
    cv_folds, folds = _lines(cv_runs), _lines(runs)
    order = sorted(cv_folds)
    ys = [np.asarray(folds[f]["auto"]["val_true"]) for f in order]
    head = (
        "| {}, folds {} | T (s) per fold | NLL | Brier | ECE, 15 bins (floor) ± SE | ECE, equal-mass (floor) "
    )
    for method in (c for c in DEEP if c in cv_folds[order[0]]):
        print(
            "\n"
            + head.format(method, order)
            + "| classwise ECE (floor) | macro-F1 | OA |\n"
            + "|---" * 9
            + "|"
        )
        for name, source, calibrated in (
            ("inner split, kept epoch", folds, True),
            ("cv, uncalibrated (before)", cv_folds, False),
            ("cv, out-of-fold calibration (now)", cv_folds, True),
        ):
            lines = [source[f][method] for f in order]
            t = (
                " ".join(f"{li['temperature'] or 1:.2f} ({_share(li['head_prior'])})" for li in lines)
                if calibrated
                else "1"
            )
            print(row(name, [_single(li, calibrated=calibrated) for li in lines], ys, t))


if __name__ == "__main__":
    if sys.argv[1] == "--cv":
        main_cv(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        main(Path(sys.argv[1]), Path(sys.argv[2]))
