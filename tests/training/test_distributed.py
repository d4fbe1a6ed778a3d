"""2 CPU ranks (gloo) vs one process: the loss over 2 x B equals the loss over 2B, and so do the gradients.

Each rank encodes its half of the batch with DDP-wrapped ResMLP encoders + projectors, all-gathers the
projections with `gather_with_offset` (gradients kept) and computes the loss of its own anchors against the
gathered batch. The mean of the two ranks' losses must equal the single-process loss over the whole batch,
and the DDP-averaged parameter gradients must equal the single-process gradients (float64, tight tolerance).

Constructing `DistributedDataParallel` imports torch._dynamo (10-15 s per rank on a busy 2-core machine), so
the default run averages gradients over ranks by hand, exactly DDP's rule (all-reduce SUM / world size),
and the `slow` variant runs the same check through real DDP.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from geocrop.models.projector import Projector
from geocrop.models.resmlp import ResMLP
from geocrop.training.distributed import dist_info, gather_with_grad, gather_with_offset
from geocrop.training.losses import bimodal_ntxent, ntxent

WORLD = 2
B = 6  # pairs per rank
SIZES = (3, 5)  # unequal per-rank counts for the gather check


class BiModal(nn.Module):
    """E_s + P_s and E_p + P_p: (x_s (N, 12), x_p (N, 36)) -> (z_s, z_p)."""

    def __init__(self) -> None:
        super().__init__()
        self.e_s, self.p_s = ResMLP(12, width=32, depth=8), Projector(32, 16)
        self.e_p, self.p_p = ResMLP(36, width=32, depth=8), Projector(32, 16)

    def forward(self, x_s: torch.Tensor, x_p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.p_s(self.e_s(x_s)), self.p_p(self.e_p(x_p))


class UniModal(nn.Module):
    """One shared S2 encoder for two views (the SCARF baseline)."""

    def __init__(self) -> None:
        super().__init__()
        self.e, self.p = ResMLP(12, width=32, depth=8), Projector(32, 16)

    def forward(self, x_a: torch.Tensor, x_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.p(self.e(x_a)), self.p(self.e(x_b))


def _models() -> tuple[BiModal, UniModal]:
    torch.manual_seed(0)
    return BiModal().double(), UniModal().double()


def _data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x_s = torch.rand(WORLD * B, 12, generator=g, dtype=torch.float64)
    x_p = torch.rand(WORLD * B, 36, generator=g, dtype=torch.float64)
    x_b = x_s + 0.05 * torch.randn(WORLD * B, 12, generator=g, dtype=torch.float64)
    return x_s, x_p, x_b


def _grads(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: p.grad.detach().clone() for k, p in model.named_parameters() if p.grad is not None}


def _wrap(model: nn.Module, use_ddp: bool) -> nn.Module:
    if use_ddp:
        return DistributedDataParallel(model)
    with torch.no_grad():  # what DDP does at construction: start every rank from rank 0's weights
        for p in model.parameters():
            dist.broadcast(p, src=0)
    return model


def _average_grads(model: nn.Module, use_ddp: bool) -> None:
    if use_ddp:
        return  # DDP's reducer already averaged them during backward
    for p in model.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
            p.grad /= dist.get_world_size()


def _worker(rank: int, init_file: str, out_dir: str, use_ddp: bool) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        torch.set_num_threads(1)
        bi, uni = _models()
        x_s, x_p, x_b = _data()
        mine = slice(rank * B, (rank + 1) * B)
        info = dist_info()
        results: dict[str, object] = {"rank": info.rank, "world_size": info.world_size}

        wrapped = _wrap(bi, use_ddp)  # keep a reference: DDP's reducer must outlive backward
        z_s, z_p = wrapped(x_s[mine], x_p[mine])
        all_s, off = gather_with_offset(z_s)
        all_p, _ = gather_with_offset(z_p)
        loss = bimodal_ntxent(z_s, z_p, negatives_s=all_s, negatives_p=all_p, offset=off)
        loss.backward()
        _average_grads(bi, use_ddp)
        results.update(bi_loss=loss.detach(), bi_grads=_grads(bi), offset=off)

        wrapped = _wrap(uni, use_ddp)
        z_a, z_b = wrapped(x_s[mine], x_b[mine])
        all_a, off = gather_with_offset(z_a)
        all_b, _ = gather_with_offset(z_b)
        loss = ntxent(z_a, z_b, negatives_a=all_a, negatives_b=all_b, offset=off)
        loss.backward()
        _average_grads(uni, use_ddp)
        results.update(uni_loss=loss.detach(), uni_grads=_grads(uni))

        # Unequal per-rank counts: the gather pads internally and returns exactly the concatenation.
        rows = torch.arange(SIZES[rank], dtype=torch.float64)[:, None] + 100 * rank
        rows.requires_grad_(True)
        gathered, off = gather_with_offset(rows)
        (gathered * torch.arange(1, sum(SIZES) + 1, dtype=torch.float64)[:, None]).sum().backward()
        results.update(uneven=gathered.detach(), uneven_offset=off, uneven_grad=rows.grad)
        torch.save(results, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_two_gloo_ranks_match_one_process(tmp_path: Path) -> None:
    _check_two_ranks(tmp_path, use_ddp=False)


@pytest.mark.slow
def test_two_gloo_ranks_with_real_ddp_match_one_process(tmp_path: Path) -> None:
    _check_two_ranks(tmp_path, use_ddp=True)


def _check_two_ranks(tmp_path: Path, *, use_ddp: bool) -> None:
    mp.spawn(_worker, args=(str(tmp_path / "init"), str(tmp_path), use_ddp), nprocs=WORLD, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]

    bi, uni = _models()
    x_s, x_p, x_b = _data()
    z_s, z_p = bi(x_s, x_p)
    bi_loss = bimodal_ntxent(z_s, z_p)
    bi_loss.backward()
    z_a, z_b = uni(x_s, x_b)
    uni_loss = ntxent(z_a, z_b)
    uni_loss.backward()

    assert [r["rank"] for r in ranks] == [0, 1] and ranks[1]["world_size"] == WORLD
    assert [r["offset"] for r in ranks] == [0, B]
    dist_bi = sum(float(r["bi_loss"]) for r in ranks) / WORLD
    dist_uni = sum(float(r["uni_loss"]) for r in ranks) / WORLD
    print(f"bimodal: 2 ranks {dist_bi:.12f} vs 1 process {float(bi_loss.detach()):.12f}")
    print(f"unimodal: 2 ranks {dist_uni:.12f} vs 1 process {float(uni_loss.detach()):.12f}")
    assert abs(dist_bi - float(bi_loss.detach())) < 1e-10
    assert abs(dist_uni - float(uni_loss.detach())) < 1e-10
    # The two ranks' losses differ (different anchors): equality of the mean is not trivial.
    assert abs(float(ranks[0]["bi_loss"]) - float(ranks[1]["bi_loss"])) > 1e-6

    for key, model in (("bi_grads", bi), ("uni_grads", uni)):
        single = _grads(model)
        assert len(single) == len(list(model.parameters()))
        for r in ranks:
            assert r[key].keys() == single.keys()
            for name, g in single.items():
                diff = float((r[key][name] - g).abs().max())
                assert torch.allclose(r[key][name], g, rtol=1e-9, atol=1e-12), f"{key} {name}: {diff:.3g}"

    expected = torch.cat(
        [torch.arange(n, dtype=torch.float64)[:, None] + 100 * r for r, n in enumerate(SIZES)]
    )
    weights = torch.arange(1, sum(SIZES) + 1, dtype=torch.float64)[:, None]
    for r, res in enumerate(ranks):
        torch.testing.assert_close(res["uneven"], expected)
        assert res["uneven_offset"] == sum(SIZES[:r])
        # Both ranks' losses send gradient to every row: the all-reduced gradient is WORLD x the weight.
        start = sum(SIZES[:r])
        torch.testing.assert_close(res["uneven_grad"], WORLD * weights[start : start + SIZES[r]])


def test_single_process_gather_is_identity() -> None:
    t = torch.randn(4, 3, requires_grad=True)
    assert gather_with_grad(t) is t
    assert gather_with_offset(t) == (t, 0)
    assert dist_info().world_size == 1 and dist_info().is_main
