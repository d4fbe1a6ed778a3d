"""Tree baselines as heads: the packed arrays give scikit-learn's own probabilities, and load without code."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

from geocrop.models.registry import build_head, load_state, state_to_numpy
from geocrop.training.trees import _balanced_weights, bin_codes, bin_edges, fit_trees


def _data(n_classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(240, 6, 4)).astype(np.float32)
    score = x[:, 1, 0] + x[:, 4, 3] - 0.5 * x[:, 2, 2]
    y = np.digitize(score, np.quantile(score, np.linspace(0, 1, n_classes + 1)[1:-1]))
    x[rng.random(x.shape) < 0.05] = np.nan  # scikit-learn routes missing values; so must the head
    return x, y


@pytest.mark.parametrize("kind", ["rf", "gbm"])
@pytest.mark.parametrize("n_classes", [2, 4])
def test_packed_trees_give_scikit_learns_probabilities(kind: str, n_classes: int) -> None:
    x, y = _data(n_classes)
    head = fit_trees(kind, x, y, n_classes=n_classes + 1, seed=0)  # one class never seen in training
    flat = x.reshape(len(x), -1)
    if kind == "rf":
        ref = RandomForestClassifier(500, class_weight="balanced_subsample", random_state=0).fit(flat, y)
    else:
        ref = HistGradientBoostingClassifier(class_weight="balanced", random_state=0).fit(flat, y)
    expected = np.zeros((len(x), n_classes + 1))
    expected[:, ref.classes_] = ref.predict_proba(flat)
    with torch.inference_mode():
        got = torch.softmax(head(torch.from_numpy(x)), dim=1).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert got[:, n_classes].max() < 1e-5  # the unseen class gets no probability


def test_a_tree_head_round_trips_through_its_arrays() -> None:
    x, y = _data(3)
    head = fit_trees("rf", x, y, n_classes=3, seed=1)
    tensors = state_to_numpy(head, "head")
    assert all(a.dtype != object for a in tensors.values())  # plain arrays: safetensors, never a pickle
    again = load_state(build_head(head.spec), tensors, "head", found=head.spec)
    with torch.inference_mode():
        assert torch.equal(again(torch.from_numpy(x)), head(torch.from_numpy(x)))


def test_a_tree_head_refuses_a_series_of_another_shape() -> None:
    x, y = _data(2)
    head = fit_trees("gbm", x, y, n_classes=2, seed=0)
    with pytest.raises(ValueError, match="expects 6 steps x 4 features"):
        head(torch.zeros(3, 5, 4))


def test_gbm_bins_at_class_balanced_quantiles() -> None:
    rng = np.random.default_rng(3)
    values = np.concatenate([rng.uniform(0, 1, 1900), rng.uniform(10, 11, 100)]).astype(np.float32)
    y = np.repeat([0, 1], [1900, 100])
    edges = bin_edges(values[:, None], _balanced_weights(y))[0]
    assert np.all(np.diff(edges) > 0)
    # each class weighs half, so half the quantile levels fall among the 100 rare-class values: nearly every
    # one of them becomes an edge (127 levels, 100 values), and the common class gets the other ~127
    assert 95 <= int((edges >= 10).sum()) <= 100
    assert 120 <= int((edges < 10).sum()) <= 128
    few = np.array([[2.0], [1.0], [np.nan], [2.0], [5.0]], dtype=np.float32)
    cut = bin_edges(few, np.ones(5))
    assert cut[0].tolist() == [1.0, 2.0]  # one bin per distinct value, the largest needs no edge
    np.testing.assert_array_equal(bin_codes(few, cut)[:, 0], [1, 0, np.nan, 1, 2])


def test_gbm_on_raw_inputs_decides_as_the_booster_fitted_on_codes() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(1500, 3, 2)).astype(np.float32)  # 1,500 distinct values per input: binned
    y = (x[:, 0, 0] + 0.5 * x[:, 2, 1] > 0.3).astype(np.int64) + (x[:, 1, 1] > 1.0)
    x[rng.random(x.shape) < 0.03] = np.nan
    head = fit_trees("gbm", x, y, n_classes=3, seed=0)
    flat = x.reshape(len(x), -1)
    edges = bin_edges(flat, _balanced_weights(y))
    ref = HistGradientBoostingClassifier(class_weight="balanced", random_state=0)
    ref.fit(bin_codes(flat, edges), y)
    new = rng.normal(size=(400, 3, 2)).astype(np.float32)  # unseen values, between and beyond the edges
    new[:5] = x[:5]
    with torch.inference_mode():
        got = torch.softmax(head(torch.from_numpy(new)), dim=1).numpy()
    np.testing.assert_allclose(got, ref.predict_proba(bin_codes(new.reshape(400, -1), edges)), atol=1e-5)
