"""The evaluation report: Table-1-style summary, win-matrices, relative-gain box plots, per-class metrics.

Written into the evaluation folder, every file atomically (temporary name, then rename):

- ``report.md``: the summary for people (caveat first when the data is simulated);
- ``table1.csv``: per family, supervised accuracy mean/std and each pretrained variant's mean (min, max)
  relative gain (fractions);
- ``runs.csv``: every run's configuration and validation accuracy;
- ``win_matrix_<family>.csv`` / ``.png`` (Eq. 2) and ``relative_gain_<family>.png``;
- ``per_class_<variant>.csv`` (precision, recall, F1, support; Cohen's kappa in the report) and
  ``confusion_<variant>.csv`` / ``.png`` for the best run (highest validation accuracy) of each variant.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import cohen_kappa_score, confusion_matrix, precision_recall_fscore_support

from geocrop.io.atomic import write_text_atomic
from geocrop.training.evaluate import VARIANTS, RunRecord, records_by
from geocrop.training.protocol import matched_scores, table_row, win_matrix
from geocrop.viz.plots import plot_confusion_matrix, plot_relative_gain, plot_win_matrix

SIMULATED_CAVEAT = (
    "> **Simulated data.** These numbers come from geocrop's scene simulator, a test instrument: they show "
    "that the pipeline runs end to end, not that the method works. Do not read them as evidence about "
    "bi-modal pretraining."
)


def _write(path: Path, text: str) -> None:
    write_text_atomic(path, text, what="report")


def _pct(x: float) -> str:
    return "n/a" if not np.isfinite(x) else f"{100 * x + 0.0:.2f}%"


def _family_tables(
    out: Path, records: Sequence[RunRecord], family: str, n_configs: int, present: Sequence[str]
) -> tuple[list[str], dict[str, Any]]:
    sup = records_by(records, family, "supervised", n_configs)[:, 0]
    pre = {v: records_by(records, family, v, n_configs) for v in present if v != "supervised"}
    pre = {v: a for v, a in pre.items() if a.size}
    row = table_row(family, sup, pre)
    scores = matched_scores(sup, pre)
    names, w = win_matrix({VARIANTS[v]: s for v, s in scores.items()})
    n = len(next(iter(scores.values())))
    frame = pd.DataFrame(w, index=names, columns=names)
    _write(out / f"win_matrix_{family}.csv", frame.to_csv(float_format="%.4f"))
    plot_win_matrix(w, names, out / f"win_matrix_{family}.png", title=f"Win matrix: {family}", n=n)
    gains = {VARIANTS[v]: _gains(a, sup) for v, a in pre.items()}
    plot_relative_gain(
        gains, out / f"relative_gain_{family}.png", title=f"Relative gain over supervised: {family}"
    )
    lines = [f"### {family}", "", f"Win matrix over {n} matched experiments (row beats column, Eq. 2):", ""]
    lines += ["| | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for i, name in enumerate(names):
        lines.append(
            f"| {name} | " + " | ".join(f"{round(w[i, j] * n)}/{n}" for j in range(len(names))) + " |"
        )
    lines += ["", f"![win matrix](win_matrix_{family}.png) ![relative gain](relative_gain_{family}.png)", ""]
    table = {
        "family": family,
        "n_configs": row.n_configs,
        "supervised_mean": row.supervised_mean,
        "supervised_std": row.supervised_std,
    }
    for v in ("unimodal", "bimodal"):
        g = row.gains.get(v)
        table.update(
            {
                f"{v}_gain_mean": g.mean if g else np.nan,
                f"{v}_gain_min": g.min if g else np.nan,
                f"{v}_gain_max": g.max if g else np.nan,
                f"{v}_gain_n": g.n if g else 0,
            }
        )
    table["_row"] = row
    return lines, table


def _gains(acc: np.ndarray, sup: np.ndarray) -> list[float]:
    from geocrop.training.protocol import relative_gain

    g = relative_gain(acc, np.repeat(sup[:, None], acc.shape[1], axis=1)).ravel()
    return [float(x) for x in g if np.isfinite(x)]


def _best_model_section(
    out: Path, records: Sequence[RunRecord], variant: str, class_names: Sequence[str], y_val: np.ndarray
) -> list[str]:
    runs = [r for r in records if r.variant == variant]
    if not runs:
        return []
    best = max(runs, key=lambda r: r.val_accuracy)
    pred = np.asarray(best.val_pred)
    labels = list(range(len(class_names)))
    p, r, f, s = precision_recall_fscore_support(y_val, pred, labels=labels, zero_division=0)
    kappa = float(cohen_kappa_score(y_val, pred, labels=labels))
    cm = confusion_matrix(y_val, pred, labels=labels)
    frame = pd.DataFrame({"class": list(class_names), "precision": p, "recall": r, "f1": f, "support": s})
    _write(out / f"per_class_{variant}.csv", frame.to_csv(index=False, float_format="%.4f"))
    _write(
        out / f"confusion_{variant}.csv",
        pd.DataFrame(cm, index=list(class_names), columns=list(class_names)).to_csv(),
    )
    name = VARIANTS[variant]
    plot_confusion_matrix(cm, class_names, out / f"confusion_{variant}.png", title=f"Best {name}: {best.key}")
    lines = [
        f"### Best {name} model: `{best.key}`",
        "",
        f"{best.family}, {_describe(best.config)}{', bundle ' + best.bundle if best.bundle else ''}: "
        f"accuracy {_pct(best.val_accuracy)}, Cohen's kappa {kappa:.3f}.",
        "",
        "| class | precision | recall | F1 | support |",
        "|---|---|---|---|---|",
    ]
    for row in frame.itertuples(index=False):
        lines.append(f"| {row[0]} | {row[1]:.3f} | {row[2]:.3f} | {row[3]:.3f} | {int(row[4])} |")
    lines += ["", f"![confusion matrix](confusion_{variant}.png)", ""]
    return lines


def _describe(config: Mapping[str, Any]) -> str:
    params = ", ".join(f"{k}={v}" for k, v in sorted(dict(config.get("params", {})).items()))
    return f"{params}, final lr {float(config.get('lr', 0)):.2e}"


def write_report(
    out: Path,
    *,
    records: Sequence[RunRecord],
    class_names: Sequence[str],
    y_val: np.ndarray,
    families: Sequence[str],
    n_configs: int,
    setup: Mapping[str, Any],
    data_note: str | None = None,
) -> Path:
    """Write every report file (see module docstring) into ``out``; returns ``out / "report.md"``."""
    present = [v for v in VARIANTS if any(r.variant == v for r in records)]
    runs = pd.DataFrame(
        [
            {
                "key": r.key,
                "family": r.family,
                "config_index": r.config_index,
                "variant": r.variant,
                "bundle": r.bundle,
                "val_accuracy": r.val_accuracy,
                "lr": r.config.get("lr"),
                "params": _describe(r.config),
                "seconds": round(r.seconds, 2),
            }
            for r in records
        ]
    )
    _write(out / "runs.csv", runs.to_csv(index=False, float_format="%.4f"))
    sections: list[str] = []
    tables = []
    for family in families:
        lines, table = _family_tables(out, records, family, n_configs, present)
        sections += lines
        tables.append(table)
    frame = pd.DataFrame([{k: v for k, v in t.items() if k != "_row"} for t in tables])
    _write(out / "table1.csv", frame.to_csv(index=False, float_format="%.4f"))
    md = ["# geocrop evaluation", ""]
    if data_note:
        md += [data_note, ""]
    md += [
        f"Labels: `{setup.get('labels')}`; classes: {', '.join(class_names)}; split {setup.get('scheme')} by "
        f"parcel; {setup.get('n_train')} training and {setup.get('n_val')} validation pixels; "
        f"{n_configs} configuration(s) per family; {setup.get('train', {}).get('epochs')} epochs.",
        "",
        "## Table 1: supervised accuracy and relative gain of pretraining",
        "",
        "| Head | Supervised accuracy (mean ± std) | Relative gain, uni-modal: mean (min, max) "
        "| Relative gain, bi-modal: mean (min, max) |",
        "|---|---|---|---|",
    ]
    for t in tables:
        row = t["_row"]
        uni, bi = row.gains.get("unimodal"), row.gains.get("bimodal")
        md.append(
            f"| {row.family} | {_pct(row.supervised_mean)} ± {_pct(row.supervised_std)} | "
            f"{uni.percent() if uni else 'n/a'} | {bi.percent() if bi else 'n/a'} |"
        )
    md += ["", "Relative gain = (acc_pretrained - acc_supervised) / acc_supervised per configuration.", ""]
    md += ["## Win matrices and relative gains", "", *sections, "## Per-class results of the best models", ""]
    for variant in present:
        md += _best_model_section(out, records, variant, class_names, np.asarray(y_val))
    report = out / "report.md"
    _write(report, "\n".join(md) + "\n")
    return report
