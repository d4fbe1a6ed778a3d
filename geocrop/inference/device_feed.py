"""The engine's feed done in torch on the engine's device: one block copied once, then mask, gather and
normalise there.

The host feed (`geocrop.inference.engine.Predictor` with ``feed="host"``) finds clear pixels and gathers each
batch with NumPy out of a ``(T, B, P)`` block read at a stride of P floats, then copies every batch to the
device: on an H200 that fed 4.5M pixel-timesteps/s, a sixth to two fifths of what the GPU computes
(docs/performance.md, "GPU"). Here the block goes to the device whole, contiguous, in one copy:

* on CUDA through pinned host memory on a copy stream of its own, started by `stage_block` *before* the
  engine takes its lock, so one Dask thread's copy runs while another thread's block computes; the compute
  stream waits for the copy's event, nothing else synchronises;
* on the CPU the block is wrapped as it is (no copy when it is contiguous).

`StagedBlock.clear_index` is the mask (any timestamp with every band finite) and `StagedBlock.batch` one
batch of clear pixels, gathered with ``index_select`` and normalised in place in the ``(T, B, n)`` layout
before one transposing copy to ``(n, T, B)``: the same pixels, in the same (ascending) order, with the same
float32 arithmetic as the host feed (``nan_to_num((x - mean) / std)``), so both feeds give identical
batches (tested on the CPU).

`BatchGrowth` grows the engine's batch to the device's free memory on CUDA: the first batch's peak memory
per row, measured, against ``torch.cuda.mem_get_info``. On the CPU it does nothing (there the batch is
sized to the cache, `geocrop.models.batching`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch

__all__ = ["BatchGrowth", "StagedBlock", "grown_rows", "stage_block"]

log = logging.getLogger(__name__)

#: The share of the device's free memory that grown batches may fill (the rest: the allocator's slack,
#: the staged blocks of other threads, cuBLAS workspaces).
FREE_MEMORY_SHARE = 0.5
#: No batch beyond this many (pixel, timestamp) rows: 16Mi rows already amortise every launch, and the
#: largest map tile (256 x 256 px x 144 steps) holds 9.4Mi.
MAX_GROWN_ROWS = 1 << 24


@dataclass
class StagedBlock:
    """A ``(T, B, P)`` float32 block on the engine's device (see `stage_block`)."""

    values: torch.Tensor
    ready: torch.cuda.Event | None = None
    host: torch.Tensor | None = None  # the pinned copy, kept alive until the copy has run

    def wait(self) -> None:
        """Make the current stream wait for the block's copy (CUDA); nothing on the CPU."""
        if self.ready is not None:
            stream = torch.cuda.current_stream(self.values.device)
            stream.wait_event(self.ready)
            # The block was allocated on the copy stream: tell the allocator it is used on this one too.
            self.values.record_stream(stream)
            self.ready = None

    def clear_index(self) -> torch.Tensor:
        """(n,) int64 indices of the pixels with a timestamp whose every band is finite, ascending."""
        self.wait()
        clear = torch.isfinite(self.values).all(dim=1).any(dim=0)
        return torch.nonzero(clear).squeeze(1)

    def batch(self, index: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        """(n, T, B) float32 ``nan_to_num((x - mean) / std)`` of the pixels ``index``, contiguous."""
        picked = self.values.index_select(2, index)  # (T, B, n), a fresh tensor: free to change in place
        picked.sub_(mean[:, None]).div_(std[:, None]).nan_to_num_(nan=0.0)
        return picked.permute(2, 0, 1).contiguous()


def stage_block(block: npt.NDArray[np.float32], device: torch.device) -> StagedBlock:
    """``(T, B, P)`` float32 block (any strides) -> `StagedBlock` on ``device``.

    CUDA: one pass from ``block`` into pinned host memory, then an asynchronous copy on a copy stream;
    returns at once, `StagedBlock.wait` orders the compute after the copy. CPU: ``block`` itself when it is
    contiguous.
    """
    if device.type != "cuda":
        return StagedBlock(torch.from_numpy(np.ascontiguousarray(block, dtype=np.float32)))
    host = torch.empty(block.shape, dtype=torch.float32, pin_memory=True)
    host.numpy()[...] = block
    stream = _copy_stream(device)
    with torch.cuda.stream(stream):
        values = host.to(device, non_blocking=True)
        ready = torch.cuda.Event()
        ready.record(stream)
    return StagedBlock(values, ready=ready, host=host)


_COPY_STREAMS: dict[torch.device, torch.cuda.Stream] = {}


def _copy_stream(device: torch.device) -> torch.cuda.Stream:
    """One copy stream per device, shared by every thread (copies queue on it in the order staged)."""
    if device not in _COPY_STREAMS:
        _COPY_STREAMS[device] = torch.cuda.Stream(device)
    return _COPY_STREAMS[device]


def grown_rows(current: int, *, bytes_per_row: float, free_bytes: int, steps: int) -> int:
    """The batch (rows) that fills `FREE_MEMORY_SHARE` of ``free_bytes`` at ``bytes_per_row``: never below
    ``current``, at most `MAX_GROWN_ROWS`, a whole number of ``steps``-row pixels."""
    if bytes_per_row <= 0:
        return current
    fits = int(FREE_MEMORY_SHARE * free_bytes / bytes_per_row)
    rows = min(MAX_GROWN_ROWS, max(current, fits))
    return max(current, rows // steps * steps)


class BatchGrowth:
    """Grows an engine's batch once, after its first batch, to the device's free memory (CUDA only).

    ``before()`` ahead of the first batch resets the peak-memory counter; ``after(rows, current)`` returns
    the grown batch size from the peak that batch reached per row. ``memory`` replaces the CUDA queries
    (tests): it returns ``(allocated now, peak since reset, free on the device)`` in bytes.
    """

    def __init__(
        self,
        device: torch.device,
        *,
        enabled: bool,
        memory: Callable[[], tuple[int, int, int]] | None = None,
    ) -> None:
        self.active = enabled and (device.type == "cuda" or memory is not None)
        self._device = device
        self._memory = memory or self._cuda_memory
        self._base = 0

    def _cuda_memory(self) -> tuple[int, int, int]:
        free, _ = torch.cuda.mem_get_info(self._device)
        return torch.cuda.memory_allocated(self._device), torch.cuda.max_memory_allocated(self._device), free

    def before(self) -> None:
        if self.active:
            if self._device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(self._device)
            self._base = self._memory()[0]

    def after(self, rows: int, current: int, steps: int) -> int:
        """The batch size to use from now on (``current`` when inactive or already grown)."""
        if not self.active:
            return current
        self.active = False  # once: later batches keep the size chosen here
        if rows < current // 2:  # a small first batch says too little about a full one's memory
            self.active = True
            return current
        _, peak, free = self._memory()
        per_row = max(peak - self._base, 0) / max(rows, 1)
        grown = grown_rows(current, bytes_per_row=per_row, free_bytes=free, steps=steps)
        if grown > current:
            log.info(
                "batch grown to %d rows (%.0f bytes per row, %.1f GiB free)", grown, per_row, free / 2**30
            )
        return grown
