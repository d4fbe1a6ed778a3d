"""One torch thread against two for the same step, alternating in one process: which pays right now.

Steps: ``engine-tempcnn`` and ``engine-resmlp+transformer`` (`Predictor.predict_block` on a 32 x 32 px
block of 144 steps, the engine's own 42-pixel batches, random weights), ``trainstep-tempcnn`` and
``trainstep-transformer`` (forward, backward and AdamW on 32 series x 52 steps x 12 bands, the batch
`geocrop train` plans for the France table). For each repetition both counts run for ``SECONDS`` each,
in alternating order; printed: the median rate and CPU seconds per wall second of each count, and the
two-thread / one-thread rate of every pair. Run it beside other work (or not) to see how the answer
moves with the machine's load; the OpenMP wait policy is read from the environment at start
(``OMP_WAIT_POLICY=PASSIVE python bench/threads_ab.py`` for the passive one).

    python bench/threads_ab.py [--seconds 1.0] [--reps 4] [STEP ...]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from geocrop.inference.engine import Predictor
from geocrop.inference.schema import spec_for_modules
from geocrop.models.registry import build_backbone, build_head
from geocrop.training.hparams import default_config

BACKBONE = {"name": "resmlp", "in_features": 12, "width": 256, "depth": 8}


def steps() -> dict[str, tuple[Callable[[], object], int, str]]:
    """name -> (one step, units per step, unit)."""
    block = np.random.default_rng(0).uniform(0, 0.4, (144, 12, 32, 32)).astype(np.float32)
    bands, classes = [f"b{i}" for i in range(12)], [f"c{i}" for i in range(9)]
    out: dict[str, tuple[Callable[[], object], int, str]] = {}
    for name, backbone in (("tempcnn", None), ("resmlp+transformer", BACKBONE)):
        family = name.rsplit("+", 1)[-1]
        spec = default_config(family).spec(in_features=256 if backbone else 12, n_classes=9, steps=144)
        predictor = Predictor.from_modules(
            backbone=build_backbone(backbone) if backbone else None,
            head=build_head(spec),
            spec=spec_for_modules(bands=bands, classes=classes, steps=144),
            device="cpu",
            num_threads=1,  # this script sets the count itself
        )
        out[f"engine-{name}"] = (lambda p=predictor: p.predict_block(block), 32 * 32, "px/s")
    for family in ("tempcnn", "transformer"):
        head = build_head(default_config(family).spec(in_features=12, n_classes=9, steps=52))
        optimizer = torch.optim.AdamW(head.parameters())
        x, y = torch.randn(32, 52, 12), torch.randint(0, 9, (32,))

        def step(
            head: nn.Module = head,
            optimizer: torch.optim.Optimizer = optimizer,
            x: torch.Tensor = x,
            y: torch.Tensor = y,
        ) -> None:
            loss = nn.functional.cross_entropy(head(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        out[f"trainstep-{family}"] = (step, 32, "series/s")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="steps to time (default: all)")
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--reps", type=int, default=4)
    opts = parser.parse_args()
    table = steps()
    names = opts.names or list(table)
    rates: dict[tuple[str, int], list[tuple[float, float]]] = {(n, t): [] for n in names for t in (1, 2)}
    for rep in range(opts.reps):
        for name in names:
            fn, units, _ = table[name]
            for threads in (1, 2) if rep % 2 == 0 else (2, 1):
                torch.set_num_threads(threads)
                fn()  # warm-up at this count
                done, t0, c0 = 0, time.perf_counter(), time.process_time()
                while time.perf_counter() - t0 < opts.seconds:
                    fn()
                    done += units
                wall = time.perf_counter() - t0
                rates[name, threads].append((done / wall, (time.process_time() - c0) / wall))
    print("| step | 1 thread | CPU/wall | 2 threads | CPU/wall | 2 / 1, each pair |")
    print("|---|---|---|---|---|---|")
    for name in names:
        one, two = np.array(rates[name, 1]), np.array(rates[name, 2])
        pairs = " ".join(f"{r:.2f}" for r in two[:, 0] / one[:, 0])
        unit = table[name][2]
        print(f"| {name} | {np.median(one[:, 0]):,.1f} {unit} | {np.median(one[:, 1]):.2f} | "
              f"{np.median(two[:, 0]):,.1f} {unit} | {np.median(two[:, 1]):.2f} | {pairs} |")  # fmt: skip


if __name__ == "__main__":
    main()
