"""Static figures of the evaluation protocol (matplotlib, Agg backend: no display needed).

- `plot_win_matrix`: the paper's Eq. 2 win-matrix as an annotated heatmap (SCARF protocol, Figures 6-8).
- `plot_relative_gain`: box plots of the relative gain of each pretrained variant over supervised.
- `plot_method_scores`: every method's score on every fold, with the means and a baseline line.
- `plot_confusion_matrix`: row-normalised confusion matrix with counts.
- `plot_history`: loss / accuracy per epoch, one line per series (shared with pretraining curves).
- `plot_learning_curves`: score against labelled parcels per class, one panel per head family.

Every function writes a PNG atomically (temporary file renamed into place) and returns its path.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from geocrop.io.atomic import atomic_path


def save_figure(fig: Any, path: str | Path, *, dpi: int = 110, what: str = "plot") -> Path:
    """Write ``fig`` as a PNG at ``path`` atomically (renamed into place) and close it; ``what`` names the
    file in an error."""
    target = Path(path)
    try:
        with atomic_path(target, what=what) as tmp:
            fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(fig)
    return target


def _save(fig: Any, path: str | Path) -> Path:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return save_figure(fig, path)


def _finish_matrix(fig: Any, ax: Any, image: Any, labels: tuple[str, str, str], path: str | Path) -> Path:
    """Label a heatmap's axes and title (``labels``: x, y, title), add its colour bar and save it."""
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    ax.set_title(labels[2])
    fig.colorbar(image, ax=ax, fraction=0.046)
    return _save(fig, path)


def plot_win_matrix(
    matrix: np.ndarray,
    names: Sequence[str],
    path: str | Path,
    *,
    title: str = "Win matrix",
    n: int | None = None,
) -> Path:
    """Heatmap of W (k, k): cell (i, j) = share of experiments where row i beat column j (Eq. 2)."""
    w = np.asarray(matrix, dtype=float)
    fig, ax = plt.subplots(figsize=(1.6 + 1.1 * len(names), 1.2 + 1.0 * len(names)))
    shown = w.copy()
    np.fill_diagonal(shown, np.nan)  # a method never beats itself: grey, not "lost"
    cmap = matplotlib.colormaps["RdYlGn"].with_extremes(bad="lightgrey")
    im = ax.imshow(shown, vmin=0.0, vmax=1.0, cmap=cmap)
    ax.set_xticks(range(len(names)), labels=list(names), rotation=30, ha="right")
    ax.set_yticks(range(len(names)), labels=list(names))
    for i in range(w.shape[0]):
        for j in range(w.shape[1]):
            if i == j:
                continue
            text = f"{w[i, j]:.2f}" if n is None else f"{round(w[i, j] * n)}/{n}"
            ax.text(j, i, text, ha="center", va="center", fontsize=9)
    return _finish_matrix(fig, ax, im, ("beaten method", "winning method", title), path)


def plot_relative_gain(
    gains: Mapping[str, Sequence[float]], path: str | Path, *, title: str = "Relative gain over supervised"
) -> Path:
    """Box plot per variant of (acc_pre - acc_sup) / acc_sup, in percent, with a zero line."""
    names = list(gains)
    data = [100.0 * np.asarray(gains[k], dtype=float) for k in names]
    fig, ax = plt.subplots(figsize=(1.5 + 1.4 * max(len(names), 1), 3.6))
    if names:
        ax.boxplot(data, tick_labels=names, showmeans=True)
    ax.axhline(0.0, color="grey", linewidth=0.8, linestyle="--")
    ax.set_ylabel("relative gain (%)")
    ax.set_title(title)
    return _save(fig, path)


def plot_method_scores(
    scores: Mapping[str, Sequence[float]],
    path: str | Path,
    *,
    baseline: str | None = None,
    title: str = "Macro-F1 per fold",
    ylabel: str = "macro-F1",
) -> Path:
    """One row per method: each fold's score as a dot, the mean as a bar; ``baseline``'s mean as a line."""
    names = list(scores)
    fig, ax = plt.subplots(figsize=(6.4, 0.9 + 0.42 * max(len(names), 1)))
    for row, name in enumerate(names):
        values = np.asarray(scores[name], dtype=float)
        ax.barh(row, np.nanmean(values), color="#c6dbef", height=0.6)
        ax.plot(values, np.full(values.shape, row), "o", color="#08519c", markersize=4)
    if baseline is not None and baseline in scores:
        ax.axvline(float(np.nanmean(scores[baseline])), color="#d62728", linestyle="--", linewidth=1)
    ax.set_yticks(range(len(names)), labels=names)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel(ylabel)
    ax.set_title(title)
    return _save(fig, path)


