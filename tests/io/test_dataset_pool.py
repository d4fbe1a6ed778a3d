"""Remote files opened once per map (`geocrop.io.dataset_pool`): the pool's bounds and hand-offs, and reads
through it that give odc-stac's pixels bit for bit while opening each file once, however many tiles."""

from __future__ import annotations

import datetime as dt
import pickle
import threading
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
from affine import Affine

from geocrop.io.aoi import read_aoi
from geocrop.io.cube import load_s2
from geocrop.io.dataset_pool import POOLING, DatasetPool
from geocrop.io.reading import ReadSettings
from tests.io.range_server import serve
from tests.io.stac_fixtures import ORIGIN, s2_item, synthetic_s2, tile_bbox

SIZE = 20
DATES = tuple(dt.date(2021, 4, 1) + dt.timedelta(days=20 * i) for i in range(3))
BANDS = ("B02", "B03", "B04", "B05", "B08")


def _tifs(folder: Path, n: int) -> list[str]:
    paths = []
    for i in range(n):
        path = folder / f"f{i}.tif"
        profile = {"driver": "GTiff", "width": 4, "height": 4, "count": 1, "dtype": "uint8"}
        with rasterio.open(
            path, "w", **profile, crs="EPSG:32633", transform=Affine(10, 0, 0, 0, -10, 40)
        ) as f:
            f.write(np.full((1, 4, 4), i, np.uint8))
        paths.append(str(path))
    return paths


def test_idle_handles_are_reused_and_bounded_least_recently_used_first(tmp_path: Path) -> None:
    a, b, c = _tifs(tmp_path, 3)
    pool = DatasetPool(max_idle=2)
    for uri in (a, b, c):
        with pool.dataset(uri) as handle:
            assert handle.dataset.read(1)[0, 0] == int(uri[-5])
    assert pool.opened == 3 and pool.idle == 2  # a, the least recently used, was closed
    with pool.dataset(c):
        pass
    assert pool.opened == 3  # c was idle: reused
    with pool.dataset(a):
        pass
    assert pool.opened == 4  # a was closed: opened again
    pool.close()
    assert pool.idle == 0


