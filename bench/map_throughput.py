"""Benchmark `geocrop map`: engine throughput vs matmul peak, end-to-end vs engine, memory vs AOI area.

Prints one table (markdown) with:

* the machine's measured fp32 matmul peak: ``torch.mm`` of 2048x2048, sampled before every engine
  measurement and once after the last; the highest sample is the denominator of every ratio (on a
  shared VM the peak itself moves by +-20 % within minutes; the highest reading gives the lowest ratios);
* the engine alone (`Predictor.predict_block` on an in-memory 32x32 px block, 144 steps, the paper's ResMLP
  E_s: 12 -> 256, 8 layers, plus each head family at its default size): pixel-timesteps/s, GFLOP/s
  (FLOPs counted from the layers, `geocrop.inference.flops`) and the fraction of the matmul peak;
* `map_aoi` end to end on a local static catalog (random reflectance COGs written here, 10 m,
  ``--dates`` scenes) at 1x, 4x and 16x AOI area in ``--tile`` px tiles, each in a fresh subprocess:
  pixel-timesteps/s, the fraction of engine-only throughput (on blocks of the tile size, measured before
  and after, the higher taken), and peak RSS (``VmHWM``). Every tile reads each of the 13 assets of each
  scene (~4 ms of odc-stac/rasterio work per read here), a fixed cost per tile: small tiles pay it often;
  ``geocrop map`` uses 256 px tiles;
* a plain reference implementation (whole cube in memory, a Python loop over timestamps running the
  backbone on every pixel of that timestamp, then the head) at the same areas, same model.

The imagery is random (a throughput instrument, not a crop map). Run: ``python bench/map_throughput.py``
(``--quick`` for a smaller run).

On a GPU (``--engine-only --device cuda``) the peak is the bf16 ``torch.mm`` of 8192x8192 and the engine is
measured twice per head: ``predict_block`` on a ``--size`` px block from host memory (gathering, masking,
the copy to the GPU included) and the bf16 backbone + head alone on ``--pixels`` normalised pixels already
on the GPU, in the engine's batches; the second gives the projected engine time of a DENETHOR-size
tile-year (2400 x 2400 px x 144 steps = 830M pixel-timesteps).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

STEPS = 144
N_CLASSES = 9
HEADS: dict[str, dict[str, Any]] = {
    "lstm": {"name": "lstm", "in_features": 256, "n_classes": N_CLASSES},
    "inception": {"name": "inception", "in_features": 256, "n_classes": N_CLASSES},
    "transformer": {"name": "transformer", "in_features": 256, "n_classes": N_CLASSES},
}
BACKBONE = {"name": "resmlp", "in_features": 12, "width": 256, "depth": 8}
#: A DENETHOR tile-year: 2400 x 2400 px (24 x 24 km at 3 m, mapped here at the S2 pixel count) x 144 steps.
DENETHOR_PTS = 2400 * 2400 * STEPS


def matmul_peak(n: int = 2048, reps: int = 7) -> float:
    """Best fp32 ``torch.mm`` FLOP/s on this machine (all cores)."""
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = min(_timed(lambda: torch.mm(a, b)) for _ in range(reps))
    return 2.0 * n**3 / best


def _timed(fn: Any, device: str = "cpu") -> float:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t


def cuda_bf16_peak(n: int = 8192, reps: int = 7) -> float:
    """Median bf16 ``torch.mm`` FLOP/s on the GPU (random operands: zeros run faster than real data)."""
    import torch

    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        torch.mm(a, b)
    times = sorted(_timed(lambda: torch.mm(a, b), "cuda") for _ in range(reps))
    return 2.0 * n**3 / times[len(times) // 2]


def write_bundle(path: Path, head: str, *, season: tuple[str, str]) -> Path:
    import torch

    from geocrop.core.bands import S2_BANDS
    from geocrop.io.bundle import save_bundle
    from geocrop.models.registry import build_backbone, build_head, state_to_numpy

    torch.manual_seed(0)
    meta = {
        "name": f"bench-resmlp-{head}",
        "backbone": BACKBONE,
        "head": HEADS[head],
        "bands": list(S2_BANDS),
        "normalization": {"mean": [0.15] * 12, "std": [0.1] * 12},
        "classes": [f"crop {i}" for i in range(N_CLASSES)],
        "temporal_grid": {"start": season[0], "end": season[1], "steps": STEPS},
    }
    tensors = state_to_numpy(build_backbone(BACKBONE), "backbone")
    tensors.update(state_to_numpy(build_head(HEADS[head]), "head"))
    return save_bundle(path, tensors, meta)


def engine_throughput(
    bundle: Path, *, size: int = 32, reps: int = 2, device: str = "cpu"
) -> dict[str, float]:
    """Engine-only pixel-timesteps/s and FLOP/s on a random in-memory (144, 12, size, size) block."""
    from geocrop.inference.engine import Predictor

    predictor = Predictor(bundle, device=device)
    rng = np.random.default_rng(0)
    block = rng.uniform(0.0, 0.5, (STEPS, 12, size, size)).astype(np.float32)
    predictor.predict_block(block[:, :, :8, :8])  # warm-up
    best = min(_timed(lambda: predictor.predict_block(block), device) for _ in range(reps))
    flops = predictor.flops_per_pixel() * size * size
    return {"pts": size * size * STEPS / best, "flops": flops / best, "flops_per_pixel": flops / size**2}


def resident_throughput(bundle: Path, *, pixels: int, device: str, reps: int = 3) -> dict[str, float]:
    """Backbone + head alone on ``pixels`` normalised random pixels already on ``device``, in the engine's
    batches and precision: pixel-timesteps/s (median of ``reps``) and FLOP/s."""
    import torch

    from geocrop.inference.engine import Predictor

    predictor = Predictor(bundle, device=device)
    gen = torch.Generator(device=device).manual_seed(0)
    x = torch.randn((pixels, STEPS, 12), generator=gen, device=device)
    per_batch = max(1, predictor.batch_rows // STEPS)

    def run() -> None:
        with torch.inference_mode():
            for i in range(0, pixels, per_batch):
                predictor._run_batch(x[i : i + per_batch])

    with torch.inference_mode():
        predictor._run_batch(x[:per_batch])  # warm-up: kernels chosen, memory pooled
    times = sorted(_timed(run, device) for _ in range(reps))
    seconds = times[len(times) // 2]
    flops = predictor.flops_per_pixel() * pixels
    return {"pts": pixels * STEPS / seconds, "flops": flops / seconds, "batch_rows": predictor.batch_rows}


def backbone_throughput(
    bundle: Path, *, rows: int = 1 << 17, reps: int = 3, device: str = "cpu", compile: bool = False
) -> float:
    """FLOP/s of the engine's backbone stage alone (the same sub-batching and precision), on random
    normalised rows; ``compile``: the backbone through ``torch.compile`` (an experiment, not the engine)."""
    import torch

    from geocrop.inference.engine import Predictor
    from geocrop.inference.flops import module_flops
    from geocrop.models.batching import CPU_BACKBONE_ROWS

    predictor = Predictor(bundle, device=device)
    assert predictor.backbone is not None
    x = torch.randn(rows, 12, device=device)
    per_row = module_flops(predictor.backbone, x[:1])
    if predictor.precision == "bf16":
        x = x.to(torch.bfloat16)
    sub = predictor.batch_rows if device == "cuda" else CPU_BACKBONE_ROWS
    if compile:
        predictor._compute_backbone = torch.compile(predictor._compute_backbone, dynamic=False)
    with torch.inference_mode():
        predictor._backbone_rows(x[: min(sub, rows)], sub)
        times = sorted(_timed(lambda: predictor._backbone_rows(x, sub), device) for _ in range(reps))
    return per_row * rows / times[len(times) // 2]


# -- a local catalog of random scenes -------------------------------------------------------------------
def write_catalog(root: Path, *, size: int, dates: int, year: int = 2021) -> Path:
    """``dates`` Sentinel-2-like items of ``size``x``size`` px random DNs (COGs) + a static catalog."""
    import pystac
    import rasterio
    from affine import Affine
    from rasterio.warp import transform_geom
    from shapely.geometry import box, mapping, shape

    from geocrop.core.bands import S2_ASSET_KEYS, S2_BANDS

    epsg, x0, y0 = 32633, 399_960.0, 5_820_000.0
    tf = Affine(10.0, 0, x0, 0, -10.0, y0)
    geom = transform_geom(f"EPSG:{epsg}", "EPSG:4326", mapping(box(x0, y0 - 10 * size, x0 + 10 * size, y0)))
    rng = np.random.default_rng(1)
    profile = dict(driver="COG", width=size, height=size, count=1, crs=f"EPSG:{epsg}", transform=tf,
                   blocksize=256, compress="deflate", overviews="none")  # fmt: skip
    coll = pystac.Collection(
        id="sentinel-2-l2a",
        description="random reflectance for benchmarks",
        extent=pystac.Extent(
            pystac.SpatialExtent([list(shape(geom).bounds)]), pystac.TemporalExtent([[None, None]])
        ),
    )
    start = dt.date(year, 3, 1)
    for t in range(dates):
        day = start + dt.timedelta(days=int(t * 240 / max(dates - 1, 1)))
        item_id = f"S2A_BENCH_{day:%Y%m%d}"
        when = dt.datetime.combine(day, dt.time(10, 30), tzinfo=dt.timezone.utc)
        item = pystac.Item(item_id, dict(geom), list(shape(geom).bounds), when, {"eo:cloud_cover": 10.0})
        for band in (*S2_BANDS, "SCL"):
            key = "scl" if band == "SCL" else S2_ASSET_KEYS[band]
            if band == "SCL":
                data = np.where(rng.random((size, size)) < 0.1, 9, 4).astype(np.uint8)
            else:
                data = rng.integers(1100, 4000, (size, size), dtype=np.uint16)
            path = root / "data" / item_id / f"{key}.tif"
            path.parent.mkdir(parents=True, exist_ok=True)
            with rasterio.open(path, "w", dtype=data.dtype.name, nodata=0, **profile) as dst:
                dst.write(data, 1)
            rb = {"data_type": data.dtype.name, "nodata": 0}
            if band != "SCL":
                rb.update(scale=0.0001, offset=-0.1)
            extra = {"raster:bands": [rb], "file:size": path.stat().st_size}
            item.add_asset(key, pystac.Asset(str(path), media_type=pystac.MediaType.COG, extra_fields=extra))
        coll.add_item(item)
    catalog = pystac.Catalog("bench", "benchmark catalog (random data)")
    catalog.add_child(coll)
    catalog.normalize_hrefs(str(root / "catalog"))
    catalog.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    return root / "catalog" / "catalog.json"


def aoi_bbox(pixels: int) -> str:
    """EPSG:4326 bbox of the upper-left ``pixels`` x ``pixels`` of the catalog, shrunk by a quarter pixel."""
    from pyproj import Transformer

    x0, y0, m = 399_960.0, 5_820_000.0, 2.5
    to = Transformer.from_crs("EPSG:32633", "EPSG:4326", always_xy=True)
    (minx, maxx), (maxy, miny) = zip(
        to.transform(x0 + m, y0 - m), to.transform(x0 + 10 * pixels - m, y0 - 10 * pixels + m), strict=True
    )
    return f"{minx:.8f},{miny:.8f},{maxx:.8f},{maxy:.8f}"


# -- child processes ------------------------------------------------------------------------------------
def child_map(args: dict[str, Any]) -> dict[str, Any]:
    from geocrop.inference.mapping import MapConfig, map_aoi

    cfg = MapConfig(
        aoi=args["bbox"], start=dt.date(2021, 3, 1), end=dt.date(2021, 10, 28), out=Path(args["out"]),
        model=Path(args["bundle"]), stac=args["catalog"], chunk_size=args["chunk"],
        device=args.get("device", "cpu"),
        max_cloud=None, yes=True, allow_any_asset_href=args.get("allow_any_asset_href", False),
    )  # fmt: skip
    t = time.perf_counter()
    result = map_aoi(cfg)
    seconds = time.perf_counter() - t
    return {"seconds": seconds, "pixels": result.valid_pixels}


def child_reference(args: dict[str, Any]) -> dict[str, Any]:
    """Whole cube in memory, per-timestamp loop: load, regrid, backbone per timestamp, head, softmax."""
    import torch

    from geocrop.core.temporal import TemporalGrid, regrid
    from geocrop.io.aoi import read_aoi
    from geocrop.io.bundle import load_bundle
    from geocrop.io.cube import load_s2
    from geocrop.io.stac import search
    from geocrop.models.registry import build_backbone, build_head, load_state

    torch.set_num_threads(os.cpu_count() or 1)
    t = time.perf_counter()
    bundle = load_bundle(args["bundle"])
    backbone = load_state(build_backbone(bundle.metadata["backbone"]), bundle.tensors, "backbone").eval()
    head = load_state(build_head(bundle.metadata["head"]), bundle.tensors, "head").eval()
    aoi = read_aoi(args["bbox"])
    items = search(
        args["catalog"], collection="sentinel-2-l2a", bbox=aoi, start="2021-03-01", end="2021-10-28"
    )
    cube = load_s2(items, aoi=aoi)  # eager: the whole cube in memory
    grid = TemporalGrid(dt.date(2021, 3, 1), dt.date(2021, 10, 28), STEPS)
    values, _ = regrid(cube.values, cube.time.values, grid, axis=0)  # (T, B, H, W)
    steps, bands, h, w = values.shape
    x = torch.from_numpy(values.reshape(steps, bands, h * w)).permute(2, 0, 1)  # (P, T, B)
    valid = torch.isfinite(x).all(-1).any(-1)
    x = torch.nan_to_num((x[valid] - 0.15) / 0.1)
    with torch.inference_mode():
        feats = torch.stack([backbone(x[:, k]) for k in range(steps)], dim=1)  # (P, T, 256)
        probs = torch.softmax(head(feats), dim=-1)
    seconds = time.perf_counter() - t
    return {"seconds": seconds, "pixels": int(probs.shape[0])}


def reference_bytes(side: int) -> float:
    """The reference's peak memory, roughly: its (P, 144, 256) float32 features about 2.5 times over
    (12 GB measured at 128 x 128 px)."""
    return 2.5 * side * side * STEPS * 256 * 4


def total_memory() -> float:
    return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM). Not ``getrusage``: Linux carries ``ru_maxrss`` over ``fork`` +
    ``exec``, so a child would report its parent's peak when that is higher."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(kind: str, args: dict[str, Any]) -> dict[str, Any]:
    """Run ``kind`` in a fresh interpreter; its own peak RSS comes back with the timings."""
    code = (
        "import json, sys; sys.path.insert(0, {bench!r}); import map_throughput as m; "
        "r = getattr(m, {fn!r})(json.loads(sys.argv[1])); r['rss_mb'] = m.peak_rss_mb(); print(json.dumps(r))"
    ).format(bench=str(Path(__file__).parent), fn=f"child_{kind}")
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(args)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} child failed:\n{proc.stderr[-3000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def device_engine_report(opts: argparse.Namespace) -> None:
    """The engine table on ``opts.device``: per head, a block from host memory and pixels resident on the
    device; the backbone stage alone; the projected engine time of a DENETHOR tile-year."""
    import torch

    device = opts.device
    name = torch.cuda.get_device_name() if device == "cuda" else f"{os.cpu_count()} CPU threads"
    peak = cuda_bf16_peak() if device == "cuda" else matmul_peak(reps=5)
    peak_name = "bf16 torch.mm 8192^3" if device == "cuda" else "fp32 torch.mm 2048^3"
    print(f"# engine on {device} ({name}), {dt.datetime.now():%Y-%m-%d %H:%M}, torch {torch.__version__}\n")
    print(f"{peak_name}: {peak / 1e12:.1f} TFLOP/s (median)\n")
    results: dict[str, Any] = {"device": device, "name": name, "peak": peak, "peak_name": peak_name}
    print(f"| engine, {device} | MFLOP/pixel | {opts.size}x{opts.size} px block from host: pixel-timesteps/s "
          f"| {opts.pixels:,} px on the device: pixel-timesteps/s | TFLOP/s | of peak | DENETHOR tile-year "
          "(830M pixel-timesteps) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="geocrop-bench-") as tmp:
        season = ("2021-03-01", "2021-10-28")
        failed = []
        for head in HEADS:
            bundle = write_bundle(Path(tmp) / f"{head}.safetensors", head, season=season)
            try:
                block = engine_throughput(bundle, size=opts.size, reps=3, device=device)
                res = resident_throughput(bundle, pixels=opts.pixels, device=device)
            except Exception as exc:  # one head failing must not hide the others' figures
                failed.append(head)
                print(f"| ResMLP-8x256 + {head} | failed: {type(exc).__name__}: {exc} |||||")
                continue
            r = {**res, "block_pts": block["pts"], "flops_per_pixel": block["flops_per_pixel"],
                 "denethor_s": DENETHOR_PTS / res["pts"]}  # fmt: skip
            results[head] = r
            print(f"| ResMLP-8x256 + {head} | {r['flops_per_pixel'] / 1e6:.1f} | {r['block_pts']:,.0f} | "
                  f"{r['pts']:,.0f} | {r['flops'] / 1e12:.2f} | {r['flops'] / peak:.1%} | "
                  f"{r['denethor_s']:,.1f} s |")  # fmt: skip
            sys.stdout.flush()
        rows = min(opts.pixels * STEPS, 1 << 24)
        bb = backbone_throughput(bundle, rows=rows, device=device)
        results["backbone_flops"] = bb
        per_row = 1.0547e6
        print(
            f"| ResMLP-8x256 backbone stage alone | {per_row * STEPS / 1e6:.1f} | | {bb / per_row:,.0f} | "
            f"{bb / 1e12:.2f} | {bb / peak:.1%} | {DENETHOR_PTS * per_row / bb:,.1f} s (backbone only) |"
        )
        if opts.compile:
            sys.stdout.flush()
            try:
                started = time.perf_counter()
                cb = backbone_throughput(bundle, rows=rows, device=device, compile=True)
                results["compiled_backbone_flops"] = cb
                print(
                    f"| backbone alone, torch.compile (an experiment; {time.perf_counter() - started:.0f} s "
                    f"with compiling) | {per_row * STEPS / 1e6:.1f} | | {cb / per_row:,.0f} | "
                    f"{cb / 1e12:.2f} | {cb / peak:.1%} | {DENETHOR_PTS * per_row / cb:,.1f} s "
                    "(backbone only) |"
                )
            except Exception as exc:  # an experiment: report it and carry on
                print(f"| backbone alone, torch.compile | failed: {type(exc).__name__}: {exc} |||||")
    if opts.json is not None:
        opts.json.write_text(json.dumps(results, indent=1))
    if failed:
        sys.exit(f"engine failed for {', '.join(failed)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller areas (32/64/128 px) and fewer dates")
    parser.add_argument(
        "--head", default="transformer", choices=sorted(HEADS), help="head for end-to-end runs"
    )
    parser.add_argument("--base", type=int, default=96, help="1x AOI side in pixels (16x is 4 times wider)")
    parser.add_argument(
        "--tile",
        type=int,
        default=48,
        help="map tile side in pixels (`geocrop map --chunk-size`, 256 there); the default makes 1x four "
        "tiles, so every area runs with the same tiles in flight",
    )
    parser.add_argument("--dates", type=int, default=36, help="scenes in the local catalog")
    parser.add_argument("--no-reference", action="store_true", help="skip the whole-cube reference")
    parser.add_argument("--engine-only", action="store_true", help="only the matmul peak and engine table")
    parser.add_argument(
        "--device",
        default=None,
        choices=["cpu", "cuda"],
        help="engine device; given, the engine table measures blocks from host memory and pixels already "
        "on the device and projects a DENETHOR tile-year (with --engine-only)",
    )
    parser.add_argument("--size", type=int, default=256, help="block side for --device (px)")
    parser.add_argument("--pixels", type=int, default=1 << 18, help="pixels on the device for --device")
    parser.add_argument("--json", type=Path, default=None, help="also write the --device figures here")
    parser.add_argument("--compile", action="store_true", help="with --device: also the backbone compiled")
    opts = parser.parse_args()
    if opts.device is not None:
        device_engine_report(opts)
        return
    base = 32 if opts.quick else opts.base
    tile = 16 if opts.quick else opts.tile
    dates = 12 if opts.quick else opts.dates
    season = ("2021-03-01", "2021-10-28")
    import torch

    print(f"# map throughput, {dt.datetime.now():%Y-%m-%d %H:%M}, torch {torch.__version__}, "
          f"{os.cpu_count()} CPU threads, load average {os.getloadavg()[0]:.1f}\n")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="geocrop-bench-") as tmp:
        root = Path(tmp)
        peaks: list[float] = []
        engine: dict[str, dict[str, float]] = {}
        for head in HEADS:
            bundle = write_bundle(root / f"{head}.safetensors", head, season=season)
            peaks.append(matmul_peak(reps=5))
            engine[head] = engine_throughput(bundle, size=16 if opts.quick else 32, reps=3)
        peaks.append(matmul_peak(reps=5))
        bb = backbone_throughput(root / f"{opts.head}.safetensors")
        peaks.append(matmul_peak(reps=5))
        peak = max(peaks)
        print(f"fp32 matmul peak (2048^3): {peak / 1e9:.1f} GFLOP/s, the highest of {len(peaks)} samples "
              f"taken between the measurements (lowest {min(peaks) / 1e9:.1f})\n")  # fmt: skip
        print("| engine only (in memory, 144 steps) | MFLOP/pixel | pixel-timesteps/s | GFLOP/s | of peak |")
        print("|---|---|---|---|---|")
        for head, r in engine.items():
            print(f"| ResMLP-8x256 + {head} | {r['flops_per_pixel'] / 1e6:.1f} | {r['pts']:,.0f} | "
                  f"{r['flops'] / 1e9:.1f} | {r['flops'] / peak:.0%} |")  # fmt: skip
        print(f"| ResMLP-8x256 backbone stage alone | {1.05 * STEPS:.1f} | {bb / 1.0547e6:,.0f} | "
              f"{bb / 1e9:.1f} | {bb / peak:.0%} |")  # fmt: skip
        sys.stdout.flush()
        if opts.engine_only:
            return
        catalog = write_catalog(root / "scenes", size=4 * base, dates=dates)
        bundle = root / f"{opts.head}.safetensors"
        # Engine-only on blocks of the tile size the map uses, so the ratio isolates the pipeline's cost;
        # measured before and after the map runs, the higher of the two is the denominator.
        engine_pts = [engine_throughput(bundle, size=tile)["pts"]]
        rows: list[tuple[str, int, int, float, float]] = []
        kinds = ["map"] + ([] if opts.no_reference else ["reference"])
        rss: dict[str, list[float]] = {k: [] for k in kinds}
        for kind in kinds:
            for factor in (1, 2, 4):
                side = base * factor
                if kind == "reference" and reference_bytes(side) > 0.6 * total_memory():
                    print(f"reference at {side}x{side} px skipped: it would need about "
                          f"{reference_bytes(side) / 2**30:.0f} GiB")  # fmt: skip
                    continue
                args = {"bbox": aoi_bbox(side), "catalog": str(catalog), "bundle": str(bundle),
                        "out": str(root / f"map{side}.tif"), "chunk": tile}  # fmt: skip
                r = run_child(kind, args)
                rss[kind].append(r["rss_mb"])
                rows.append((kind, factor, side, r["pixels"] * STEPS / r["seconds"], r["rss_mb"]))
        engine_pts.append(engine_throughput(bundle, size=tile)["pts"])
        eng = max(engine_pts)
        print(f"\nengine only, {opts.head} head, {tile}x{tile} px blocks: {eng:,.0f} pixel-timesteps/s "
              f"(higher of before/after the map runs; the other {min(engine_pts):,.0f})")  # fmt: skip
        print(f"\n| {opts.head} head, {dates} scenes, {tile} px tiles | AOI | pixels | pixel-timesteps/s | "
              "of engine | RSS |")  # fmt: skip
        print("|---|---|---|---|---|---|")
        for kind, factor, side, pts, mb in rows:
            label = "map_aoi (streamed)" if kind == "map" else "reference (whole cube)"
            print(f"| {label} | {factor * factor}x | {side}x{side} | {pts:,.0f} | {pts / eng:.0%} | "
                  f"{mb:,.0f} MB |")  # fmt: skip
        for kind, values in rss.items():
            if len(values) == 3:
                print(f"\n{kind}: peak RSS at 16x / 1x = {values[-1] / values[0]:.2f}")


if __name__ == "__main__":
    main()
