"""SCARF corruption: replacement rate, same-column donors, identity at rate 0, seeding, input errors."""

from __future__ import annotations

import pytest
import torch

from geocrop.errors import InputError
from geocrop.training.corruption import ScarfCorruption


def _batch(n: int = 400, f: int = 12) -> torch.Tensor:
    # Column j holds values in [j*1000, j*1000 + n): every value is unique and names its column.
    return torch.arange(n, dtype=torch.float64)[:, None] + 1000.0 * torch.arange(f, dtype=torch.float64)


@pytest.mark.parametrize("rate", [0.2, 0.6])
def test_fraction_replaced_is_close_to_rate(rate: float) -> None:
    x = _batch()
    out = ScarfCorruption(rate)(x, generator=torch.Generator().manual_seed(0))
    changed = float((out != x).double().mean())
    # A replacement may draw the entry's own row (prob 1/n), so the changed fraction is rate * (1 - 1/n).
    expected = rate * (1 - 1 / x.shape[0])
    sd = (expected * (1 - expected) / x.numel()) ** 0.5
    print(f"rate={rate}: changed fraction {changed:.4f} (expected {expected:.4f} +- {sd:.4f})")
    assert abs(changed - expected) < 5 * sd


def test_replaced_values_come_from_the_same_column_of_the_batch() -> None:
    x = _batch()
    out = ScarfCorruption(0.6)(x, generator=torch.Generator().manual_seed(1))
    for j in range(x.shape[1]):
        assert set(out[:, j].tolist()) <= set(x[:, j].tolist())
    assert out.shape == x.shape and out.dtype == x.dtype


def test_replaced_values_come_from_the_marginals_pool_when_given() -> None:
    x = _batch(50, 4)
    pool = -_batch(30, 4) - 1  # disjoint from x: every changed value must come from the pool's column
    out = ScarfCorruption(0.5)(x, generator=torch.Generator().manual_seed(2), marginals=pool)
    changed = out != x
    assert changed.any()
    for j in range(4):
        assert set(out[changed[:, j], j].tolist()) <= set(pool[:, j].tolist())
        assert torch.equal(out[~changed[:, j], j], x[~changed[:, j], j])


def test_rate_zero_is_identity_and_draws_nothing() -> None:
    x = _batch(20, 3)
    g = torch.Generator().manual_seed(5)
    state = g.get_state()
    out = ScarfCorruption(0.0)(x, generator=g)
    assert torch.equal(out, x)
    assert torch.equal(g.get_state(), state)


def test_seeded_generator_is_reproducible_and_views_differ() -> None:
    x = _batch(64, 12)
    scarf = ScarfCorruption(0.2)
    a = scarf(x, generator=torch.Generator().manual_seed(7))
    b = scarf(x, generator=torch.Generator().manual_seed(7))
    g = torch.Generator().manual_seed(7)
    c, d = scarf(x, generator=g), scarf(x, generator=g)
    assert torch.equal(a, b)
    assert torch.equal(a, c)
    assert not torch.equal(c, d)


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, float("nan"), "0.2", True])
def test_invalid_rate_is_an_input_error_with_a_fix(rate: object) -> None:
    with pytest.raises(InputError, match=r"\[0, 1\).*0\.2"):
        ScarfCorruption(rate)  # type: ignore[arg-type]


def test_bad_shapes_are_input_errors() -> None:
    scarf = ScarfCorruption(0.2)
    with pytest.raises(InputError, match=r"\(N, F\)"):
        scarf(torch.zeros(3, 4, 5))
    with pytest.raises(InputError, match="features"):
        scarf(torch.zeros(3, 4), marginals=torch.zeros(3, 5))
    with pytest.raises(InputError, match="empty"):
        scarf(torch.zeros(3, 4), marginals=torch.zeros(0, 4))
