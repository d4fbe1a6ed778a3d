"""The tables of docs/evaluation/france-auto from `bench/auto_folds.py`'s lines and evaluate's journal.

Reads the per-fold lines of ``auto`` and its candidates (``auto_folds.py --out``) and, from a
``geocrop evaluate`` journal on the same folds, the RandomForest and the majority class (checked to be the
same held-out series). Prints, as markdown: every method's macro-F1 and OA (mean ± std over folds), the
paired macro-F1 difference to ``auto`` and the folds where ``auto`` is at least as good, the targets;
the expected calibration error of each method's default probabilities before (T = 1 and, for a deep
head, the full prior correction) and after calibration (its temperature and head prior), beside the ECE a
perfectly calibrated model shows on as many samples; what ``auto`` chose per fold and why; and fixed
rules (always the mean of gradient boosting and one deep head) on the same folds, for comparison.

    python bench/auto_report.py runs.jsonl docs/evaluation/france-auto/results.jsonl
    python bench/auto_report.py imbalanced_runs.jsonl        # no journal: the majority class only
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from geocrop.training.calibration import (
    calibrated_proba,
    correction,
    ece_floor,
    expected_calibration_error,
)
from geocrop.training.metrics import scores

sys.path.insert(0, str(Path(__file__).resolve().parent))
from auto_table import print_method_table

ORDER = ("majority", "rf", "gbm", "tempcnn", "inception", "auto")


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def load(runs: Path, journal: Path | None) -> dict[str, dict[int, dict[str, Any]]]:
    """method -> fold -> line; rf and majority from the evaluate journal (last line of a key wins;
    without one, the majority class only)."""
    table: dict[str, dict[int, dict[str, Any]]] = defaultdict(dict)
    for line in _lines(runs):
        table[line["method"]][int(line["fold"])] = line
    if journal is None:  # the majority class from the runs: the training majority predicted everywhere
        for fold, line in table["auto"].items():
            y = np.asarray(line["val_true"])
            pred = np.full(len(y), int(np.argmax(line["class_shares"])))
            k = len(line["class_shares"])
            table["majority"][fold] = {"val_true": line["val_true"], "scores": scores(y, pred, k)}
        return dict(table)
    by_key = {r["key"]: r for r in _lines(journal)}
    for record in by_key.values():
        if record["family"] in ("rf", "majority") and record.get("labels_per_class") is None:
            fold = int(record["fold"])
            same = table["auto"].get(fold, {}).get("val_true")
            if same is not None and same != record["val_true"]:
                raise SystemExit(f"{journal}: fold {fold} holds other series than {runs}")
            table[record["family"]][fold] = {
                "val_true": record["val_true"],
                "val_pred": record["val_pred"],
                "scores": record["scores"],
                "log_p": record.get("val_logits"),
                "temperature": record.get("temperature"),
                "head_prior": record.get("head_prior"),
                "class_shares": record.get("class_shares"),
            }
    return dict(table)


def _proba(line: dict[str, Any], *, calibrated: bool) -> np.ndarray:
    """Default probabilities of a line: calibrated (its T and head prior) or before (T = 1; a deep head
    with the full correction of a balanced head)."""
    z = np.asarray(line["log_p"], dtype=np.float64)
    shares = np.asarray(line["class_shares"], dtype=np.float64)
    prior = line["head_prior"] or "uniform"
    if not calibrated and not isinstance(prior, str):
        prior = "uniform"  # before: the head taken as balanced, as it was before the prior was fitted
    fix = correction(shares, frequencies=shares, head_prior=prior)
    t = (line["temperature"] or 1.0) if calibrated else 1.0
    return calibrated_proba(z, temperature=t, shares=fix)


def main(runs: Path, journal: Path | None) -> None:
    table = load(runs, journal)
    folds = sorted(set.intersection(*(set(by_fold) for by_fold in table.values())))
    methods = [m for m in ORDER if m in table]
    f1 = {m: np.array([table[m][f]["scores"]["macro_f1"] for f in folds]) for m in methods}
    oa = {m: np.array([table[m][f]["scores"]["oa"] for f in folds]) for m in methods}
    print(f"{len(folds)} folds ({', '.join(map(str, folds))})\n")
    print_method_table(f1, oa, methods)
    singles = [m for m in ("gbm", "tempcnn", "inception") if m in f1]
    best = max(singles, key=lambda m: f1[m].mean())
    auto, top = f1["auto"].mean(), f1[best].mean()
    rf = f1["rf"].mean() if "rf" in f1 else float("nan")
    print(f"\nauto {auto:.3f} vs best single head ({best}) {top:.3f} - 0.01: {auto - top + 0.01:+.3f}")
    if "rf" in f1:
        print(f"auto {auto:.3f} vs RandomForest {rf:.3f} + 0.03: {auto - rf - 0.03:+.3f}")
    for m in ("tempcnn", "inception", "auto"):
        above = int((oa[m] >= oa["majority"]).sum())
        gap = oa[m].mean() - (oa["rf"].mean() if "rf" in oa else float("nan"))
        print(f"{m}: OA >= majority on {above}/{len(folds)} folds; OA - RF {gap:+.3f}")

    print("\n| method | T (mean) | head prior s (mean) | ECE before | ECE after | ECE, perfect calibration |")
    print("|---|---|---|---|---|---|")
    for m in methods:
        if m == "majority" or table[m][folds[0]].get("log_p") is None:
            continue
        lines = [table[m][f] for f in folds]
        y = np.concatenate([line["val_true"] for line in lines])
        before = np.concatenate([_proba(line, calibrated=False) for line in lines])
        after = np.concatenate([_proba(line, calibrated=True) for line in lines])
        t = np.mean([line["temperature"] or 1.0 for line in lines])
        priors = [line["head_prior"] for line in lines]
        s = f"{np.mean(priors):.2f}" if all(isinstance(p, (int, float)) for p in priors) else str(priors[0])
        print(
            f"| {m} | {t:.2f} | {s} | {expected_calibration_error(before, y):.3f} | "
            f"{expected_calibration_error(after, y):.3f} | {ece_floor(after):.3f} |"
        )

    print("\nwhat auto chose:")
    for f in folds:
        sel = table["auto"][f]["selection"]
        line = table["auto"][f]
        cost = f"{line['seconds']:.0f} s wall, {line.get('cpu_seconds', float('nan')):.0f} s CPU"
        print(
            f"- fold {f}: **{sel['chosen']}** (macro-F1 {line['scores']['macro_f1']:.3f}; {cost}, load "
            f"{line.get('load')}): {sel['reason']}"
        )

    print("\n| fixed rule on the same folds | macro-F1 | OA |")
    print("|---|---|---|")
    for deep in ("tempcnn", "inception"):
        for where in ("default", "uniform"):
            f1s, oas = [], []
            for f in folds:
                mean = _mean_of_two(table["gbm"][f], table[deep][f], where)
                sc = scores(np.asarray(table[deep][f]["val_true"]), mean.argmax(axis=1), mean.shape[1])
                f1s.append(sc["macro_f1"])
                oas.append(sc["oa"])
            how = "" if where == "default" else ", uniform-prior posteriors averaged, then corrected"
            cells = f"{np.mean(f1s):.3f} ± {np.std(f1s):.3f} | {np.mean(oas):.3f}"
            print(f"| always gbm + {deep}{how} | {cells} |")


def _mean_of_two(a: dict[str, Any], b: dict[str, Any], where: str) -> np.ndarray:
    """The mean of two lines' probabilities: of their defaults (what auto maps), or of their uniform-prior
    posteriors corrected for the training frequencies once afterwards (auto's mean before this one)."""
    if where == "default":
        return (_proba(a, calibrated=True) + _proba(b, calibrated=True)) / 2
    shares = np.asarray(a["class_shares"], dtype=np.float64)
    uniform = []
    for line in (a, b):
        fix = correction(None, frequencies=shares, head_prior=line["head_prior"])
        z = np.asarray(line["log_p"], dtype=np.float64)
        uniform.append(calibrated_proba(z, temperature=line["temperature"] or 1.0, shares=fix))
    return calibrated_proba(np.log(np.clip(np.mean(uniform, axis=0), 1e-300, None)), shares=shares)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else None)
