"""Throughput of one bi-modal pretraining step (forward, Eq. 1 loss, backward, Adam) at the paper's batch.

Prints pairs/s, the FLOP rate it implies, that rate as a fraction of this machine's measured float32 matmul
peak (a large ``torch.mm`` timed in the same run), and how long the paper's 100 epochs of 14.4M pairs would
take. FLOPs count the Linear layers' multiply-adds x 2 (FLOP per MAC) x 3 (forward + two backward matmuls),
as is usual; the loss's two (B x B x D) similarity matmuls are listed separately and also counted in the
"all matmuls" column, since they are real work the step has to do.

    python bench/pretrain_throughput.py [--device cpu|cuda] [--batch-size 2048] [--steps 10] [--threads N]
                                        [--precision fp32,tf32,bf16] [--plain-loss] [--json PATH]

``--precision`` takes a comma-separated list and gives one column each: ``fp32`` is what `geocrop pretrain`
runs (float32, TF32 off), ``tf32`` the same with TF32 matmuls allowed, ``bf16`` the step under bf16 autocast
(neither is an option of `geocrop pretrain` yet: they show what one would gain). Each is compared with the
matching matmul peak (float32 with TF32 off, TF32, bf16). ``--plain-loss`` adds, for each precision, a
column with the loss in its plain autograd form (`geocrop.training.row_contrast.row_contrast_plain`, what
`geocrop pretrain` ran before the row-blocked loss), so the two are compared in one run.

Not a test: run it by hand (``make bench``) and copy the table into docs/pretraining.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import time
from pathlib import Path

import torch
from torch import nn

from geocrop.core.bands import PLANET_FEATURES, S2_BANDS
from geocrop.models.contrastive import ContrastiveModel
from geocrop.training.corruption import ScarfCorruption
from geocrop.training.losses import ContrastiveLoss

PAPER_PAIRS = 14_400_000
PAPER_EPOCHS = 100


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(device: torch.device, *, n: int, reps: int, dtype: torch.dtype = torch.float32) -> float:
    """Best FLOP/s of an (n x n) @ (n x n) product in ``dtype`` (TF32 as currently set on CUDA)."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
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


def time_steps(
    model: nn.Module,
    device: torch.device,
    *,
    batch: int,
    steps: int,
    corruption: float,
    bf16: bool = False,
    blocked: bool = True,
) -> float:
    """Seconds per training step, median of ``steps`` after two warm-up steps (bf16: under autocast)."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = ContrastiveLoss("bimodal", 0.07, blocked=blocked)
    corrupt = ScarfCorruption(corruption)
    gen = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(batch, len(S2_BANDS) + PLANET_FEATURES, device=device)
    times = []
    for i in range(steps + 2):
        _sync(device)
        t0 = time.perf_counter()
        xs = corrupt(x[:, : len(S2_BANDS)], generator=gen)
        xp = corrupt(x[:, len(S2_BANDS) :], generator=gen)
        autocast = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        with autocast:
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


def set_tf32(device: torch.device, on: bool) -> None:
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = on
        torch.backends.cudnn.allow_tf32 = on


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
    parser.add_argument("--precision", default="fp32", help="comma-separated: fp32, tf32, bf16")
    parser.add_argument(
        "--plain-loss", action="store_true", help="also time the loss in its plain autograd form"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here as JSON")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    precisions = [p.strip() for p in args.precision.split(",") if p.strip()]
    if not precisions or set(precisions) - {"fp32", "tf32", "bf16"}:
        parser.error(f"--precision {args.precision!r}: give a comma-separated list of fp32, tf32, bf16")
    batch = args.batch_size
    peak_n = args.peak_n or (8192 if device.type == "cuda" else 4096)
    width = 256
    loss_flop = 2 * batch * batch * width * 2 * 3  # S2-S2 and S2-Planet similarity matrices, fwd + bwd
    results: dict[str, dict[str, float]] = {}
    macs = 0
    failed = []
    columns = [(p, True) for p in precisions] + ([(p, False) for p in precisions] if args.plain_loss else [])
    for precision, blocked in columns:
        label = precision if blocked else f"{precision}, plain loss"
        set_tf32(device, precision == "tf32")
        torch.manual_seed(0)
        model = ContrastiveModel(mode="bimodal", width=width, depth=8).to(device)
        macs = linear_macs_per_pair(model)
        try:
            step_s = time_steps(
                model, device, batch=batch, steps=args.steps, corruption=args.corruption,
                bf16=precision == "bf16", blocked=blocked,
            )  # fmt: skip
        except Exception as exc:  # one precision failing must not hide the others' figures
            print(f"{label}: failed: {type(exc).__name__}: {exc}")
            failed.append(label)
            continue
        dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        peak = matmul_peak(device, n=peak_n, reps=5, dtype=dtype)
        flop = macs * 2 * 3 * batch + loss_flop
        results[label] = {
            "step_s": step_s,
            "pairs_s": batch / step_s,
            "flops": flop / step_s,
            "linear_flops": macs * 2 * 3 * batch / step_s,
            "peak": peak,
            "paper_s": PAPER_PAIRS * PAPER_EPOCHS * step_s / batch,
        }
    set_tf32(device, False)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    print(f"device: {device.type} ({name}), {torch.get_num_threads()} threads, torch {torch.__version__}; "
          f"batch {batch}; {macs:,} Linear MACs/pair; Linear FLOP/step (MACs x 2 x 3) "
          f"{macs * 6 * batch / 1e9:.2f} GFLOP + loss matmuls {loss_flop / 1e9:.2f} GFLOP\n")  # fmt: skip
    print("| quantity | " + " | ".join(results) + " |")
    print("|---|" + "---|" * len(results))
    rows = [
        ("step time (median)", lambda r: f"{r['step_s'] * 1e3:.2f} ms"),
        ("pairs/s", lambda r: f"{r['pairs_s']:,.0f}"),
        ("achieved, Linear only", lambda r: f"{r['linear_flops'] / 1e9:,.1f} GFLOP/s"),
        ("achieved, all matmuls", lambda r: f"{r['flops'] / 1e9:,.1f} GFLOP/s"),
        ("matmul peak (same precision)", lambda r: f"{r['peak'] / 1e9:,.1f} GFLOP/s"),
        ("fraction of peak, Linear only", lambda r: f"{r['linear_flops'] / r['peak']:.1%}"),
        ("fraction of peak, all matmuls", lambda r: f"{r['flops'] / r['peak']:.1%}"),
        ("100 epochs x 14.4M pairs", lambda r: _duration(r["paper_s"])),
    ]
    for key, fmt in rows:
        print(f"| {key} | " + " | ".join(fmt(r) for r in results.values()) + " |")
    print("\n(paper: 6 h on one V100, ~67K pairs/s; target on a GPU: <= 15 min, 1.6M pairs/s)")
    if args.json is not None:
        args.json.write_text(json.dumps({"device": device.type, "name": name, "batch": batch, **results}))
    if failed:
        raise SystemExit(f"pretraining step failed in {', '.join(failed)}")


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


if __name__ == "__main__":
    main()
