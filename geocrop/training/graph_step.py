"""One training step (forward, loss, backward, optimizer) replayed from a CUDA graph on CUDA.

Why: on an H200 a pretraining step at the paper's batch of 2048 took 14-15 ms whether it ran in fp32,
TF32 or bf16, and at batch 8192 as well: it is bound by launching a few hundred small kernels from
Python, not by arithmetic (docs/performance.md, "GPU"). A CUDA graph records those launches once and
replays them with one call; inputs are copied into fixed buffers first.

`TrainStep` is the wrapper. On CUDA (``graph`` None or True) its first ``warmup`` calls run eagerly on a
side stream (what capture needs: the allocator and cuBLAS settled), the next call captures the step and
every call from then on replays it; each call is a real training step on its own batch, so the trajectory
is the eager one. Elsewhere, or with ``graph=False``, it runs the same step eagerly on the caller's
tensors (the CPU tests check that path against a plain loop, bit for bit). A batch of another shape than
the captured one (an epoch's short last batch) runs eagerly.

The optimizer must be able to run inside a graph: for Adam/AdamW ``capturable=True`` (set here when the
optimizer has no state yet); ``loss_fn`` must not synchronise with the host (no ``.item()``, no
data-dependent shapes), which holds for `geocrop.training.losses` (its row blocks are fixed by the
batch's shape).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch

from geocrop.errors import InputError

__all__ = ["TrainStep"]

log = logging.getLogger(__name__)


class TrainStep:
    """``step(a, b) -> loss`` (a detached scalar) trains once on the batch ``(a, b)``; see the module
    docstring.

    Args:
        loss_fn: ``(a, b) -> scalar loss`` (the model's forward and the loss).
        optimizer: stepped after each backward; gradients are set to None before each eager step and
            written afresh by each replay.
        device: where the step runs; a graph is used only on CUDA.
        graph: None: a graph on CUDA; False: eager everywhere; True: a graph (`InputError` off CUDA).
        warmup: eager steps before capture.
    """

    def __init__(
        self,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        optimizer: torch.optim.Optimizer,
        *,
        device: torch.device,
        graph: bool | None = None,
        warmup: int = 3,
    ) -> None:
        if graph and device.type != "cuda":
            raise InputError(
                f"`graph` True needs a CUDA device, not {device.type}; pass graph=None or False",
                param="graph",
            )
        self.loss_fn = loss_fn
        self.optimizer = optimizer
        self.device = device
        self.uses_graph = device.type == "cuda" if graph is None else graph
        self.warmup = max(1, warmup)
        self.calls = 0
        self._graph: torch.cuda.CUDAGraph | None = None
        self._inputs: tuple[torch.Tensor, torch.Tensor] | None = None
        self._loss: torch.Tensor | None = None
        if self.uses_graph:
            self._make_capturable()

    def _make_capturable(self) -> None:
        if self.optimizer.state:
            if not all(g.get("capturable", False) for g in self.optimizer.param_groups):
                raise InputError(
                    "the optimizer has state from earlier steps and was not made with capturable=True; "
                    "create it with capturable=True or pass graph=False",
                    param="graph",
                )
            return
        for group in self.optimizer.param_groups:
            if "capturable" in group:
                group["capturable"] = True

    @property
    def captured(self) -> bool:
        return self._graph is not None

    def _eager(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss_fn(a, b)
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if not self.uses_graph:
            return self._eager(a, b)
        if self._graph is None and self.calls <= self.warmup:
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                loss = self._eager(a, b)
            torch.cuda.current_stream(self.device).wait_stream(side)
            return loss
        if self._graph is None and not self._capture(a, b):
            return self._eager(a, b)
        assert self._inputs is not None and self._graph is not None and self._loss is not None
        if a.shape != self._inputs[0].shape or b.shape != self._inputs[1].shape:
            return self._eager(a, b)  # a short last batch: its own shapes, not the graph's
        self._inputs[0].copy_(a)
        self._inputs[1].copy_(b)
        self._graph.replay()
        return self._loss.clone()

    def _capture(self, a: torch.Tensor, b: torch.Tensor) -> bool:
        """Record one step on fixed input buffers (nothing runs during capture; the caller replays).

        False, with a warning, when the step cannot be captured: training goes on eagerly (capture runs
        nothing, so no step was lost)."""
        self._inputs = (a.detach().clone(), b.detach().clone())
        self.optimizer.zero_grad(set_to_none=True)  # backward inside the graph writes fresh gradients
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                loss = self.loss_fn(*self._inputs)
                loss.backward()
                self.optimizer.step()
        except RuntimeError as exc:
            log.warning(
                "the training step could not be captured in a CUDA graph (%s); running it eagerly", exc
            )
            self.uses_graph = False
            self._inputs = None
            self.optimizer.zero_grad(set_to_none=True)
            return False
        self._loss = loss.detach()
        self._graph = graph
        return True
