"""What `geocrop train` draws beside its bundle: the training curve and the validation confusion matrix.

For a bundle ``runs/crops.safetensors``:

- ``runs/crops_curve.png``: training and validation loss per epoch, validation accuracy and macro-F1 on
  a second axis, the kept epoch in the title (deep heads only: trees have no epochs);
- ``runs/crops_confusion.png`` and ``runs/crops_confusion.csv``: the held-out validation series, true
  class by row, predicted by column (counts; colours are each row's share, i.e. the class's recall).

These are the validation parcels whose scores the bundle records, so the figures and the printed OA,
macro-F1 and kappa describe the same predictions.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from geocrop.io.atomic import write_text_atomic
from geocrop.training.fit import EpochStats
from geocrop.training.metrics import confusion
from geocrop.viz.plots import plot_confusion_matrix, plot_history


def figure_paths(bundle: Path) -> tuple[Path, Path, Path]:
    """(curve PNG, confusion PNG, confusion CSV) beside ``bundle``."""
    stem = bundle.with_suffix("")
    return (
        stem.with_name(f"{stem.name}_curve.png"),
        stem.with_name(f"{stem.name}_confusion.png"),
        stem.with_name(f"{stem.name}_confusion.csv"),
    )


def write_training_figures(
    bundle: Path,
    *,
    history: Sequence[EpochStats],
    best_epoch: int,
    class_names: Sequence[str],
    y_true: np.ndarray,
    y_pred: np.ndarray,
    head: str,
) -> tuple[Path, ...]:
    """Draw the curve (when there are epochs) and the confusion matrix beside ``bundle``; their paths."""
    curve, matrix, table = figure_paths(bundle)
    written: list[Path] = []
    if history:
        kept = f", epoch {best_epoch} kept" if best_epoch else ""
        written.append(
            plot_history(
                {
                    "training loss": [h.train_loss for h in history],
                    "validation loss": [h.val_loss for h in history],
                },
                curve,
                title=f"{bundle.name}: {head}{kept}",
                ylabel="loss",
                secondary={
                    "validation accuracy": [h.val_accuracy for h in history],
                    "validation macro-F1": [h.val_f1 for h in history],
                },
                secondary_label="validation score",
            )
        )
    counts = confusion(y_true, y_pred, len(class_names))
    oa = float(np.trace(counts)) / max(int(counts.sum()), 1)
    title = f"{bundle.name}: {int(counts.sum())} validation series, OA {oa:.3f}"
    written.append(plot_confusion_matrix(counts, class_names, matrix, title=title))
    frame = pd.DataFrame(counts, index=pd.Index(class_names, name="true"), columns=list(class_names))
    written.append(write_text_atomic(table, frame.to_csv()))
    return tuple(written)
