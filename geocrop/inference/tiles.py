"""Run the engine over a cube tile by tile through Dask, streaming each finished tile to a sink.

A tile is a spatial window with all timestamps and bands (time and band are never split: the head needs the
whole series). Each tile is one Dask task ``predict_tile(cube[:, :, window])`` whose input is the slice of
the lazy cube, so reading a tile, regridding it and classifying it form one branch of the graph and the cube
is never held whole. Finished tiles go, as they finish, to the journal (for resume) and to the sink (the
COG writer).

Schedulers: ``None``/``"threads"`` reads tiles ahead of the engine: ``read_ahead`` reader threads each
read (Dask's threaded scheduler, ``threads`` scene/band reads at once) and regrid one tile, and hand it to
the calling thread, which classifies tiles as they arrive and sinks them; at most ``read_ahead`` tiles are
read or waiting while one is classified, so memory stays flat whatever the area. ``"sync"`` runs
everything in the calling thread (debugging); anything else is a ``dask.distributed`` scheduler address:
tasks run on the workers, each worker process builds the predictor once (`PredictorRef.get` caches it per
process), and results come back to this process in completion order.
"""

from __future__ import annotations

import dataclasses
import itertools
import socket
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import dask
import numpy as np
import numpy.typing as npt
from rasterio.errors import RasterioError
from rasterio.windows import Window

from geocrop.core.progress import Progress, emit
from geocrop.core.threads import threads_per_worker, usable_cores
from geocrop.errors import GeocropError, SourceError
from geocrop.inference.engine import Predictor
from geocrop.inference.journal import TileJournal
from geocrop.inference.priors import PriorChoice
from geocrop.inference.stages import StageClock
from geocrop.io.reading import ReadSettings

__all__ = [
    "PredictorRef",
    "Tile",
    "TileRun",
    "plan_tiles",
    "predict_tile",
    "register_predictor",
    "run_tiles",
]

Arrays = dict[str, npt.NDArray[Any]]
#: Tiles in flight per distributed worker thread (bounds the graph and the tiles held in memory).
_GROUP_PER_WORKER = 4
Prepare = Callable[[npt.NDArray[np.float32]], npt.NDArray[np.float32]]
Sink = Callable[["Tile", Arrays], None]
Keep = Callable[["Tile"], npt.NDArray[np.bool_]]


@dataclass(frozen=True)
class Tile:
    """One spatial window of the map: grid position ``(row, col)`` and pixel offsets/size."""

    row: int
    col: int
    y0: int
    x0: int
    height: int
    width: int

    @property
    def key(self) -> str:
        return f"r{self.row:04d}_c{self.col:04d}"

    @property
    def window(self) -> Window:
        return Window(self.x0, self.y0, self.width, self.height)


def plan_tiles(height: int, width: int, size: int) -> list[Tile]:
    """Row-major tiles of ``size`` x ``size`` pixels (smaller at the right and bottom edges)."""
    if size < 1:
        raise ValueError(f"tile size {size} must be positive")
    return [
        Tile(r, c, y0, x0, min(size, height - y0), min(size, width - x0))
        for (r, y0), (c, x0) in itertools.product(
            enumerate(range(0, height, size)), enumerate(range(0, width, size))
        )
    ]


# -- one predictor per process -----------------------------------------------------------------------
_CACHE: dict[PredictorRef, Predictor] = {}
_CACHE_LOCK = threading.Lock()


@dataclass(frozen=True)
class PredictorRef:
    """A picklable handle to a predictor: the bundle path and device, resolved once per process."""

    bundle: str
    device: str = "auto"
    num_threads: int | None = None
    #: Let the predictor set torch's threads and tune malloc (process-wide; see `Predictor`).
    tune_process: bool = True
    #: Class shares the predictor corrects its logits for (None: the bundle's training shares).
    class_priors: PriorChoice | None = None

    def get(self) -> Predictor:
        with _CACHE_LOCK:
            predictor = _CACHE.get(self)
            if predictor is None:
                if self.bundle.startswith("memory:"):
                    raise RuntimeError(f"in-memory predictor {self.bundle} is not registered in this process")
                predictor = Predictor(
                    self.bundle,
                    device=self.device,
                    num_threads=self.num_threads,
                    tune_process=self.tune_process,
                    class_priors=self.class_priors,
                )
                _CACHE[self] = predictor
            return predictor


