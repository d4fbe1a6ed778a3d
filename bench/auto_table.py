"""``--head auto`` beside the single heads, from an evaluation journal: the table docs/evaluation shows.

Reads a ``results.jsonl`` written by ``geocrop evaluate --families auto,...`` and prints, over the folds
where every method finished, each method's macro-F1 and OA (mean ± std over folds), the paired macro-F1
difference to ``auto`` and the folds where ``auto`` is at least as good; then the two targets of
``--head auto``: at least the best single head's macro-F1 - 0.01, and at least the RandomForest's + 0.03.
With the evaluation log (``geocrop -v evaluate ... 2> log``) it also lists what ``auto`` chose per fold.

    python bench/auto_table.py docs/evaluation/france-auto/results.jsonl [choices.txt]
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np


def load(path: Path) -> dict[str, dict[int, dict[str, float]]]:
    """method -> fold -> scores of the raw-band runs on all labels (the last line of a key wins)."""
    runs: dict[str, dict[str, object]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            runs[record["key"]] = record
    table: dict[str, dict[int, dict[str, float]]] = defaultdict(dict)
    for record in runs.values():
        if record.get("variant", "supervised") != "supervised" or record.get("labels_per_class") not in (
            None,
            "all",
        ):
            continue
        scores = dict(record["scores"])  # type: ignore[arg-type]
        table[str(record["family"])][int(record["fold"])] = scores  # type: ignore[call-overload]
    return dict(table)


def print_method_table(f1: dict[str, np.ndarray], oa: dict[str, np.ndarray], methods: list[str]) -> None:
    """Markdown: each method's macro-F1 and OA over folds (mean ± std), its paired macro-F1 difference to
    ``auto`` and the folds where ``auto`` is at least as good (a float tie counts as a fold won)."""
    print("| method | macro-F1 | OA | auto − method, macro-F1 (paired) | folds auto >= method |")
    print("|---|---|---|---|---|")
    for m in methods:
        diff = f1["auto"] - f1[m]
        paired = "" if m == "auto" else f"{diff.mean():+.3f} ± {diff.std():.3f}"
        wins = "" if m == "auto" else f"{int((diff >= -1e-12).sum())}/{len(diff)}"
        cells = f"{f1[m].mean():.3f} ± {f1[m].std():.3f} | {oa[m].mean():.3f} ± {oa[m].std():.3f}"
        print(f"| {m} | {cells} | {paired} | {wins} |")


def main(journal: Path, choices: Path | None = None) -> None:
    table = load(journal)
    folds = sorted(set.intersection(*(set(by_fold) for by_fold in table.values())))
    if "auto" not in table or not folds:
        raise SystemExit(f"{journal}: no fold where auto and the other methods all finished")
    order = ["majority", "rf", "gbm", "tempcnn", "inception", "auto"]
    methods = [m for m in order if m in table] + sorted(set(table) - set(order))
    f1 = {m: np.array([table[m][f]["macro_f1"] for f in folds]) for m in methods}
    oa = {m: np.array([table[m][f]["oa"] for f in folds]) for m in methods}
    print(f"{len(folds)} folds ({', '.join(str(f) for f in folds)}) where every method finished\n")
    print_method_table(f1, oa, methods)
    singles = [m for m in methods if m not in ("auto", "majority", "rf")]
    best = max(singles, key=lambda m: f1[m].mean())
    auto = f1["auto"].mean()
    print(
        f"\nauto {auto:.3f} vs best single head {best} {f1[best].mean():.3f} - 0.01 = "
        f"{f1[best].mean() - 0.01:.3f}: {'met' if auto >= f1[best].mean() - 0.01 else 'NOT met'}"
    )
    if "rf" in f1:
        goal = f1["rf"].mean() + 0.03
        print(f"auto {auto:.3f} vs RandomForest + 0.03 = {goal:.3f}: {'met' if auto >= goal else 'NOT met'}")
    if choices is not None and choices.exists():
        print("\nwhat auto chose:")
        for line in choices.read_text(encoding="utf-8").splitlines():
            print(f"  {line}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else None)
