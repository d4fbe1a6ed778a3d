"""Tree-ensemble baselines: scikit-learn fits them, `geocrop.models.forest.TreeEnsemble` carries them.

``rf``: ``RandomForestClassifier`` with 500 trees, ``class_weight="balanced_subsample"`` (rare crops get
a voice in every tree), on the flattened (T x F) series. ``gbm``: ``HistGradientBoostingClassifier`` with
``class_weight="balanced"`` and scikit-learn's own early stopping on an internal 10 % once the training set
is large. Both fit on the same regridded, normalised inputs the deep heads see, so the comparison is
like for like. The fitted trees are copied into flat arrays (see `TreeEnsemble`) and never pickled.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch

from geocrop.errors import InputError
from geocrop.models.forest import TreeEnsemble
from geocrop.training.hparams import TREE_FAMILIES

TreeKind = Literal["rf", "gbm"]
TREE_KINDS: tuple[str, ...] = TREE_FAMILIES
#: Trees of the RandomForest baseline (what sits, dzetsaka and most crop-mapping papers use).
RF_TREES = 500


def fit_trees(
    kind: str, x: np.ndarray, y: np.ndarray, *, n_classes: int, seed: int = 0, n_jobs: int | None = None
) -> TreeEnsemble:
    """Fit a ``kind`` ensemble on x (N, T, F) float32 and y (N,) int64; return it packed as a head."""
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

    if kind not in TREE_KINDS:
        raise InputError(f"tree head {kind!r} is unknown; choose one of {', '.join(TREE_KINDS)}")
    flat = np.ascontiguousarray(x.reshape(len(x), -1), dtype=np.float32)
    steps, features = int(x.shape[1]), int(x.shape[2])
    if kind == "rf":
        model: Any = RandomForestClassifier(
            n_estimators=RF_TREES, class_weight="balanced_subsample", n_jobs=n_jobs, random_state=seed
        ).fit(flat, y)
        return _pack_forest(model, steps, features, n_classes)
    model = HistGradientBoostingClassifier(class_weight="balanced", random_state=seed).fit(flat, y)
    return _pack_boosting(model, steps, features, n_classes)


def _module(
    nodes: list[dict[str, np.ndarray]],
    *,
    steps: int,
    features: int,
    n_classes: int,
    depth: int,
    combine: str,
    kind: str,
    bias: np.ndarray | None = None,
) -> TreeEnsemble:
    sizes = np.array([len(n["feature"]) for n in nodes])
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    module = TreeEnsemble(
        in_features=features,
        steps=steps,
        n_classes=n_classes,
        n_trees=len(nodes),
        n_nodes=int(sizes.sum()),
        depth=depth,
        combine=combine,  # type: ignore[arg-type]
        kind=kind,
    )

    def cat(key: str, shift: bool = False) -> np.ndarray:
        return np.concatenate([n[key] + (off if shift else 0) for n, off in zip(nodes, offsets, strict=True)])

    with torch.no_grad():
        module.roots.copy_(torch.from_numpy(offsets.astype(np.int64)))
        module.feature.copy_(torch.from_numpy(cat("feature").astype(np.int64)))
        module.threshold.copy_(torch.from_numpy(cat("threshold").astype(np.float32)))
        module.left.copy_(torch.from_numpy(cat("left", shift=True).astype(np.int64)))
        module.right.copy_(torch.from_numpy(cat("right", shift=True).astype(np.int64)))
        module.nan_left.copy_(torch.from_numpy(cat("nan_left").astype(bool)))
        module.value.copy_(torch.from_numpy(np.concatenate([n["value"] for n in nodes]).astype(np.float32)))
        if bias is not None:
            module.bias.copy_(torch.from_numpy(bias.astype(np.float32)))
    return module.eval()


def _tree(
    leaf: np.ndarray,
    feature: np.ndarray,
    threshold: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    nan_left: np.ndarray,
    value: np.ndarray,
) -> dict[str, np.ndarray]:
    """One tree's node arrays in `TreeEnsemble`'s convention: a leaf has feature -1 and points to itself."""
    idx = np.arange(len(leaf))
    return {
        "feature": np.where(leaf, -1, feature),
        "threshold": np.where(leaf, 0.0, threshold),
        "left": np.where(leaf, idx, left),
        "right": np.where(leaf, idx, right),
        "nan_left": np.asarray(nan_left).astype(bool),
        "value": value,
    }


def _pack_forest(model: Any, steps: int, features: int, n_classes: int) -> TreeEnsemble:
    nodes, depth = [], 0
    classes = model.classes_.astype(np.int64)
    for est in model.estimators_:
        t = est.tree_
        leaf = t.children_left < 0
        value = np.zeros((t.node_count, n_classes))
        counts = t.value[:, 0, :]
        value[:, classes] = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1e-12)
        nan_left = getattr(t, "missing_go_to_left", np.zeros(t.node_count, dtype=np.uint8))
        nodes.append(_tree(leaf, t.feature, t.threshold, t.children_left, t.children_right, nan_left, value))
        depth = max(depth, int(t.max_depth))
    return _module(
        nodes,
        steps=steps,
        features=features,
        n_classes=n_classes,
        depth=depth,
        combine="mean_proba",
        kind="rf",
    )


def _pack_boosting(model: Any, steps: int, features: int, n_classes: int) -> TreeEnsemble:
    classes = model.classes_.astype(np.int64)
    nodes, depth = [], 0
    binary = model.n_trees_per_iteration_ == 1
    for iteration in model._predictors:
        for k, predictor in enumerate(iteration):
            n = predictor.nodes
            leaf = n["is_leaf"].astype(bool)
            value = np.zeros((len(n), n_classes))
            # binary: one raw score for classes_[1] (softmax([0, s]) = sigmoid(s), as scikit-learn)
            value[:, classes[1] if binary else classes[k]] = np.where(leaf, n["value"], 0.0)
            nodes.append(
                _tree(
                    leaf,
                    n["feature_idx"],
                    n["num_threshold"],
                    n["left"].astype(np.int64),
                    n["right"].astype(np.int64),
                    n["missing_go_to_left"],
                    value,
                )
            )
            depth = max(depth, int(n["depth"].max()))
    baseline = np.asarray(model._baseline_prediction, dtype=np.float64).reshape(-1)
    bias = np.full(n_classes, -1e4)  # a class the booster never saw: no probability
    if binary:
        bias[classes] = [0.0, baseline[0]]
    else:
        bias[classes] = baseline
    return _module(
        nodes,
        steps=steps,
        features=features,
        n_classes=n_classes,
        depth=depth,
        combine="sum_logits",
        kind="gbm",
        bias=bias,
    )
