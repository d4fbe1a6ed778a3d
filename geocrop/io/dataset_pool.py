"""Remote COGs opened once per map, and each reprojection set-up computed once per pair of grids.

A map reads every scene's COGs once per tile: with odc-stac's reader each of those reads opens the file
(rasterio's open: ~1.7 ms of CPU, mostly with the GIL held) and works out again which source window
lands where on the tile (odc-geo's ``compute_reproject_roi``: ~1.6 ms), although every tile reads the
same files and every scene of a band shares one source grid (docs/performance.md, "Remote reads").

`DatasetPool` keeps the files open for the map instead: a read takes an idle handle of its href (or
opens one), reads, and gives it back, so a file is opened once and again only when several threads read
it at the same moment (one handle per reading thread at a time: GDAL handles are not shared by two
threads at once). At most ``max_idle`` idle handles are kept, the least recently used closed first;
`DatasetPool.close` (or leaving its ``with`` block) closes them all. It also keeps the reprojection
set-up of each (source grid, tile grid) pair, so scenes that share a grid and later reads of a file
compute it once. The pixels are those of odc-stac's own read, bit for bit: the same read function runs on
the same set-up (tests/io/test_dataset_pool.py).

Handled by odc-stac's own reader, unpooled: reads of several bands at once and reads from overviews
(neither occurs in a map: one band per asset, tiles at the assets' resolution or finer).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

import rasterio

__all__ = ["DatasetPool", "PooledRead"]

#: Idle handles kept open by default: a season of Sentinel-2 scenes over one tile (~70 scenes x 13 COGs).
DEFAULT_MAX_IDLE = 1024
#: Reprojection set-ups kept (each a few hundred bytes): every (asset grid, tile grid) pair of a map
#: whose tiles are read a few at a time.
_MAX_SETUPS = 4096

try:  # odc-stac's read on a given reprojection set-up; without it every read goes through odc-stac
    from odc.geo.converters import rio_geobox
    from odc.geo.overlap import compute_reproject_roi
    from odc.loader._reader import resolve_band_query
    from odc.loader._rio import _do_read

    POOLING = True
except ImportError:  # pragma: no cover - another odc-loader layout: reads stay unpooled
    POOLING = False


class _Handle:
    """One open dataset and the key of its grid (shape, transform, CRS), read once at opening."""

    __slots__ = ("dataset", "geobox", "grid")

    def __init__(self, uri: str) -> None:
        self.dataset = rasterio.open(uri, "r", sharing=False)
        self.geobox = rio_geobox(self.dataset)
        self.grid = _grid_key(self.geobox)


def _grid_key(geobox: Any) -> tuple[Any, ...]:
    """What decides a reprojection set-up on one side: shape, the 6 transform terms and the CRS."""
    return (tuple(geobox.shape.yx), tuple(geobox.affine)[:6], str(geobox.crs))


class DatasetPool:
    """Open remote datasets shared by a map's reads (thread-safe), and their reprojection set-ups.

    ``max_idle``: idle handles kept open (the least recently used are closed beyond it). Use as a context
    manager, or call `close`; reads after closing still work, each opening and closing its file. Not
    picklable state: a copy sent to another process (Dask workers) arrives empty and closed, and its
    reads there open their files as odc-stac does.
    """

    def __init__(self, max_idle: int = DEFAULT_MAX_IDLE) -> None:
        if max_idle < 0:
            raise ValueError(f"max_idle {max_idle} must be >= 0")
        self.max_idle = max_idle
        self._lock = threading.Lock()
        self._idle: OrderedDict[str, list[_Handle]] = OrderedDict()  # by href, least recently used first
        self._n_idle = 0
        self._setups: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._closed = False
        self.opened = 0  # files opened (a test and the bench read it)

    # -- handles ---------------------------------------------------------------------------------
    @contextmanager
    def dataset(self, uri: str) -> Iterator[_Handle]:
        """An open handle of ``uri`` for this thread alone until the block ends (opened if none is idle).

        A handle whose read raised is closed, not kept: its state after a failed read is not trusted."""
        handle = self._take(uri)
        if handle is None:
            handle = _Handle(uri)
            with self._lock:
                self.opened += 1
        ok = False
        try:
            yield handle
            ok = True
        finally:
            self._give_back(uri, handle, keep=ok)

    def _take(self, uri: str) -> _Handle | None:
        with self._lock:
            free = self._idle.get(uri)
            if not free:
                return None
            handle = free.pop()
            self._n_idle -= 1
            if not free:
                del self._idle[uri]
            return handle

    def _give_back(self, uri: str, handle: _Handle, *, keep: bool) -> None:
        surplus: list[_Handle] = []
        with self._lock:
            if keep and not self._closed and self.max_idle > 0:
                self._idle.setdefault(uri, []).append(handle)
                self._idle.move_to_end(uri)
                self._n_idle += 1
                while self._n_idle > self.max_idle:
                    oldest, free = next(iter(self._idle.items()))
                    surplus.append(free.pop(0))
                    self._n_idle -= 1
                    if not free:
                        del self._idle[oldest]
            else:
                surplus.append(handle)
        for old in surplus:  # closed outside the lock: closing may wait on the file system
            old.dataset.close()

    @property
    def idle(self) -> int:
        """Handles open and not in use."""
        with self._lock:
            return self._n_idle

    # -- reprojection set-ups --------------------------------------------------------------------
    def setup(self, handle: _Handle, dst_geobox: Any, ttol: float) -> Any:
        """odc-geo's reprojection set-up from ``handle``'s grid onto ``dst_geobox`` (computed once per pair
        of grids and tolerance: equal inputs give an equal set-up, which the read only reads)."""
        key = (handle.grid, _grid_key(dst_geobox), ttol)
        with self._lock:
            found = self._setups.get(key)
            if found is not None:
                self._setups.move_to_end(key)
                return found
        found = compute_reproject_roi(handle.geobox, dst_geobox, ttol=ttol)
        with self._lock:
            self._setups[key] = found
            if len(self._setups) > _MAX_SETUPS:
                self._setups.popitem(last=False)
        return found

    # -- life ------------------------------------------------------------------------------------
    def close(self) -> None:
        """Close every idle handle; handles in use are closed when given back."""
        with self._lock:
            self._closed = True
            handles = [h for free in self._idle.values() for h in free]
            self._idle.clear()
            self._n_idle = 0
            self._setups.clear()
        for handle in handles:
            handle.dataset.close()

    def __enter__(self) -> DatasetPool:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        return {"max_idle": self.max_idle}

    def __setstate__(self, state: dict[str, Any]) -> None:
        fresh = DatasetPool(state["max_idle"])
        fresh._closed = True
        self.__dict__.update(fresh.__dict__)


class PooledRead:
    """Reads of one source (odc-loader's `RasterSource`) through a `DatasetPool`."""

    def __init__(self, pool: DatasetPool) -> None:
        self.pool = pool

    def __call__(self, src: Any, cfg: Any, dst_geobox: Any, selection: Any = None) -> Any:
        """``(roi, pixels)`` as odc-stac's reader returns them, or None when this read is not one the pool
        takes (several bands, an overview, no pooling available): the caller reads it as odc-stac does."""
        if not POOLING:
            return None
        ttol = 0.9 if cfg.nearest else 0.05  # odc-stac's tolerance for pasting without resampling
        with self.pool.dataset(str(src.uri)) as handle:
            band = resolve_band_query(src, handle.dataset.count, selection=selection)
            if not isinstance(band, int):
                return None
            setup = self.pool.setup(handle, dst_geobox, ttol)
            if cfg.use_overviews and setup.read_shrink > 1:
                return None
            return _do_read(rasterio.band(handle.dataset, band), cfg, dst_geobox, setup)
