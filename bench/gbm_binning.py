"""Fitting `gbm`: geocrop's own binning against scikit-learn's weighted binning, on a real samples table.

Fits the same class-weighted ``HistGradientBoostingClassifier`` on the same training series twice in one
run: as scikit-learn does it alone (raw inputs; with class weights its binner computes one weighted
percentile per bin edge in Python) and as `geocrop.training.trees.fit_trees` does it (edges from one sort
per feature, the booster on bin codes, thresholds written back). Prints seconds, the ratio, and whether
the two models give the same class on the held-out series.

    python bench/gbm_binning.py [--labels TABLE --class-column C --class-map MAP] [--repeats 2]

Not a test: run it by hand and copy the table into docs/performance.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_time import _defaults

from geocrop.data.labelled import LabelSource, load_labelled
from geocrop.data.splits import grouped_folds
from geocrop.models.device import resolve_device
from geocrop.training.any_head import cached_features
from geocrop.training.features import raw_bands
from geocrop.training.trees import fit_trees


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels")
    parser.add_argument("--class-column", default="ewoc_code")
    parser.add_argument("--class-map")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    table, column, class_map = (args.labels, args.class_column, args.class_map)
    if table is None:
        table, column, class_map = _defaults()
    series = load_labelled(
        LabelSource(path=Path(table), class_column=column, class_map=class_map, drop_unmapped=True)
    )
    fold = grouped_folds(series.labels, series.groups, k=5, seed=0)
    train, held = np.flatnonzero(fold != 0), np.flatnonzero(fold == 0)
    backbone = raw_bands(series.values[train], bands=series.bands)
    features = cached_features(series, backbone, np.concatenate([train, held]), resolve_device("cpu"))
    x_train, x_held = features(train), features(held)
    y = series.labels[train]
    n_classes = len(series.class_names)
    print(f"{table}: {len(train)} training series x {x_train.shape[1]} steps x {x_train.shape[2]} bands\n")

    from sklearn.ensemble import HistGradientBoostingClassifier

    times: dict[str, list[float]] = {"scikit-learn binning": [], "geocrop binning": []}
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        alone = HistGradientBoostingClassifier(class_weight="balanced", random_state=0)
        alone.fit(x_train.reshape(len(x_train), -1), y)
        times["scikit-learn binning"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        head = fit_trees("gbm", x_train, y, n_classes=n_classes, seed=0)
        times["geocrop binning"].append(time.perf_counter() - t0)
    with torch.inference_mode():
        ours = head(torch.from_numpy(x_held)).argmax(dim=1).numpy()
    theirs = alone.classes_[alone.predict_proba(x_held.reshape(len(x_held), -1)).argmax(axis=1)]
    base = min(times["scikit-learn binning"])
    print("| fit | seconds (best of runs) | x scikit-learn alone |")
    print("|---|---|---|")
    for name, runs in times.items():
        print(f"| {name} | {min(runs):.1f} | {min(runs) / base:.2f} |")
    print(f"\nsame class on {np.mean(ours == theirs):.1%} of {len(held)} held-out series")


if __name__ == "__main__":
    main()
