"""ResMLP and projector: the paper's sizes, shapes, per-pixel independence, residual path, input errors."""

from __future__ import annotations

import pytest
import torch

from geocrop.errors import InputError
from geocrop.models.projector import Projector
from geocrop.models.resmlp import ResidualLayer, ResMLP


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_parameter_counts_match_the_paper() -> None:
    e_s, e_p, proj = ResMLP(12), ResMLP(36), Projector()
    n_s, n_p, n_proj = _count(e_s), _count(e_p), _count(proj)
    print(f"E_s: R^12 -> R^256 has {n_s:,} parameters; E_p: R^36 -> R^256 {n_p:,}; P: {n_proj:,}")
    assert 500_000 <= n_s <= 600_000  # the paper: "approximately 550K"
    assert 500_000 <= n_p <= 600_000
    assert n_s == 534_272 and n_p == 540_416 and n_proj == 131_584
    assert sum(isinstance(m, ResidualLayer) for m in e_s.modules()) == 8
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in e_s.modules()) == 0


def test_shapes_and_leading_dimensions() -> None:
    e_s, e_p, proj = ResMLP(12), ResMLP(36), Projector()
    assert e_s(torch.rand(5, 12)).shape == (5, 256)
    assert proj(e_p(torch.rand(5, 36))).shape == (5, 256)
    series = torch.rand(2, 144, 12)  # (batch, T, bands): encoded pixel-time by pixel-time
    out = e_s(series)
    assert out.shape == (2, 144, 256)
    torch.testing.assert_close(out[1, 7], e_s(series[1, 7][None])[0])


@pytest.mark.parametrize("context", [torch.no_grad, torch.inference_mode])
def test_inference_path_computes_the_training_function(context: type) -> None:
    """Without autograd the forward pass works in place; it must give the same features, leave its input
    untouched, and keep leading dimensions."""
    torch.manual_seed(0)
    model = ResMLP(12).eval()
    with torch.no_grad():  # non-trivial norms, so the in-place path's normalisation is exercised
        for module in model.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    x = torch.rand(3, 144, 12)
    before = x.clone()
    expected = model(x)  # grad enabled: the plain module composition
    with context():
        got = model(x)
    assert got.shape == (3, 144, 256)
    torch.testing.assert_close(got, expected.detach(), rtol=1e-5, atol=1e-5)
    assert torch.equal(x, before)


def test_each_pixel_is_encoded_independently_of_the_batch() -> None:
    torch.manual_seed(0)
    model = ResMLP(12).train()
    x = torch.rand(16, 12)
    together = model(x)
    alone = torch.cat([model(x[i : i + 1]) for i in range(16)])
    torch.testing.assert_close(together, alone)


def test_skip_connections_carry_the_stem_output() -> None:
    model = ResMLP(12, width=8, depth=3)
    with torch.no_grad():
        for layer in model.layers:
            assert isinstance(layer, ResidualLayer)
            layer.linear.weight.zero_()
            layer.linear.bias.zero_()
    x = torch.rand(4, 12)
    # With every residual branch zeroed, the output is LayerNorm(stem(x)): the identity path is intact.
    torch.testing.assert_close(model(x), model.norm(model.stem(x)))


def test_gradients_reach_the_stem() -> None:
    model = ResMLP(12)
    model(torch.rand(8, 12)).pow(2).sum().backward()
    assert model.stem.weight.grad is not None and model.stem.weight.grad.abs().sum() > 0


def test_spec_describes_the_architecture() -> None:
    assert ResMLP(36, width=64, depth=4).spec == {
        "name": "resmlp",
        "in_features": 36,
        "width": 64,
        "depth": 4,
    }
    assert Projector(64, 32).spec == {"name": "projector", "in_features": 64, "out_features": 32}


def test_wrong_feature_count_is_an_input_error() -> None:
    with pytest.raises(InputError, match=r"36 features.*expects 12"):
        ResMLP(12)(torch.rand(3, 36))


@pytest.mark.parametrize(
    "kwargs", [{"in_features": 0}, {"in_features": 12, "width": -1}, {"in_features": 12, "depth": 2.5}]
)
def test_invalid_sizes_are_input_errors(kwargs: dict[str, object]) -> None:
    with pytest.raises(InputError, match="positive integer"):
        ResMLP(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="positive integer"):
        Projector(0, 256)
