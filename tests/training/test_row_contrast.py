"""The row-blocked contrastive core against the same loss written with plain autograd ops."""

from __future__ import annotations

import pytest
import torch

from geocrop.training.row_contrast import block_rows_for, row_contrast, row_contrast_plain


def _case(n: int, m: int, excluded_per_row: int, seed: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    anchors = (torch.randn(n, 8, generator=g, dtype=torch.float64) * 3).requires_grad_(True)
    keys = torch.randn(m, 8, generator=g, dtype=torch.float64).requires_grad_(True)
    positive = torch.randint(0, m, (n,), generator=g)
    excluded = torch.stack([torch.randperm(m, generator=g)[:excluded_per_row] for _ in range(n)])
    excluded[:, 0] = positive if excluded_per_row > 1 else excluded[:, 0]  # Eq. 1: positive left out too
    return anchors, keys, positive, excluded


@pytest.mark.parametrize("block_rows", [1, 3, 7, 64])
@pytest.mark.parametrize("excluded_per_row", [1, 2])
def test_blocked_loss_and_gradients_equal_plain_autograd(block_rows: int, excluded_per_row: int) -> None:
    anchors, keys, positive, excluded = _case(n=13, m=20, excluded_per_row=excluded_per_row, seed=block_rows)
    want = row_contrast_plain(anchors, keys, positive, excluded)
    want_da, want_dk = torch.autograd.grad(2.5 * want, (anchors, keys))
    got = row_contrast(anchors, keys, positive, excluded, block_rows=block_rows)
    got_da, got_dk = torch.autograd.grad(2.5 * got, (anchors, keys))
    assert float(got.detach()) == pytest.approx(float(want.detach()), rel=1e-12)
    torch.testing.assert_close(got_da, want_da, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(got_dk, want_dk, rtol=1e-10, atol=1e-12)


def test_gradcheck_through_blocks() -> None:
    anchors, keys, positive, excluded = _case(n=5, m=7, excluded_per_row=2, seed=9)
    assert torch.autograd.gradcheck(
        lambda a, k: row_contrast(a, k, positive, excluded, block_rows=2), (anchors, keys)
    )


def test_without_gradients_the_value_is_the_same() -> None:
    anchors, keys, positive, excluded = _case(n=9, m=9, excluded_per_row=1, seed=4)
    with torch.no_grad(), torch.autograd.profiler.profile() as prof:
        value = row_contrast(anchors, keys, positive, excluded, block_rows=4)
    assert not value.requires_grad
    # one similarity product per block (3 blocks of 9 rows), none of the gradient products
    assert sum(e.count for e in prof.key_averages() if e.key in ("aten::mm", "aten::addmm")) == 3
    plain = row_contrast_plain(anchors, keys, positive, excluded).detach()
    assert float(value) == pytest.approx(float(plain), rel=1e-12)


def test_cpu_blocks_fit_the_cache_budget_and_cuda_takes_one_block() -> None:
    rows = block_rows_for(4096, torch.device("cpu"))
    assert 16 <= rows <= 64 and rows * 4096 * 4 <= 1 << 20
    assert block_rows_for(10**9, torch.device("cpu")) == 16
    assert block_rows_for(4096, torch.device("cuda")) >= 1 << 40
