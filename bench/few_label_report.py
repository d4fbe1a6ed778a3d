"""Rebuild the label-scarce report of ``docs/evaluation/france-few-labels/`` from its journal alone.

`geocrop evaluate --report-only` rebuilds a report from the journal too, but it names every method by its
bundle, so it needs each pretrained bundle on disk to find that bundle's runs. The SCARF and S2 + S1
encoders of this report are large, git-ignored and remade only on demand; this script reports every run
the journal holds at the given counts and draws (every method, every pretrained input, every fine-tuning
recipe) with the same report code, so the figures stay reproducible without them.

    python bench/few_label_report.py --labels-per-class 5,10,20,50,all --draws 3,3,2,1

``--pair METHOD AGAINST`` (repeat) also prints METHOD's paired macro-F1 difference against AGAINST at each
count, as the report names methods (mean, and experiments won of all), for pairs the report's paired
table does not hold (it pairs each method with its raw-band head and gradient boosting).
"""

from __future__ import annotations

import argparse
import gzip
import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from geocrop.data.labelled import LabelSource, load_labelled
from geocrop.training.curves import learning_curve_section
from geocrop.training.evaluate import _table_records
from geocrop.training.journal import JOURNAL, read_journal, same_setup
from geocrop.training.label_draws import available, check_draws, fold_splits, shortfalls
from geocrop.training.records import TEMPORAL_VARIANTS, RunRecord
from geocrop.training.report import write_report

TABLE = Path("../shared/realdata/worldcereal/extractions_2023_FRA_LPIS_dekad.geoparquet")
CLASS_MAP = "../shared/realdata/worldcereal/class_mappings.json:CROPTYPE28"


def _counts(text: str) -> tuple[int | None, ...]:
    return tuple(None if c == "all" else int(c) for c in text.split(","))


def _numbered(records: list[RunRecord]) -> list[RunRecord]:
    """Pretrained temporal heads numbered within family and variant by their first run in the journal
    (``tempcnn (temporal 3)``), whichever command ran them: a run of another fine-tuning recipe, made
    with its head alone, keeps that head's number."""
    order: dict[tuple[str, str], list[str]] = {}
    out = []
    for r in records:
        if r.variant not in TEMPORAL_VARIANTS:
            out.append(r)
            continue
        bid = r.key.split("-")[3]  # <family>-<config>-<variant>-<bundle id>[-<recipe>]-f<fold>...
        seen = order.setdefault((r.family, r.variant), [])
        if bid not in seen:
            seen.append(bid)
        out.append(replace(r, bundle_index=seen.index(bid)))
    return out


def unpacked_journal(folder: Path) -> Path:
    """The folder's journal, unpacked from the ``results.jsonl.gz`` the repository keeps (the plain file,
    6 MB of validation logits, stays out of git) when only that is there; `geocrop evaluate` then resumes
    into the folder as usual."""
    journal = folder / JOURNAL
    packed = journal.with_name(JOURNAL + ".gz")
    if not journal.exists() and packed.exists():
        journal.write_bytes(gzip.decompress(packed.read_bytes()))
    return journal


def paired_row(records: Sequence[RunRecord], method: str, against: str, counts: Sequence[int | None]) -> str:
    """A markdown row: ``method``'s mean macro-F1 difference to ``against`` on the same fold, count and
    draw, and the experiments it won, at each of ``counts``."""
    score = {(r.method, r.fold, r.labels_per_class, r.draw): r.scores["macro_f1"] for r in records}
    cells = []
    for count in counts:
        diffs = [
            s - score[(against, f, c, d)]
            for (m, f, c, d), s in score.items()
            if m == method and c == count and (against, f, c, d) in score
        ]
        won = sum(x > 0 for x in diffs)
        cells.append(f"{np.mean(diffs):+.3f} ({won}/{len(diffs)})" if diffs else "")
    return f"| {method} | {against} | " + " | ".join(cells) + " |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--labels-per-class", type=_counts, default=(5, 10, None))
    ap.add_argument("--draws", default="3", help="one number, or one per numeric count")
    ap.add_argument("--table", type=Path, default=TABLE)
    ap.add_argument("--out", type=Path, default=Path("docs/evaluation/france-few-labels"))
    ap.add_argument("--pair", nargs=2, action="append", default=[], metavar=("METHOD", "AGAINST"))
    args = ap.parse_args()
    setup = json.loads((args.out / "evaluation.json").read_text(encoding="utf-8"))
    draws = [int(d) for d in args.draws.split(",")]
    n_draws = check_draws(draws[0] if len(draws) == 1 else tuple(draws), args.labels_per_class)
    source = LabelSource(path=args.table, class_column="ewoc_code", class_map=CLASS_MAP, drop_unmapped=True)
    series = load_labelled(
        source, max_per_class=4 * sum(setup["pixels_per_class"]), seed=setup["train"]["seed"]
    )
    if not same_setup(setup, {**setup, "class_names": list(series.class_names)}):
        raise SystemExit(f"{args.out} was made from other classes than {args.table} gives")
    n_train, n_val = setup["pixels_per_class"]
    splits = fold_splits(
        series, folds=setup["folds"], scheme=setup["scheme"], n_train=n_train, n_val=n_val,
        seed=setup["train"]["seed"],
    )  # fmt: skip
    records = [
        r
        for r in _numbered(list(read_journal(unpacked_journal(args.out)).values()))
        if r.labels_per_class in args.labels_per_class
        and (r.labels_per_class is None or r.draw < n_draws[r.labels_per_class])
    ]
    records.sort(key=lambda r: r.key)
    parcels = available(series, splits)
    report = write_report(
        args.out,
        records=_table_records(records),
        class_names=series.class_names,
        setup={**setup, "n_series": len(series), "labels": args.table.name},
        sections=learning_curve_section(
            args.out, records, shortfalls(args.labels_per_class, parcels, series.class_names), draws=n_draws
        ),
    )
    print(f"{len(records)} runs reported in {report}")
    for method, against in args.pair:
        print(paired_row(records, method, against, args.labels_per_class))


if __name__ == "__main__":
    main()
