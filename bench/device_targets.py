"""The engine and pretraining measurements of issue 25 in one table: compiled vs eager backbone, host-fed vs
device-fed engine, CUDA-graph vs eager pretraining step, each with its projection.

    python bench/device_targets.py --device cuda|cpu [--rows N] [--size PX] [--head transformer]
                                   [--batch 2048] [--steps 20] [--width 256 --depth 8] [--json PATH]

1. **Backbone**: the engine's backbone stage (`Predictor._backbone_rows`, the engine's precision and
   sub-batches) on ``--rows`` random normalised rows already on the device, eager and through
   ``torch.compile`` (`geocrop.models.fused`): rows/s, the compile time (first call), the largest
   difference between the two outputs, and the backbone's share of a DENETHOR tile-year (830M rows).
2. **Feed**: ResMLP + ``--head`` on a ``--size`` px block in host memory (144 steps, a tenth of the pixels
   masked), ``feed="host"`` (NumPy gather per batch) and ``feed="device"`` (one copy, torch on the device),
   each against the same model on pixels already on the device: pixel-timesteps/s and the fraction
   (target >= 70 %), and the engine time of a DENETHOR tile-year fed from host memory (target < 10 s);
   each feed alone too (mask, gather and normalise every batch of the block, no model).
   The engine's defaults otherwise (on CUDA: bf16, compiled backbone, batches grown to free memory).
3. **Pretraining step**: the bi-modal step (SCARF corruption, Eq. 1 loss, Adam) at ``--batch``, eager and
   through `geocrop.training.graph_step.TrainStep` (a CUDA graph on CUDA; on the CPU the same wrapper
   runs eagerly, so the two columns only show its overhead): step time, pairs/s, one epoch and 100 epochs
   of the paper's 14.4M pairs (target <= 15 min).
4. **Map**: `map_aoi` (what `geocrop map` runs) on ``--map-side`` px of random local COGs (``--dates``
   scenes, 256 px tiles) with the engine on the device, projected by area to a DENETHOR tile
   (2400 x 2400 px; target < 5 min for the whole map).

Random weights and random reflectance: a throughput instrument. Run by `bench/device_check.sh`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from geocrop.core.bands import PLANET_FEATURES, S2_BANDS
from geocrop.inference.device_feed import stage_block
from geocrop.inference.engine import Predictor
from geocrop.inference.schema import spec_for_modules
from geocrop.models.contrastive import ContrastiveModel
from geocrop.models.registry import build_backbone, build_head
from geocrop.training.corruption import ScarfCorruption
from geocrop.training.graph_step import TrainStep
from geocrop.training.losses import ContrastiveLoss

STEPS = 144
DENETHOR_PTS = 2400 * 2400 * STEPS
PAPER_PAIRS = 14_400_000
PAPER_EPOCHS = 100
FEED_TARGET = 0.70
DENETHOR_TARGET_S = 10.0
PRETRAIN_TARGET_S = 15 * 60.0
MAP_TARGET_S = 5 * 60.0


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_seconds(fn: Any, device: torch.device, reps: int) -> float:
    times = []
    for _ in range(reps):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def models(width: int, depth: int, head: str) -> tuple[torch.nn.Module, torch.nn.Module, Any]:
    torch.manual_seed(0)
    backbone = build_backbone({"name": "resmlp", "in_features": 12, "width": width, "depth": depth})
    module = build_head({"name": head, "in_features": width, "n_classes": 9})
    spec = spec_for_modules(bands=S2_BANDS, classes=[f"c{i}" for i in range(9)], steps=STEPS,
                            mean=[0.15] * 12, std=[0.1] * 12)  # fmt: skip
    return backbone, module, spec


def backbone_rates(device: torch.device, *, rows: int, width: int, depth: int, reps: int) -> dict[str, Any]:
    backbone, head, spec = models(width, depth, "lstm")
    x = torch.randn(rows, 12, device=device)
    out: dict[str, Any] = {"rows": rows}
    outputs = {}
    for name, compiled in (("eager", False), ("compiled", True)):
        predictor = Predictor.from_modules(backbone=backbone, head=head, spec=spec, device=device.type,
                                           compile_backbone=compiled, tune_process=False)  # fmt: skip
        rows_in = x.to(torch.bfloat16) if predictor.precision == "bf16" else x
        sub = predictor.batch_rows if device.type == "cuda" else 2048
        with torch.inference_mode():
            started = time.perf_counter()
            outputs[name] = predictor._backbone_rows(rows_in, sub).float()
            _sync(device)
            first = time.perf_counter() - started
            seconds = _median_seconds(
                lambda p=predictor, r=rows_in, k=sub: p._backbone_rows(r, k), device, reps
            )
        out[name] = {"rows_s": rows / seconds, "first_call_s": first, "precision": predictor.precision,
                     "denethor_s": DENETHOR_PTS / (rows / seconds)}  # fmt: skip
    out["max_abs_diff"] = float((outputs["compiled"] - outputs["eager"]).abs().max())
    out["speedup"] = out["compiled"]["rows_s"] / out["eager"]["rows_s"]
    return out


def feed_alone(predictor: Predictor, block: np.ndarray, device: torch.device, reps: int) -> dict[str, float]:
    """Pixel-timesteps/s of each feed alone (mask, gather, normalise every batch; no model)."""
    steps, bands, h, w = block.shape
    flat = block.reshape(steps, bands, h * w)
    per_batch = max(1, predictor.batch_rows // steps)
    mean, std = predictor._mean, predictor._std

    def host() -> None:
        pixels = flat.transpose(2, 0, 1)
        index = np.flatnonzero(np.any(np.all(np.isfinite(pixels), axis=2), axis=1))
        for i in range(0, index.size, per_batch):
            x = torch.from_numpy(np.ascontiguousarray(pixels[index[i : i + per_batch]])).to(device)
            torch.nan_to_num((x - mean) / std, nan=0.0)

    def on_device() -> None:
        staged = stage_block(flat, device)
        index = staged.clear_index()
        for i in range(0, index.numel(), per_batch):
            staged.batch(index[i : i + per_batch], mean, std)

    rates = {}
    for name, fn in (("host", host), ("device", on_device)):
        fn()
        rates[name] = steps * h * w / _median_seconds(fn, device, reps)
    return rates


def feed_rates(
    device: torch.device, *, size: int, head: str, width: int, depth: int, reps: int
) -> dict[str, Any]:
    backbone, module, spec = models(width, depth, head)
    rng = np.random.default_rng(0)
    block = rng.uniform(0.0, 0.5, (STEPS, 12, size, size)).astype(np.float32)
    block[:, :, rng.random((size, size)) < 0.1] = np.nan
    out: dict[str, Any] = {"size": size, "head": head}
    results = {}
    for feed in ("host", "device"):
        predictor = Predictor.from_modules(backbone=backbone, head=module, spec=spec, device=device.type,
                                           feed=feed, tune_process=False)  # fmt: skip
        results[feed] = predictor.predict_block(block)  # warm-up: compile, batch growth, memory pools
        seconds = _median_seconds(lambda p=predictor: p.predict_block(block), device, reps)
        pts = predictor.counters.pixels // (reps + 1) * STEPS / seconds
        out[feed] = {"pts": pts, "denethor_s": DENETHOR_PTS / pts, "batch_rows": predictor.batch_rows}
        if feed == "device":  # the same model on pixels already on the device, the same batches
            clear = int(np.isfinite(block).all(axis=1).any(axis=0).sum())
            x = torch.randn((clear, STEPS, 12), device=device)
            per_batch = max(1, predictor.batch_rows // STEPS)

            def resident(
                p: Predictor = predictor, n: int = clear, x: torch.Tensor = x, k: int = per_batch
            ) -> None:
                with torch.inference_mode():
                    for i in range(0, n, k):
                        p._run_batch(x[i : i + k])

            resident_s = _median_seconds(resident, device, reps)
            out["resident"] = {"pts": clear * STEPS / resident_s, "denethor_s": DENETHOR_PTS * resident_s
                               / (clear * STEPS)}  # fmt: skip
    out["feed_alone"] = feed_alone(predictor, block, device, reps)
    out["identical_maps"] = bool(
        np.array_equal(results["host"].classes, results["device"].classes)
        and np.allclose(results["host"].probs, results["device"].probs, atol=1e-6, equal_nan=True)
    )
    for feed in ("host", "device"):
        out[feed]["of_resident"] = out[feed]["pts"] / out["resident"]["pts"]
    return out


def pretrain_rates(device: torch.device, *, batch: int, steps: int, width: int, depth: int) -> dict[str, Any]:
    gen = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(batch, len(S2_BANDS) + PLANET_FEATURES, device=device)
    corrupt = ScarfCorruption(0.2)
    out: dict[str, Any] = {"batch": batch}
    for name, graph in (("eager", False), ("graph", None)):
        torch.manual_seed(0)
        model = ContrastiveModel(mode="bimodal", width=width, depth=depth).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, capturable=device.type == "cuda")
        loss_fn = ContrastiveLoss("bimodal", 0.07)
        step = TrainStep(lambda a, b, m=model, f=loss_fn: f(*m(a, b)), opt, device=device, graph=graph)

        def one(step: TrainStep = step) -> torch.Tensor:
            return step(corrupt(x[:, :12], generator=gen), corrupt(x[:, 12:], generator=gen))

        for _ in range(step.warmup + 1):  # warm-up (and, on CUDA, the capture)
            one()
        step_s = _median_seconds(one, device, steps)
        loss = float(one())
        out[name] = {"step_s": step_s, "pairs_s": batch / step_s, "epoch_s": PAPER_PAIRS * step_s / batch,
                     "paper_s": PAPER_EPOCHS * PAPER_PAIRS * step_s / batch, "graph": step.captured,
                     "loss": loss}  # fmt: skip
    return out


def map_rate(device: torch.device, *, side: int, dates: int, head: str) -> dict[str, Any]:
    """`map_aoi` (what `geocrop map` runs) on a local catalog of random COGs, ``side`` px square,
    ``dates`` scenes, 256 px tiles, the paper-size ResMLP + ``head`` on ``device``; wall time and its
    projection to a DENETHOR tile (2400 x 2400 px) by area, at the same scene count."""
    import sys
    import tempfile

    sys.path.insert(0, str(Path(__file__).parent))
    import map_throughput as mt

    with tempfile.TemporaryDirectory(prefix="geocrop-map-") as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        catalog = mt.write_catalog(root / "scenes", size=side, dates=dates)
        bundle = mt.write_bundle(root / "model.safetensors", head, season=("2021-03-01", "2021-10-28"))
        written = time.perf_counter() - started
        args = {"bbox": mt.aoi_bbox(side), "catalog": str(catalog), "bundle": str(bundle),
                "out": str(root / "map.tif"), "chunk": min(256, side), "device": device.type,
                # the catalog written above keeps its COGs beside, not under, it
                "allow_any_asset_href": True}  # fmt: skip
        result = mt.child_map(args)
    seconds = float(result["seconds"])
    tile_s = seconds * (2400 * 2400) / (side * side)
    return {"side": side, "dates": dates, "head": head, "seconds": seconds, "pixels": result["pixels"],
            "catalog_s": written, "denethor_tile_s": tile_s}  # fmt: skip


def _dur(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min" if seconds >= 60 else (
        f"{seconds:.1f} s")  # fmt: skip


def print_table(r: dict[str, Any]) -> None:
    print(f"# device targets on {r['device']} ({r['name']}), {r['when']}, torch {r['torch']}\n")
    print("| measurement | figures | target |")
    print("|---|---|---|")
    if b := r.get("backbone"):
        for name in ("eager", "compiled"):
            v = b[name]
            print(f"| backbone {name} ({v['precision']}, {b['rows']:,} rows) | {v['rows_s']:,.0f} rows/s; "
                  f"first call {v['first_call_s']:.1f} s; DENETHOR tile-year {v['denethor_s']:.1f} s "
                  "(backbone only) | |")  # fmt: skip
        print(f"| backbone compiled / eager | {b['speedup']:.2f}x; max abs difference "
              f"{b['max_abs_diff']:.2e} | |")  # fmt: skip
    if f := r.get("feed"):
        res = f["resident"]
        print(f"| engine, {f['head']}, pixels on the device | {res['pts']:,.0f} pixel-timesteps/s; "
              f"DENETHOR tile-year {res['denethor_s']:.1f} s | < {DENETHOR_TARGET_S:.0f} s |")  # fmt: skip
        for feed in ("host", "device"):
            v = f[feed]
            verdict = "met" if v["of_resident"] >= FEED_TARGET else "missed"
            print(f"| engine, {f['head']}, {f['size']} px block, {feed} feed | {v['pts']:,.0f} "
                  f"pixel-timesteps/s = {v['of_resident']:.0%} of on-device ({verdict}); DENETHOR tile-year "
                  f"{v['denethor_s']:.1f} s; batch {v['batch_rows']:,} rows "
                  f"| >= {FEED_TARGET:.0%} |")  # fmt: skip
        alone = f["feed_alone"]
        print(f"| feed alone (mask, gather, normalise; no model) | host {alone['host']:,.0f}, device "
              f"{alone['device']:,.0f} pixel-timesteps/s | |")  # fmt: skip
        print(f"| host and device feed maps identical | {'yes' if f['identical_maps'] else 'NO'} | |")
    if p := r.get("pretrain"):
        for name in ("eager", "graph"):
            v = p[name]
            label = "CUDA graph" if v["graph"] else "step wrapper, eager" if name == "graph" else "eager"
            verdict = "met" if v["paper_s"] <= PRETRAIN_TARGET_S else "missed"
            print(f"| pretraining step, batch {p['batch']}, {label} | {v['step_s'] * 1e3:.2f} ms, "
                  f"{v['pairs_s']:,.0f} pairs/s; epoch of 14.4M pairs {_dur(v['epoch_s'])}; 100 epochs "
                  f"{_dur(v['paper_s'])} ({verdict}) | <= 15 min |")  # fmt: skip
    if m := r.get("map"):
        verdict = "met" if m["denethor_tile_s"] <= MAP_TARGET_S else "missed"
        print(f"| map_aoi, {m['side']} x {m['side']} px, {m['dates']} scenes of local COGs, {m['head']} | "
              f"{m['seconds']:.1f} s ({m['pixels']:,} px mapped); a DENETHOR tile (2400 x 2400 px) by area "
              f"{_dur(m['denethor_tile_s'])} ({verdict}) | < 5 min |")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda")
    parser.add_argument("--rows", type=int, default=1 << 22, help="backbone rows (default 4Mi)")
    parser.add_argument("--size", type=int, default=256, help="engine block side in px (default 256)")
    parser.add_argument("--head", default="transformer", choices=["lstm", "inception", "transformer"])
    parser.add_argument("--batch", type=int, default=2048, help="pretraining batch (the paper's 2048)")
    parser.add_argument("--steps", type=int, default=20, help="timed pretraining steps")
    parser.add_argument("--reps", type=int, default=3, help="timed repetitions of the engine measurements")
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--depth", type=int, default=8)
    parser.add_argument("--map-side", type=int, default=512, help="side of the mapped area, px (default 512)")
    parser.add_argument("--dates", type=int, default=36, help="scenes in the mapped catalog (default 36)")
    parser.add_argument("--only", default="backbone,feed,pretrain,map", help="comma-separated parts to run")
    parser.add_argument("--threads", type=int, help="torch threads on the CPU (default: every core)")
    parser.add_argument("--json", type=Path)
    opts = parser.parse_args(argv)
    device = torch.device(opts.device)
    if device.type == "cpu":
        torch.set_num_threads(opts.threads or os.cpu_count() or 1)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{os.cpu_count()} CPU threads"
    result: dict[str, Any] = {"device": device.type, "name": name, "torch": torch.__version__,
                              "when": f"{dt.datetime.now():%Y-%m-%d %H:%M}"}  # fmt: skip
    parts = set(opts.only.split(","))
    size = {"width": opts.width, "depth": opts.depth}
    failed = []
    for part, run in (
        ("backbone", lambda: backbone_rates(device, rows=opts.rows, reps=opts.reps, **size)),
        ("feed", lambda: feed_rates(device, size=opts.size, head=opts.head, reps=opts.reps, **size)),
        ("pretrain", lambda: pretrain_rates(device, batch=opts.batch, steps=opts.steps, **size)),
        ("map", lambda: map_rate(device, side=opts.map_side, dates=opts.dates, head=opts.head)),
    ):
        if part not in parts:
            continue
        started = time.perf_counter()
        try:
            result[part] = run()
        except Exception as exc:  # one part failing must not hide the others' figures
            failed.append(part)
            print(f"{part}: failed: {type(exc).__name__}: {exc}", flush=True)
            continue
        print(f"{part}: {time.perf_counter() - started:.0f} s", flush=True)
        if opts.json:
            opts.json.write_text(json.dumps(result, indent=1))
    print()
    print_table(result)
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
