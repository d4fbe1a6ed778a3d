"""How `train` and `evaluate` report progress: `ProgressEvent`s with the epoch, the budget and the runs.

`TrainBar` turns one `geocrop train` into a bar: the preparation steps up to 10 %, ``auto``'s inner
validation (its events carry ``step`` of ``total``) up to 80 %, then the epochs of the fit (each
`EpochStats` carries the fit's planned ``epochs``). `EvaluateBoard` reports an evaluation as a grid of
runs (`RunState`: fold x method, left / running / done / reused), the epochs of the run that is training
and the share of runs finished. Nothing here reads a message to learn a number.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from geocrop.core.progress import Progress, ProgressEvent, RunState, emit
from geocrop.training.fit import EpochStats

__all__ = ["MAJORITY", "EvaluateBoard", "TrainBar", "epoch_line", "method_label"]

#: `TrainBar`'s share of the bar for reading and encoding, and where ``auto``'s inner validation ends.
PREPARATION, CHOSEN = 0.1, 0.8
#: The method of an evaluation that needs no fit: each fold's majority class.
MAJORITY = "majority"


def epoch_line(stats: EpochStats) -> str:
    """``epoch 3/40: train loss 1.2345, val loss ..., val accuracy 56.00%, val macro-F1 0.512``."""
    return (
        f"epoch {stats.epoch}/{max(stats.epochs, stats.epoch)}: train loss {stats.train_loss:.4f}, "
        f"val loss {stats.val_loss:.4f}, val accuracy {100 * stats.val_accuracy:.2f}%, "
        f"val macro-F1 {stats.val_f1:.3f}"
    )


class TrainBar:
    """The progress of one `geocrop.training.train.train_model` run (see the module docstring)."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self._steps = iter((0.0, PREPARATION / 2, PREPARATION))
        self._base = PREPARATION  # where the epochs' part of the bar starts

    def step(self, message: str, **fields: Any) -> None:
        """A preparation step (reading, encoding, the start of the fit)."""
        emit(self.progress, "train", next(self._steps, PREPARATION), message, **fields)

    def inner(self, event: ProgressEvent) -> None:
        """An event of ``auto``: an inner fit (``step`` of ``total``), its choice or the refit."""
        if event.step is not None and event.total:
            fraction = PREPARATION + (CHOSEN - PREPARATION) * event.step / event.total
        else:
            self._base = fraction = CHOSEN
        if self.progress is not None:
            self.progress(replace(event, stage="train", fraction=fraction, log=True))

    def epoch(self, stats: EpochStats) -> None:
        """A finished epoch: a log line, the bar at its share of the planned epochs."""
        total = max(stats.epochs, stats.epoch)
        fraction = self._base + (1 - self._base) * stats.epoch / total
        emit(self.progress, "train", fraction, epoch_line(stats), log=True, epoch=stats.epoch, epochs=total)


def method_label(family: str, variant: str, index: int) -> str:
    """One column of an evaluation's grid: ``lstm`` (raw bands), ``lstm bimodal``, ``lstm bimodal 2``."""
    if variant == "supervised":
        return family
    return f"{family} {variant}" + (f" {index + 1}" if index else "")


class EvaluateBoard:
    """The progress of one evaluation: every run's state, the epochs of the one training, the share done.

    The first event lists every run (`RunState`); later ones carry the runs whose state changed. The
    fraction counts the runs this call fits (runs found in the journal are done already, and the
    majority class needs no fit), the running one by its epochs.
    """

    def __init__(self, progress: Progress | None, runs: Iterable[RunState]) -> None:
        self.progress = progress
        self._runs = {run.key: run for run in runs}
        self._to_fit = sum(run.status == "left" and run.method != MAJORITY for run in self._runs.values())
        self._fitted = 0
        self._current = ""
        reused = sum(run.status == "reused" for run in self._runs.values())
        message = f"{len(self._runs)} runs: {reused} found finished, {self._to_fit} to fit"
        self._send(message, tuple(self._runs.values()), log=True, total=self._to_fit)

    def _send(
        self, message: str, runs: tuple[RunState, ...] = (), within_run: float = 0.0, **fields: Any
    ) -> None:
        fraction = 1.0 if not self._to_fit else (self._fitted + within_run) / self._to_fit
        emit(self.progress, "evaluate", fraction, message, runs=runs, **fields)

    def _set(self, key: str, **changes: Any) -> tuple[RunState, ...]:
        self._runs[key] = replace(self._runs[key], **changes)
        return (self._runs[key],)

    def line(self, message: str) -> None:
        """A line of the evaluation's log that changes no run (encoding a fold's series)."""
        self._send(message, log=True)

    def majority(self, key: str, macro_f1: float) -> None:
        """The majority class of a fold, found at once (no fit, no log line)."""
        self._send(f"{key}: done", self._set(key, status="done", seconds=0.0, macro_f1=macro_f1))

    def start(self, key: str, message: str, *, initial_lr: float | None = None) -> None:
        """Run ``key`` starts its fit; ``message`` is its log line."""
        self._current = key
        changed = self._set(key, status="running")
        self._send(
            message, changed, log=True, initial_lr=initial_lr, step=self._fitted + 1, total=self._to_fit
        )

    def epoch(self, stats: EpochStats) -> None:
        """An epoch of the running fit: moves the bar, no log line (a run logs its start and its end)."""
        epochs = max(stats.epochs, stats.epoch)
        message = f"{self._current}: {epoch_line(stats)}"
        self._send(message, within_run=stats.epoch / epochs, epoch=stats.epoch, epochs=epochs)

    def finish(self, key: str, message: str, *, seconds: float, macro_f1: float) -> None:
        """Run ``key`` has finished and is in the journal; ``message`` is its log line."""
        self._fitted += 1
        changed = self._set(key, status="done", seconds=seconds, macro_f1=macro_f1)
        self._send(message, changed, log=True, step=self._fitted, total=self._to_fit)
