"""Put `bench/auto_folds.py`'s runs into a ``geocrop evaluate`` journal, so ``--report-only`` reports them.

``auto``'s candidates are fitted exactly as ``--head <family>`` is, so one auto run per fold gives the
single heads' runs as well; this replaces the journal's records of ``auto``, ``tempcnn``, ``inception``
and ``gbm`` on those folds with them (same keys, same held-out series: checked), each with its default and
balanced decisions, log-probabilities, temperature, head prior and class shares, as `geocrop evaluate`
writes them. ``auto``'s mean of two is written without a temperature of its own (the runs may carry one
from before it was removed: its decisions do not depend on it).

    python bench/auto_journal.py runs.jsonl docs/evaluation/france-auto/results.jsonl
    geocrop evaluate ... --out docs/evaluation/france-auto --report-only
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from geocrop.training.calibration import calibrated_proba, correction
from geocrop.training.hparams import default_config
from geocrop.training.journal import read_journal
from geocrop.training.metrics import scores


def main(runs: Path, journal: Path) -> None:
    records = read_journal(journal)
    for text in runs.read_text(encoding="utf-8").splitlines():
        if not text.strip():
            continue
        line = json.loads(text)
        family, fold = line["method"], int(line["fold"])
        key = f"{family}-000-supervised-raw-f{fold}"
        old = records.get(key) or records.get(f"gbm-000-supervised-raw-f{fold}")
        if old is None:
            raise SystemExit(f"{journal} has no run of fold {fold} to take the folds' layout from")
        if old.val_true != line["val_true"]:
            raise SystemExit(f"fold {fold}: {runs} holds other series than {journal}")
        z = np.asarray(line["log_p"], dtype=np.float64)
        shares = np.asarray(line["class_shares"], dtype=np.float64)
        head_prior = line["head_prior"]
        temperature = None if family == "auto" else line["temperature"]
        y = np.asarray(line["val_true"])
        default = np.asarray(line["val_pred"])  # as the fitted head predicted them (full precision)
        fix = correction(shares, frequencies=shares, head_prior=head_prior)
        rounded = calibrated_proba(z, temperature=temperature or 1.0, shares=fix).argmax(axis=1)
        if (rounded != default).any():  # a near-tie flipped by the 4 decimals of the stored logits
            print(f"{key}: {(rounded != default).sum()} of {len(y)} decisions tie at the stored precision")
        balanced = calibrated_proba(z, shares=correction(None, frequencies=shares, head_prior=head_prior))
        records[key] = replace(
            old,
            key=key,
            family=family,
            config=asdict(default_config(family)) if family == "auto" else old.config,
            scores=scores(y, default, len(shares)),
            val_pred=[int(v) for v in default],
            seconds=float(line["seconds"]),
            best_epoch=int(line.get("best_epoch", 0)),
            balanced_scores=scores(y, balanced.argmax(axis=1), len(shares)),
            balanced_pred=[int(v) for v in balanced.argmax(axis=1)],
            val_logits=np.round(z, 3).tolist(),
            temperature=temperature,
            class_shares=[round(float(v), 6) for v in shares],
            head_prior=head_prior,
        )
    with journal.open("w", encoding="utf-8") as out:
        for record in records.values():
            out.write(json.dumps(asdict(record)) + "\n")
    print(f"{journal}: {len(records)} runs")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
