"""Pixels/s and km²/h of geocrop's engine beside the tools a user would pick instead, in one run.

For two series shapes, every method classifies the same block of pixels:

* **real** — the France LPIS WorldCereal extraction in ``shared/realdata/worldcereal`` (52 dekadal steps
  x 12 bands, 422 labelled series of 9 crops); the trees are fitted on it and the block repeats its
  series, so every tree walks the paths real data takes;
* **imagery** — the paper's 144 steps x 12 bands; synthetic seasonal curves, one per class, plus noise
  (a speed instrument: the trees are fitted on them so their depth is that of a fitted forest).

Methods (the first column is a stable key):

* ``sklearn-rf``: scikit-learn ``RandomForestClassifier``, 500 trees, ``n_jobs=2``, fitted as ``geocrop
  train --head rf`` fits it (`geocrop.training.trees`); ``predict_proba`` on the block's pixels (reshaping
  the (T, B, h, w) block to (pixels, T x B) and normalising included). Every ratio's denominator.
* ``sklearn-gbm``: scikit-learn ``HistGradientBoostingClassifier`` as ``--head gbm`` fits it.
* ``engine-rf`` / ``engine-gbm``: the same two fitted models packed as torch tree ensembles
  (`geocrop.models.forest`) in a bundle, through ``Predictor.predict_block``: what ``geocrop map --model
  rf_bundle`` costs per pixel. The "same class" column checks they answer as scikit-learn does.
* ``engine-<head>``: each deep head at ``geocrop train``'s defaults on the normalised bands (no
  backbone, as trained on a samples table); ``engine-resmlp+<head>`` (imagery only): the paper's ResMLP
  E_s (12 -> 256, 8 layers) before the head. Random weights: their compute does not depend on them.

Columns: pixels/s; km²/h (10 m pixels, 1 km² = 10,000 px); the ratio to ``sklearn-rf`` measured in the
same run; for the deep heads the GFLOP/s (FLOPs counted from the layers) as a fraction of the machine's
fp32 ``torch.mm`` peak, sampled before every measurement, the highest sample taken (the lowest ratios a run
can report). Tree methods do no matmuls: no fraction for them. The machine is shared: read the ratios.

    python bench/throughput_alternatives.py [--quick] [--size 48] [--reps 3] [--json PATH]

``--quick`` (under a minute, for the test): an 8 x 8 px block, 50 trees, 5 boosting iterations without
class weights, one thread, one repetition, a 1024^3 peak; its speeds are not the figures to quote.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from map_throughput import BACKBONE, matmul_peak
from train_time import find_realdata, france_series

DEEP_HEADS = ("tempcnn", "inception", "transformer", "lstm")
PAPER_HEADS = ("lstm", "inception", "transformer")
PX_PER_KM2 = 10_000  # 10 m pixels


@dataclass(frozen=True)
class Shape:
    """Training series x (N, T, B) reflectance and labels y (N,); the block (T, B, h, w) to classify."""

    name: str
    x: np.ndarray
    y: np.ndarray
    n_classes: int
    block: np.ndarray

    @property
    def steps(self) -> int:
        return int(self.x.shape[1])


@dataclass
class Row:
    shape: str
    key: str
    what: str
    pixels_s: float
    gflops: float | None = None
    agreement: float | None = None


def tile_block(series: np.ndarray, side: int, rng: np.random.Generator) -> np.ndarray:
    """A (T, B, side, side) block whose pixels are ``series`` (N, T, B) drawn with replacement."""
    pick = series[rng.integers(0, len(series), side * side)]  # (P, T, B)
    return np.ascontiguousarray(pick.transpose(1, 2, 0).reshape(series.shape[1], series.shape[2], side, side))


def real_shape(side: int) -> Shape | None:
    root = find_realdata()
    if root is None:
        return None
    series = france_series(root)
    x = series.values.astype(np.float32)
    block = tile_block(x, side, np.random.default_rng(0))
    return Shape("real", x, series.labels, len(series.class_names), block)


def imagery_shape(side: int, *, per_class: int, steps: int = 144, n_classes: int = 9) -> Shape:
    """Synthetic 144-step series: each class a seasonal curve (own peak date, width and band profile)."""
    rng = np.random.default_rng(1)
    t = np.linspace(0.0, 1.0, steps)[:, None]
    peaks, widths = rng.uniform(0.3, 0.7, n_classes), rng.uniform(0.08, 0.2, n_classes)
    profile = rng.uniform(0.05, 0.4, (n_classes, 12))

    def draw(labels: np.ndarray) -> np.ndarray:
        shift = rng.normal(0.0, 0.04, (len(labels), 1, 1))
        curve = np.exp(-(((t[None] - peaks[labels, None, None] - shift) / widths[labels, None, None]) ** 2))
        x = 0.05 + curve * profile[labels, None, :] + rng.normal(0.0, 0.03, (len(labels), steps, 12))
        return x.astype(np.float32)

    y = np.repeat(np.arange(n_classes), per_class)
    block_series = draw(rng.integers(0, n_classes, side * side))
    block = np.ascontiguousarray(block_series.transpose(1, 2, 0).reshape(steps, 12, side, side))
    return Shape("imagery", draw(y), y, n_classes, block)


def fit_baselines(
    shape: Shape, *, trees: int, boost_iter: int | None, n_jobs: int, mean: np.ndarray, std: np.ndarray
) -> tuple[Any, Any]:
    """scikit-learn RF and gradient boosting configured as `geocrop.training.trees` configures them."""
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

    flat = ((shape.x - mean) / std).reshape(len(shape.x), -1)
    rf = RandomForestClassifier(
        n_estimators=trees, class_weight="balanced_subsample", n_jobs=n_jobs, random_state=0
    ).fit(flat, shape.y)
    # --quick: a few iterations and no class weights (scikit-learn 1.9 bins weighted data through a
    # Python-level weighted percentile, ~30 s on the real table); neither changes what a tree costs to walk.
    extra: dict[str, Any] = {"class_weight": "balanced"}
    if boost_iter is not None:
        extra = {"max_iter": boost_iter}
    gbm = HistGradientBoostingClassifier(random_state=0, **extra).fit(flat, shape.y)
    return rf, gbm


def write_bundle(
    path: Path, head: Any, head_spec: dict[str, Any], *, shape: Shape, mean: np.ndarray, std: np.ndarray,
    backbone: Any = None,
) -> Path:  # fmt: skip
    from geocrop.core.bands import S2_BANDS
    from geocrop.io.bundle import save_bundle
    from geocrop.models.registry import state_to_numpy

    tensors = state_to_numpy(head, "head")
    if backbone is not None:
        tensors.update(state_to_numpy(backbone, "backbone"))
    meta = {
        "name": path.stem,
        "backbone": BACKBONE if backbone is not None else None,
        "head": head_spec,
        "bands": list(S2_BANDS),
        "normalization": {"mean": mean.tolist(), "std": std.tolist()},
        "classes": [f"crop {i}" for i in range(shape.n_classes)],
        "temporal_grid": {"start": "2021-03-01", "end": "2021-10-28", "steps": shape.steps},
    }
    return save_bundle(path, tensors, meta)


def best_time(fn: Callable[[], Any], reps: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def measure_shape(shape: Shape, opts: argparse.Namespace, tmp: Path, peaks: list[float]) -> list[Row]:
    import torch

    from geocrop.inference.engine import Predictor
    from geocrop.models.registry import build_backbone, build_head
    from geocrop.training.hparams import default_config
    from geocrop.training.trees import pack_trees

    pixels = shape.block.shape[2] * shape.block.shape[3]
    mean = shape.x.mean(axis=(0, 1))
    std = shape.x.std(axis=(0, 1)) + 1e-6
    t0 = time.perf_counter()
    rf, gbm = fit_baselines(
        shape, trees=opts.trees, boost_iter=opts.boost_iter, n_jobs=opts.threads, mean=mean, std=std
    )
    print(
        f"[{shape.name}] fitted RF and gradient boosting in {time.perf_counter() - t0:.0f} s", file=sys.stderr
    )
    steps, bands = shape.block.shape[:2]

    def sklearn_predict(model: Any) -> Callable[[], np.ndarray]:
        def run() -> np.ndarray:
            px = shape.block.reshape(steps, bands, pixels).transpose(2, 0, 1)
            flat = np.ascontiguousarray(((px - mean) / std).reshape(pixels, -1), dtype=np.float32)
            return np.asarray(model.predict_proba(flat))

        return run

    rows: list[Row] = []
    sk_classes: dict[str, np.ndarray] = {}
    for key, model, what in (
        ("sklearn-rf", rf, f"scikit-learn RandomForest, {opts.trees} trees, n_jobs={opts.threads}"),
        (
            "sklearn-gbm",
            gbm,
            f"scikit-learn HistGradientBoosting ({gbm.n_iter_} iterations x {shape.n_classes})",
        ),
    ):
        seconds = best_time(sklearn_predict(model), opts.reps)
        sk_classes[key] = model.classes_[sklearn_predict(model)().argmax(axis=1)]
        rows.append(Row(shape.name, key, what, pixels / seconds))

    torch.manual_seed(0)
    models: list[tuple[str, str, Any, dict[str, Any], Any]] = []
    for kind, model in (("rf", rf), ("gbm", gbm)):
        module = pack_trees(model, kind, steps=shape.steps, features=bands, n_classes=shape.n_classes)
        what = f"geocrop engine, `{kind}` head (the same trees, torch)"
        models.append((f"engine-{kind}", what, module, dict(module.spec), None))
    for family in DEEP_HEADS:
        spec = default_config(family).spec(in_features=bands, n_classes=shape.n_classes, steps=shape.steps)
        what = f"geocrop engine, `{family}` head at defaults, no backbone"
        models.append((f"engine-{family}", what, build_head(spec), spec, None))
    if shape.name == "imagery":
        for family in PAPER_HEADS:
            spec = default_config(family).spec(in_features=256, n_classes=shape.n_classes, steps=shape.steps)
            what = f"geocrop engine, ResMLP-8x256 + `{family}` (the paper's)"
            models.append((f"engine-resmlp+{family}", what, build_head(spec), spec, build_backbone(BACKBONE)))

    for key, what, head, spec, backbone in models:
        path = write_bundle(tmp / f"{shape.name}-{key}.safetensors", head, spec, shape=shape, mean=mean,
                            std=std, backbone=backbone)  # fmt: skip
        predictor = Predictor(path, device="cpu", num_threads=opts.threads)
        peaks.append(matmul_peak(opts.peak_n))  # on every core
        torch.set_num_threads(opts.threads)
        seconds = best_time(functools.partial(predictor.predict_block, shape.block), opts.reps)
        row = Row(shape.name, key, what, pixels / seconds)
        if key in ("engine-rf", "engine-gbm"):
            got = predictor.predict_block(shape.block).classes.reshape(-1)
            row.agreement = float(np.mean(got == sk_classes[key.replace("engine", "sklearn")]))
        else:
            row.gflops = predictor.flops_per_pixel() * pixels / seconds / 1e9
        rows.append(row)
        print(f"[{shape.name}] {key}: {row.pixels_s:,.0f} px/s", file=sys.stderr)
    return rows


def table(rows: list[Row], peak: float, pixels: dict[str, int]) -> str:
    lines = [
        f"fp32 torch.mm peak (highest sample): {peak / 1e9:.1f} GFLOP/s; "
        + "; ".join(f"{name} block: {n:,} px" for name, n in pixels.items()),
        "",
        "| shape | method | what | pixels/s | km²/h | x RF-500 (scikit-learn) | of matmul peak | "
        "same class as scikit-learn |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ref = next(x for x in rows if x.shape == r.shape and x.key == "sklearn-rf")
        peak_s = f"{r.gflops * 1e9 / peak:.0%}" if r.gflops is not None else "-"
        agree = f"{r.agreement:.1%}" if r.agreement is not None else "-"
        lines.append(
            f"| {r.shape} | {r.key} | {r.what} | {r.pixels_s:,.0f} | {r.pixels_s * 3600 / PX_PER_KM2:,.1f} | "
            f"{r.pixels_s / ref.pixels_s:.2f} | {peak_s} | {agree} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run in under a minute")
    parser.add_argument("--size", type=int, default=48, help="block side in pixels (default 48)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--shapes", default="real,imagery")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    opts = parser.parse_args(argv)
    opts.trees, opts.boost_iter, opts.per_class, opts.peak_n = 500, None, 50, 2048
    opts.threads = os.cpu_count() or 1
    if opts.quick:
        opts.size, opts.reps, opts.trees, opts.boost_iter, opts.per_class, opts.peak_n = 8, 1, 50, 5, 12, 1024
        # One thread: on a loaded machine two threads' barriers wait for a descheduled thread, and tiny
        # ops (the LSTM's steps) slowed ~100x in one such run; --quick checks the table, not speeds.
        opts.threads = 1
        os.environ["OMP_NUM_THREADS"] = "1"  # scikit-learn's OpenMP, read when it first runs
    import torch

    torch.set_num_threads(opts.threads)
    shapes: list[Shape] = []
    for name in opts.shapes.split(","):
        if name == "real":
            real = real_shape(opts.size)
            if real is None:
                print("shared/realdata not found: real-data shape skipped", file=sys.stderr)
            else:
                shapes.append(real)
        elif name == "imagery":
            shapes.append(imagery_shape(opts.size, per_class=opts.per_class))
        else:
            parser.error(f"--shapes: unknown shape {name!r}; use real and/or imagery")
    peaks: list[float] = []
    rows: list[Row] = []
    started = dt.datetime.now()
    with tempfile.TemporaryDirectory() as tmp:
        for shape in shapes:
            rows += measure_shape(shape, opts, Path(tmp), peaks)
    peaks.append(matmul_peak(opts.peak_n))
    pixels = {s.name: int(s.block.shape[2] * s.block.shape[3]) for s in shapes}
    steps = ", ".join(f"{s.name}: {s.steps} steps x {s.block.shape[1]} bands" for s in shapes)
    print(
        f"Throughput beside the alternatives ({started:%Y-%m-%d %H:%M}, {os.cpu_count()} CPU threads; "
        f"{steps})"
    )
    print(table(rows, max(peaks), pixels))
    if opts.json:
        opts.json.write_text(json.dumps({"peak": max(peaks), "rows": [r.__dict__ for r in rows]}, indent=1))


if __name__ == "__main__":
    main()
