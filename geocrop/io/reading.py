"""How a map reads its imagery: concurrency, GDAL's HTTP settings and cache, and a count of what was read.

`ReadSettings` is the user's say over reading (``MapConfig.read`` carries it; `geocrop map --read-threads
/ --read-ahead / --read-cache-mb / --read-disk-cache-mb / --read-disk-cache`): how many scene/band reads
of one tile run at once, how many tiles are read ahead of the engine, how much GDAL keeps in memory of
what it downloaded, and the on-disk cache a rerun reads from (`geocrop.io.read_cache`).
`ReadSettings.gdal_options` turns the GDAL part into configuration options that travel with each read
task (`geocrop.io.odc_read.CheckedRioDriver` restores them in the thread that reads), never into process-wide
state.

`NetworkCounter` reads GDAL's own network statistics (requests and bytes of ``/vsicurl/``, ``/vsis3/``...)
through the GDAL library that rasterio loaded, so a map can say how many requests and bytes its read took.
Bytes are exact. Requests are GDAL's count: every request that opens a file (HEAD) and every read, where
a read of several byte ranges, which GDAL sends as parallel range requests, counts once; a server sees
that many requests or more. The counters are process-wide: two maps running at once in one process count
each other's reads.
"""

from __future__ import annotations

import ctypes
import functools
import glob
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geocrop.errors import InputError
from geocrop.io.read_cache import DiskCache, default_cache_dir

__all__ = ["NetworkCounter", "NetworkTotals", "ReadSettings"]

log = logging.getLogger(__name__)
_MB = 1024 * 1024


@dataclass(frozen=True)
class ReadSettings:
    """Reading settings of one map (defaults suit a STAC API over the internet and local files alike).

    ``threads``: scene/band reads of one tile in flight at once (each is one or a few HTTP range requests;
    GDAL releases the GIL while it waits; the first tile opens every file, two round trips each, so a high
    latency wants many: docs/performance.md, "Remote reads"). ``read_ahead``: tiles read (and regridded)
    ahead of the engine; memory holds at most ``read_ahead + 1`` tiles. ``cache_mb``: GDAL's in-process
    cache of downloaded byte ranges (``CPL_VSIL_CURL_CACHE_SIZE``), shared by every read of the process,
    so a second map of the same scenes in one process (Python, the QGIS plugin) reads from memory; a new
    process starts empty. Set in the first map of a process: GDAL sizes the cache once. It is memory: with
    64 MB a 16x area's map peaked at 1.27-1.33x the RSS of 1x (256 MB held a 16x map's whole download:
    1.38x before the dataset pool; docs/performance.md).

    ``disk_cache_mb``: size of the on-disk cache of remote reads that a rerun of the same map reads
    instead of the network (`geocrop.io.read_cache`; 0: none), in ``disk_cache_dir`` (None: the user's
    cache folder, `geocrop.io.read_cache.default_cache_dir`).
    """

    threads: int = 48
    read_ahead: int = 2
    cache_mb: int = 64
    disk_cache_mb: int = 2048
    disk_cache_dir: str | None = None

    def __post_init__(self) -> None:
        checks = (
            ("read_threads", self.threads, 1, 256),
            ("read_ahead", self.read_ahead, 1, 64),
            ("read_cache_mb", self.cache_mb, 0, 1 << 20),
            ("read_disk_cache_mb", self.disk_cache_mb, 0, 1 << 30),
        )
        for name, value, low, high in checks:
            if not isinstance(value, int) or not low <= value <= high:
                raise InputError(
                    f"`{name}` {value!r} is outside {low}..{high}; give a whole number", param=name
                )

    def disk_cache(self) -> DiskCache | None:
        """The on-disk read cache these settings ask for, or None (``disk_cache_mb`` 0)."""
        if self.disk_cache_mb == 0:
            return None
        folder = Path(self.disk_cache_dir).expanduser() if self.disk_cache_dir else default_cache_dir()
        return DiskCache(str(folder.absolute()), self.disk_cache_mb)

    def gdal_options(self) -> dict[str, Any]:
        """GDAL configuration options for the reads (see docs/performance.md, "Remote reads").

        Left at GDAL's defaults, because nothing here measured a gain from them: HTTP/2 multiplexing
        (``GDAL_HTTP_MULTIPLEX``; the loopback bench speaks HTTP/1.1) and merging consecutive ranges
        (``GDAL_HTTP_MERGE_CONSECUTIVE_RANGES``; a map tile reads one block per COG in the bench).
        """
        return {
            # No directory listing or sidecar probes (.aux.xml, .ovr...) per file: 9 more requests per file
            # opened without it (measured on the loopback range server).
            "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
            # A failed request is tried again (odc-stac's defaults, which these options replace).
            "GDAL_HTTP_MAX_RETRY": "10",
            "GDAL_HTTP_RETRY_DELAY": "0.5",
            "CPL_VSIL_CURL_CACHE_SIZE": str(max(self.cache_mb, 1) * _MB),
            "CPL_VSIL_NETWORK_STATS_ENABLED": "YES",
        }


