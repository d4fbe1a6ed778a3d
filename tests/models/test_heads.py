"""Temporal heads: (batch, T, features) -> (batch, n_classes) logits, registry specs, and a tiny overfit."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
import torch

from geocrop.models.inception import InceptionModule, InceptionTimeHead
from geocrop.models.lstm import BiLSTMHead
from geocrop.models.registry import build_head, registered_heads
from geocrop.models.transformer import TransformerHead, sinusoidal_encoding

TINY: dict[str, dict[str, Any]] = {
    "lstm": {"hidden": 16, "layers": 2, "dropout": 0.0},
    "inception": {"layers": 3, "hidden": 16, "kernel_size": 9, "bottleneck": 8},
    "transformer": {"d_model": 16, "heads": 2, "layers": 2, "dropout": 0.0},
}


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny models on a shared 2-core box: one thread avoids oversubscription stalls."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_builtin_heads_are_registered() -> None:
    assert {"lstm", "inception", "transformer"} <= set(registered_heads())


@pytest.mark.parametrize("family", sorted(TINY))
@pytest.mark.parametrize("features", [12, 256])
def test_head_shapes_on_the_paper_grid(family: str, features: int) -> None:
    head = build_head({"name": family, "in_features": features, "n_classes": 9, **TINY[family]})
    out = head(torch.randn(3, 144, features))
    assert out.shape == (3, 9)
    assert torch.isfinite(out).all()


def test_inception_longest_paper_kernel_keeps_144_steps() -> None:
    module = InceptionModule(32, 8, kernel_size=136)
    # k, k/2, k/4 made odd so "same" padding keeps the length: 135, 67, 33
    assert [c.kernel_size[0] for c in module.convs] == [135, 67, 33]
    assert module(torch.randn(2, 32, 1, 144)).shape == (2, 32, 1, 144)
    head = InceptionTimeHead(256, 9, layers=2, hidden=128, kernel_size=136)
    assert head(torch.randn(2, 144, 256)).shape == (2, 9)


@pytest.mark.parametrize("training", [False, True])
def test_inception_module_equals_its_1d_convolutions(training: bool) -> None:
    """The channels-last (1, k) 2-D formulation computes exactly what its Conv1d/BatchNorm1d layers would."""
    torch.manual_seed(0)
    module = InceptionModule(24, 8, kernel_size=20, bottleneck=16).train(training)
    if not training:  # give the running statistics non-trivial values
        module.bn.running_mean.uniform_(-1, 1)
        module.bn.running_var.uniform_(0.5, 2)
    x = torch.randn(5, 24, 144)
    z = module.bottleneck(x)
    branches = [conv(z) for conv in module.convs] + [module.pool_branch(x)]
    bn = copy.deepcopy(module.bn)
    expected = torch.relu(bn(torch.cat(branches, dim=1)))
    got = module(x.unsqueeze(2).contiguous(memory_format=torch.channels_last)).squeeze(2)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    if training:  # the running statistics moved exactly as BatchNorm1d's did
        torch.testing.assert_close(module.bn.running_mean, bn.running_mean)
        torch.testing.assert_close(module.bn.running_var, bn.running_var)
        assert int(module.bn.num_batches_tracked) == int(bn.num_batches_tracked) == 1


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_transformer_matches_torch_encoder_layers(pooling: str) -> None:
    """Same state dict as nn.TransformerEncoder(norm_first=True): same logits and same gradients."""
    torch.manual_seed(0)
    head = TransformerHead(12, 5, d_model=32, heads=4, layers=2, dropout=0.0, pooling=pooling)  # type: ignore[arg-type]
    layer = torch.nn.TransformerEncoderLayer(32, 4, 128, dropout=0.0, batch_first=True, norm_first=True)
    stock = torch.nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
    stock.load_state_dict(head.encoder.state_dict())  # strict: the key layout is the same
    x = torch.randn(3, 144, 32)
    torch.testing.assert_close(head.encoder(x), stock(x), rtol=1e-5, atol=1e-5)
    head.eval()
    stock.eval()
    with torch.inference_mode():  # eval mode: torch's layer takes its fused fast path
        torch.testing.assert_close(head.encoder(x), stock(x), rtol=1e-5, atol=1e-5)
    head.train()
    stock.train()
    head.encoder(x).square().sum().backward()
    stock(x).square().sum().backward()
    for (name, mine), theirs in zip(head.encoder.named_parameters(), stock.parameters(), strict=True):
        assert mine.grad is not None and theirs.grad is not None
        torch.testing.assert_close(mine.grad, theirs.grad, rtol=1e-4, atol=1e-5, msg=name)


def test_inception_residual_every_third_module() -> None:
    assert len(InceptionTimeHead(12, 3, layers=2, hidden=16, kernel_size=8).shortcuts) == 0
    assert len(InceptionTimeHead(12, 3, layers=4, hidden=16, kernel_size=8).shortcuts) == 1
    assert len(InceptionTimeHead(12, 3, layers=8, hidden=16, kernel_size=8).shortcuts) == 2


def test_transformer_cls_pooling_and_encoding() -> None:
    head = TransformerHead(12, 4, d_model=16, heads=2, layers=2, pooling="cls")
    assert head(torch.randn(2, 144, 12)).shape == (2, 4)
    pe = sinusoidal_encoding(144, 16)
    assert pe.shape == (144, 16)
    assert torch.allclose(pe[0, 0::2], torch.zeros(8)) and torch.allclose(pe[0, 1::2], torch.ones(8))
    # distinct positions get distinct codes (otherwise order would be invisible to attention)
    assert torch.cdist(pe, pe).fill_diagonal_(1.0).min() > 1e-3


def test_lstm_sees_time_order() -> None:
    torch.manual_seed(0)
    head = BiLSTMHead(4, 3, hidden=8, layers=2).eval()
    x = torch.randn(1, 20, 4)
    assert not torch.allclose(head(x), head(x.flip(1)))


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [
        (TransformerHead, {"d_model": 30, "heads": 4}),
        (TransformerHead, {"pooling": "max"}),
        (InceptionTimeHead, {"hidden": 30}),
        (BiLSTMHead, {"layers": 0}),
    ],
)
def test_bad_hyperparameters_are_refused(cls: Any, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        cls(12, 3, **kwargs)


@pytest.mark.parametrize("family", sorted(TINY))
def test_each_head_overfits_32_samples(family: str) -> None:
    """32 random series with random labels: a working head memorises them (accuracy 1.0)."""
    torch.manual_seed(0)
    x = torch.randn(32, 8, 8)
    y = torch.arange(32) % 4
    head = build_head({"name": family, "in_features": 8, "n_classes": 4, **TINY[family]})
    opt = torch.optim.Adam(head.parameters(), lr=1e-2)
    for _ in range(150):
        head.train()
        loss = torch.nn.functional.cross_entropy(head(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if loss.item() < 0.05:
            break
    head.eval()
    with torch.no_grad():
        accuracy = (head(x).argmax(1) == y).float().mean().item()
    assert accuracy == 1.0
