"""The evaluation report's learning curves: macro-F1 against labelled parcels per class.

Built from the journal's label-scarce runs (`geocrop.training.label_draws`): for every method and count,
the mean and spread (population std) of macro-F1 over folds x draws; paired differences of each
pretrained input against the same head on raw bands, and of every deep method against gradient boosting,
on the same (fold, draw, configuration) experiments. Writes ``learning_curves.csv``,
``learning_curves_paired.csv``, ``learning_curve_runs.csv`` (every run) and ``learning_curves.png`` and
returns the report's markdown lines.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from geocrop.io.atomic import write_text_atomic
from geocrop.training.records import RunRecord
from geocrop.viz.plots import plot_learning_curves

BASELINES = ("majority", "rf", "gbm")


def _label(count: int | None) -> str:
    return "all" if count is None else str(count)


def _order(count: int | None) -> float:
    return float("inf") if count is None else float(count)


def curve_table(records: Sequence[RunRecord], metric: str = "macro_f1") -> pd.DataFrame:
    """One row per (method, labels per class): runs, mean and std of ``metric`` over folds x draws, and
    of the uncorrected (balanced) decision's ``metric`` where the records hold it."""
    rows: dict[tuple[str, int | None], list[RunRecord]] = {}
    for r in records:
        rows.setdefault((r.method, r.labels_per_class), []).append(r)
    out = []
    for (m, c), runs in sorted(rows.items(), key=lambda kv: (kv[0][0], _order(kv[0][1]))):
        v = [float(r.scores[metric]) for r in runs]
        b = [float(r.balanced_scores[metric]) for r in runs if r.balanced_scores]
        out.append(
            {
                "method": m,
                "family": runs[0].family,
                "labels_per_class": _label(c),
                "runs": len(v),
                f"{metric}_mean": float(np.mean(v)),
                f"{metric}_std": float(np.std(v)),
                f"balanced_{metric}_mean": float(np.mean(b)) if len(b) == len(v) else float("nan"),
                f"balanced_{metric}_std": float(np.std(b)) if len(b) == len(v) else float("nan"),
            }
        )
    return pd.DataFrame(out)


def _experiments(records: Sequence[RunRecord], method: str) -> dict[tuple[int | None, int, int, int], float]:
    return {
        (r.labels_per_class, r.fold, r.draw, r.config_index): float(r.scores["macro_f1"])
        for r in records
        if r.method == method
    }


def paired_table(records: Sequence[RunRecord]) -> pd.DataFrame:
    """Paired macro-F1 differences per count: each pretrained method minus the same family on raw bands
    (``against`` = the raw method), and each deep method minus ``gbm``, over matched experiments."""
    methods = sorted({r.method for r in records})
    deep = [m for m in methods if m not in BASELINES]
    family_of = {r.method: r.family for r in records}
    pairs = [(m, family_of[m]) for m in deep if m != family_of[m] and family_of[m] in methods]
    if "gbm" in methods:
        pairs += [(m, "gbm") for m in deep]
    rows = []
    for method, against in pairs:
        mine, theirs = _experiments(records, method), _experiments(records, against)
        by_count: dict[int | None, list[float]] = {}
        for (count, fold, draw, cfg), value in mine.items():
            other = theirs.get((count, fold, draw, cfg), theirs.get((count, fold, draw, 0)))
            if other is not None:
                by_count.setdefault(count, []).append(value - other)
        for count in sorted(by_count, key=_order):
            d = np.asarray(by_count[count])
            rows.append(
                {
                    "method": method,
                    "against": against,
                    "labels_per_class": _label(count),
                    "pairs": len(d),
                    "diff_mean": float(d.mean()),
                    "diff_std": float(d.std()),
                    "wins": int((d > 0).sum()),
                }
            )
    return pd.DataFrame(rows)


def _positions(counts: Sequence[int | None]) -> dict[int | None, float]:
    """x of each count on a log axis; all labels one doubling right of the largest count."""
    numbers = [c for c in counts if c is not None]
    right = 2.0 * max(numbers) if numbers else 1.0
    return {c: (right if c is None else float(c)) for c in counts}


def plot_curves(records: Sequence[RunRecord], path: Path) -> Path:
    """`plot_learning_curves` with one panel per deep family (its inputs beside the baselines)."""
    table = curve_table(records)
    counts = sorted({r.labels_per_class for r in records}, key=_order)
    x_of = _positions(counts)
    lookup = {_label(c): x_of[c] for c in counts}
    families = sorted({r.family for r in records} - set(BASELINES))
    panels: dict[str, dict[str, tuple[list[float], list[float], list[float]]]] = {}
    for panel in families or ["baselines"]:
        lines: dict[str, tuple[list[float], list[float], list[float]]] = {}
        for method, rows in table.groupby("method", sort=True):
            fam = str(rows["family"].iloc[0])
            if fam != panel and fam not in BASELINES:
                continue
            rows = rows.sort_values("labels_per_class", key=lambda s: s.map(lookup))
            lines[str(method)] = (
                [lookup[c] for c in rows["labels_per_class"]],
                rows["macro_f1_mean"].tolist(),
                rows["macro_f1_std"].tolist(),
            )
        panels[panel] = lines
    return plot_learning_curves(
        panels,
        path,
        ticks=[x_of[c] for c in counts],
        tick_labels=[_label(c) for c in counts],
        title="Macro-F1 against labelled parcels per class (mean ± std over folds x draws)",
    )