def register_predictor(predictor: Predictor) -> PredictorRef:
    """A ref to an in-memory predictor (tests, benchmarks): valid in this process only (not distributed)."""
    ref = PredictorRef(f"memory:{id(predictor)}", str(predictor.device))
    with _CACHE_LOCK:
        _CACHE[ref] = predictor
    return ref


def predict_tile(
    values: npt.NDArray[np.float32],
    *,
    prepare: Prepare | None,
    ref: PredictorRef,
    probabilities: bool,
    keep: npt.NDArray[np.bool_] | None = None,
) -> Arrays:
    """One tile: ``prepare`` (e.g. regrid onto the bundle's grid) then classify; uint8 arrays out.

    ``keep`` ((h, w) bool): pixels outside it become NaN before classifying, so the engine skips them."""
    return classify_block(_prepared(values, prepare, keep), ref=ref, probabilities=probabilities)


def _prepared(
    values: npt.NDArray[np.float32], prepare: Prepare | None, keep: npt.NDArray[np.bool_] | None
) -> npt.NDArray[np.float32]:
    block = prepare(values) if prepare is not None else values
    if keep is not None:
        block = np.where(keep, block, np.float32(np.nan))
    return block


def classify_block(block: npt.NDArray[np.float32], *, ref: PredictorRef, probabilities: bool) -> Arrays:
    """The engine on one prepared (steps, B, h, w) block: uint8 classes, confidence (and probabilities)."""
    pred = ref.get().predict_block(block)
    out: Arrays = {"classes": pred.classes, "confidence": pred.confidence}
    if probabilities:
        probs = np.full(pred.probs.shape, 255, dtype=np.uint8)
        finite = np.isfinite(pred.probs)
        probs[finite] = np.clip(np.rint(pred.probs[finite] * 100.0), 0, 100).astype(np.uint8)
        out["probs"] = probs
    return out


def _empty(tile: Tile, ref: PredictorRef, probabilities: bool) -> Arrays:
    """A tile's outputs when none of its pixels is mapped: nodata (255) everywhere."""
    shape = (tile.height, tile.width)
    out: Arrays = {"classes": np.full(shape, 255, np.uint8), "confidence": np.full(shape, 255, np.uint8)}
    if probabilities:
        out["probs"] = np.full((ref.get().n_classes, *shape), 255, np.uint8)
    return out


@dataclass
class TileRun:
    """What `run_tiles` did: tiles computed now, tiles reused from the journal, valid pixels in the map."""

    computed: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    valid_pixels: int = 0


def _read_error(exc: Exception) -> SourceError:
    text = " ".join(str(exc).split())
    if "No such file" in text or "does not exist" in text:
        return SourceError(
            f"reading the imagery failed: {text}; a scene's file is missing: restore it or drop that scene"
        )
    return SourceError(
        f"reading the imagery failed: {text}; the file may be corrupt or truncated, download it again "
        "or drop that scene"
    )


