"""The one progress type of geocrop: every stage, inside the library and out, reports `ProgressEvent`s.

A stage's function takes ``progress: Progress | None`` and sends events with `emit`; the fields say how
far it is in structured form (``step`` of ``total``, ``epoch`` of ``epochs``, the runs of an evaluation)
so that no caller parses a message to learn them. `within` hands a part of a stage to a helper: the
helper reports 0..1 of its own work and the caller sees it as ``lo..hi`` of the whole. Pure Python:
importing this module costs nothing, and every layer may use it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal, TypeAlias

__all__ = ["Progress", "ProgressEvent", "RunState", "RunStatus", "Stage", "emit", "within"]

#: The stages that report progress.
Stage = Literal[
    "map",
    "train",
    "pretrain",
    "evaluate",
    "predict",
    "fields",
    "smooth",
    "sample",
    "assess",
    "simulate",
    "inspect",
]
#: Where one run of an evaluation stands: ``left`` (not started), ``running``, ``done`` (trained now) or
#: ``reused`` (found finished in the journal of an earlier run).
RunStatus = Literal["left", "running", "done", "reused"]


@dataclass(frozen=True)
class RunState:
    """One run of an evaluation (a method trained on one fold) and where it stands."""

    key: str
    #: 0-based fold, and the number of folds.
    fold: int
    folds: int
    #: What is compared (one column of the grid): ``"lstm raw"``, ``"rf raw"``, ``"majority"``, ...
    method: str
    status: RunStatus
    #: Seconds the run took (``done`` runs; also the reused ones, from the journal).
    seconds: float | None = None
    #: The run's validation macro-F1 once finished.
    macro_f1: float | None = None


@dataclass(frozen=True)
class ProgressEvent:
    """One step of a stage: ``fraction`` of the stage done (0..1; None when the stage cannot tell) and a
    one-line ``message``, plus the structured fields that apply to it."""

    stage: Stage
    fraction: float | None
    message: str
    #: True for a line worth keeping in a log (an epoch's scores), not only a step to show on a bar.
    log: bool = False
    #: ``step`` of ``total`` units of the stage's current part (tiles, inner fits, evaluation runs), 1-based.
    step: int | None = None
    total: int | None = None
    #: The epoch just finished (1-based) of the head being trained, and its planned budget (early stopping
    #: may end the fit sooner).
    epoch: int | None = None
    epochs: int | None = None
    #: The learning rate the head's schedule starts at (on the line that starts a fit).
    initial_lr: float | None = None
    #: Runs of an evaluation whose state changed (the first event lists them all).
    runs: tuple[RunState, ...] = ()

    @property
    def percent(self) -> str:
        """``" 42%"``, or ``"   ?"`` without a fraction (fixed width, for log lines)."""
        return "   ?" if self.fraction is None else f"{100 * self.fraction:3.0f}%"


#: The callback every stage takes as ``progress=``.
Progress: TypeAlias = Callable[[ProgressEvent], None]


def emit(
    progress: Progress | None,
    stage: Stage,
    fraction: float | None,
    message: str,
    *,
    log: bool = False,
    **fields: Any,
) -> None:
    """Send one event to ``progress`` (if any), the fraction clipped to 0..1; ``fields`` are the
    structured fields of `ProgressEvent` (``step=3, total=40``)."""
    if progress is not None:
        clipped = None if fraction is None else min(max(float(fraction), 0.0), 1.0)
        progress(ProgressEvent(stage, clipped, message, log, **fields))


def within(progress: Progress | None, lo: float, hi: float, *, stage: Stage | None = None) -> Progress | None:
    """``progress`` for a part of a stage: a helper's fraction 0..1 arrives as ``lo..hi`` (and, with
    ``stage``, as that stage's event: a shared helper reports for whichever stage called it)."""
    if progress is None:
        return None
    outer = progress

    def part(event: ProgressEvent) -> None:
        fraction = None if event.fraction is None else lo + (hi - lo) * event.fraction
        outer(replace(event, fraction=fraction, stage=stage or event.stage))

    return part
