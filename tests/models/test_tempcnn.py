"""TempCNN: shapes on a fixed grid, a tiny overfit, a refused length, and that it knows *when* it happens."""

from __future__ import annotations

import pytest
import torch

from geocrop.models.registry import build_head, registered_heads

SPEC = {"name": "tempcnn", "in_features": 8, "n_classes": 4, "steps": 12, "hidden": 16, "dense": 32}


def test_tempcnn_is_registered_and_shaped() -> None:
    assert "tempcnn" in registered_heads()
    head = build_head(SPEC).eval()
    assert head(torch.randn(3, 12, 8)).shape == (3, 4)
    with pytest.raises(ValueError, match="built for 12 steps"):
        head(torch.randn(3, 13, 8))


def _training_accuracy(head: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int) -> float:
    """Adam at lr 1e-2 for ``steps`` full-batch steps, then the accuracy on the same samples."""
    opt = torch.optim.Adam(head.parameters(), lr=1e-2)
    for _ in range(steps):
        head.train()
        loss = torch.nn.functional.cross_entropy(head(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    head.eval()
    with torch.no_grad():
        return float((head(x).argmax(1) == y).float().mean())


def test_tempcnn_overfits_32_samples() -> None:
    torch.manual_seed(0)
    x, y = torch.randn(32, 12, 8), torch.arange(32) % 4
    assert _training_accuracy(build_head({**SPEC, "dropout": 0.0}), x, y, 150) == 1.0


def test_tempcnn_tells_an_early_peak_from_a_late_one() -> None:
    """The same bump early or late in the season: two classes a pooling head sees alike, this one not."""
    torch.manual_seed(0)
    early, late = torch.zeros(16, 12, 8), torch.zeros(16, 12, 8)
    early[:, 2:4, 0], late[:, 8:10, 0] = 1.0, 1.0
    x = torch.cat([early, late]) + 0.05 * torch.randn(32, 12, 8)
    y = torch.cat([torch.zeros(16), torch.ones(16)]).long()
    assert _training_accuracy(build_head({**SPEC, "n_classes": 2}), x, y, 60) == 1.0
