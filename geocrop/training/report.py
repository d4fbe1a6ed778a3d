"""The evaluation report: Table 1 with the spread, the paper's win matrices and gains, per-class F1.

Written into the evaluation folder, rebuilt from the journal each time:

- ``report.md``: Table 1 (every method's OA, macro-F1 and kappa at geocrop's defaults, i.e. with the
  logits corrected for the training class frequencies, as mean ± std over the folds and configurations,
  ranked by macro-F1, beside the majority class's OA and the RandomForest, with paired wins against the
  RandomForest), a plain sentence on how the best deep head compares with the trees, both sides of each
  model (prior-corrected and balanced, `geocrop.training.both_sides`), the expected calibration error
  before and after temperature scaling, the paper's win matrix and relative gain of pretraining per head
  family, per-class F1, confusion matrices (both at defaults);
- ``table1.csv``, ``sides.csv``, ``calibration.csv``, ``runs.csv``, ``per_class_f1.csv``,
  ``win_matrix_<family>.csv``, ``confusion_*.csv``;
- ``scores.png`` (each fold's macro-F1 per method), ``win_matrix_<family>.png``,
  ``relative_gain_<family>.png``, ``confusion_<method>.png``.

Win matrices (Eq. 2) compare input variants of one head family on matched experiments (fold,
configuration, bundle), scored by macro-F1; the relative gain is on overall accuracy, as the paper's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from geocrop.io.atomic import write_text_atomic
from geocrop.training.both_sides import calibration_table, sides_table
from geocrop.training.metrics import confusion, per_class_f1
from geocrop.training.protocol import matched_scores, table_row, win_matrix
from geocrop.training.records import VARIANTS, RunRecord
from geocrop.viz.plots import plot_confusion_matrix, plot_method_scores, plot_relative_gain, plot_win_matrix

SIMULATED_CAVEAT = (
    "> **Simulated data.** These numbers come from geocrop's scene simulator, a test instrument: they show "
    "that the pipeline runs end to end, not that the method works. Do not read them as evidence about "
    "bi-modal pretraining."
)
METRICS = ("oa", "macro_f1", "kappa")
#: Gap in mean macro-F1 under which two methods are reported as a tie (about one fold's noise here).
TIE = 0.01


def _write(path: Path, text: str) -> None:
    write_text_atomic(path, text, what="report")


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).strip("_").replace("__", "_")


def _ms(values: np.ndarray) -> str:
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}"


def _methods(records: Sequence[RunRecord]) -> list[str]:
    order = {"majority": 0, "rf": 1, "gbm": 2}
    names = sorted({r.method for r in records}, key=lambda m: (order.get(m, 3), m))
    return names


def _experiments(records: Sequence[RunRecord], method: str) -> dict[tuple[int, int], RunRecord]:
    return {(r.fold, r.config_index): r for r in records if r.method == method}


def _table(records: Sequence[RunRecord], methods: Sequence[str]) -> list[dict[str, Any]]:
    """One row per method (mean ± std of each metric, paired gaps to the majority class's OA and to the
    RandomForest's macro-F1), ranked by mean macro-F1."""
    rf = _experiments(records, "rf")
    majority = _experiments(records, "majority")
    rows = []
    for m in methods:
        runs = _experiments(records, m)
        row: dict[str, Any] = {"method": m, "runs": len(runs)}
        for metric in METRICS:
            v = np.array([r.scores[metric] for r in runs.values()])
            row[f"{metric}_mean"], row[f"{metric}_std"] = float(v.mean()), float(v.std())
        paired = [
            (r.scores["macro_f1"], rf[f, 0].scores["macro_f1"]) for (f, _), r in runs.items() if (f, 0) in rf
        ]
        if paired and m != "rf":
            diff = np.array([a - b for a, b in paired])
            row["vs_rf_f1_diff"] = float(diff.mean())
            row["vs_rf_wins"] = f"{int((diff > 0).sum())}/{len(diff)}"
        above = [
            r.scores["oa"] - majority[f, 0].scores["oa"] for (f, _), r in runs.items() if (f, 0) in majority
        ]
        if above and m != "majority":
            row["vs_majority_oa_diff"] = float(np.mean(above))
            row["above_majority"] = f"{sum(d >= 0 for d in above)}/{len(above)}"
        rows.append(row)
    return sorted(rows, key=lambda r: -float(r["macro_f1_mean"]))


def _verdict(table: Sequence[dict[str, Any]], families: Sequence[str]) -> list[str]:
    by = {row["method"]: row for row in table}
    deep = [f for f in families if f in by]
    lines: list[str] = []
    if not deep or "rf" not in by:
        return lines
    best = max(deep, key=lambda f: float(by[f]["macro_f1_mean"]))
    rf, b = by["rf"], by[best]
    gap = float(b["macro_f1_mean"] - rf["macro_f1_mean"])
    word = "ties with" if abs(gap) < TIE else ("beats" if gap > 0 else "loses to")
    lines.append(
        f"**The best deep head at these settings, {best}, {word} the RandomForest**: macro-F1 "
        f"{b['macro_f1_mean']:.3f} ± {b['macro_f1_std']:.3f} against {rf['macro_f1_mean']:.3f} ± "
        f"{rf['macro_f1_std']:.3f} ({gap:+.3f}; better on {b.get('vs_rf_wins', 'n/a')} folds), "
        f"at OA {b['oa_mean']:.3f} against {rf['oa_mean']:.3f} ({b['oa_mean'] - rf['oa_mean']:+.3f})."
    )
    if "gbm" in by:
        g = by["gbm"]
        gap = float(b["macro_f1_mean"] - g["macro_f1_mean"])
        word = "ties with" if abs(gap) < TIE else ("beats" if gap > 0 else "loses to")
        lines.append(
            f"Against gradient boosting ({g['macro_f1_mean']:.3f} ± {g['macro_f1_std']:.3f}) it {word} it "
            f"({gap:+.3f})."
        )
    losers = [f for f in deep if by[f]["macro_f1_mean"] < rf["macro_f1_mean"] - TIE]
    if losers:
        lines.append(f"Deep heads below the RandomForest here: {', '.join(losers)}.")
    return [" ".join(lines), ""]


def _family_section(out: Path, records: Sequence[RunRecord], family: str) -> tuple[list[str], dict[str, Any]]:
    """The paper's per-family comparison of input variants (win matrix on macro-F1, gain on OA)."""
    sup = _experiments(records, family)
    variants = sorted({r.method for r in records if r.family == family and r.variant != "supervised"})
    if not sup or not variants:
        return [], {}
    keys = sorted(sup)
    pre_f1 = {}
    pre_oa = {}
    for v in variants:
        runs = _experiments(records, v)
        pre_f1[v] = np.array([[runs[k].scores["macro_f1"] if k in runs else np.nan] for k in keys])
        pre_oa[v] = np.array([[runs[k].scores["oa"] if k in runs else np.nan] for k in keys])
    sup_f1 = np.array([sup[k].scores["macro_f1"] for k in keys])
    sup_oa = np.array([sup[k].scores["oa"] for k in keys])
    matched = matched_scores(sup_f1, pre_f1)
    names, w = win_matrix({("supervised" if k == "supervised" else k): s for k, s in matched.items()})
    n = len(keys)
    _write(
        out / f"win_matrix_{family}.csv",
        pd.DataFrame(w, index=names, columns=names).to_csv(float_format="%.4f"),
    )
    plot_win_matrix(w, names, out / f"win_matrix_{family}.png", title=f"Win matrix (macro-F1): {family}", n=n)
    row = table_row(family, sup_oa, pre_oa)
    gains = {v: _finite(g) for v, g in _gain_lists(sup_oa, pre_oa).items()}
    plot_relative_gain(gains, out / f"relative_gain_{family}.png", title=f"Relative gain in OA: {family}")
    lines = [
        f"### {family}",
        "",
        f"Win matrix over {n} matched experiments (row beats column, Eq. 2, macro-F1):",
        "",
    ]
    lines += ["| | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for i, name in enumerate(names):
        lines.append(
            f"| {name} | " + " | ".join(f"{round(w[i, j] * n)}/{n}" for j in range(len(names))) + " |"
        )
    lines += ["", "Relative gain in OA over the same head on raw bands: "]
    lines += [f"- {v}: {g.percent()}" for v, g in row.gains.items()]
    lines += ["", f"![win matrix](win_matrix_{family}.png) ![relative gain](relative_gain_{family}.png)", ""]
    summary = {"family": family, **{f"{v}_gain_mean": g.mean for v, g in row.gains.items()}}
    return lines, summary


def _gain_lists(sup: np.ndarray, pre: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    from geocrop.training.protocol import relative_gain

    return {v: relative_gain(a[:, 0], sup) for v, a in pre.items()}


def _finite(values: np.ndarray) -> list[float]:
    return [float(x) for x in values if np.isfinite(x)]


def _pooled(records: Sequence[RunRecord], method: str) -> tuple[np.ndarray, np.ndarray]:
    """Reference and prediction of ``method`` over all folds (first configuration)."""
    runs = [r for r in records if r.method == method and r.config_index == 0]
    y = np.concatenate([np.asarray(r.val_true, dtype=np.int64) for r in runs])
    p = np.concatenate([np.asarray(r.val_pred, dtype=np.int64) for r in runs])
    return y, p


def _per_class(
    out: Path, records: Sequence[RunRecord], methods: Sequence[str], names: Sequence[str]
) -> list[str]:
    k = len(names)
    f1 = {m: per_class_f1(*_pooled(records, m), k) for m in methods}
    support = np.bincount(_pooled(records, methods[0])[0], minlength=k)
    frame = pd.DataFrame({"class": list(names), "support": support, **f1})
    _write(out / "per_class_f1.csv", frame.to_csv(index=False, float_format="%.4f"))
    lines = ["| class | support | " + " | ".join(methods) + " |", "|---" * (len(methods) + 2) + "|"]
    for i, name in enumerate(names):
        cells = " | ".join("—" if not np.isfinite(f1[m][i]) else f"{f1[m][i]:.2f}" for m in methods)
        lines.append(f"| {name} | {support[i]} | {cells} |")
    return lines


def write_report(
    out: Path,
    *,
    records: Sequence[RunRecord],
    class_names: Sequence[str],
    setup: Mapping[str, Any],
    data_note: str | None = None,
    sections: Sequence[str] = (),
) -> Path:
    """Write every report file (see module docstring) into ``out``; returns ``out / "report.md"``.

    ``sections``: markdown lines placed before Table 1 (the learning curves of `geocrop.training.curves`).
    """
    methods = _methods(records)
    families = sorted({r.family for r in records if r.family not in ("majority", "rf", "gbm")})
    runs = pd.DataFrame(
        [
            {
                "key": r.key,
                "method": r.method,
                "family": r.family,
                "variant": r.variant,
                "bundle": r.bundle,
                "config_index": r.config_index,
                "fold": r.fold,
                **r.scores,
                **{f"balanced_{k}": v for k, v in (r.balanced_scores or {}).items()},
                "temperature": r.temperature,
                "best_epoch": r.best_epoch,
                "seconds": r.seconds,
                "config": _describe(r.config),
            }
            for r in records
        ]
    )
    _write(out / "runs.csv", runs.to_csv(index=False, float_format="%.4f"))
    table = _table(records, methods)
    _write(out / "table1.csv", pd.DataFrame(table).to_csv(index=False, float_format="%.4f"))
    by_method = {m: [r.scores["macro_f1"] for r in records if r.method == m] for m in methods}
    plot_method_scores(
        by_method, out / "scores.png", baseline="rf", title="Macro-F1 of each run (dots), mean (bar)"
    )
    folds = int(setup.get("folds", 1))
    configs = setup.get("n_configs")
    md = ["# geocrop evaluation", ""]
    if data_note:
        md += [data_note, ""]
    md += [
        f"Labels: `{setup.get('labels')}`, {setup.get('n_series')} series, {len(class_names)} classes "
        f"({', '.join(class_names)}). "
        + (
            f"{folds} grouped, stratified folds (each parcel validates once)"
            if folds > 1
            else f"one {setup.get('scheme')} split by parcel"
        )
        + "; "
        + (
            "each head family at its default configuration"
            if configs is None
            else f"{configs} configurations per family"
        )
        + "; training settings "
        + (
            "adaptive (geocrop's defaults)."
            if setup.get("train", {}).get("epochs") is None
            else f"{setup.get('train')}."
        ),
        "",
        *sections,
        "## Table 1: every method on the same folds, at defaults (mean ± std over runs, by macro-F1)",
        "",
        "Defaults: every model as `geocrop map` and `geocrop predict` apply it (`class_priors` at its "
        "default, the training class frequencies: deep heads' logits corrected for them, tree heads' raw "
        "outputs, which already follow them); the balanced side is in the next table.",
        "",
        "| method | runs | OA | OA − majority (paired; folds >=) | macro-F1 | kappa | macro-F1 − RF (paired) "
        "| folds better than RF |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in table:
        diff, gap = r.get("vs_rf_f1_diff"), r.get("vs_majority_oa_diff")
        cells = [f"{r[f'{m}_mean']:.3f} ± {r[f'{m}_std']:.3f}" for m in METRICS]
        vs_rf = "" if diff is None else f"{diff:+.3f}"
        vs_maj = "" if gap is None else f"{gap:+.3f} ({r['above_majority']})"
        md.append(
            f"| {r['method']} | {r['runs']} | {cells[0]} | {vs_maj} | {' | '.join(cells[1:])} | {vs_rf} "
            f"| {r.get('vs_rf_wins', '')} |"
        )
    md += ["", *_verdict(table, families), "![macro-F1 per run](scores.png)", ""]
    md += _sides_sections(out, records, [r["method"] for r in table])
    sections = []
    for family in families:
        lines, _ = _family_section(out, records, family)
        sections += lines
    if sections:
        md += ["## Pretraining: win matrices and relative gains (the paper's protocol)", "", *sections]
    md += ["## Per-class F1 (all folds pooled)", "", *_per_class(out, records, methods, class_names), ""]
    md += ["## Confusion matrices (all folds pooled)", ""]
    shown = [m for m in methods if m != "majority"]
    for m in shown:
        y, p = _pooled(records, m)
        cm = confusion(y, p, len(class_names))
        slug = _slug(m)
        _write(
            out / f"confusion_{slug}.csv",
            pd.DataFrame(cm, index=list(class_names), columns=list(class_names)).to_csv(),
        )
        plot_confusion_matrix(cm, class_names, out / f"confusion_{slug}.png", title=m)
        md.append(f"![{m}](confusion_{slug}.png)")
    report = out / "report.md"
    _write(report, "\n".join(md) + "\n")
    return report


def _sides_sections(out: Path, records: Sequence[RunRecord], methods: Sequence[str]) -> list[str]:
    """Both sides of each model and its calibration (`geocrop.training.both_sides`), with their CSVs."""
    sides, side_rows = sides_table(records, methods)
    _write(out / "sides.csv", pd.DataFrame(side_rows).to_csv(index=False, float_format="%.4f"))
    md = [
        '## Both sides: training priors (default) and uniform priors (`class_priors="uniform"`)',
        "",
        "The same trained models, applied for the training class frequencies (the default: meant for "
        "overall accuracy and class areas) and as if every class were equally common (meant for rare "
        "classes and macro-F1). Class-share error: half the summed absolute difference between the "
        "predicted and the true class shares of a fold (what an area estimate inherits). Ranked by the "
        "default's macro-F1.",
        "",
        *sides,
        "",
    ]
    calibration, cal_rows = calibration_table(records, methods)
    if cal_rows:
        _write(out / "calibration.csv", pd.DataFrame(cal_rows).to_csv(index=False, float_format="%.4f"))
        md += [
            "## Calibration: expected calibration error of the default probabilities",
            "",
            "Winning-class probability against accuracy, 15 equal-width bins, all held-out folds pooled; T "
            "fitted on each fold's inner validation split (never on the fold it is scored on). The floor is "
            "the ECE that exactly right probabilities would show on as many samples.",
            "",
            *calibration,
            "",
        ]
    return md


def _describe(config: Mapping[str, Any]) -> str:
    params = ", ".join(f"{k}={v}" for k, v in sorted(dict(config.get("params", {})).items()))
    return f"{config.get('family')}({params})"


__all__ = ["SIMULATED_CAVEAT", "VARIANTS", "write_report"]
