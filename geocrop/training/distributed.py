"""Negatives across ranks: an all-gather that keeps gradients, and torchrun set-up helpers.

Contrastive losses want many negatives. Under DistributedDataParallel each rank holds B pairs; gathering
every rank's embeddings (``gather_with_grad``) lets each rank contrast its B anchors against all R*B
samples. The losses in `geocrop.training.losses` take the gathered tensors plus this rank's row offset in
them, so that the loss over R ranks x B equals the single-process loss over the concatenated R*B batch.

Gradient scaling: with a per-rank loss ``L_r = mean over the rank's B anchors``, the single-process loss
is ``L = mean_r L_r``. The backward of `gather_with_grad` sums, over ranks, the gradient each rank's loss
sends to this rank's rows (an all-reduce of the gathered gradient, then this rank's slice), so rank r
back-propagates ``sum_q dL_q/dz_r``; DDP then averages parameter gradients over the R ranks, which gives
``(1/R) sum_q dL_q/dtheta = dL/dtheta`` exactly: the single-process gradient.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from geocrop.errors import InputError

__all__ = [
    "DistInfo",
    "cleanup_distributed",
    "dist_info",
    "gather_with_grad",
    "gather_with_offset",
    "init_distributed",
]


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits: ``rank`` of ``world_size`` processes, ``local_rank`` on its node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """True on the process that writes checkpoints, bundles and logs."""
        return self.rank == 0


def _active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def dist_info() -> DistInfo:
    """The current process group's position, or a single-process `DistInfo` when none is initialised."""
    if not (dist.is_available() and dist.is_initialized()):
        return DistInfo()
    return DistInfo(
        rank=dist.get_rank(),
        world_size=dist.get_world_size(),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
    )


def init_distributed(*, backend: str | None = None, device: str = "cpu") -> DistInfo:
    """Join the process group torchrun describes in the environment (``WORLD_SIZE``, ``RANK``, ...).

    Without ``WORLD_SIZE`` > 1 this does nothing and returns a single-process `DistInfo`. ``backend``
    defaults to nccl for a CUDA ``device`` and gloo otherwise.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_available():
        raise InputError("WORLD_SIZE > 1 but this torch build has no torch.distributed; run one process")
    if not dist.is_initialized():
        chosen = backend or ("nccl" if device.startswith("cuda") else "gloo")
        dist.init_process_group(backend=chosen)
    return dist_info()


def cleanup_distributed() -> None:
    """Leave the process group, if one was joined."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


class _GatherWithGrad(torch.autograd.Function):
    """Forward: all-gather rows (ranks may hold different counts). Backward: summed gradient, local slice."""

    @staticmethod
    def forward(ctx: Any, local: torch.Tensor, sizes: list[int], rank: int) -> torch.Tensor:
        ctx.sizes = sizes
        ctx.rank = rank
        longest = max(sizes)
        # all_gather needs equal shapes: pad to the longest rank, trim afterwards.
        padded = local.new_zeros((longest, *local.shape[1:]))
        padded[: local.shape[0]] = local
        parts = [torch.empty_like(padded) for _ in sizes]
        dist.all_gather(parts, padded.contiguous())
        return torch.cat([part[:n] for part, n in zip(parts, sizes, strict=True)], dim=0)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        # Every rank's loss sends gradient to every rank's rows; sum them (gloo has no reduce_scatter,
        # so all-reduce the whole gathered gradient) and keep this rank's slice.
        total = grad.contiguous().clone()
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        start = sum(ctx.sizes[: ctx.rank])
        return total[start : start + ctx.sizes[ctx.rank]], None, None


def gather_with_offset(t: torch.Tensor) -> tuple[torch.Tensor, int]:
    """All-gather ``t`` (B_r, ...) from every rank into (sum_r B_r, ...), keeping gradients.

    Returns the concatenation in rank order and this rank's row offset in it: rows
    ``offset : offset + B_r`` are ``t`` itself (the same autograd path). Without an initialised process
    group of more than one rank it returns ``(t, 0)`` unchanged.
    """
    if not _active():
        return t, 0
    rank = dist.get_rank()
    count = torch.tensor([t.shape[0]], dtype=torch.long, device=t.device)
    counts = [torch.zeros_like(count) for _ in range(dist.get_world_size())]
    dist.all_gather(counts, count)
    sizes = [int(c.item()) for c in counts]
    gathered = _GatherWithGrad.apply(t, sizes, rank)
    return gathered, sum(sizes[:rank])


def gather_with_grad(t: torch.Tensor) -> torch.Tensor:
    """All-gather ``t`` (B, ...) over ranks into (R*B, ...) in rank order; gradients flow back to each rank.

    Single-process: returns ``t``. Use `gather_with_offset` when you also need this rank's row offset.
    """
    return gather_with_offset(t)[0]