def plot_confusion_matrix(
    cm: np.ndarray, class_names: Sequence[str], path: str | Path, *, title: str = "Confusion matrix"
) -> Path:
    """Rows = true class, columns = predicted; colours row-normalised (recall), cells show counts."""
    counts = np.asarray(cm, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = np.nan_to_num(counts / counts.sum(axis=1, keepdims=True))
    k = len(class_names)
    fig, ax = plt.subplots(figsize=(2.0 + 0.6 * k, 1.6 + 0.55 * k))
    im = ax.imshow(norm, vmin=0.0, vmax=1.0, cmap="Blues")
    ax.set_xticks(range(k), labels=list(class_names), rotation=45, ha="right")
    ax.set_yticks(range(k), labels=list(class_names))
    for i in range(k):
        for j in range(k):
            colour = "white" if norm[i, j] > 0.6 else "black"
            ax.text(j, i, f"{int(counts[i, j])}", ha="center", va="center", fontsize=8, color=colour)
    return _finish_matrix(fig, ax, im, ("predicted", "true", title), path)


def plot_history(
    series: Mapping[str, Sequence[float]],
    path: str | Path,
    *,
    title: str = "Training",
    xlabel: str = "epoch",
    ylabel: str = "",
    secondary: Mapping[str, Sequence[float]] | None = None,
    secondary_label: str = "accuracy",
) -> Path:
    """Lines per named series against 1..n (e.g. train/val loss); ``secondary`` on a right axis (accuracy)."""
    fig, ax = plt.subplots(figsize=(6.0, 3.6))
    for name, values in series.items():
        ax.plot(np.arange(1, len(values) + 1), list(values), marker="o", markersize=3, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    handles, labels = ax.get_legend_handles_labels()
    if secondary:
        ax2 = ax.twinx()
        for name, values in secondary.items():
            ax2.plot(
                np.arange(1, len(values) + 1),
                list(values),
                linestyle="--",
                marker="s",
                markersize=3,
                label=name,
            )
        ax2.set_ylabel(secondary_label)
        h2, l2 = ax2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    if handles:
        ax.legend(handles, labels, loc="best", fontsize=8)
    ax.set_title(title)
    return _save(fig, path)


#: Line styles of the tree baselines and the floor in learning-curve panels (deep variants get colours).
_BASELINE_STYLE: dict[str, dict[str, Any]] = {
    "majority": {"color": "#969696", "linestyle": ":", "marker": ""},
    "rf": {"color": "#525252", "linestyle": "--", "marker": "s"},
    "gbm": {"color": "#000000", "linestyle": "-.", "marker": "D"},
}


def plot_learning_curves(
    panels: Mapping[str, Mapping[str, tuple[Sequence[float], Sequence[float], Sequence[float]]]],
    path: str | Path,
    *,
    ticks: Sequence[float],
    tick_labels: Sequence[str],
    title: str = "Learning curves",
    ylabel: str = "macro-F1",
) -> Path:
    """One panel per head family: score against labels per class (log axis), mean line and ±std band.

    ``panels[panel][method] = (x, mean, std)``; methods named like the tree baselines (``rf``, ``gbm``,
    ``majority``) are drawn in greys and dashes so the coloured lines are the deep variants. ``ticks``
    and ``tick_labels`` place the counts (e.g. the all-labels point at the far right, labelled "all").
    """
    names = list(panels)
    cols = max(len(names), 1)
    fig, axes = plt.subplots(1, cols, figsize=(4.6 * cols, 3.9), sharey=True, squeeze=False)
    colours = itertools.cycle(plt.get_cmap("tab20")(np.arange(20)))  # more inputs than tab10 has colours
    colour_of: dict[str, Any] = {}
    for ax, panel in zip(axes[0], names, strict=False):
        for method, (x, mean, std) in panels[panel].items():
            xs, m, s = (np.asarray(v, dtype=float) for v in (x, mean, std))
            style = _BASELINE_STYLE.get(method)
            if style is None:
                variant = method.split(" (", 1)[1] if " (" in method else "raw"  # one colour per input
                colour = colour_of.setdefault(variant, next(colours))
                style = {"color": colour, "linestyle": "-", "marker": "o"}
                ax.fill_between(xs, m - s, m + s, color=colour, alpha=0.15, linewidth=0)
            ax.plot(xs, m, label=method, markersize=4, linewidth=1.4, **style)
        ax.set_xscale("log")
        ax.set_xticks(list(ticks), labels=list(tick_labels))
        ax.minorticks_off()
        ax.set_xlabel("labelled parcels per class")
        ax.set_title(panel)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    axes[0][0].set_ylabel(ylabel)
    fig.suptitle(title)
    return _save(fig, path)
