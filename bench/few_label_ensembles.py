"""Ensembles of fine-tunes, scored from the label-scarce journal of ``docs/evaluation/france-few-labels/``.

An ensemble here averages the default probabilities (temperature-scaled and prior-corrected, exactly what
each run's bundle predicts: `geocrop.training.calibration`) of several runs of the **same fold and draw**,
each trained on the same drawn parcels, and takes the most probable class. Nothing is trained: every
member's held-out logits, temperature and class shares are in the journal, so the figures are
reproducible from ``results.jsonl.gz`` alone. Each ensemble is compared, over the experiments (fold x
draw) where all its members ran, with the raw-band head at its defaults, with an optional reference
ensemble (e.g. the same number of raw-band fine-tunes, so that averaging alone is not counted as
pretraining's gain) and with gradient boosting.

    python bench/few_label_ensembles.py --labels-per-class 5,10 \\
        --ensemble "tempcnn (temporal 3)" "tempcnn (temporal, frozen 3)" \\
        --against "tempcnn" "tempcnn (resampled dates)"

``--ensemble`` (repeat) takes report names (as in the report's tables); ``--against`` (as many as
``--ensemble``, or none) the reference ensemble of each. ``--also FOLDER:NAME`` adds the runs of another
evaluation folder of the same folds and draws (e.g. ``fixed-schedule/``, trained with other settings of the
folder's fingerprint), their names carrying NAME (``tempcnn (fixed 40 epochs)``), so single runs and
ensembles compare with this folder's. Prints one markdown table per count.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
from few_label_report import _counts, _numbered, unpacked_journal

from geocrop.training.calibration import calibrated_proba, correction
from geocrop.training.journal import read_journal
from geocrop.training.metrics import macro_f1
from geocrop.training.records import RunRecord

Experiment = tuple[int, int]  # (fold, draw)


def default_proba(run: RunRecord) -> np.ndarray:
    """(N_val, K) the run's default probabilities, rebuilt from its journal line."""
    if run.val_logits is None or run.class_shares is None:
        raise SystemExit(f"{run.key} has no logits in the journal; it cannot join an ensemble")
    fix = correction(run.class_shares, frequencies=run.class_shares, head_prior=run.head_prior or "uniform")
    return calibrated_proba(run.val_logits, temperature=run.temperature or 1.0, shares=fix)


def ensemble_scores(
    records: Sequence[RunRecord], members: Sequence[str], count: int | None
) -> dict[Experiment, float]:
    """Macro-F1 of the members' mean probabilities per experiment where every member ran."""
    runs: dict[str, dict[Experiment, RunRecord]] = {m: {} for m in members}
    for r in records:
        if r.method in runs and r.labels_per_class == count and r.config_index == 0:
            runs[r.method][(r.fold, r.draw)] = r
    common = set.intersection(*(set(found) for found in runs.values()))
    out = {}
    for e in sorted(common):
        parts = [runs[m][e] for m in members]
        proba = np.mean([default_proba(r) for r in parts], axis=0)
        n_classes = proba.shape[1]
        out[e] = macro_f1(np.asarray(parts[0].val_true), proba.argmax(axis=1), n_classes)
    return out


def _paired(mine: dict[Experiment, float], theirs: dict[Experiment, float]) -> str:
    both = sorted(set(mine) & set(theirs))
    if not both:
        return ""
    diff = np.array([mine[e] - theirs[e] for e in both])
    return f"{diff.mean():+.3f} ({int((diff > 0).sum())}/{len(both)})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ensemble", nargs="+", action="append", required=True, help="report names of members")
    ap.add_argument("--against", nargs="+", action="append", default=[], help="reference ensemble")
    ap.add_argument("--also", action="append", default=[], help="FOLDER:NAME of runs to add")
    ap.add_argument("--labels-per-class", type=_counts, default=(5, 10))
    ap.add_argument("--out", type=Path, default=Path("docs/evaluation/france-few-labels"))
    args = ap.parse_args()
    if args.against and len(args.against) != len(args.ensemble):
        raise SystemExit("give one --against per --ensemble, or none")
    records = _numbered(list(read_journal(unpacked_journal(args.out)).values()))
    for extra in args.also:
        folder, name = extra.rsplit(":", 1)
        for r in _numbered(list(read_journal(unpacked_journal(Path(folder))).values())):
            records.append(replace(r, recipe=", ".join(x for x in (r.recipe, name) if x)))
    for count in args.labels_per_class:
        label = "all labels" if count is None else f"{count} labels per class"
        print(f"\n{label}\n")
        print("| ensemble | runs | macro-F1 | against raw bands | against its reference | against gbm |")
        print("|---|---|---|---|---|---|")
        for k, members in enumerate(args.ensemble):
            scores = ensemble_scores(records, members, count)
            if not scores:
                continue
            family = members[0].split(" ")[0]
            raw = ensemble_scores(records, [family], count)
            gbm = ensemble_scores(records, ["gbm"], count)
            ref = ensemble_scores(records, args.against[k], count) if args.against else {}
            values = np.array(list(scores.values()))
            ref_cell = f"{_paired(scores, ref)} vs {' + '.join(args.against[k])}" if ref else ""
            print(
                f"| {' + '.join(members)} | {len(values)} | {values.mean():.3f} ± {values.std():.3f} | "
                f"{_paired(scores, raw)} | {ref_cell} | {_paired(scores, gbm)} |"
            )


if __name__ == "__main__":
    main()
