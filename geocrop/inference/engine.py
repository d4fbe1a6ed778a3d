"""The inference engine: a model bundle on a device, applied to one spatial block of reflectance at a time.

Per block (the paper's Figure 1B): every pixel has a ``(T, B)`` series of reflectance on the bundle's
temporal grid. Pixels without a single clear observation are dropped before any compute (class 255); the
rest are normalised with the bundle's statistics, the per-pixel backbone ``E_s: R^B -> R^256`` runs over
the ``(pixel, timestamp)`` rows of a batch of pixels, the resulting ``(n, T, 256)`` series go through the
temporal head, and a softmax gives class probabilities. A bundle whose backbone is ``"none"`` (the paper's
supervised baseline) feeds the normalised bands to the head directly.

The softmax sees ``logits / T + log(shares / head prior)``: ``T`` the temperature fitted when the bundle
was trained (calibrated confidence), ``shares`` the class shares the map is made for (by default the
training frequencies, so a head trained with class-balanced weights predicts each class as often as it
occurs; `geocrop.inference.priors`, derivation in `geocrop.training.calibration`). Every output (class,
confidence, probabilities and the uncertainty derived from them) comes from these corrected probabilities.

Speed: ``torch.inference_mode``; on CUDA bfloat16 (the backbone on a bfloat16 copy of its weights, the head
under bf16 autocast) and a batch size that halves on out-of-memory and stays halved; on the CPU one or all
cores, whichever is faster now, batches of ~40 pixels whose features stay in cache between backbone and
head, and freed memory kept in the heap instead of page-faulting back in. On CUDA by default the ResMLP
runs through ``torch.compile`` (`geocrop.models.fused`), each block is copied to the GPU once and masked,
gathered and normalised there (``feed``, `geocrop.inference.device_feed`), and the batch grows once to the
free GPU memory. One lock per predictor
serialises device work, so several Dask threads can load data concurrently while the device runs one
block at full width instead of several blocks fighting over the same cores.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple, TypedDict, Unpack

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from geocrop.core.threads import ThreadChooser, usable_cores
from geocrop.errors import BundleError, InputError
from geocrop.inference.allocator import tune_allocator
from geocrop.inference.device_feed import BatchGrowth, StagedBlock, stage_block
from geocrop.inference.flops import count_flops_per_pixel
from geocrop.inference.priors import PriorChoice, prior_correction
from geocrop.inference.schema import BundleSpec, parse_bundle_metadata
from geocrop.models.batching import CPU_BACKBONE_ROWS, CPU_BATCH_ROWS, CUDA_BATCH_ROWS
from geocrop.models.device import resolve_device
from geocrop.models.fused import FusedBackbone

__all__ = ["BlockPrediction", "Device", "EngineOptions", "Precision", "Predictor"]

log = logging.getLogger(__name__)

Device = Literal["auto", "cpu", "cuda"]
#: Arithmetic of the forward pass; ``auto``: bf16 on CUDA, fp32 on the CPU (whose bf16 matmuls are slower
#: than fp32 ones without AMX).
Precision = Literal["auto", "fp32", "bf16"]
#: Where clear pixels are found, gathered and normalised: ``host`` with NumPy per batch, ``device`` in torch
#: on the engine's device from one copy of the block (`geocrop.inference.device_feed`); ``auto``: device on
#: CUDA, host on the CPU (where the device feed measured no faster, docs/performance.md).
Feed = Literal["auto", "host", "device"]
NODATA = 255


class BlockPrediction(NamedTuple):
    """The engine's answer for one ``(h, w)`` block.

    classes: uint8 (h, w) class values (``spec.classes[i].value`` for logit ``i``), ``255`` where the
        pixel had no clear observation.
    confidence: uint8 (h, w), ``round(100 * max probability)``, 255 where masked.
    probs: float32 (C, h, w) class probabilities, NaN where masked.
    """

    classes: npt.NDArray[np.uint8]
    confidence: npt.NDArray[np.uint8]
    probs: npt.NDArray[np.float32]


@dataclass
class _Counters:
    """How much work the engine did (tests use it to prove masked pixels cost nothing)."""

    backbone_rows: int = 0
    pixels: int = 0
    blocks: int = 0


class EngineOptions(TypedDict, total=False):
    """How a `Predictor` runs (its keywords; the defaults are `Predictor._setup`'s): ``device``,
    ``num_threads``, ``batch_rows`` (pixels per batch; None: measured defaults, grown to free GPU memory),
    ``precision``, ``tune_process``, ``class_priors``, ``feed`` and ``compile_backbone`` (None: on CUDA)."""

    device: str
    num_threads: int | None
    batch_rows: int | None
    precision: Precision
    tune_process: bool
    class_priors: PriorChoice | None
    feed: Feed
    compile_backbone: bool | None


class Predictor:
    """A bundle's backbone and head on one device, ready to classify blocks.

    ``Predictor(bundle_path, device="auto")`` loads the bundle once (header first, never unpickles);
    `Predictor.from_modules` wraps modules built in memory (tests, benchmarks).

    ``tune_process`` (on the CPU): let torch use one thread or every usable core, chosen batch by batch by
    their measured speed (`geocrop.core.threads.ThreadChooser`), and tune glibc's malloc
    (`geocrop.inference.allocator.tune_allocator`). Both change the whole process, so the command line
    asks for them and the Python API (`geocrop.api`) does not unless its caller does; an explicit
    ``num_threads`` is always set.

    ``class_priors``: the class shares to correct the logits for (`geocrop.inference.priors`; None: the
    bundle's training frequencies when it records them).
    """

    def __init__(self, bundle_path: str | os.PathLike[str], **options: Unpack[EngineOptions]) -> None:
        from geocrop.io.bundle import load_bundle
        from geocrop.models.registry import build_backbone, build_head, load_state

        bundle = load_bundle(bundle_path)
        spec = parse_bundle_metadata(bundle.metadata, source=str(bundle_path))
        backbone: nn.Module | None = None
        if spec.backbone is not None:
            backbone = build_backbone(spec.backbone)
            load_state(backbone, bundle.tensors, "backbone", found=spec.backbone)
        head = build_head(spec.head)
        load_state(head, bundle.tensors, "head", found=spec.head)
        self._setup(spec, backbone, head, **options)
        self.bundle_path: Path | None = Path(bundle_path)

    @classmethod
    def from_modules(
        cls,
        *,
        backbone: nn.Module | None,
        head: nn.Module,
        spec: BundleSpec,
        **options: Unpack[EngineOptions],
    ) -> Predictor:
        """A predictor around modules built in memory; ``spec`` gives bands, statistics, classes and grid."""
        self = cls.__new__(cls)
        self._setup(spec, backbone, head, **options)
        self.bundle_path = None
        return self

    def _setup(
        self,
        spec: BundleSpec,
        backbone: nn.Module | None,
        head: nn.Module,
        *,
        device: str = "auto",
        num_threads: int | None = None,
        batch_rows: int | None = None,
        precision: Precision = "auto",
        tune_process: bool = True,
        class_priors: PriorChoice | None = None,
        feed: Feed = "auto",
        compile_backbone: bool | None = None,
    ) -> None:
        self.spec = spec
        self.device = resolve_device(device)
        if precision not in ("auto", "fp32", "bf16"):
            raise InputError(f"precision {precision!r} is not one of auto, fp32, bf16; pick one of those")
        self.precision: Precision = (
            ("bf16" if self.device.type == "cuda" else "fp32") if precision == "auto" else precision
        )
        # Threads: a fixed count when asked for; with tune_process, one thread or every usable core, batch
        # by batch, whichever runs faster now (beside a busy process two threads that wait for each other
        # at every parallel region can be ten times slower than one; docs/performance.md, "Sharing the
        # machine").
        self._threads: ThreadChooser | None = None
        if self.device.type == "cpu" and num_threads:
            torch.set_num_threads(num_threads)
        elif self.device.type == "cpu" and tune_process:
            torch.set_num_threads(usable_cores())
            self._threads = ThreadChooser(usable_cores()) if usable_cores() > 1 else None
        if self.device.type == "cpu" and tune_process:
            tune_allocator()
        self.backbone = backbone.to(self.device).eval() if backbone is not None else None
        self.head = head.to(self.device).eval()
        # What runs the backbone: in bf16, a bfloat16 copy of it, called outside autocast. Under autocast
        # the ResMLP's inference path breaks: LayerNorm comes back float32 and the in-place residual
        # update ``h.addmm_`` (which autocast does not cast) refuses float32 into a bfloat16 ``h``.
        self._compute_backbone = self.backbone
        if self.backbone is not None and self.precision == "bf16":
            self._compute_backbone = copy.deepcopy(self.backbone).to(torch.bfloat16)
        # The ResMLP through torch.compile (geocrop.models.fused): by default on CUDA, where the eager
        # stack is bound by memory traffic between its passes; not on the CPU, where it measured no faster.
        if compile_backbone is None:
            compile_backbone = self.device.type == "cuda"
        if compile_backbone and self._compute_backbone is not None:
            self._compute_backbone = FusedBackbone.wrap(self._compute_backbone)
        if feed not in ("auto", "host", "device"):
            raise InputError(
                f"`feed` {feed!r} is not one of auto, host, device; pick one of those", param="feed"
            )
        self.feed: Feed = ("device" if self.device.type == "cuda" else "host") if feed == "auto" else feed
        self._mean = torch.as_tensor(spec.mean, dtype=torch.float32, device=self.device)
        self._std = torch.as_tensor(spec.std, dtype=torch.float32, device=self.device)
        default_rows = CUDA_BATCH_ROWS if self.device.type == "cuda" else CPU_BATCH_ROWS
        self.batch_rows = int(batch_rows or default_rows)
        # Batches grow to the free memory on CUDA unless the caller fixed their size.
        self._growth = BatchGrowth(self.device, enabled=batch_rows is None)
        self.counters = _Counters()
        # Logit index -> class value written in the map (values need not be 0..C-1).
        self._values = np.array([c.value for c in spec.classes], dtype=np.uint8)
        self.temperature = float(spec.temperature)
        shares = prior_correction(class_priors, spec)
        #: The shares whose log is added to the logits (None: nothing added, the head's raw decision).
        self.class_shares = shares
        self._log_shares = None
        if shares is not None:
            with np.errstate(divide="ignore"):  # a share of 0: log -inf, the class is never predicted
                self._log_shares = torch.as_tensor(np.log(shares), dtype=torch.float32, device=self.device)
        self._lock = threading.Lock()

    # -- facts about the model ----------------------------------------------------------------------
    @property
    def bands(self) -> tuple[str, ...]:
        return self.spec.bands

    @property
    def steps(self) -> int:
        return self.spec.steps

    @property
    def n_classes(self) -> int:
        return len(self.spec.classes)

    def flops_per_pixel(self) -> float:
        """Forward FLOPs for one pixel's whole series (backbone x T + head), counted from the layers."""
        return count_flops_per_pixel(
            self.backbone, self.head, steps=self.steps, n_bands=len(self.bands), device=self.device
        )

    # -- the work -----------------------------------------------------------------------------------
    def predict_block(self, reflectance: npt.ArrayLike) -> BlockPrediction:
        """Classify a block: reflectance float32 (T, B, h, w) on the bundle's grid, NaN where masked.

        Returns a `BlockPrediction` (classes, confidence, probabilities). Pixels with no timestamp where all
        bands are finite are not computed. Remaining NaNs inside a valid pixel (a masked band or step the
        temporal fill left open) become 0 after normalisation, i.e. the band's training mean.
        """
        x = np.asarray(reflectance, dtype=np.float32)
        if x.ndim != 4:
            raise InputError(f"reflectance block has shape {x.shape}; expected (T, B, h, w)")
        steps, n_bands, h, w = x.shape
        if n_bands != len(self.bands):
            raise BundleError(
                f"the model expects {len(self.bands)} bands {list(self.bands)} but the data has {n_bands}; "
                "use a bundle trained on these bands"
            )
        if steps != self.steps:
            raise BundleError(
                f"the model expects {self.steps} timestamps but the block has {steps}; regrid the data "
                "onto the bundle's temporal grid first"
            )
        if self.feed == "device":
            # Staged before the lock: on CUDA this block's copy overlaps another thread's compute.
            index, valid_out = self._forward_staged(
                stage_block(x.reshape(steps, n_bands, h * w), self.device)
            )
        else:
            # (T, B, P) -> per-pixel view (P, T, B) without copying the whole block.
            pixels = x.reshape(steps, n_bands, h * w).transpose(2, 0, 1)
            clear = np.any(
                np.all(np.isfinite(pixels), axis=2), axis=1
            )  # (P,): any timestamp with every band clear
            index = np.flatnonzero(clear)
            valid_out = self._forward(pixels, index) if index.size else None
        n_classes = self.n_classes
        probs = np.full((n_classes, h * w), np.nan, dtype=np.float32)
        if index.size and valid_out is not None:
            probs[:, index] = valid_out.T
        classes = np.full(h * w, NODATA, dtype=np.uint8)
        confidence = np.full(h * w, NODATA, dtype=np.uint8)
        if index.size:
            valid_probs = probs[:, index]
            classes[index] = self._values[valid_probs.argmax(axis=0)]
            confidence[index] = np.rint(valid_probs.max(axis=0) * 100.0).astype(np.uint8)
        self.counters.blocks += 1
        return BlockPrediction(
            classes.reshape(h, w), confidence.reshape(h, w), probs.reshape(n_classes, h, w)
        )

    def _forward(
        self, pixels: npt.NDArray[np.float32], index: npt.NDArray[np.intp]
    ) -> npt.NDArray[np.float32]:
        """(P, T, B) raw reflectance (any strides), rows ``index`` -> (len(index), C) probabilities.

        The host feed: the selected pixels are gathered, moved to the device and normalised one batch at a
        time, so no block-sized copy exists beside the input.
        """

        def gather(start: int, stop: int) -> torch.Tensor:
            gathered = np.ascontiguousarray(pixels[index[start:stop]])
            x = torch.from_numpy(gathered).to(self.device, non_blocking=True)
            return torch.nan_to_num((x - self._mean) / self._std, nan=0.0)

        with self._lock, torch.inference_mode():
            return self._forward_batches(int(index.size), pixels.shape[1], gather)

    def _forward_staged(
        self, staged: StagedBlock
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float32] | None]:
        """The device feed (`geocrop.inference.device_feed.StagedBlock`): clear pixels' indices on the host
        and their (n, C) probabilities (None when no pixel is clear)."""
        with self._lock, torch.inference_mode():
            index = staged.clear_index()
            steps = staged.values.shape[0]
            out = None
            if index.numel():
                out = self._forward_batches(
                    int(index.numel()),
                    steps,
                    lambda start, stop: staged.batch(index[start:stop], self._mean, self._std),
                )
            return index.cpu().numpy(), out

    def _forward_batches(
        self, n: int, steps: int, gather: Callable[[int, int], torch.Tensor]
    ) -> npt.NDArray[np.float32]:
        """(n, C) probabilities of ``n`` pixels, ``gather(start, stop)`` giving each batch normalised on the
        device; the batch halves on out-of-memory (and, on CUDA, grows once to the free memory)."""
        out = torch.empty((n, self.n_classes), dtype=torch.float32, device=self.device)
        start = 0
        while start < n:
            per_batch = max(1, self.batch_rows // steps)
            stop = min(start + per_batch, n)
            try:
                self._growth.before()
                threads = self._threads.next() if self._threads is not None else 0
                if threads:
                    torch.set_num_threads(threads)
                began = time.perf_counter()
                out[start:stop] = self._run_batch(gather(start, stop))
                if self._threads is not None:
                    self._threads.record(threads, time.perf_counter() - began, stop - start)
                self.batch_rows = self._growth.after((stop - start) * steps, self.batch_rows, steps)
            except torch.cuda.OutOfMemoryError:
                if per_batch == 1:
                    raise
                self.batch_rows = max(steps, self.batch_rows // 2)
                log.warning("CUDA out of memory; halving the batch to %d rows", self.batch_rows)
                torch.cuda.empty_cache()
                continue
            start = stop
        result = out.cpu().numpy()
        self.counters.pixels += n
        return result

    def _run_batch(self, x: torch.Tensor) -> torch.Tensor:
        """(n, T, B) normalised -> (n, C) probabilities: backbone on n*T rows, then the head."""
        n, steps, n_bands = x.shape
        with self._autocast():
            if self.backbone is not None:
                rows = x.reshape(n * steps, n_bands)
                if self.precision == "bf16":
                    rows = rows.to(torch.bfloat16)
                sub = (
                    self.batch_rows if self.device.type == "cuda" else min(self.batch_rows, CPU_BACKBONE_ROWS)
                )
                features = self._backbone_rows(rows, sub).reshape(n, steps, -1)
                self.counters.backbone_rows += n * steps
            else:
                features = x
            logits = self.head(features)
        logits = logits.float() / self.temperature
        if self._log_shares is not None:
            logits = logits + self._log_shares
        return torch.softmax(logits, dim=-1)

    def _backbone_rows(self, rows: torch.Tensor, sub: int) -> torch.Tensor:
        """(N, B) -> (N, F) in sub-batches of ``sub`` rows written into one preallocated output.

        Runs outside autocast: in bf16 the rows and the weights are bfloat16 already (see `_setup`).
        """
        backbone = self._compute_backbone
        assert backbone is not None
        with torch.autocast(self.device.type, enabled=False):
            first = backbone(rows[:sub])
            if rows.shape[0] <= sub:
                return first
            out = torch.empty((rows.shape[0], first.shape[1]), dtype=first.dtype, device=first.device)
            out[:sub] = first
            for i in range(sub, rows.shape[0], sub):
                out[i : i + sub] = backbone(rows[i : i + sub])
        return out

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        """bf16 autocast for the head (and any op outside the backbone) when the precision is bf16."""
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()
