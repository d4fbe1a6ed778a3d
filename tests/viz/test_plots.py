"""Static figures: each helper writes a real PNG atomically (no temporary file left behind)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from geocrop.viz.plots import plot_confusion_matrix, plot_history, plot_relative_gain, plot_win_matrix

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _is_png(path: Path) -> bool:
    return path.read_bytes()[:8] == PNG_MAGIC


def test_every_plot_writes_a_png_and_nothing_else(tmp_path: Path) -> None:
    w = np.array([[0.0, 0.25, 0.5], [0.75, 0.0, 0.5], [0.5, 0.5, 0.0]])
    outputs = [
        plot_win_matrix(w, ["supervised", "uni-modal", "bi-modal"], tmp_path / "w.png", n=4),
        plot_relative_gain({"uni-modal": [-0.1, 0.05], "bi-modal": [0.02, 0.1, 0.2]}, tmp_path / "g.png"),
        plot_confusion_matrix(np.array([[5, 1], [0, 6]]), ["maize", "wheat"], tmp_path / "c.png"),
        plot_history(
            {"train loss": [1.0, 0.7, 0.5], "val loss": [1.1, 0.8, 0.7]},
            tmp_path / "sub" / "h.png",
            secondary={"val accuracy": [0.4, 0.6, 0.7]},
        ),
    ]
    assert all(_is_png(p) for p in outputs)
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["c.png", "g.png", "h.png", "w.png"]


def test_confusion_matrix_with_an_empty_row(tmp_path: Path) -> None:
    # a class never present in the validation set must not divide by zero
    path = plot_confusion_matrix(np.array([[0, 0], [2, 3]]), ["a", "b"], tmp_path / "c.png")
    assert _is_png(path)
