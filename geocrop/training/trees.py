"""Tree-ensemble baselines: scikit-learn fits them, `geocrop.models.forest.TreeEnsemble` carries them.

``rf``: ``RandomForestClassifier`` with 500 trees, ``class_weight="balanced_subsample"`` (rare crops get
a voice in every tree), on the flattened (T x F) series. ``gbm``: ``HistGradientBoostingClassifier`` with
``class_weight="balanced"`` and scikit-learn's own early stopping on an internal 10 % once the training set
is large. Both fit on the same regridded, normalised inputs the deep heads see, so the comparison is
like for like. The fitted trees are copied into flat arrays (see `TreeEnsemble`) and never pickled.

``gbm`` bins its inputs itself. With class weights, scikit-learn finds each feature's 255 bin edges
through one Python-level weighted percentile per edge: on the France table (422 series x 624 inputs) 47 of
a 48 s fit went there. `bin_edges` computes the same kind of edges (class-balanced weighted quantiles)
with one sort per feature, the booster is fitted on the bin codes (at most 255 distinct values per
feature, which scikit-learn takes as they are), and each split's threshold is then written back as the
raw value it stands for, so the trees read raw inputs like any other. Edges are data values, compared in
float32 by the packed trees and in float64 by scikit-learn, with the same outcome.
"""

from __future__ import annotations

import math
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
    else:
        edges = bin_edges(flat, _balanced_weights(y))
        model = HistGradientBoostingClassifier(class_weight="balanced", random_state=seed)
        model.fit(bin_codes(flat, edges), y)
        _thresholds_to_raw(model, edges)
    return pack_trees(model, kind, steps=steps, features=features, n_classes=n_classes)


#: Bins per feature, scikit-learn's default (`max_bins`): at most this many distinct codes.
MAX_BINS = 255


def _balanced_weights(y: np.ndarray) -> np.ndarray:
    """scikit-learn's ``class_weight="balanced"``: each class weighs in as if it had ``N / classes`` rows."""
    _, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    return (len(y) / (len(counts) * counts))[inverse]


def bin_edges(flat: np.ndarray, weights: np.ndarray, max_bins: int = MAX_BINS) -> list[np.ndarray]:
    """Per feature, at most ``max_bins - 1`` increasing float32 edges at the weighted quantiles k / max_bins.

    A value ``v`` falls in bin ``#edges < v`` (bins closed on the right). A feature with at most
    ``max_bins`` distinct values gets every distinct value but the largest as an edge: one bin per value.
    Missing values (NaN) are left out here and stay missing in the codes.
    """
    levels = np.arange(1, max_bins) / max_bins
    edges = []
    for column in flat.T:
        seen = ~np.isnan(column)
        values, w = column[seen], weights[seen]
        order = np.argsort(values, kind="stable")
        values, w = values[order], w[order]
        first = np.ones(len(values), dtype=bool)  # first of each run of equal values: already sorted,
        first[1:] = values[1:] != values[:-1]  # so no second sort (np.unique) is needed
        distinct = values[first]
        if len(distinct) <= max_bins:
            edges.append(distinct[:-1].astype(np.float32))
            continue
        cum = np.cumsum(w)
        at = np.minimum(np.searchsorted(cum, levels * cum[-1], side="left"), len(values) - 1)
        cut = np.unique(values[at])
        edges.append(cut[cut < distinct[-1]].astype(np.float32))
    return edges


def bin_codes(flat: np.ndarray, edges: list[np.ndarray]) -> np.ndarray:
    """(N, features) bin codes as float32 (NaN where the input is missing), per `bin_edges`."""
    codes = np.empty(flat.shape, dtype=np.float32)
    for f, cut in enumerate(edges):
        column = flat[:, f]
        codes[:, f] = np.searchsorted(cut, column, side="left")
        codes[np.isnan(column), f] = np.nan
    return codes


def _thresholds_to_raw(model: Any, edges: list[np.ndarray]) -> None:
    """Rewrite the fitted booster's split thresholds from code space to raw values, in place.

    A split ``code <= t`` keeps codes ``0 .. floor(t)``, i.e. raw values ``<= edges[floor(t)]``. An
    infinite threshold (scikit-learn's split of missing from present values) means the same in both spaces.
    """
    for iteration in model._predictors:
        for predictor in iteration:
            nodes = predictor.nodes
            for i in np.flatnonzero(~nodes["is_leaf"].astype(bool)):
                t = float(nodes["num_threshold"][i])
                if math.isfinite(t):
                    nodes["num_threshold"][i] = float(edges[int(nodes["feature_idx"][i])][math.floor(t)])


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


#: A fitted model's trees in `_tree`'s convention, the deepest tree's depth, and per-class biases or None.
_Nodes = tuple[list[dict[str, np.ndarray]], int, "np.ndarray | None"]


def pack_trees(model: Any, kind: str, *, steps: int, features: int, n_classes: int) -> TreeEnsemble:
    """A fitted scikit-learn forest (``kind`` rf: probabilities averaged) or booster (gbm: raw scores
    summed) as a `TreeEnsemble` module."""
    nodes, depth, bias = (_forest_nodes if kind == "rf" else _boosting_nodes)(model, n_classes)
    combine = "mean_proba" if kind == "rf" else "sum_logits"
    return _module(
        nodes,
        steps=steps,
        features=features,
        n_classes=n_classes,
        depth=depth,
        combine=combine,
        kind=kind,
        bias=bias,
    )


def _forest_nodes(model: Any, n_classes: int) -> _Nodes:
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
    return nodes, depth, None


def _boosting_nodes(model: Any, n_classes: int) -> _Nodes:
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
    return nodes, depth, bias
