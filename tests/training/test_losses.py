"""Eq. 1 against a float64 loop reference, NT-Xent against pytorch-metric-learning, offsets, stability."""

from __future__ import annotations

import math

import pytest
import torch
from pytorch_metric_learning.losses import NTXentLoss as PmlNTXentLoss

from geocrop.errors import InputError
from geocrop.training.losses import ContrastiveLoss, bimodal_ntxent, ntxent


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(a @ b) / (float(a.norm()) * float(b.norm()))


def eq1_reference(z_s: torch.Tensor, z_p: torch.Tensor, tau: float) -> float:
    """Eq. 1 written term by term from the paper, in float64 Python loops, averaged over anchors i."""
    n = z_s.shape[0]
    total = 0.0
    for i in range(n):
        r_iisp = math.exp(_cos(z_s[i], z_p[i]) / tau)
        denom = sum(math.exp(_cos(z_s[i], z_s[k]) / tau) for k in range(n) if k != i)
        denom += sum(math.exp(_cos(z_s[i], z_p[m]) / tau) for m in range(n) if m != i)
        total += -math.log(r_iisp / denom)
    return total / n


def _pair(
    n: int = 10, d: int = 16, seed: int = 0, dtype: torch.dtype = torch.float64
) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    z_s = torch.randn(n, d, generator=g, dtype=dtype)
    z_p = z_s + 0.7 * torch.randn(n, d, generator=g, dtype=dtype)  # correlated partners, like real pairs
    return z_s, z_p


@pytest.mark.parametrize("tau", [0.07, 0.5])
def test_bimodal_matches_float64_reference_of_eq1(tau: float) -> None:
    z_s, z_p = _pair()
    expected = eq1_reference(z_s, z_p, tau)
    got64 = bimodal_ntxent(z_s, z_p, temperature=tau)
    got32 = ContrastiveLoss("bimodal", tau)(z_s.float(), z_p.float())
    assert got64.dtype == torch.float64
    assert float(got64) == pytest.approx(expected, rel=1e-10, abs=1e-10)
    assert float(got32) == pytest.approx(expected, rel=1e-5, abs=1e-5)


def test_bimodal_denominator_excludes_positive_as_printed() -> None:
    # Identical, well-separated pairs: the positive alone outweighs every negative, so the loss as
    # printed (positive not in the denominator) is negative; SimCLR's form could never go below 0.
    z = torch.eye(4, dtype=torch.float64)
    loss = bimodal_ntxent(z, z.clone(), temperature=0.07)
    assert float(loss) == pytest.approx(-1 / 0.07 + math.log(6), rel=1e-12)
    assert float(loss) < 0


def test_bimodal_is_asymmetric_s2_anchor() -> None:
    z_s, z_p = _pair(seed=3)
    assert float(bimodal_ntxent(z_s, z_p)) != pytest.approx(float(bimodal_ntxent(z_p, z_s)))


def test_bimodal_gradcheck() -> None:
    z_s, z_p = _pair(n=4, d=5, seed=1)
    z_s.requires_grad_(True)
    z_p.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: bimodal_ntxent(a, b, temperature=0.5), (z_s, z_p))


def test_ntxent_matches_pytorch_metric_learning() -> None:
    g = torch.Generator().manual_seed(0)
    n = 32
    z_a = torch.randn(n, 24, generator=g)
    z_b = z_a + 2.0 * torch.randn(n, 24, generator=g)
    ours = ContrastiveLoss("unimodal", 0.07)(z_a, z_b)
    labels = torch.cat([torch.arange(n), torch.arange(n)])
    peer = PmlNTXentLoss(temperature=0.07)(torch.cat([z_a, z_b]), labels)
    print(f"NT-Xent ours={float(ours):.7f} pytorch-metric-learning={float(peer):.7f}")
    assert float(ours) == pytest.approx(float(peer), abs=1e-5)


def test_ntxent_gradients_match_pytorch_metric_learning() -> None:
    g = torch.Generator().manual_seed(1)
    z_a = torch.randn(8, 6, generator=g, dtype=torch.float64, requires_grad=True)
    z_b = torch.randn(8, 6, generator=g, dtype=torch.float64, requires_grad=True)
    (ga, gb) = torch.autograd.grad(ntxent(z_a, z_b, temperature=0.2), (z_a, z_b))
    labels = torch.cat([torch.arange(8), torch.arange(8)])
    peer = PmlNTXentLoss(temperature=0.2)(torch.cat([z_a, z_b]), labels)
    (pa, pb) = torch.autograd.grad(peer, (z_a, z_b))
    torch.testing.assert_close(ga, pa, atol=1e-8, rtol=1e-6)
    torch.testing.assert_close(gb, pb, atol=1e-8, rtol=1e-6)


