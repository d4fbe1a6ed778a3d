"""Benchmark `geocrop map` reading remote COGs: where the time goes, per stage and per network latency.

The sample area's Sentinel-2 COGs (simulated, repeated ``--mosaic`` x ``--mosaic`` times, see
`remote_area.py`) are served by a range server on 127.0.0.1 (`tests/io/range_server.py`: a set latency
per request, one link of ``--mbit`` Mbit/s shared by all connections; at the lowest CPU priority, so
that its Python takes no core from the map, as a server on another machine would not) behind a STAC API
on loopback (``rustac serve``, the server the tests use). The items point at 127.0.0.1, which geocrop
refuses by default; every run passes the documented opt-in, ``allow_any_asset_href=True``.

For each latency, each in a fresh process (so GDAL's caches start empty):

* **read alone**: the STAC search, then every tile of the cube read as `geocrop map` reads it (same
  reader threads and tiles in flight), nothing else;
* **engine alone** (in the same process, after the read, on its blocks regridded):
  `Predictor.predict_block` per tile, for each model mapped at that latency, so that on a shared machine
  the map is compared with an engine measured minutes apart, not at the start of the run
  (``--engine-once``: only in the first latency's process);
* **`geocrop map`** through the Python API (`geocrop.map_aoi`, ``tune_process=True`` as the command
  line), for each model: its wall time (`MapResult.seconds`) and the stage split it reports itself
  (search, read, regrid, engine, write; the STAC item's ``geocrop:processing``), peak RSS (``VmHWM``),
  the requests and bytes the range server answered, and the load average before and after it;
* **rerun** (at ``--rerun-latencies``): the head's map again in a new process with the first map's
  on-disk read cache (`geocrop.io.read_cache`): it should read nothing from the server.

Every map and read alone starts with an empty disk cache of its own (under ``--work``), so that only a
rerun finds anything there.

Models: **head** (a Transformer head at its default size on raw bands, random weights) and
**backbone** (the demo bundle: pretrained ResMLP-8x256 + Transformer head). ``--before REV`` also maps
with the code of git revision REV (exported with ``git archive``, nothing in the checkout changes) at
``--before-latencies``, the same way, in the same run. ``--memory`` maps a 1x and a 16x area (head
model, 0 ms) and compares peak RSS. Each process sees ``--cores`` cores (1 by default: on a shared
machine torch's threads then do not wait on each other), engine alone included. Ratios are taken within
one run.

Run: ``python bench/remote_read.py`` (~20 min on an idle 2-core machine; the first run also builds the
areas, ~2 min); ``--quick`` for a smoke run; ``--json FILE`` also writes the results for
``bench/plot_remote_read.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the repository root joins in main(): a child may map with other code

from remote_area import (  # noqa: E402
    DEMO_BUNDLE,
    END,
    START,
    WORK,
    api_inputs,
    build_area,
    search_area,
    write_head_bundle,
)

STAGES = ("search", "read", "regrid", "engine", "write")
#: The range server runs at the lowest CPU priority: a remote server's work takes no core from the map.
SERVER_NICE = 19


def peak_rss_mb() -> float:
    """This process's peak resident memory (``VmHWM``), MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# -- child processes -------------------------------------------------------------------------------------
