"""The contrastive losses' core, computed in row blocks with the gradient formed in the same pass.

Both losses (`geocrop.training.losses`) reduce to one shape: anchors ``A`` (n, D) already divided by the
temperature, keys ``K`` (m, D), and per anchor ``i`` a positive column ``p_i`` and a few excluded columns
``E_i`` (the anchor itself; in Eq. 1 also the positive)::

    loss = mean_i( logsumexp_{j not in E_i}(A_i . K_j) - A_i . K_{p_i} )

Written with plain tensor ops, autograd keeps the (n, m) similarity matrix and walks it some ten times
(scale, mask, concatenate, max, exp, sum and their backward), each pass a trip through memory for a
16-32 MiB matrix at the paper's batch: on a 2-core CPU about a third of a pretraining step went there
(docs/performance.md, "Pretraining"). Here each block of anchor rows is small enough to stay in cache;
for it we form the similarities, mask, softmax and the gradient ``G = (softmax - onehot(p)) / n`` in
place, and spend it at once on ``dA = G K`` and ``dK += G^T A``: the same three matmuls as autograd, no
element-wise pass over the whole matrix, and the gradient kept for `backward` (a scalar scales it).

On CUDA one block covers every row: a GPU step is bound by kernel launches, which more blocks would add.
"""

from __future__ import annotations

import math
from typing import Any

import torch

__all__ = ["block_rows_for", "row_contrast", "row_contrast_plain"]

#: Bytes of similarities per block on a CPU: about one core's L2 cache, so a block's passes stay in it.
CPU_BLOCK_BYTES = 1 << 20


def block_rows_for(keys: int, device: torch.device, element_bytes: int = 4) -> int:
    """Anchor rows per block: all of them on CUDA, else as many as fit `CPU_BLOCK_BYTES` (at least 16)."""
    if device.type == "cuda":
        return 1 << 62
    return max(16, CPU_BLOCK_BYTES // max(1, keys * element_bytes))


class _RowContrast(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        anchors: torch.Tensor,
        keys: torch.Tensor,
        positive: torch.Tensor,
        excluded: torch.Tensor,
        block: int,
        want_grad: bool,
    ) -> torch.Tensor:
        n = anchors.shape[0]
        grad_a = torch.empty_like(anchors) if want_grad else None
        grad_k = torch.zeros_like(keys) if want_grad else None
        total = torch.zeros((), dtype=torch.float64, device=anchors.device)
        for start in range(0, n, block):
            stop = min(n, start + block)
            a = anchors[start:stop]
            pos_col = positive[start:stop, None]
            sim = a @ keys.T  # (rows, m)
            pos = sim.gather(1, pos_col)
            sim.scatter_(1, excluded[start:stop], -math.inf)
            top = sim.amax(dim=1, keepdim=True)
            sim.sub_(top).exp_()
            norm = sim.sum(dim=1, keepdim=True)
            total += (norm.log() + top - pos).sum(dtype=torch.float64)
            if grad_a is not None and grad_k is not None:
                sim.div_(norm.mul_(n))  # softmax / n
                sim.scatter_add_(1, pos_col, sim.new_full(pos_col.shape, -1.0 / n))
                torch.mm(sim, keys, out=grad_a[start:stop])
                grad_k.addmm_(sim.T, a)
        ctx.save_for_backward(grad_a, grad_k)
        return (total / n).to(anchors.dtype)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        grad_a, grad_k = ctx.saved_tensors
        da = grad_a * grad_out if ctx.needs_input_grad[0] else None
        dk = grad_k * grad_out if ctx.needs_input_grad[1] else None
        return da, dk, None, None, None, None


def row_contrast(
    anchors: torch.Tensor,
    keys: torch.Tensor,
    positive: torch.Tensor,
    excluded: torch.Tensor,
    *,
    block_rows: int | None = None,
) -> torch.Tensor:
    """``mean_i(logsumexp_{j not in excluded[i]}(anchors[i] . keys[j]) - anchors[i] . keys[positive[i]])``.

    Args:
        anchors: (n, D) anchor embeddings, already scaled by 1 / temperature.
        keys: (m, D) key embeddings.
        positive: (n,) column of each anchor's positive in ``keys``.
        excluded: (n, k) columns left out of each anchor's log-sum-exp (may include the positive).
        block_rows: anchor rows per block (default `block_rows_for`).

    Returns:
        Scalar tensor in the anchors' dtype. Similarities are computed in that dtype with autocast off.
    """
    rows = block_rows or block_rows_for(keys.shape[0], keys.device, keys.element_size())
    # forward runs with grad mode off, so whether a backward can follow is decided here: without one
    # (evaluation, torch.no_grad) the two gradient matmuls per block are skipped.
    want_grad = torch.is_grad_enabled() and (anchors.requires_grad or keys.requires_grad)
    with torch.autocast(anchors.device.type, enabled=False):
        out: torch.Tensor = _RowContrast.apply(anchors, keys, positive, excluded, rows, want_grad)
    return out


def row_contrast_plain(
    anchors: torch.Tensor, keys: torch.Tensor, positive: torch.Tensor, excluded: torch.Tensor
) -> torch.Tensor:
    """The same loss with plain autograd ops over the whole similarity matrix: the reference the tests
    hold `row_contrast` to, and the "before" of `bench/pretrain_throughput.py --plain-loss`."""
    sim = anchors @ keys.T
    rows = torch.arange(anchors.shape[0], device=anchors.device)
    pos = sim[rows, positive]
    mask = torch.zeros_like(sim, dtype=torch.bool)
    mask[rows[:, None], excluded] = True
    return (torch.logsumexp(sim.masked_fill(mask, -math.inf), dim=1) - pos).mean()