def run_tiles(
    cube: Any,
    *,
    tiles: Sequence[Tile],
    ref: PredictorRef,
    sink: Sink,
    prepare: Prepare | None = None,
    journal: TileJournal | None = None,
    scheduler: str | None = None,
    probabilities: bool = False,
    progress: Progress | None = None,
    after_tile: Callable[[Tile], None] | None = None,
    keep: Keep | None = None,
    read: ReadSettings | None = None,
    clock: StageClock | None = None,
) -> TileRun:
    """Classify every tile of ``cube`` (a dask or numpy array (T, B, H, W)) and hand results to ``sink``.

    Tiles already in ``journal`` are read back and sunk without touching the cube. ``keep(tile)``, when
    given, says which pixels to map ((h, w) bool, e.g. a cropland mask): the others are nodata, and a tile
    without any kept pixel is sunk empty without reading the cube. ``after_tile`` runs after
    a computed tile is journaled and sunk (a test hook: raise there to simulate an interruption).
    ``read``: reader threads and tiles read ahead (local schedulers); ``clock`` records the read, regrid,
    engine and write spans (local schedulers; with a distributed scheduler only the writes).
    """
    run = TileRun()
    lock = threading.Lock()
    done_before = journal.finished() if journal is not None else set()
    total = len(tiles)
    clock = clock or StageClock()
    settings = read or ReadSettings()

    def finish(tile: Tile, arrays: Arrays, *, computed: bool) -> None:
        with clock.span("write"):
            if computed and journal is not None:
                journal.save(tile.key, arrays)
            sink(tile, arrays)
        with lock:
            (run.computed if computed else run.reused).append(tile.key)
            run.valid_pixels += int(np.count_nonzero(arrays["classes"] != 255))
            n = len(run.computed) + len(run.reused)
        emit(progress, "map", n / total, f"tile {n}/{total}", step=n, total=total)
        if computed and after_tile is not None:
            after_tile(tile)

    todo = []
    for tile in tiles:
        if journal is not None and tile.key in done_before:
            finish(tile, journal.load(tile.key), computed=False)
        else:
            todo.append(tile)
    if not todo:
        return run

    def window(tile: Tile) -> Any:
        return cube[:, :, tile.y0 : tile.y0 + tile.height, tile.x0 : tile.x0 + tile.width]

    def task(tile: Tile, ref: PredictorRef = ref) -> Any:
        # The mask is read when the tile starts (only tiles in flight hold one), before the cube is sliced:
        # a tile it drops entirely becomes an empty result that never reads the cube.
        mask = keep(tile) if keep is not None else None
        if mask is not None and not mask.any():
            return dask.delayed(_empty, pure=True)(tile, ref, probabilities, dask_key_name=f"tile-{tile.key}")
        return dask.delayed(predict_tile, pure=True)(
            window(tile),
            prepare=prepare,
            ref=ref,
            probabilities=probabilities,
            keep=mask,
            dask_key_name=f"tile-{tile.key}",
        )

    def read_tile(tile: Tile, dask_scheduler: str) -> npt.NDArray[np.float32] | None:
        """The tile's prepared block, or None when the mask drops all of it (nothing read)."""
        mask = keep(tile) if keep is not None else None
        if mask is not None and not mask.any():
            return None
        with clock.span("read"):
            values = window(tile)
            if hasattr(values, "compute"):
                values = values.compute(scheduler=dask_scheduler, num_workers=settings.threads)
        with clock.span("regrid"):
            return _prepared(np.asarray(values, dtype=np.float32), prepare, mask)

    def compute_tile(tile: Tile, block: npt.NDArray[np.float32] | None) -> Arrays:
        if block is None:
            return _empty(tile, ref, probabilities)
        with clock.span("engine"):
            return classify_block(block, ref=ref, probabilities=probabilities)

    try:
        if scheduler in (None, "threads", "sync"):
            _run_local(
                todo, read_tile, compute_tile, finish, sync=scheduler == "sync", ahead=settings.read_ahead
            )
        else:
            _run_distributed(scheduler, todo, task, finish, ref=ref)
    except GeocropError:
        raise
    except RasterioError as exc:
        raise _read_error(exc) from exc
    return run