def child_read(spec: dict[str, Any]) -> dict[str, Any]:
    """Search + read every tile as the map does (read alone); then regrid and run the engine on the blocks."""
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    from geocrop.core.temporal import TemporalGrid, regrid
    from geocrop.inference.engine import Predictor
    from geocrop.inference.tiles import plan_tiles
    from geocrop.io.aoi import read_aoi
    from geocrop.io.cube import load_s2
    from geocrop.io.reading import ReadSettings

    settings = ReadSettings(
        threads=spec["threads"],
        read_ahead=spec["ahead"],
        cache_mb=spec.get("cache_mb", 64),
        disk_cache_mb=2048 if spec.get("disk_cache") else 0,
        disk_cache_dir=spec.get("disk_cache"),
    )
    from shapely.geometry import shape

    aoi = read_aoi(shape(spec["aoi"]))
    t0 = time.perf_counter()
    items = search_area(spec["url"], aoi)
    searched = time.perf_counter() - t0
    gdal = settings if spec.get("gdal", True) else None  # None: odc-stac's GDAL defaults
    # Remote files opened once for all tiles, as `geocrop map` does (where this geocrop has the pool).
    datasets = _dataset_pool()
    extra = {"datasets": datasets} if datasets is not None else {}
    cube = load_s2(items, aoi=aoi, chunks={"x": spec["tile"], "y": spec["tile"]}, read=gdal, **extra)
    tiles = plan_tiles(int(cube.shape[2]), int(cube.shape[3]), spec["tile"])
    keep = bool(spec["bundles"])

    def read_one(tile: Any) -> Any:
        block = cube.data[:, :, tile.y0 : tile.y0 + tile.height, tile.x0 : tile.x0 + tile.width]
        values = block.compute(scheduler="threads", num_workers=settings.threads)
        return values if keep else None

    t0 = time.perf_counter()
    blocks = [read_one(tiles[0])]  # the first tile alone, then read_ahead at once: as the map reads
    with ThreadPoolExecutor(settings.read_ahead) as pool:
        blocks += list(pool.map(read_one, tiles[1:]))
    read_s = time.perf_counter() - t0
    if datasets is not None:
        datasets.close()
    out: dict[str, Any] = {
        "search_s": searched,
        "read_s": read_s,
        "tiles": len(tiles),
        "pixels": int(cube.shape[2] * cube.shape[3]),
        "scenes": len(items),
    }
    if keep:
        grid = TemporalGrid(START, END, 144)
        times = np.asarray(cube.time.values)
        t0 = time.perf_counter()
        ready = [regrid(b, times, grid, axis=0)[0] for b in blocks]
        out["regrid_s"] = time.perf_counter() - t0
        del blocks
        for name, bundle in spec["bundles"].items():
            predictor = Predictor(bundle, device="cpu", tune_process=True)
            predictor.predict_block(ready[0][:, :, :4, :4])  # warm-up
            t0 = time.perf_counter()
            for block in ready:
                predictor.predict_block(block)
            out[f"engine_s:{name}"] = time.perf_counter() - t0
    return out


def _dataset_pool() -> Any:
    """A `geocrop.io.dataset_pool.DatasetPool`, or None for code without one."""
    try:
        from geocrop.io.dataset_pool import DatasetPool
    except ImportError:
        return None
    return DatasetPool()


def child_map(spec: dict[str, Any]) -> dict[str, Any]:
    """`geocrop.map_aoi` as the command line runs it; works with older code (no read settings, no stages)."""
    import inspect

    import geocrop.api as api

    kwargs: dict[str, Any] = dict(
        aoi=spec["aoi"],
        start=START,
        end=END,
        out=spec["out"],
        model=spec["bundle"],
        stac=spec["url"],
        chunk_size=spec["tile"],
        yes=True,
        allow_any_asset_href=True,
        tune_process=True,
    )
    if "read_threads" in inspect.signature(api.map_aoi).parameters:
        kwargs.update(read_threads=spec["threads"], read_ahead=spec["ahead"])
        if "cache_mb" in spec:
            kwargs["read_cache_mb"] = spec["cache_mb"]
    if "read_disk_cache" in inspect.signature(api.map_aoi).parameters and spec.get("disk_cache"):
        kwargs["read_disk_cache"] = spec["disk_cache"]
    t0 = time.perf_counter()
    result = api.map_aoi(**kwargs)
    stages = getattr(result, "stages", None)
    return {
        "wall_s": result.seconds,
        "call_s": time.perf_counter() - t0,
        "rss_mb": peak_rss_mb(),
        "stages": stages.as_properties() if stages is not None else None,
    }


