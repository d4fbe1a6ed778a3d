"""Read alone, tile by tile, over loopback HTTP: each tile's wall time and this process's CPU time.

Where `remote_read.py` times whole maps, this reads `remote_area.py`'s area (the sample, ``--mosaic``
repeated, behind the range server at ``--latency-ms``) through `geocrop.io.cube.load_s2` one tile after
another, as `geocrop map` reads them, and prints each tile's wall and CPU seconds and a checksum of its
pixels (equal between settings: the same pixels). ``--no-pool`` reads without the dataset pool
(`geocrop.io.dataset_pool`: each read opens its file, as before the pool); ``--threads`` sets the reads
in flight; ``--scenes-per-read 0`` reads every scene of a band in one task (as before
`geocrop.io.odc_read.SCENES_PER_READ`); ``--profile N`` profiles tile N's reads in the calling thread
(Dask's synchronous scheduler).

Run: ``python bench/remote_tiles.py --latency-ms 50 --threads 48`` (under a minute once the area is built).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from remote_area import add_loopback_options, api_inputs, build_area, search_area  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_loopback_options(p)
    p.add_argument("--threads", type=int, default=48, help="read_threads")
    p.add_argument("--no-pool", dest="pool", action="store_false", help="each read opens its file")
    p.add_argument("--scenes-per-read", type=int, default=None, help="scenes per read task (0: all)")
    p.add_argument("--profile", type=int, default=None, help="profile this tile's reads (one thread)")
    opts = p.parse_args()
    from shapely.geometry import shape

    import geocrop.io.odc_read as odc_read
    from geocrop.inference.tiles import plan_tiles
    from geocrop.io.aoi import read_aoi
    from geocrop.io.cube import load_s2
    from geocrop.io.dataset_pool import DatasetPool
    from geocrop.io.reading import ReadSettings
    from tests.io.range_server import serve
    from tests.io.stac_fixtures import rustac_server

    if opts.scenes_per_read is not None:
        odc_read.SCENES_PER_READ = opts.scenes_per_read or 1_000_000  # type: ignore[misc]
    folder, items, aoi_json = build_area(opts.mosaic, work=opts.work, block=opts.block)
    with serve(folder, latency=opts.latency_ms / 1000, mbit=opts.mbit, nice=19) as files:
        coll, lines = api_inputs(items, files.url, opts.work / f"api-tiles-{opts.latency_ms:g}")
        with rustac_server(coll, lines) as url, DatasetPool() as pool:
            aoi = read_aoi(shape(aoi_json))
            found = search_area(url, aoi)
            read = ReadSettings(threads=opts.threads, disk_cache_mb=0)
            chunks = {"x": opts.tile, "y": opts.tile}
            cube = load_s2(found, aoi=aoi, chunks=chunks, read=read, datasets=pool if opts.pool else None)
            tiles = plan_tiles(int(cube.shape[2]), int(cube.shape[3]), opts.tile)
            profiler = cProfile.Profile()
            for i, tile in enumerate(tiles):
                block = cube.data[:, :, tile.y0 : tile.y0 + tile.height, tile.x0 : tile.x0 + tile.width]
                profiled = i == opts.profile
                wall, cpu = time.perf_counter(), time.process_time()
                if profiled:
                    profiler.enable()
                values = block.compute(scheduler="sync" if profiled else "threads", num_workers=opts.threads)
                if profiled:
                    profiler.disable()
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                total = float(abs(values[values == values]).sum())
                print(f"tile {i}: {wall:.2f} s wall, {cpu:.2f} s CPU, checksum {total:.6f}", flush=True)
            print(f"server: {files.stats()}; files opened: {pool.opened if opts.pool else 'no pool'}")
    if opts.profile is not None:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(20)


if __name__ == "__main__":
    main()
