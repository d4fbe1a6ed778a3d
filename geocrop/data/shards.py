"""Pair shards on disk: an appendable, resumable writer and a memory-bounded, seeded streaming reader.

A split (``train`` or ``heldout``) is a list of ``.npy`` float32 shards of shape ``(rows, features)`` plus a
*pending* tail that is not yet a full shard. Its state is a plain dict stored in the pair manifest (see
`geocrop.data.pairs`), so writing can stop after any date and continue later: shards are written under a
temporary name and renamed, the pending tail goes to a fresh file, and only then does the manifest (written
atomically by the caller) point at them.

Per-feature mean and standard deviation are accumulated while writing (float64 sums), so a 14.4M-pair set
never has to be in memory at once. Training reads shards with ``np.load(mmap_mode="r")`` and shuffles each
epoch with a seeded permutation over fixed-size ``(shard, offset)`` blocks followed by a row shuffle inside a
bounded window of blocks: memory stays at one window, the order depends only on ``(seed, epoch)``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from geocrop.errors import SourceError
from geocrop.io.atomic import atomic_path

#: Rows per shard file: 262,144 pairs x 48 float32 features = 48 MiB.
DEFAULT_SHARD_ROWS = 262_144
#: Rows per shuffle block and blocks per in-memory shuffle window (window = 64 x 4096 = 262,144 rows).
BLOCK_ROWS = 4096
WINDOW_BLOCKS = 64

FloatArray = npt.NDArray[np.float32]


def _atomic_save_npy(path: Path, array: npt.NDArray[Any]) -> None:
    with atomic_path(path, what="pair shard") as tmp, open(tmp, "wb") as fh:
        np.save(fh, array)


class ShardWriter:
    """Append rows of one split to shards in ``root``; ``state()`` is the resumable description.

    Args:
        root: folder of the shards.
        name: split name, the file prefix (``train-00000.npy``).
        n_features: columns per row.
        shard_rows: rows per full shard.
        state: a previous `state()` to continue from (its pending tail is reloaded).
    """

    def __init__(
        self,
        root: Path,
        name: str,
        *,
        n_features: int,
        shard_rows: int = DEFAULT_SHARD_ROWS,
        state: Mapping[str, Any] | None = None,
    ) -> None:
        self.root = root
        self.name = name
        self.n_features = n_features
        self.shard_rows = shard_rows
        self._shards: list[dict[str, Any]] = []
        self._sum = np.zeros(n_features, np.float64)
        self._sumsq = np.zeros(n_features, np.float64)
        self._count = 0
        self._pending: list[FloatArray] = []
        self._pending_file: str | None = None
        self._stale: str | None = None
        self._serial = 0
        if state is not None:
            self._shards = [dict(s) for s in state["shards"]]
            self._sum = np.asarray(state["sum"], np.float64)
            self._sumsq = np.asarray(state["sumsq"], np.float64)
            self._count = int(state["count"])
            self._serial = int(state.get("serial", 0))
            self._pending_file = state.get("pending")
            if self._pending_file:
                self._pending = [np.load(root / self._pending_file).astype(np.float32)]

    @property
    def rows(self) -> int:
        return self._count

    def add(self, rows: FloatArray) -> None:
        """Append ``rows`` (n, n_features) float32; full shards are written at the next `checkpoint`."""
        if rows.ndim != 2 or rows.shape[1] != self.n_features:
            raise ValueError(f"expected (n, {self.n_features}) rows, got {rows.shape}")
        if len(rows) == 0:
            return
        rows64 = rows.astype(np.float64)
        self._sum += rows64.sum(axis=0)
        self._sumsq += np.square(rows64).sum(axis=0)
        self._count += len(rows)
        self._pending.append(np.ascontiguousarray(rows, dtype=np.float32))

    def checkpoint(self, *, final: bool = False) -> dict[str, Any]:
        """Write full shards (and, if ``final``, the tail as a last shard); return the new `state()`.

        Files the previous state referenced are not deleted here: call `cleanup` after the manifest that
        holds the returned state has been written, so a crash in between leaves a consistent pair.
        """
        pending = (
            np.concatenate(self._pending) if self._pending else np.zeros((0, self.n_features), np.float32)
        )
        start = 0
        while len(pending) - start >= self.shard_rows or (final and start < len(pending)):
            stop = min(start + self.shard_rows, len(pending))
            fname = f"{self.name}-{len(self._shards):05d}.npy"
            _atomic_save_npy(self.root / fname, pending[start:stop])
            self._shards.append({"file": fname, "rows": int(stop - start)})
            start = stop
        rest = pending[start:]
        self._stale = self._pending_file
        self._pending = [rest] if len(rest) else []
        self._pending_file = None
        if len(rest):
            self._serial += 1
            self._pending_file = f"{self.name}-pending-{self._serial:05d}.npy"
            _atomic_save_npy(self.root / self._pending_file, rest)
        return self.state()

    def cleanup(self) -> None:
        """Delete the pending file the previous state referenced (once the new manifest is on disk)."""
        if self._stale and self._stale != self._pending_file:
            (self.root / self._stale).unlink(missing_ok=True)
        self._stale = None

    def state(self) -> dict[str, Any]:
        return {
            "shards": [dict(s) for s in self._shards],
            "pending": self._pending_file,
            "serial": self._serial,
            "count": self._count,
            "sum": self._sum.tolist(),
            "sumsq": self._sumsq.tolist(),
        }


def feature_stats(state: Mapping[str, Any]) -> tuple[FloatArray, FloatArray]:
    """Per-feature (mean, std) from a writer state; std floored at 1e-6 so normalising never divides by 0."""
    count = max(int(state["count"]), 1)
    mean = np.asarray(state["sum"], np.float64) / count
    var = np.maximum(np.asarray(state["sumsq"], np.float64) / count - mean**2, 0.0)
    return mean.astype(np.float32), np.maximum(np.sqrt(var), 1e-6).astype(np.float32)


@dataclass(frozen=True)
class ShardSet:
    """The finished shards of one split, read lazily.

    Attributes:
        root: folder holding the files.
        files: shard file names.
        rows: rows per shard.
    """

    root: Path
    files: tuple[str, ...]
    rows: tuple[int, ...]

    @classmethod
    def from_state(cls, root: Path, state: Mapping[str, Any]) -> ShardSet:
        shards = state["shards"]
        return cls(root, tuple(s["file"] for s in shards), tuple(int(s["rows"]) for s in shards))

    @property
    def total(self) -> int:
        return int(sum(self.rows))

    def _open(self, index: int) -> FloatArray:
        path = self.root / self.files[index]
        try:
            arr = np.load(path, mmap_mode="r")
        except (OSError, ValueError) as exc:
            raise SourceError(
                f"pair shard {path} is missing or unreadable ({exc}); "
                f"delete {self.root} and rerun to rebuild it"
            ) from exc
        if arr.ndim != 2 or len(arr) != self.rows[index]:
            raise SourceError(
                f"pair shard {path} has shape {arr.shape}, the manifest says {self.rows[index]} rows; "
                f"delete {self.root} and rerun to rebuild it"
            )
        return arr

    def read_all(self, *, limit: int | None = None) -> FloatArray:
        """Concatenate shards (the first ``limit`` rows) into memory; for small splits such as held-out."""
        parts: list[FloatArray] = []
        need = self.total if limit is None else min(limit, self.total)
        for i in range(len(self.files)):
            if need <= 0:
                break
            arr = self._open(i)
            parts.append(np.array(arr[:need], dtype=np.float32))
            need -= len(parts[-1])
        if not parts:
            return np.zeros((0, 0), np.float32)
        return np.concatenate(parts)

    def batches_per_epoch(self, batch_size: int) -> int:
        return self.total // batch_size

    def iter_batches(
        self,
        batch_size: int,
        *,
        seed: int,
        epoch: int,
        block_rows: int = BLOCK_ROWS,
        window_blocks: int = WINDOW_BLOCKS,
        start_batch: int = 0,
    ) -> Iterator[FloatArray]:
        """Yield shuffled (batch_size, features) float32 batches; the incomplete last batch is dropped.

        The order is a function of ``(seed, epoch)`` only: blocks of ``block_rows`` rows are visited in a
        seeded permutation, ``window_blocks`` at a time, and rows are shuffled within each window. Memory is
        one window (``block_rows * window_blocks`` rows) plus one batch. ``start_batch`` skips batches
        (without yielding them) so a run can resume inside an epoch.
        """
        rng = np.random.default_rng([seed, epoch, 0x5A1D])
        blocks = [
            (i, off, min(off + block_rows, n))
            for i, n in enumerate(self.rows)
            for off in range(0, n, block_rows)
        ]
        order = rng.permutation(len(blocks))
        arrays: dict[int, FloatArray] = {}
        carry: FloatArray | None = None
        produced = 0
        for w in range(0, len(order), window_blocks):
            parts = [] if carry is None else [carry]
            for b in order[w : w + window_blocks]:
                i, lo, hi = blocks[int(b)]
                if i not in arrays:
                    arrays[i] = self._open(i)
                parts.append(np.asarray(arrays[i][lo:hi], dtype=np.float32))
            window = np.concatenate(parts)
            fresh = len(window) - (0 if carry is None else len(carry))
            # Shuffle only the fresh rows: the carried rows were already shuffled in the previous window.
            tail = window[len(window) - fresh :]
            window[len(window) - fresh :] = tail[rng.permutation(fresh)]
            n_full = len(window) // batch_size
            for k in range(n_full):
                if produced >= start_batch:
                    yield window[k * batch_size : (k + 1) * batch_size]
                produced += 1
            carry = window[n_full * batch_size :].copy()