def run_child(kind: str, spec: dict[str, Any], *, code: Path | None = None) -> dict[str, Any]:
    """Run ``child_<kind>(spec)`` in a fresh process with this checkout's ``geocrop`` (``code``: a folder
    holding another)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(spec["cores"]))
    # This checkout's geocrop unless another is asked for (whatever the environment's install points at).
    env["PYTHONPATH"] = str(code if code is not None else HERE.parent)
    cmd = [sys.executable, str(Path(__file__).resolve()), f"_{kind}", json.dumps(spec)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tempfile.gettempdir())
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} child failed:\n{proc.stderr[-3000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def export_revision(rev: str, work: Path) -> Path:
    """``geocrop/`` at git revision ``rev`` in a folder of its own (``git archive``: the checkout is
    untouched)."""
    folder = work / f"code-{rev}"
    if not (folder / "geocrop" / "__init__.py").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "-C", str(HERE.parent), "archive", rev, "geocrop"], capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


# -- the run ---------------------------------------------------------------------------------------------
def save(opts: argparse.Namespace, **parts: Any) -> None:
    """Write what is measured so far into ``--json``: a stopped run keeps its rows (``--report``)."""
    if opts.json is None:
        return
    data = json.loads(opts.json.read_text()) if opts.json.is_file() else {}
    data.update(parts)
    opts.json.write_text(json.dumps(data, indent=1))


def measure(opts: argparse.Namespace, bundles: dict[str, str], before: Path | None) -> list[dict[str, Any]]:
    from tests.io.range_server import serve
    from tests.io.stac_fixtures import rustac_server

    folder, items, aoi = build_area(opts.mosaic, work=opts.work, block=opts.block)
    rows: list[dict[str, Any]] = []
    engine: dict[str, float] = {}
    base = {
        "aoi": aoi,
        "tile": opts.tile,
        "threads": opts.read_threads,
        "ahead": opts.read_ahead,
        "cores": opts.cores,
    }
    caches = opts.work / f"caches-{os.getpid()}"  # every map and read alone starts with an empty disk cache
    for latency in opts.latencies:
        with serve(folder, latency=latency / 1000, mbit=opts.mbit, nice=SERVER_NICE) as files:
            coll, lines = api_inputs(items, files.url, opts.work / f"api-{latency}")
            with rustac_server(coll, lines) as url:
                here = {m: b for m, b in bundles.items() if m == "head" or latency in opts.backbone_latencies}
                measured = here if opts.engine_each else ({} if engine else bundles)
                spec = {
                    **base,
                    "url": url,
                    "bundles": measured,
                    "disk_cache": str(caches / f"read-{latency}"),
                }
                files.reset()
                read = run_child("read", spec)
                read["server"] = files.stats()
                engine = {**engine, **{m: read[f"engine_s:{m}"] for m in measured}}
                print(f"# {latency} ms: read alone {read['read_s']:.1f} s, {read['server']}", flush=True)
                runs = [
                    (m, "after", None) for m in bundles if m == "head" or latency in opts.backbone_latencies
                ]
                if before is not None and latency in opts.before_latencies:
                    runs.append(("head", "before", before))
                if "head" in bundles and latency in opts.rerun_latencies:
                    runs.append(("head", "rerun", None))  # the head map again, from its disk cache
                for model, version, code in runs:
                    files.reset()
                    out = opts.work / f"map-{latency}-{model}-{version}.tif"
                    cache = caches / f"map-{latency}-{model}-{'after' if version == 'rerun' else version}"
                    child = {**spec, "bundle": bundles[model], "out": str(out), "disk_cache": str(cache)}
                    if version == "before":  # that code with its own default reader threads
                        child["threads"] = opts.before_read_threads
                    load = os.getloadavg()[0]
                    got = run_child("map", child, code=code)
                    got.update(
                        load=[load, os.getloadavg()[0]],
                        server=files.stats(),
                        latency=latency,
                        model=model,
                        version=version,
                        read_alone_s=read["read_s"],
                        engine_alone_s=engine[model],
                        pixels=read["pixels"],
                        tiles=read["tiles"],
                        scenes=read["scenes"],
                        read_server=read["server"],
                    )
                    rows.append(got)
                    save(opts, rows=rows)
                    print(f"# {latency} ms {model} {version}: {got['wall_s']:.1f} s", flush=True)
    return rows


def sweep_rows(opts: argparse.Namespace) -> list[dict[str, Any]]:
    """Read alone at one latency with other reader settings (which of them help)."""
    from tests.io.range_server import serve
    from tests.io.stac_fixtures import rustac_server

    folder, items, aoi = build_area(opts.mosaic, work=opts.work, block=opts.block)
    variants: list[dict[str, Any]] = [{}]  # the defaults, then one setting changed at a time
    variants += [{"threads": t} for t in opts.sweep_threads]
    variants += [{"ahead": 1}, {"ahead": 3}, {"gdal": False}, {"cache_mb": 16}]
    rows = []
    with serve(folder, latency=opts.sweep_latency / 1000, mbit=opts.mbit, nice=SERVER_NICE) as files:
        coll, lines = api_inputs(items, files.url, opts.work / f"api-sweep-{opts.sweep_latency}")
        with rustac_server(coll, lines) as url:
            for variant in variants:
                spec = {
                    "aoi": aoi,
                    "tile": opts.tile,
                    "threads": opts.read_threads,
                    "ahead": opts.read_ahead,
                    "cores": opts.cores,
                    "url": url,
                    "bundles": {},
                    **variant,
                }
                files.reset()
                got = run_child("read", spec)
                got.update(variant=variant, server=files.stats())
                rows.append(got)
                save(opts, sweep=rows)
                print(f"# sweep {variant}: {got['read_s']:.1f} s {got['server']}", flush=True)
    return rows


def memory_rows(opts: argparse.Namespace, bundle: str) -> list[dict[str, Any]]:
    from tests.io.range_server import serve
    from tests.io.stac_fixtures import rustac_server

    rows = []
    for k in opts.memory_mosaics:
        folder, items, aoi = build_area(k, work=opts.work, block=opts.block)
        with serve(folder, latency=0.0, mbit=opts.mbit, nice=SERVER_NICE) as files:
            coll, lines = api_inputs(items, files.url, opts.work / f"api-mem-{k}")
            with rustac_server(coll, lines) as url:
                spec = {
                    "aoi": aoi,
                    "tile": opts.memory_tile,
                    "threads": opts.read_threads,
                    "ahead": opts.read_ahead,
                    "cores": opts.cores,
                    "url": url,
                    "bundle": bundle,
                    "out": str(opts.work / f"mem-{k}.tif"),
                    "disk_cache": str(opts.work / f"caches-{os.getpid()}" / f"mem-{k}"),
                    **({"cache_mb": opts.memory_cache_mb} if opts.memory_cache_mb else {}),
                }
                load = os.getloadavg()[0]
                got = run_child("map", spec)
                got.update(mosaic=k, load=[load, os.getloadavg()[0]], server=files.stats())
                rows.append(got)
                save(opts, memory=rows)
                print(f"# memory {k}x{k}: {got['rss_mb']:.0f} MB", flush=True)
    return rows


def table(rows: list[dict[str, Any]], sweep: list[dict[str, Any]], mem: list[dict[str, Any]]) -> str:
    head = (
        "| latency | model | code | map s | "
        + " | ".join(STAGES)
        + " | other | requests | MB | read alone s "
        "| engine alone s | map px/s | of engine alone | of read alone | of the slower | peak RSS MB | load |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)] if rows else []
    for r in rows:
        px, wall = r["pixels"], r["wall_s"]
        split = r["stages"]["stage_seconds"] if r["stages"] else {}
        other = f"{r['stages']['other_seconds']:.1f}" if r["stages"] else "-"
        e2e, read_rate, engine_rate = px / wall, px / r["read_alone_s"], px / r["engine_alone_s"]
        cells = [
            f"{r['latency']} ms",
            r["model"],
            r["version"],
            f"{wall:.1f}",
            *(f"{split[s]:.1f}" if split else "-" for s in STAGES),
            other,
            f"{r['server']['requests']:,}",
            f"{r['server']['bytes'] / 1e6:.1f}",
            f"{r['read_alone_s']:.1f}",
            f"{r['engine_alone_s']:.1f}",
            f"{e2e:,.0f}",
            f"{e2e / engine_rate:.0%}",
            f"{e2e / read_rate:.0%}",
            f"{e2e / min(read_rate, engine_rate):.0%}",
            f"{r['rss_mb']:,.0f}",
            "-" if "load" not in r else f"{r['load'][0]:.1f}-{r['load'][1]:.1f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if sweep:
        lines += ["", "| read alone, other settings | read s | requests | MB |", "|---|---|---|---|"]
        for r in sweep:
            what = ", ".join(f"{k}={v}" for k, v in r["variant"].items()) or "defaults"
            lines.append(
                f"| {what} | {r['read_s']:.1f} | {r['server']['requests']:,} | "
                f"{r['server']['bytes'] / 1e6:.1f} |"
            )
    if mem:
        lines += [
            "",
            "| area | map s | MB read | peak RSS MB | x first | load |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {m['mosaic']}x{m['mosaic']} sample | {m['wall_s']:.1f} | "
            f"{m['server']['bytes'] / 1e6 if 'server' in m else float('nan'):.1f} | {m['rss_mb']:,.0f} | "
            f"{m['rss_mb'] / mem[0]['rss_mb']:.2f} | "
            + ("-" if "load" not in m else f"{m['load'][0]:.1f}-{m['load'][1]:.1f}")
            + " |"
            for m in mem
        ]
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] in ("_read", "_map"):
        spec = json.loads(sys.argv[2])
        # The child sees a machine of --cores cores: the engine gives torch every core it sees.
        os.cpu_count = lambda: int(spec["cores"])
        print(json.dumps(child_read(spec) if sys.argv[1] == "_read" else child_map(spec)))
        return
    sys.path.insert(1, str(HERE.parent))  # tests.io.range_server, tests.io.stac_fixtures
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ints = lambda s: [int(v) for v in s.split(",") if v]  # noqa: E731
    p.add_argument("--latencies", type=ints, default=[0, 20, 50, 100], help="ms per request")
    p.add_argument("--mbit", type=float, default=100.0, help="link bandwidth, Mbit/s")
    p.add_argument("--mosaic", type=int, default=3, help="the sample area repeated k x k (96k px square)")
    p.add_argument("--tile", type=int, default=144, help="map tile (chunk_size), px")
    p.add_argument("--block", type=int, default=144, help="COG internal tile, px")
    p.add_argument("--read-threads", type=int, default=48, help="geocrop map's default")
    p.add_argument("--before-read-threads", type=int, default=16, help="read_threads of the --before maps")
    p.add_argument(
        "--cores", type=int, default=1, help="cores each map may use (torch threads): 1 on a shared machine"
    )
    p.add_argument("--read-ahead", type=int, default=2)
    p.add_argument("--models", default="head,backbone")
    p.add_argument(
        "--before", default=None, help="git revision to compare (its geocrop/ mapped the same way)"
    )
    p.add_argument("--before-latencies", type=ints, default=[0, 50])
    p.add_argument("--backbone-latencies", type=ints, default=[0, 50], help="latencies the backbone maps at")
    p.add_argument(
        "--rerun-latencies", type=ints, default=[50], help="latencies the head maps again from its disk cache"
    )
    p.add_argument(
        "--engine-once",
        dest="engine_each",
        action="store_false",
        help="engine alone only in the first latency's process (default: in each, beside its maps)",
    )
    p.add_argument(
        "--report", type=Path, default=None, help="print the table of a saved --json file, run nothing"
    )
    p.add_argument("--sweep", action="store_true", help="read alone with other reader settings")
    p.add_argument("--sweep-latency", type=int, default=50)
    p.add_argument("--sweep-threads", type=ints, default=[4, 8, 32])
    p.add_argument("--memory", action="store_true", help="also compare peak RSS of a 1x and a 16x area")
    p.add_argument("--memory-mosaics", type=ints, default=[1, 4])
    p.add_argument("--memory-tile", type=int, default=48)
    p.add_argument("--memory-cache-mb", type=int, default=None, help="read_cache_mb of the memory maps")
    p.add_argument("--work", type=Path, default=WORK)
    p.add_argument("--json", type=Path, default=None, help="write the results here (for plot_remote_read.py)")
    p.add_argument("--quick", action="store_true", help="smoke run: 0 and 50 ms, head only, mosaic 1, 48 px")
    opts = p.parse_args()
    if opts.report is not None:
        data = json.loads(opts.report.read_text())
        print(data.get("meta", {}).get("line", ""))
        print(table(data.get("rows", []), data.get("sweep", []), data.get("memory", [])))
        return
    if opts.quick:
        opts.latencies, opts.models, opts.mosaic, opts.tile, opts.memory_mosaics = (
            [0, 50],
            "head",
            1,
            48,
            [1, 2],
        )
    opts.work.mkdir(parents=True, exist_ok=True)
    all_bundles = {
        "head": str(write_head_bundle(opts.work / "head.safetensors")),
        "backbone": str(DEMO_BUNDLE),
    }
    bundles = {m: all_bundles[m] for m in opts.models.split(",") if m}
    before = export_revision(opts.before, opts.work) if opts.before else None
    load = os.getloadavg()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    if opts.json is not None and opts.json.is_file():
        opts.json.unlink()
    options = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(opts).items()}
    save(opts, meta={"started": started, "load_start": load, "options": options})
    rows = measure(opts, bundles, before) if bundles else []
    sweep = sweep_rows(opts) if opts.sweep else []
    mem = memory_rows(opts, all_bundles["head"]) if opts.memory else []
    end_load = os.getloadavg()
    line = (
        f"{started}; load average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, at end "
        f"{end_load[0]:.2f} {end_load[1]:.2f} {end_load[2]:.2f}; {os.cpu_count()} CPUs; "
        f"{opts.mbit:g} Mbit/s; "
        f"mosaic {opts.mosaic} ({96 * opts.mosaic} px), {opts.tile} px tiles, {opts.block} px COG blocks; "
        f"read_threads {opts.read_threads}, read_ahead {opts.read_ahead}; torch on {opts.cores} core(s)"
    )
    save(
        opts,
        meta={"started": started, "load_start": load, "load_end": end_load, "line": line, "options": options},
    )
    print(f"\n{line}\n")
    print(table(rows, sweep, mem))


if __name__ == "__main__":
    main()
