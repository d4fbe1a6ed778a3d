"""What adding log(training frequency) would do to each head of an evaluation, from its journal alone.

geocrop maps the tree heads (``rf``, ``gbm``) with their raw output because their class-weighted outputs
do not behave as balanced posteriors. This prints, for every method of an evaluation folder, OA and
macro-F1 of its held-out predictions as mapped at defaults, and as they would be with ``log(pi)`` added
to its temperature-scaled outputs (``pi``: the fold's training class frequencies), the full correction
of a balanced head (a deep head's default adds ``(1 - s) log(pi)``, ``s`` its fitted head prior). No
training: the journal keeps each run's log-probabilities, temperature and shares.

    python bench/prior_shift_trees.py docs/evaluation/france-lpis-2023
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from geocrop.training.calibration import calibrated_proba
from geocrop.training.metrics import scores


def main(folder: Path) -> None:
    rows: dict[str, list[tuple[float, float, float, float]]] = defaultdict(list)
    priors: dict[str, list[str | float]] = defaultdict(list)
    for line in (folder / "results.jsonl").read_text(encoding="utf-8").splitlines():
        run = json.loads(line)
        if run.get("val_logits") is None or run.get("labels_per_class") is not None:
            continue
        y = np.asarray(run["val_true"])
        k = len(run["class_shares"])
        shifted = calibrated_proba(
            run["val_logits"], temperature=run["temperature"] or 1.0, shares=run["class_shares"]
        )
        now, then = scores(y, np.asarray(run["val_pred"]), k), scores(y, shifted.argmax(axis=1), k)
        rows[run["family"]].append((now["oa"], now["macro_f1"], then["oa"], then["macro_f1"]))
        priors[run["family"]].append(run.get("head_prior") or "uniform")
    print("| method | head prior | OA, default | macro-F1, default | OA, + log(pi) | macro-F1, + log(pi) |")
    print("|---|---|---|---|---|---|")
    for family, values in sorted(rows.items()):
        m = np.mean(values, axis=0)
        shares = [p for p in priors[family] if not isinstance(p, str)]  # a deep head's fitted share s
        prior = f"s {np.mean(shares):.2f} (mean)" if shares else str(priors[family][0])
        print(f"| {family} | {prior} | {m[0]:.3f} | {m[1]:.3f} | {m[2]:.3f} | {m[3]:.3f} |")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/evaluation/france-lpis-2023"))