def test_offset_halves_average_to_the_whole_batch() -> None:
    # What a rank computes: its own anchors against the gathered batch. Two halves average to the whole.
    z_s, z_p = _pair(n=8, seed=2)
    bi = [
        bimodal_ntxent(z_s[o : o + 4], z_p[o : o + 4], negatives_s=z_s, negatives_p=z_p, offset=o)
        for o in (0, 4)
    ]
    nt = [ntxent(z_s[o : o + 4], z_p[o : o + 4], negatives_a=z_s, negatives_b=z_p, offset=o) for o in (0, 4)]
    assert float((bi[0] + bi[1]) / 2) == pytest.approx(float(bimodal_ntxent(z_s, z_p)), rel=1e-12)
    assert float((nt[0] + nt[1]) / 2) == pytest.approx(float(ntxent(z_s, z_p)), rel=1e-12)
    # The halves differ from each other, so the check is not trivially satisfied.
    assert float(bi[0]) != pytest.approx(float(bi[1]))


def test_stable_at_low_temperature_and_large_norms() -> None:
    z_s, z_p = _pair(n=6, dtype=torch.float32)
    z_s = z_s * 1e6
    for tau in (1e-3, 0.07):
        assert torch.isfinite(bimodal_ntxent(z_s, z_p, temperature=tau))
        assert torch.isfinite(ntxent(z_s, z_p, temperature=tau))


def test_half_precision_inputs_give_float32_loss() -> None:
    z_s, z_p = _pair(n=6, dtype=torch.float32)
    loss = bimodal_ntxent(z_s.bfloat16(), z_p.bfloat16())
    assert loss.dtype == torch.float32
    assert float(loss) == pytest.approx(float(bimodal_ntxent(z_s, z_p)), abs=0.05)


@pytest.mark.parametrize("tau", [0, -0.1, float("nan"), float("inf")])
def test_invalid_temperature_is_an_input_error(tau: float) -> None:
    with pytest.raises(InputError, match=r"0\.07"):
        ContrastiveLoss("bimodal", tau)
    with pytest.raises(InputError, match="temperature"):
        ContrastiveLoss("unimodal", tau)


def test_bad_shapes_and_arguments_are_input_errors() -> None:
    z_s, z_p = _pair(n=4)
    with pytest.raises(InputError, match="paired"):
        bimodal_ntxent(z_s, z_p[:3])
    with pytest.raises(InputError, match="at least 2"):
        bimodal_ntxent(z_s[:1], z_p[:1])
    with pytest.raises(InputError, match="both"):
        bimodal_ntxent(z_s, z_p, negatives_s=z_s)
    with pytest.raises(InputError, match="offset"):
        bimodal_ntxent(z_s, z_p, negatives_s=z_s, negatives_p=z_p, offset=2)
    with pytest.raises(InputError, match="offset"):
        ntxent(z_s, z_p, offset=1)


@pytest.mark.parametrize("mode", ["bimodal", "unimodal"])
def test_blocked_and_plain_forms_agree_with_gathered_negatives(mode: str) -> None:
    z_a, z_b = _pair(n=24, d=8, seed=11)
    other_a, other_b = _pair(n=16, d=8, seed=12)  # the other ranks' rows
    results = []
    for blocked in (True, False):
        a, b = z_a.clone().requires_grad_(True), z_b.clone().requires_grad_(True)
        # this rank's rows sit at offset 10 of the gathered batch, with their gradients (as when gathered)
        neg_a = torch.cat([other_a[:10], a, other_a[10:]])
        neg_b = torch.cat([other_b[:10], b, other_b[10:]])
        loss = ContrastiveLoss(mode, 0.1, blocked=blocked)(  # type: ignore[arg-type]
            a, b, negatives_a=neg_a, negatives_b=neg_b, offset=10
        )
        results.append((loss.detach(), *torch.autograd.grad(loss, (a, b))))
    for got, want in zip(results[0], results[1], strict=True):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
