"""Step time of temporal pretraining (masked reconstruction of observations) as a fraction of matmul peak.

For each head it times `geocrop.training.temporal_pretrain.train_step` (hide dates, re-fill the visible
ones, forward, loss on the hidden dates with the Sentinel-1 term, backward, AdamW) on the France LPIS
table's own series when ``shared/realdata`` is found (synthetic series of the same shape otherwise, said
in the output), at the batch the adaptive plan picks for that many series. FLOPs are counted by torch's
``FlopCounterMode`` over one step (every matmul, convolution and attention product, forward and
backward); the peak is a large float32 ``torch.mm`` timed in the same run (`bench/pretrain_throughput.py`).
The last column projects a full default run: planned epochs x steps per epoch x the step time (without
the per-epoch held-out scoring and checkpoint, which add a few percent).

    python bench/temporal_pretrain.py [--threads 1] [--steps 20] [--heads transformer,paper-large,...]

Heads: ``transformer`` (geocrop's default: d_model 64, 4 heads, 2 layers), ``paper-large`` (the largest
Transformer of the paper's section 5.1 space: d_model 128, 8 heads, 6 layers), ``tempcnn``, ``inception``,
``lstm`` (their `geocrop train` defaults). Not a test: run it by hand and copy the table into
docs/pretraining.md.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pretrain_throughput import matmul_peak
from train_time import find_realdata

from geocrop.models.masked_series import MaskedSeriesModel
from geocrop.training.hparams import DEFAULT_PARAMS
from geocrop.training.temporal_config import TemporalPretrainConfig, plan_pretraining
from geocrop.training.temporal_pretrain import Objective, train_step

HEADS: dict[str, tuple[str, dict[str, Any]]] = {
    "transformer": ("transformer", DEFAULT_PARAMS["transformer"]),
    "paper-large": ("transformer", {"d_model": 128, "heads": 8, "layers": 6, "pooling": "mean"}),
    "tempcnn": ("tempcnn", DEFAULT_PARAMS["tempcnn"]),
    "inception": ("inception", DEFAULT_PARAMS["inception"]),
    "lstm": ("lstm", DEFAULT_PARAMS["lstm"]),
}


def series() -> tuple[np.ndarray, np.ndarray | None, str]:
    """Standardised (N, T, 12) and (N, T, 2) series with NaN gaps, and where they came from."""
    from geocrop.training.temporal_data import load_series
    from geocrop.training.temporal_pretrain import _standardise

    root = find_realdata()
    table = None if root is None else root / "worldcereal" / "extractions_2023_FRA_LPIS_dekad.geoparquet"
    if table is not None and table.exists():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = load_series(str(table))
        assert data.second is not None
        return (
            _standardise(data.values)[2],
            _standardise(data.second)[2],
            f"{table.name} ({len(data.values)})",
        )
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 52, 12)).astype(np.float32)
    x[rng.random((500, 52)) < 0.5] = np.nan
    return x, rng.normal(size=(500, 52, 2)).astype(np.float32), "synthetic series (500 x 52 steps)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--heads", default=",".join(HEADS))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    x_np, s_np, where = series()
    n_train = round(0.9 * len(x_np))
    plan = plan_pretraining(TemporalPretrainConfig(out=Path("."), s2="-"), n_train)
    per_epoch = plan.steps_per_epoch(n_train)
    peak = matmul_peak(torch.device("cpu"), n=2048, reps=5)
    print(f"series: {where}; batch {plan.batch_size}, {per_epoch} steps x {plan.epochs} epochs planned")
    print(f"threads {torch.get_num_threads()}; float32 matmul peak {peak / 1e9:.1f} GFLOP/s\n")
    print("| head | parameters | step (median) | GFLOP per step | GFLOP/s | of peak | default run |")
    print("|---|---|---|---|---|---|---|")
    x_all, s_all = torch.from_numpy(x_np), torch.from_numpy(s_np) if s_np is not None else None
    targets = torch.tensor([True] + [True] * 7 + [False] + [True] * 3)  # B8A filled on the France table
    for name in args.heads.split(","):
        family, params = HEADS[name]
        spec = {"name": family, "in_features": 12, **params}
        if family == "tempcnn":
            spec["steps"] = x_np.shape[1]
        torch.manual_seed(0)
        model = MaskedSeriesModel(spec, steps=x_np.shape[1], second_features=2)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        objective = Objective(0.15, 1.0, targets)
        gen = torch.Generator().manual_seed(0)
        batches = [torch.randperm(len(x_np), generator=gen)[: plan.batch_size] for _ in range(args.steps + 3)]

        def step(rows: torch.Tensor) -> None:
            s = s_all[rows] if s_all is not None else None
            train_step(model, optimizer, x_all[rows], s, objective, gen)  # noqa: B023

        with FlopCounterMode(display=False) as counter:
            step(batches[0])
        flop = counter.get_total_flops()
        times = []
        for rows in batches[1:]:
            t0 = time.perf_counter()
            step(rows)
            times.append(time.perf_counter() - t0)
        median = float(np.median(times[2:]))
        run = median * per_epoch * plan.epochs
        size = sum(p.numel() for p in model.head.parameters())
        rate = flop / median
        print(
            f"| {name} | {size:,} | {median * 1e3:.1f} ms | {flop / 1e9:.2f} | {rate / 1e9:.1f} | "
            f"{rate / peak:.0%} | {run / 60:.1f} min |"
        )


if __name__ == "__main__":
    main()