def learning_curve_section(
    out: Path,
    records: Sequence[RunRecord],
    short: Mapping[int, Mapping[str, tuple[int, int]]],
    *,
    draws: Mapping[int, int],
) -> list[str]:
    """Write the learning-curve files into ``out`` and return the report's markdown section.

    ``short`` lists, per count, the classes with fewer training parcels than asked in some fold
    (`geocrop.training.label_draws.shortfalls`): those runs train on all of that class's parcels.
    """
    table = curve_table(records)
    paired = paired_table(records)
    write_text_atomic(
        out / "learning_curves.csv", table.to_csv(index=False, float_format="%.4f"), what="report"
    )
    write_text_atomic(
        out / "learning_curves_paired.csv", paired.to_csv(index=False, float_format="%.4f"), what="report"
    )
    plot_curves(records, out / "learning_curves.png")
    runs = pd.DataFrame(
        [
            {
                "method": r.method,
                "labels_per_class": _label(r.labels_per_class),
                "fold": r.fold,
                "draw": r.draw,
                "config_index": r.config_index,
                **r.scores,
                "best_epoch": r.best_epoch,
                "seconds": r.seconds,
            }
            for r in records
        ]
    )
    write_text_atomic(
        out / "learning_curve_runs.csv", runs.to_csv(index=False, float_format="%.4f"), what="report"
    )
    counts = sorted({r.labels_per_class for r in records}, key=_order)
    pretrained = any(r.variant != "supervised" for r in records)
    per_count = ", ".join(f"{n} at {c}" for c, n in sorted(draws.items()))
    md = [
        "## Learning curves: macro-F1 against labelled parcels per class",
        "",
        f"Each method trained on {', '.join(_label(c) for c in counts)} labelled parcels per class, drawn "
        f"from each fold's training part (seeded draws per count: {per_count}; the same parcels for every "
        "method; the draws are nested, so the parcels of a smaller count are among those of a larger "
        "one; all labels is one run per fold) and scored on the full held-out fold. A deep head's "
        "early stopping uses a part of the drawn parcels only. Mean ± std over folds x draws, of each "
        "run's default decision (as Table 1: logits corrected for the training class shares, which the "
        "balanced draws make near uniform); `learning_curves.csv` also holds the uncorrected decision "
        "(`balanced_macro_f1_*`).",
        "",
    ]
    if pretrained:
        md += [
            "The pretrained encoders read no label, but may have been pretrained on every series of the "
            "table, the validation parcels' included (self-supervised pretraining on the area to map); "
            "the counts here are the labels the heads were trained with.",
            "",
        ]
    for count in sorted(short):
        names = ", ".join(
            f"{n} ({lo}-{hi})" if lo != hi else f"{n} ({lo})" for n, (lo, hi) in short[count].items()
        )
        md.append(
            f"- At {count} per class, classes with fewer training parcels in some fold keep all of theirs "
            f"(parcels per fold): {names}."
        )
    if short:
        md.append("")
    md += _markdown_table(table, counts)
    md += ["", "![learning curves](learning_curves.png)", ""]
    if not paired.empty:
        md += _paired_markdown(paired, counts)
    return md


def _markdown_table(table: pd.DataFrame, counts: Sequence[int | None]) -> list[str]:
    labels = [_label(c) for c in counts]
    lines = ["| method | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    order = {b: i for i, b in enumerate(BASELINES)}
    methods = sorted(set(table["method"]), key=lambda m: (order.get(m, len(order)), m))
    cell: dict[tuple[str, str], Any] = {
        (str(row.method), str(row.labels_per_class)): row for row in table.itertuples(index=False)
    }
    for m in methods:
        cells = []
        for lab in labels:
            row = cell.get((m, lab))
            cells.append("" if row is None else f"{row.macro_f1_mean:.3f} ± {row.macro_f1_std:.3f}")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return lines


def _paired_markdown(paired: pd.DataFrame, counts: Sequence[int | None]) -> list[str]:
    labels = [_label(c) for c in counts]
    lines = [
        "Paired differences in macro-F1 on the same fold and draw (mean, and experiments won of all):",
        "",
        "| method | against | " + " | ".join(labels) + " |",
        "|---" * (len(labels) + 2) + "|",
    ]
    for (method, against), rows in paired.groupby(["method", "against"], sort=False):
        by = {row.labels_per_class: row for row in rows.itertuples(index=False)}
        cells = [
            f"{by[lab].diff_mean:+.3f} ({by[lab].wins}/{by[lab].pairs})" if lab in by else ""
            for lab in labels
        ]
        lines.append(f"| {method} | {against} | " + " | ".join(cells) + " |")
    return [*lines, ""]
