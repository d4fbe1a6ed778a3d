"""The ensemble head averages its members' probabilities and travels through a bundle like any head."""

from __future__ import annotations

import pytest
import torch

from geocrop.models.ensemble import ProbabilityAverage
from geocrop.models.forest import TreeEnsemble
from geocrop.models.registry import build_head, load_state, registered_heads, state_to_numpy


def _members() -> list[tuple[dict[str, object], torch.nn.Module]]:
    """A random TempCNN and a one-split tree (a head of another kind: buffers, no parameters)."""
    torch.manual_seed(0)
    cnn_spec = {"name": "tempcnn", "in_features": 4, "n_classes": 3, "steps": 6, "hidden": 8, "dense": 16}
    cnn = build_head(cnn_spec).eval()
    tree = TreeEnsemble(in_features=4, steps=6, n_classes=3, n_trees=1, n_nodes=3, depth=1)
    with torch.no_grad():
        tree.feature.copy_(torch.tensor([5, -1, -1]))  # x[step 1, feature 1] <= 0: left leaf
        tree.left.copy_(torch.tensor([1, 1, 2]))
        tree.right.copy_(torch.tensor([2, 1, 2]))
        tree.value.copy_(torch.tensor([[0.0, 0.0, 0.0], [0.7, 0.2, 0.1], [0.1, 0.3, 0.6]]))
    return [(cnn_spec, cnn), (dict(tree.spec), tree.eval())]


def test_the_output_is_the_log_of_the_weighted_mean_probability() -> None:
    members = _members()
    offset = torch.tensor([0.5, -0.25, 0.0])
    ensemble = ProbabilityAverage.of(
        members, weights=[3, 1], temperatures=[2.0, 1.0], offsets=[None, offset.tolist()]
    )
    x = torch.randn(5, 6, 4)
    with torch.inference_mode():
        cnn, tree = (m for _, m in members)
        expected = 0.75 * torch.softmax(cnn(x) / 2.0, dim=1) + 0.25 * torch.softmax(tree(x) + offset, dim=1)
        got = torch.softmax(ensemble(x), dim=1)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert ensemble.spec["weights"] == [0.75, 0.25] and ensemble.spec["temperatures"] == [2.0, 1.0]


def test_it_is_rebuilt_from_its_spec_and_tensors_alone() -> None:
    ensemble = ProbabilityAverage.of(_members())
    assert "ensemble" in registered_heads()
    tensors = state_to_numpy(ensemble, "head")
    assert not any("weights" in k for k in tensors)  # the weights live in the spec
    rebuilt = load_state(build_head(ensemble.spec), tensors, "head", found=ensemble.spec).eval()
    x = torch.randn(4, 6, 4)
    with torch.inference_mode():
        torch.testing.assert_close(rebuilt(x), ensemble(x))


@pytest.mark.parametrize(
    ("weights", "fragment"), [([1.0], "one >= 0 per member"), ([1.0, -1.0], "one >= 0 per member")]
)
def test_bad_weights_are_refused(weights: list[float], fragment: str) -> None:
    specs = [spec for spec, _ in _members()]
    with pytest.raises(ValueError, match=fragment):
        ProbabilityAverage(members=specs, weights=weights)
    with pytest.raises(ValueError, match="at least 2"):
        ProbabilityAverage(members=specs[:1])