@dataclass(frozen=True)
class NetworkTotals:
    """Requests and bytes GDAL's network file systems made and received (all methods)."""

    requests: int = 0
    bytes: int = 0

    def __sub__(self, other: NetworkTotals) -> NetworkTotals:
        return NetworkTotals(self.requests - other.requests, self.bytes - other.bytes)


@functools.cache
def _gdal_library() -> Any:
    """The GDAL shared library rasterio is linked with (already loaded; opening it again shares it)."""
    import rasterio

    here = os.path.dirname(rasterio.__file__)
    candidates = sorted(glob.glob(os.path.join(here, "..", "rasterio.libs", "libgdal*")))
    candidates += sorted(glob.glob(os.path.join(here, ".dylibs", "libgdal*")))
    import ctypes.util

    system = ctypes.util.find_library("gdal")
    for path in [*candidates, *([system] if system else [])]:
        try:
            lib = ctypes.CDLL(path)
            lib.VSINetworkStatsGetAsSerializedJSON.restype = ctypes.c_void_p
            lib.VSINetworkStatsGetAsSerializedJSON.argtypes = [ctypes.c_void_p]
            lib.VSIFree.argtypes = [ctypes.c_void_p]
            lib.VSINetworkStatsReset.restype = None
            return lib
        except (OSError, AttributeError):
            continue
    return None


def _sum_methods(node: Any, totals: list[int]) -> None:
    """Add every ``methods`` entry's count and downloaded bytes below ``node`` (GDAL's JSON nests them
    per file system and per file; the top-level ``methods`` is the sum, so only it is read)."""
    for stats in node.get("methods", {}).values():
        totals[0] += int(stats.get("count", 0))
        totals[1] += int(stats.get("downloaded_bytes", 0))


class NetworkCounter:
    """Snapshots of GDAL's network statistics; ``available`` is False where the library is not reachable.

    GDAL reads its switch (``CPL_VSIL_NETWORK_STATS_ENABLED``, which `ReadSettings.gdal_options` sets for
    every read) at the first request after a reset of the statistics and keeps the answer. A new counter
    therefore resets them while they hold nothing (never counted, or switched off by an earlier read
    without the option), so that the next read decides; counts already there are kept.
    """

    def __init__(self) -> None:
        lib = _gdal_library()
        self.available = lib is not None
        if lib is not None and self.totals() == NetworkTotals():
            lib.VSINetworkStatsReset()

    def totals(self) -> NetworkTotals:
        lib = _gdal_library()
        if lib is None:
            return NetworkTotals()
        pointer = lib.VSINetworkStatsGetAsSerializedJSON(None)
        if not pointer:
            return NetworkTotals()
        try:
            stats = json.loads(ctypes.string_at(pointer).decode())
        except ValueError:
            log.debug("GDAL network statistics were not JSON")
            return NetworkTotals()
        finally:
            lib.VSIFree(pointer)
        totals = [0, 0]
        _sum_methods(stats, totals)
        return NetworkTotals(requests=totals[0], bytes=totals[1])
