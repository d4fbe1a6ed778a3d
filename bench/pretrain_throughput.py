"""Throughput of one bi-modal pretraining step (forward, Eq. 1 loss, backward, Adam) at the paper's batch.

Prints pairs/s, the FLOP rate it implies, that rate as a fraction of this machine's measured float32 matmul
peak (a large ``torch.mm`` timed in the same run), and how long the paper's 100 epochs of 14.4M pairs would
take. FLOPs count the Linear layers' multiply-adds x 2 (FLOP per MAC) x 3 (forward + two backward matmuls),
as is usual; the loss's two (B x B x D) similarity matmuls are listed separately and also counted in the
"all matmuls" column, since they are real work the step has to do.

    python bench/pretrain_throughput.py [--device cpu|cuda] [--batch-size 2048] [--steps 10] [--threads N]

Not a test: run it by hand (``make bench``) and copy the table into docs/pretraining.md.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch
from torch import nn

from geocrop.data.bands import PLANET_FEATURES, S2_BANDS
from geocrop.training.corruption import ScarfCorruption
from geocrop.training.losses import BimodalNTXentLoss
from geocrop.training.pretrain import ContrastiveModel

PAPER_PAIRS = 14_400_000
PAPER_EPOCHS = 100


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(device: torch.device, *, n: int, reps: int) -> float:
    """Best float32 FLOP/s of an (n x n) @ (n x n) product (TF32 off on CUDA: a true float32 peak)."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    torch.mm(a, b)
    _sync(device)
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        torch.mm(a, b)
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / best


def linear_macs_per_pair(model: nn.Module) -> int:
    return sum(m.in_features * m.out_features for m in model.modules() if isinstance(m, nn.Linear))


def time_steps(model: nn.Module, device: torch.device, *, batch: int, steps: int, corruption: float) -> float:
    """Seconds per training step, best of ``steps`` after two warm-up steps."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = BimodalNTXentLoss(0.07)
    corrupt = ScarfCorruption(corruption)
    gen = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(batch, len(S2_BANDS) + PLANET_FEATURES, device=device)
    times = []
    for i in range(steps + 2):
        _sync(device)
        t0 = time.perf_counter()
        xs = corrupt(x[:, : len(S2_BANDS)], generator=gen)
        xp = corrupt(x[:, len(S2_BANDS) :], generator=gen)
        z_s, z_p = model(xs, xp)
        loss = loss_fn(z_s, z_p)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        _sync(device)
        if i >= 2:
            times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]  # median: robust on a shared machine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--corruption", type=float, default=0.2)
    parser.add_argument(
        "--peak-n", type=int, default=None, help="matmul size for the peak (default 4096/8192)"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
    torch.manual_seed(0)
    model = ContrastiveModel(mode="bimodal", width=256, depth=8).to(device)
    batch = args.batch_size
    step_s = time_steps(model, device, batch=batch, steps=args.steps, corruption=args.corruption)
    peak = matmul_peak(device, n=args.peak_n or (8192 if device.type == "cuda" else 4096), reps=5)
    macs = linear_macs_per_pair(model)
    linear_flop = macs * 2 * 3 * batch
    width = 256
    loss_flop = 2 * batch * batch * width * 2 * 3  # S2-S2 and S2-Planet similarity matrices, fwd + bwd
    pairs_s = batch / step_s
    paper_s = PAPER_PAIRS * PAPER_EPOCHS / pairs_s
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    rows = [
        ("device", f"{device.type} ({name}), {torch.get_num_threads()} threads, torch {torch.__version__}"),
        ("batch", f"{batch}"),
        ("step time (median)", f"{step_s * 1e3:.1f} ms"),
        ("pairs/s", f"{pairs_s:,.0f}"),
        ("Linear FLOP/step (MACs x 2 x 3)", f"{linear_flop / 1e9:.2f} GFLOP ({macs:,} MACs/pair)"),
        ("loss matmul FLOP/step", f"{loss_flop / 1e9:.2f} GFLOP"),
        ("achieved, Linear only", f"{linear_flop / step_s / 1e9:.1f} GFLOP/s"),
        ("achieved, all matmuls", f"{(linear_flop + loss_flop) / step_s / 1e9:.1f} GFLOP/s"),
        ("measured fp32 matmul peak", f"{peak / 1e9:.1f} GFLOP/s"),
        ("fraction of peak, Linear only", f"{linear_flop / step_s / peak:.0%}"),
        ("fraction of peak, all matmuls", f"{(linear_flop + loss_flop) / step_s / peak:.0%}"),
        ("100 epochs x 14.4M pairs", f"{paper_s / 3600:.1f} h (paper: 6 h on one V100, ~67K pairs/s)"),
    ]
    print("| quantity | value |\n|---|---|")
    for key, value in rows:
        print(f"| {key} | {value} |")


if __name__ == "__main__":
    main()
