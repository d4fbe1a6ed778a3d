"""An on-disk cache of remote scene/band reads, so that a rerun of a map reads nothing over the network.

Every read of a map is one asset (a COG's href and band) warped onto one tile's grid
(`geocrop.io.cube`'s reader, once per scene, band and tile). `DiskCache` keeps each such read of a
remote asset (``http(s)://``, ``s3://``, ``/vsi...``) as a small file, keyed by what decides its
pixels: the asset's href (without the signature parameters of a signed URL, which change at every
search), its band, the destination grid (CRS, transform, shape), resampling, dtype and nodata. A rerun
of the same map (same AOI, grid and tile size) finds every read there and neither opens nor downloads
a file; another tile size or area misses and reads as usual. Local files are never cached (they are
already on disk).

The cache trusts that the bytes behind an href do not change (STAC assets are published once); clear
the folder when a source republishes under the same href. Its size is bounded: when the files pass
``max_mb``, the least recently used are removed (down to 80 %). Several processes may share a folder:
files are written under a temporary name and renamed, and a file removed by another process is a miss.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np
import numpy.typing as npt

__all__ = ["CacheCounts", "DiskCache", "cache_counts", "cache_key_href", "default_cache_dir", "is_remote"]

log = logging.getLogger(__name__)
_MB = 1024 * 1024
#: Bumped when the file layout or the key changes: older entries then miss (and age out).
_FORMAT = 1
_REMOTE_PREFIXES = ("http://", "https://", "s3://", "gs://", "az://", "abfs://", "/vsi")
#: Query parameters of signed URLs (Azure SAS, AWS and Google signatures): they change with every search
#: of the same asset, so they are left out of the key.
_SIGNATURE = frozenset(
    {"sig", "se", "st", "sp", "sv", "sr", "ss", "srt", "spr", "skoid", "sktid", "skt", "ske", "sks", "skv"}
)
_SIGNATURE_PREFIXES = ("x-amz-", "x-goog-")
#: Bytes in each folder as this process last knew them (scanned once, then kept up to date).
_USAGE: dict[str, int] = {}
_USAGE_LOCK = threading.Lock()


@dataclass(frozen=True)
class CacheCounts:
    """Reads of remote assets this process took from a disk cache (``hits``, ``hit_bytes``) or read and
    kept (``misses``); `cache_counts` gives the running totals, a map the difference over its run."""

    hits: int = 0
    misses: int = 0
    hit_bytes: int = 0

    def __sub__(self, other: CacheCounts) -> CacheCounts:
        return CacheCounts(
            self.hits - other.hits, self.misses - other.misses, self.hit_bytes - other.hit_bytes
        )


_COUNTS = [0, 0, 0]  # hits, misses, hit bytes


def cache_counts() -> CacheCounts:
    """This process's disk-cache hits, misses and bytes read from the cache so far."""
    with _USAGE_LOCK:
        return CacheCounts(*_COUNTS)


def _count(hit: bool, nbytes: int) -> None:
    with _USAGE_LOCK:
        _COUNTS[0 if hit else 1] += 1
        _COUNTS[2] += nbytes if hit else 0


