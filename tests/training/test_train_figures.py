"""`geocrop train` draws its curve and validation confusion matrix beside the bundle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from geocrop.training.fit import EpochStats
from geocrop.training.train_figures import figure_paths, write_training_figures


def _epoch(i: int) -> EpochStats:
    return EpochStats(epoch=i, train_loss=1.0 / i, val_loss=1.2 / i, val_accuracy=0.5 + 0.1 * i, lr=1e-3,
                      seconds=0.1, val_f1=0.4 + 0.1 * i)  # fmt: skip


def test_the_matrix_counts_the_validation_series_by_true_and_predicted_class(tmp_path: Path) -> None:
    bundle = tmp_path / "crops.safetensors"
    written = write_training_figures(
        bundle,
        history=[_epoch(1), _epoch(2), _epoch(3)],
        best_epoch=2,
        class_names=["maize", "wheat", "soy"],
        y_true=np.array([0, 0, 1, 1, 1, 2]),
        y_pred=np.array([0, 1, 1, 1, 0, 2]),
        head="tempcnn",
    )
    curve, matrix, table = figure_paths(bundle)
    assert written == (curve, matrix, table)
    assert [p.name for p in written] == ["crops_curve.png", "crops_confusion.png", "crops_confusion.csv"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in (curve, matrix))
    counts = pd.read_csv(table, index_col="true")
    assert counts.loc["maize"].tolist() == [1, 1, 0]  # one maize taken for wheat
    assert counts.loc["wheat"].tolist() == [1, 2, 0]
    assert counts.loc["soy"].tolist() == [0, 0, 1]


def test_a_tree_head_has_no_epochs_so_no_curve(tmp_path: Path) -> None:
    written = write_training_figures(
        tmp_path / "rf.safetensors",
        history=[],
        best_epoch=0,
        class_names=["a", "b"],
        y_true=np.array([0, 1]),
        y_pred=np.array([0, 1]),
        head="rf",
    )
    assert [p.name for p in written] == ["rf_confusion.png", "rf_confusion.csv"]
    assert not (tmp_path / "rf_curve.png").exists()


def test_train_writes_the_figures_and_a_users_colours_reach_the_bundle(tmp_path: Path) -> None:
    from geocrop.io.bundle import load_bundle
    from geocrop.training.hparams import HeadConfig
    from geocrop.training.train import train_model
    from tests.training.test_train import _job

    job = _job(tmp_path, head=HeadConfig("rf", {}, 1e-3), colours={"maize": "#123456"})
    result = train_model(job)
    assert [p.name for p in result.figures] == ["model_confusion.png", "model_confusion.csv"]
    assert pd.read_csv(result.figures[1], index_col="true").to_numpy().sum() == result.n_val
    classes = {c["name"]: c["color"] for c in load_bundle(job.out).metadata["classes"]}
    assert classes["maize"] == "#123456" and classes["wheat"] != "#123456"