def test_a_handle_serves_one_user_at_a_time(tmp_path: Path) -> None:
    (a,) = _tifs(tmp_path, 1)
    with DatasetPool() as pool:
        with pool.dataset(a) as first, pool.dataset(a) as second:
            assert first is not second  # a second reader of the same file gets its own handle
        assert pool.opened == 2 and pool.idle == 2
        seen = []
        barrier = threading.Barrier(2)

        def use() -> None:
            with pool.dataset(a) as handle:
                barrier.wait(timeout=10)
                seen.append(handle)

        threads = [threading.Thread(target=use) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert seen[0] is not seen[1] and pool.opened == 2  # both idle handles reused, none shared


def test_failed_reads_and_closing_close_the_handles(tmp_path: Path) -> None:
    a, b = _tifs(tmp_path, 2)
    pool = DatasetPool()
    with pytest.raises(RuntimeError), pool.dataset(a) as broken:
        raise RuntimeError("read failed")
    assert broken.dataset.closed and pool.idle == 0  # not trusted again
    with pool.dataset(a) as idle:
        pass
    with pool.dataset(b) as busy:
        pool.close()
        assert idle.dataset.closed and not busy.dataset.closed
    assert busy.dataset.closed  # given back after closing: closed, not kept
    with pool.dataset(b) as late:  # still reads, opening and closing its file
        assert late.dataset.read(1)[0, 0] == 1
    assert late.dataset.closed and pool.idle == 0


def test_a_copy_in_another_process_starts_empty_and_keeps_nothing(tmp_path: Path) -> None:
    (a,) = _tifs(tmp_path, 1)
    with DatasetPool(max_idle=7) as pool:
        with pool.dataset(a):
            pass
        copy = pickle.loads(pickle.dumps(pool))
    assert copy.max_idle == 7 and copy.idle == 0 and copy.opened == 0
    with copy.dataset(a) as handle:
        pass
    assert handle.dataset.closed and copy.idle == 0


def test_the_reprojection_set_up_is_computed_once_per_pair_of_grids(tmp_path: Path) -> None:
    from odc.geo.geobox import GeoBox

    a, b = _tifs(tmp_path, 2)  # two files on one grid
    tile = GeoBox((2, 2), Affine(10, 0, 10, 0, -10, 30), "EPSG:32633")
    other = GeoBox((2, 2), Affine(10, 0, 20, 0, -10, 30), "EPSG:32633")
    with DatasetPool() as pool, pool.dataset(a) as ha, pool.dataset(b) as hb:
        first = pool.setup(ha, tile, 0.05)
        assert pool.setup(hb, GeoBox(tile.shape, tile.affine, tile.crs), 0.05) is first
        assert pool.setup(ha, other, 0.05) is not first
        assert pool.setup(ha, tile, 0.9) is not first


def _items(data: Path) -> list[pystac.Item]:
    """Three dates of 10 m bands, and a scene whose B05 and SCL are 20 m (read by resampling)."""
    items = synthetic_s2(data, DATES, size=SIZE, bands=BANDS)
    tf = Affine(10.0, 0, ORIGIN[0], 0, -10.0, ORIGIN[1])
    rng = np.random.default_rng(0)
    dn = {b: rng.integers(1000, 4000, (SIZE, SIZE)).astype(np.uint16) for b in ("B02", "B03", "B04", "B08")}
    dn["B05"] = rng.integers(1000, 4000, (SIZE // 2, SIZE // 2)).astype(np.uint16)
    scl = np.full((SIZE // 2, SIZE // 2), 4, np.uint8)
    when = dt.datetime(2021, 6, 15, 10, tzinfo=dt.timezone.utc)
    items.append(
        s2_item(
            data, "S2_20m", when, dn=dn, scl=scl, transform=tf, resolution={"B05": 20.0}, scl_resolution=20.0
        )
    )
    return items


def _served(items: list[pystac.Item], data: Path, url: str) -> list[pystac.Item]:
    out = []
    for item in items:
        clone = item.clone()
        for asset in clone.assets.values():
            asset.href = f"{url}/{Path(asset.href).relative_to(data).as_posix()}"
        out.append(clone)
    return out


@pytest.mark.skipif(not POOLING, reason="this odc-loader has no read on a given set-up: reads stay unpooled")
def test_pooled_remote_reads_open_each_file_once_and_give_odc_stacs_pixels(tmp_path: Path) -> None:
    data = tmp_path / "data"
    items = _items(data)
    aoi = read_aoi(tile_bbox(SIZE, 1.5))
    settings = ReadSettings(disk_cache_mb=0)
    with serve(data) as files:
        remote = _served(items, data, files.url)
        hrefs = {a.href for it in remote for a in it.assets.values() if a.roles != ["metadata"]}
        unpooled = load_s2(remote, aoi=aoi, bands=BANDS, chunks={"x": 8, "y": 8}, read=settings)
        expected = unpooled.values
        with DatasetPool() as pool:
            cube = load_s2(
                remote, aoi=aoi, bands=BANDS, chunks={"x": 8, "y": 8}, read=settings, datasets=pool
            )
            height, width = cube.shape[2:]
            got = np.full(cube.shape, -1.0, np.float32)
            for y in range(0, height, 8):  # tile by tile, as a map reads
                for x in range(0, width, 8):
                    window = cube.data[:, :, y : y + 8, x : x + 8]
                    got[:, :, y : y + 8, x : x + 8] = window.compute(scheduler="threads", num_workers=4)
            tiles = len(range(0, height, 8)) * len(range(0, width, 8))
            opened, kept = pool.opened, pool.idle
    assert tiles == 9
    assert opened == kept == len(hrefs)  # every file opened once for the nine tiles, and kept open
    assert np.array_equal(got, expected, equal_nan=True)  # bit for bit, 20 m resampling included
    assert np.isfinite(got).any() and np.isnan(got).any()
