"""`geocrop map --scheduler ADDRESS` on a `dask.distributed` LocalCluster of 1, 2, ... worker processes.

Writes a simulated area (``geocrop simulate --size``), then maps all of it with the demo bundle: once with
local threads (the reference map) and once per cluster size, each cluster of ``k`` worker *processes*
with one thread each (``LocalCluster(n_workers=k, threads_per_worker=1, processes=True)``; more with
``--threads-per-worker``), started before the clock starts. Each map is a fresh ``geocrop map`` process
(what a user runs); its wall time includes the workers loading the model on their first tile. Prints wall
time, the ratio to one worker, the speed-up and whether every raster of the map (classes, confidence)
equals the threaded map's.

    python bench/scale_out.py [--workers 1,2] [--size 96] [--chunk-size 32] [--threads-per-worker 1]
                              [--keep DIR] [--json PATH]

A worker process per core is the intended use; more workers than cores only share them. The simulated
area is a test instrument (simulated scenes, demo model): its map means nothing, its cost is real.
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

import numpy as np

SEASON = ("2021-01-01", "2021-12-31")


def geocrop_exe() -> str:
    return str(Path(sys.executable).with_name("geocrop"))


def simulate(root: Path, size: int) -> Path:
    subprocess.run([geocrop_exe(), "simulate", "--out", str(root), "--size", str(size)], check=True,
                   capture_output=True)  # fmt: skip
    return root / "catalog.json"


def area_bbox(catalog: Path, margin: float = 0.02) -> str:
    """The EPSG:4326 bbox of the simulated S2 scenes, shrunk by ``margin`` of its size on each side."""
    import pystac

    cat = pystac.Catalog.from_file(str(catalog))
    item = next(i for i in cat.get_items(recursive=True) if "sentinel" in (i.collection_id or "").lower())
    assert item.bbox is not None
    minx, miny, maxx, maxy = item.bbox
    dx, dy = (maxx - minx) * margin, (maxy - miny) * margin
    return f"{minx + dx:.7f},{miny + dy:.7f},{maxx - dx:.7f},{maxy - dy:.7f}"


def run_map(catalog: Path, bbox: str, out: Path, chunk: int, scheduler: str | None) -> float:
    cmd = [geocrop_exe(), "map", "--stac", str(catalog), "--bbox", bbox, "--start", SEASON[0],
           "--end", SEASON[1], "--out", str(out), "--chunk-size", str(chunk), "--device", "cpu",
           "--probabilities", "--progress", "none", "--yes"]  # fmt: skip
    if scheduler:
        cmd += ["--scheduler", scheduler]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"geocrop map failed ({scheduler or 'threads'}):\n{done.stderr[-3000:]}")
    return seconds


def read_map(path: Path) -> list[np.ndarray]:
    """Every raster the map wrote: the class COG and its siblings (``<stem>_confidence.tif``, ...)."""
    import rasterio

    arrays = []
    for tif in [path, *sorted(path.parent.glob(f"{path.stem}_*.tif"))]:
        with rasterio.open(tif) as src:
            arrays.append(np.asarray(src.read()))
    return arrays


def same_maps(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y, equal_nan=True) for x, y in zip(a, b, strict=True))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2", help="comma-separated cluster sizes (default 1,2)")
    parser.add_argument("--size", type=int, default=96, help="simulated area side, S2 px (default 96)")
    parser.add_argument("--chunk-size", type=int, default=32, help="map tile side in px (default 32)")
    parser.add_argument("--threads-per-worker", type=int, default=1, help="threads per worker (default 1)")
    parser.add_argument("--keep", type=Path, help="write the area and maps here (reused if present)")
    parser.add_argument("--json", type=Path)
    opts = parser.parse_args(argv)
    from distributed import LocalCluster

    with tempfile.TemporaryDirectory() as tmp:
        root = opts.keep or Path(tmp)
        catalog = root / "area" / "catalog.json"
        if not catalog.is_file():
            simulate(root / "area", opts.size)
        bbox = area_bbox(catalog)
        reference_s = run_map(catalog, bbox, root / "threads.tif", opts.chunk_size, None)
        reference = read_map(root / "threads.tif")
        rows = [("local threads (no --scheduler)", 0, reference_s, True)]
        for k in (int(w) for w in opts.workers.split(",")):
            with LocalCluster(n_workers=k, threads_per_worker=opts.threads_per_worker, processes=True,
                              dashboard_address=None, worker_dashboard_address=None) as cluster:  # fmt: skip
                seconds = run_map(catalog, bbox, root / f"cluster{k}.tif", opts.chunk_size,
                                  cluster.scheduler_address)  # fmt: skip
            same = same_maps(read_map(root / f"cluster{k}.tif"), reference)
            threads = f"{opts.threads_per_worker} thread{'s' if opts.threads_per_worker > 1 else ''}"
            rows.append(
                (f"LocalCluster, {k} worker process{'es' if k > 1 else ''} x {threads}", k, seconds, same)
            )
    shape = reference[0].shape
    one = next((s for _, k, s, _ in rows if k == 1), None)
    print(f"`geocrop map --scheduler` scale-out ({os.cpu_count()} CPU threads): simulated {opts.size} x "
          f"{opts.size} px area, demo bundle, {opts.chunk_size} px tiles, map {shape[1]} x {shape[2]} px, "
          f"{len(reference)} rasters compared")  # fmt: skip
    print("| run | workers | wall s | x 1 worker (time) | speed-up | map identical to threads |")
    print("|---|---|---|---|---|---|")
    for name, k, seconds, same in rows:
        ratio = f"{seconds / one:.2f}" if one else "-"
        speed = f"{one / seconds:.2f}" if one else "-"
        print(f"| {name} | {k or '-'} | {seconds:.1f} | {ratio} | {speed} | {'yes' if same else 'NO'} |")
    if opts.json:
        opts.json.write_text(json.dumps([dict(zip(("run", "workers", "seconds", "identical"), r, strict=True))
                                         for r in rows], indent=1))  # fmt: skip
    if not all(same for *_, same in rows):
        sys.exit("a cluster map differs from the threaded map")


if __name__ == "__main__":
    main()