def default_cache_dir() -> Path:
    """``geocrop/reads`` in the user's cache folder (``$XDG_CACHE_HOME`` or ``~/.cache`` on Linux,
    ``~/Library/Caches`` on macOS, ``%LOCALAPPDATA%`` on Windows)."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "geocrop" / "reads"


def is_remote(uri: str) -> bool:
    """True for an href GDAL reads over the network."""
    return uri.lower().startswith(_REMOTE_PREFIXES)


def cache_key_href(uri: str) -> str:
    """``uri`` without the query parameters that sign it (SAS tokens, ``X-Amz-*``...), sorted."""
    parts = urlsplit(uri)
    if not parts.query:
        return uri
    kept = sorted(
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k.lower() not in _SIGNATURE and not k.lower().startswith(_SIGNATURE_PREFIXES)
    )
    return urlunsplit(parts._replace(query=urlencode(kept)))


def _bound(value: int | None) -> int:
    return -1 if value is None else int(value)


def _slice(start: int, stop: int) -> slice:
    return slice(None if start < 0 else start, None if stop < 0 else stop)


@dataclass(frozen=True)
class DiskCache:
    """A folder of cached reads, at most ``max_mb`` MB (picklable: it travels with Dask's read tasks)."""

    folder: str
    max_mb: int

    def key(self, src: Any, cfg: Any, dst_geobox: Any, selection: Any = None) -> str | None:
        """The entry's name for reading ``src`` (odc-loader's `RasterSource`) with ``cfg`` onto
        ``dst_geobox``; None for a local file (not cached)."""
        if not is_remote(str(src.uri)):
            return None
        what = {
            "format": _FORMAT,
            "href": cache_key_href(str(src.uri)),
            "band": src.band,
            "subdataset": src.subdataset,
            "crs": str(dst_geobox.crs),
            "transform": [round(float(v), 9) for v in tuple(dst_geobox.transform)[:6]],
            "shape": list(dst_geobox.shape.yx),
            "load": [
                str(cfg.dtype),
                repr(cfg.fill_value),
                repr(cfg.src_nodata_fallback),
                repr(cfg.src_nodata_override),
                bool(cfg.use_overviews),
                str(cfg.resampling),
            ],
            "selection": repr(selection),
        }
        return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()

    def _path(self, key: str) -> Path:
        return Path(self.folder) / key[:2] / f"{key}.npy"

    def get(self, key: str) -> tuple[tuple[slice, slice], npt.NDArray[Any]] | None:
        """The cached ``(roi, pixels)`` of a read, or None (missing, removed meanwhile or unreadable)."""
        path = self._path(key)
        try:
            with open(path, "rb") as f:
                bounds = np.lib.format.read_array(f)
                pixels = np.lib.format.read_array(f)
            os.utime(path)  # recently used: removed last
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.debug("read cache entry %s is unreadable (%s): read again", path, exc)
            return None
        y0, y1, x0, x1 = (int(v) for v in bounds)
        _count(True, pixels.nbytes)
        return (_slice(y0, y1), _slice(x0, x1)), pixels

    def put(self, key: str, roi: tuple[slice, slice], pixels: npt.NDArray[Any]) -> None:
        """Keep a read (written under a temporary name, then renamed); a full disk only logs."""
        _count(False, 0)
        path = self._path(key)
        buffer = io.BytesIO()
        bounds = [_bound(roi[0].start), _bound(roi[0].stop), _bound(roi[1].start), _bound(roi[1].stop)]
        np.lib.format.write_array(buffer, np.asarray(bounds, np.int64))
        np.lib.format.write_array(buffer, np.ascontiguousarray(pixels))
        data = buffer.getvalue()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".part")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("the read cache %s could not keep a read (%s); reading goes on", self.folder, exc)
            return
        self._grew(len(data))

    def _grew(self, nbytes: int) -> None:
        with _USAGE_LOCK:
            used = _USAGE.get(self.folder)
            if used is None:
                used = self.size()
            used += nbytes
            if used > self.max_mb * _MB:
                used = self.trim(int(self.max_mb * _MB * 0.8))
            _USAGE[self.folder] = used

    def entries(self) -> list[tuple[float, int, Path]]:
        """``(last used, bytes, path)`` of every entry."""
        found: list[tuple[float, int, Path]] = []
        root = Path(self.folder)
        if not root.is_dir():
            return found
        for sub in os.scandir(root):
            if not sub.is_dir():
                continue
            for entry in os.scandir(sub.path):
                if entry.name.endswith(".npy"):
                    try:
                        st = entry.stat()
                    except FileNotFoundError:
                        continue
                    found.append((st.st_mtime, st.st_size, Path(entry.path)))
        return found

    def size(self) -> int:
        """Bytes the entries take."""
        return sum(n for _, n, _ in self.entries())

    def trim(self, target: int) -> int:
        """Remove the least recently used entries until at most ``target`` bytes remain; the bytes left."""
        found = sorted(self.entries())
        used = sum(n for _, n, _ in found)
        for _, nbytes, path in found:
            if used <= target:
                break
            with contextlib.suppress(FileNotFoundError):  # another process removed it
                path.unlink()
            used -= nbytes
        return used