def _run_local(
    todo: Sequence[Tile],
    read_tile: Callable[[Tile, str], Any],
    compute_tile: Callable[[Tile, Any], Arrays],
    finish: Callable[..., None],
    *,
    sync: bool,
    ahead: int,
) -> None:
    """Tiles read ahead of the engine on local threads.

    ``ahead`` reader threads each read and regrid one tile (its scene/band reads run concurrently on
    Dask's threaded scheduler, which matters for remote COGs: each read waits for a round trip); the
    calling thread classifies the tiles in the order their reads finish and sinks them, and a reader
    starts the next tile as soon as one is taken. At most ``ahead`` tiles are being read or wait while
    one is classified, so memory is bounded by ``ahead + 1`` tiles whatever the AOI. The first tile is
    read alone, with every reader thread and the whole link to itself: the engine waits for it.
    """
    if sync:
        for tile in todo:
            finish(tile, compute_tile(tile, read_tile(tile, "sync")), computed=True)
        return

    def read_one(tile: Tile) -> tuple[Tile, Any]:
        return tile, read_tile(tile, "threads")

    pending = iter(todo)
    with ThreadPoolExecutor(max_workers=ahead, thread_name_prefix="geocrop-read") as pool:
        reading = {pool.submit(read_one, tile) for tile in itertools.islice(pending, 1)}
        try:
            while reading:
                finished, reading = wait(reading, return_when=FIRST_COMPLETED)
                future = finished.pop()
                reading |= finished  # read too, taken next: they count against the bound until then
                tile, block = future.result()  # a failed read stops the run here
                for following in itertools.islice(pending, ahead - len(reading)):
                    reading.add(pool.submit(read_one, following))
                arrays = compute_tile(tile, block)
                del block
                finish(tile, arrays, computed=True)
        finally:
            for future in reading:  # on error or interrupt: start no more tiles
                future.cancel()


def _host_cores() -> tuple[str, int]:
    """Run on each worker: its host's name and the cores the worker process may use."""
    return socket.gethostname(), usable_cores()


def worker_threads(client: Any) -> int:
    """Torch threads per worker process so that threads x worker processes <= cores on every host.

    Dask's nanny starts workers with ``OMP_NUM_THREADS=1``, but the engine used to raise that to every
    core of the host in each worker: two workers on two cores ran four threads and were slower than one
    (docs/performance.md). The smallest share over the hosts is taken (one setting travels with the tasks).
    """
    found: dict[str, tuple[str, int]] = client.run(_host_cores)
    per_host = Counter(host for host, _ in found.values())
    return min((threads_per_worker(per_host[host], cores) for host, cores in found.values()), default=1)


def _run_distributed(
    address: str,
    todo: Sequence[Tile],
    task: Callable[[Tile, PredictorRef], Any],
    finish: Callable[..., None],
    *,
    ref: PredictorRef,
) -> None:
    """Tiles on a ``dask.distributed`` cluster; ``ref.num_threads`` None: `worker_threads` chooses it."""
    from distributed import Client, as_completed

    try:
        client = Client(address, timeout="10s", set_as_default=False)
    except OSError as exc:
        raise SourceError(
            f"cannot reach the Dask scheduler at {address} ({exc}); start it (dask scheduler) or drop "
            "`scheduler` to use local threads",
            param="scheduler",
        ) from exc
    try:
        if ref.num_threads is None and ref.device != "cuda":
            ref = dataclasses.replace(ref, num_threads=worker_threads(client))
        # A sliding window of tiles in flight (a few per worker thread), topped up as tiles finish.
        window = _GROUP_PER_WORKER * max(1, sum(client.nthreads().values()))
        pending = iter(todo)
        by_key: dict[Any, Tile] = {}

        def submit() -> Any:
            tile = next(pending, None)
            if tile is None:
                return None
            future = client.compute(task(tile, ref))
            by_key[future.key] = tile
            return future

        first = [f for f in (submit() for _ in range(window)) if f is not None]
        completed = as_completed(first, loop=client.loop)
        for future in completed:
            finish(by_key.pop(future.key), future.result(), computed=True)
            future.release()
            following = submit()
            if following is not None:
                completed.add(following)
    finally:
        client.close()
