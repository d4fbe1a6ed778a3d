"""Timeline of one `geocrop map` over loopback HTTP: which tiles wait on which reads, reads in flight.

Where `remote_read.py` gives each stage's total, this maps once (the head model, `remote_area.py`'s area
behind the range server at ``--latency-ms``) and prints every span in time order: each tile's read,
regrid and engine spans, the engine's idle gaps and what it waited for, and how many scene/band reads
(`geocrop.io.odc_read`'s reader, one per asset and tile) were in flight while the map read. Reads from the
disk cache (`geocrop.io.read_cache`) are counted apart. ``--json FILE`` saves the spans.

Run: ``python bench/remote_timeline.py --latency-ms 50`` (a minute or two; the area is built once).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from remote_area import (  # noqa: E402
    END,
    START,
    add_loopback_options,
    api_inputs,
    build_area,
    write_head_bundle,
)


def record(spans: list[tuple[str, str, float, float]]) -> None:
    """Patch the stage clock and the scene/band reader to append ``(what, thread, start, end)``."""
    import geocrop.inference.stages as stages
    import geocrop.io.odc_read as odc_read

    lock = threading.Lock()

    def add(self: Any, stage: str, start: float, end: float, _orig: Any = stages.StageClock.add) -> None:
        _orig(self, stage, start, end)
        with lock:
            spans.append((stage, threading.current_thread().name, start, end))

    stages.StageClock.add = add  # type: ignore[method-assign]
    reader = odc_read.CheckedReader
    original = reader.read

    def read(self: Any, cfg: Any, dst_geobox: Any, **kw: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(self, cfg, dst_geobox, **kw)
        finally:
            with lock:
                spans.append(("asset", threading.current_thread().name, start, time.perf_counter()))

    reader.read = read  # type: ignore[method-assign]

    import geocrop.inference.tiles as tiles

    classify = tiles.classify_block

    def timed(*args: Any, **kw: Any) -> Any:
        before, start = schedstat(), time.perf_counter()
        try:
            return classify(*args, **kw)
        finally:
            after, end = schedstat(), time.perf_counter()
            with lock:
                cpu, queued = (after[0] - before[0]) / 1e9, (after[1] - before[1]) / 1e9
                spans.append(("engine-cpu", f"{cpu:.3f}/{queued:.3f}", start, end))

    tiles.classify_block = timed


def schedstat() -> tuple[int, int]:
    """This thread's (ns on a CPU, ns runnable but waiting for one) from the kernel's schedstat: the rest
    of a span's wall time the thread slept (the GIL, locks, I/O)."""
    tid = threading.get_native_id()
    try:
        cpu, wait, _ = Path(f"/proc/self/task/{tid}/schedstat").read_text().split()
        return int(cpu), int(wait)
    except (OSError, ValueError):
        return 0, 0


def in_flight(spans: list[tuple[str, str, float, float]], stage: str) -> tuple[float, float]:
    """(mean reads in flight while at least one was, seconds with at least one)."""
    events = sorted((t, d) for s, _, a, b in spans if s == stage for t, d in ((a, 1), (b, -1)))
    active, last, area, busy = 0, None, 0.0, 0.0
    for t, d in events:
        if last is not None and active > 0:
            area += active * (t - last)
            busy += t - last
        active += d
        last = t
    return (area / busy if busy else 0.0), busy


