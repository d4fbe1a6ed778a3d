"""Why does a frozen pretrained body lose to raw bands? Linear probes on its features, 5 grouped folds.

A logistic regression (scikit-learn, class-balanced, standardised inputs) is fitted on the frozen body's
features of each fold's training parcels and scored (macro-F1) on the held-out fold: the same folds and
inputs as `geocrop evaluate` with all labels. Feature readings compared, per pretrained head:

- InceptionTime: its last module's per-date output averaged over time (what the classifier layer
  reads), with the time-max beside it, averaged over 2, 4 or 8 equal parts of the season, and every date;
- TempCNN: the dense layer's output (what its classifier reads);
- the raw bands (standardised with the head's statistics), flattened, as the reference.

    python docs/evaluation/france-few-labels/all-labels/diagnose_frozen.py > all-labels/diagnose_frozen.txt

It also prints the mean and spread of the features the head's classifier reads (their scale is what a
classifier trained at geocrop's learning rate starts from).
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from geocrop.data.labelled import LabelSource, load_labelled
from geocrop.models.masked_series import step_features
from geocrop.models.registry import build_head
from geocrop.training.head_init import apply_init, init_backbone, read_init
from geocrop.training.label_draws import fold_splits
from geocrop.training.metrics import macro_f1

ROOT = Path(__file__).resolve().parents[4]
DATA = ROOT.parent / "shared/realdata/worldcereal"
HEADS = ROOT / "runs/temporal"


def series():
    source = LabelSource(
        path=DATA / "extractions_2023_FRA_LPIS_dekad.geoparquet",
        class_column="ewoc_code",
        class_map=f"{DATA / 'class_mappings.json'}:CROPTYPE28",
        drop_unmapped=True,
    )
    data = load_labelled(source, max_per_class=4 * 6000, seed=0)
    splits = fold_splits(data, folds=5, scheme="70-30", n_train=5000, n_val=1000, seed=0)
    return data, splits


def inputs(data, pre) -> np.ndarray:
    bb = init_backbone(pre)
    return ((data.values - bb.mean) / bb.std).astype(np.float32)


def inception_readings(x: np.ndarray, pre) -> dict[str, np.ndarray]:
    head = build_head({**pre.head, "n_classes": 2})
    apply_init(head, pre)
    head.eval()
    with torch.no_grad():  # the last module's per-date output (N, T, D), what the classifier averages
        steps = step_features("inception", head, torch.from_numpy(x)).numpy()
    out = {"time-mean (what the classifier reads)": steps.mean(axis=1)}
    out["time-mean + time-max"] = np.concatenate([steps.mean(axis=1), steps.max(axis=1)], axis=1)
    for parts in (2, 4, 8):
        bounds = np.linspace(0, steps.shape[1], parts + 1).astype(int)
        out[f"{parts} segment means"] = np.concatenate(
            [steps[:, a:b].mean(axis=1) for a, b in itertools.pairwise(bounds)], axis=1
        )
    out["every date"] = steps.reshape(len(steps), -1)
    return out


def tempcnn_readings(x: np.ndarray, pre) -> dict[str, np.ndarray]:
    head = build_head({**pre.head, "n_classes": 2})
    apply_init(head, pre)
    head.eval()
    with torch.no_grad():
        dense = head.dense(head.convs(torch.from_numpy(x).transpose(1, 2))).numpy()
    return {"dense output": dense}


def probe(feats: np.ndarray, labels: np.ndarray, splits, n_classes: int) -> list[float]:
    scores = []
    for train_idx, val_idx in splits:
        scale = StandardScaler().fit(feats[train_idx])
        model = LogisticRegression(C=0.1, max_iter=2000, class_weight="balanced")
        model.fit(scale.transform(feats[train_idx]), labels[train_idx])
        pred = model.predict(scale.transform(feats[val_idx]))
        scores.append(macro_f1(labels[val_idx], pred, n_classes))
    return scores


def main() -> None:
    torch.set_num_threads(1)
    data, splits = series()
    n_classes = len(data.class_names)
    print("reading | macro-F1 mean ± std over 5 folds | per fold")
    for name in sys.argv[1:] or ["inception-resample", "inception", "tempcnn-resample", "tempcnn"]:
        pre = read_init(HEADS / name / "head.safetensors")
        x = inputs(data, pre)
        readings = {"raw bands, every date": x.reshape(len(x), -1)}
        readings |= inception_readings(x, pre) if pre.family == "inception" else tempcnn_readings(x, pre)
        for reading, feats in readings.items():
            s = probe(feats, data.labels, splits, n_classes)
            folds = " ".join(f"{v:.3f}" for v in s)
            print(f"{name}: {reading} | {np.mean(s):.3f} ± {np.std(s):.3f} | {folds}", flush=True)
        read = list(readings.values())[1]  # what the head's classifier layer reads
        print(
            f"{name}: the classifier's input, {read.shape[1]} features: mean |mean| "
            f"{np.abs(read.mean(axis=0)).mean():.2f}, median spread {np.median(read.std(axis=0)):.2f}"
        )


if __name__ == "__main__":
    main()