def report(spans: list[tuple[str, str, float, float]], t0: float, wall: float) -> str:
    lines = [f"wall {wall:.1f} s; spans relative to the map's start"]
    engine = sorted((a, b) for s, _, a, b in spans if s == "engine")
    reads = sorted((a, b, th) for s, th, a, b in spans if s == "read")
    for i, (a, b, th) in enumerate(reads):
        lines.append(f"read   #{i} {th:<16} {a - t0:7.2f} -> {b - t0:7.2f}  ({b - a:5.2f} s)")
    idle = 0.0
    cpu = sorted((a, th) for s, th, a, _ in spans if s == "engine-cpu")
    for i, (a, b) in enumerate(engine):
        gap = a - (engine[i - 1][1] if i else t0)
        idle += gap
        on, queued = (float(v) for v in cpu[i][1].split("/")) if i < len(cpu) else (0.0, 0.0)
        lines.append(
            f"engine #{i} {a - t0:7.2f} -> {b - t0:7.2f}  ({b - a:5.2f} s; waited {gap:5.2f} s before; "
            f"on a CPU {on:5.2f} s, waiting for one {queued:5.2f} s, asleep {b - a - on - queued:5.2f} s)"
        )
    assets = [b - a for s, _, a, b in spans if s == "asset"]
    mean, busy = in_flight(spans, "asset")
    if assets:
        assets.sort()
        lines.append(
            f"scene/band reads: {len(assets)}, median {assets[len(assets) // 2] * 1000:.0f} ms, "
            f"90th {assets[int(len(assets) * 0.9)] * 1000:.0f} ms; {mean:.1f} in flight on average "
            f"over the {busy:.1f} s with any"
        )
    lines.append(f"engine busy {sum(b - a for a, b in engine):.1f} s, waiting {idle:.1f} s before its tiles")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_loopback_options(p)
    p.add_argument("--cores", type=int, default=1, help="torch threads")
    p.add_argument("--set", action="append", default=[], help="a MapConfig field, NAME=VALUE (int)")
    p.add_argument("--runs", type=int, default=1, help="maps in a row into one output (the disk cache)")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--disk-cache", type=Path, default=None, help="read_disk_cache (default: a new folder)")
    p.add_argument("--switch-ms", type=float, default=None, help="sys.setswitchinterval (the GIL's)")
    opts = p.parse_args()
    if opts.switch_ms is not None:
        sys.setswitchinterval(opts.switch_ms / 1000)
    os.environ["OMP_NUM_THREADS"] = str(opts.cores)
    os.cpu_count = lambda: opts.cores  # the engine gives torch every core it sees
    from geocrop.inference.mapping import MapConfig, map_aoi
    from tests.io.range_server import serve
    from tests.io.stac_fixtures import rustac_server

    folder, items, aoi = build_area(opts.mosaic, work=opts.work, block=opts.block)
    bundle = write_head_bundle(opts.work / "head.safetensors")
    extra = {k: int(v) for k, v in (s.split("=", 1) for s in opts.set)}
    spans: list[tuple[str, str, float, float]] = []
    record(spans)
    saved = []
    with serve(folder, latency=opts.latency_ms / 1000, mbit=opts.mbit, nice=19) as files:
        coll, lines = api_inputs(items, files.url, opts.work / f"api-timeline-{opts.latency_ms:g}")
        with rustac_server(coll, lines) as url, tempfile.TemporaryDirectory() as tmp:
            for run in range(opts.runs):
                spans.clear()
                files.reset()
                t0 = time.perf_counter()
                config = MapConfig(
                    aoi=aoi,
                    start=START,
                    end=END,
                    out=str(Path(tmp) / f"map-{run}.tif"),
                    model=str(bundle),
                    stac=url,
                    chunk_size=opts.tile,
                    yes=True,
                    allow_any_asset_href=True,
                    read_disk_cache=opts.disk_cache or Path(tmp) / "cache",
                    **extra,
                )
                result = map_aoi(config, tune_process=True)
                wall = time.perf_counter() - t0
                print(f"# run {run + 1}: server {files.stats()}; load {os.getloadavg()[0]:.2f}")
                print(result.stages.describe() if result.stages else "")
                print(report(spans, t0, wall), flush=True)
                saved.append({"t0": t0, "wall": wall, "spans": list(spans), "server": files.stats()})
    if opts.json is not None:
        opts.json.write_text(json.dumps(saved))


if __name__ == "__main__":
    main()
