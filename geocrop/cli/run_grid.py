"""``geocrop evaluate --progress rich``: the grid of runs (fold x method), the running fit's epochs, an ETA.

`RunGrid` is the model: it follows the evaluation's `ProgressEvent`s (the first lists every run as a
`RunState`, later ones the runs that changed, epoch events the running fit) and answers what the view
draws: each cell's runs done / running / left, the current run's epoch of its budget, and the time
left, estimated from the runs finished so far (their method's mean, else all runs'; runs found in the
journal count with the seconds they took then). `GridReporter` draws it with rich on a terminal and is
the plain `Reporter` elsewhere (log lines on stdout, or JSON events).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from geocrop.cli.progress import Reporter
from geocrop.core.progress import ProgressEvent, RunState

__all__ = ["Cell", "GridReporter", "RunGrid", "format_seconds"]

#: The method that needs no fit (each fold's majority class): no time of its own.
_INSTANT = "majority"


@dataclass(frozen=True)
class Cell:
    """The runs of one fold and method: finished (trained now or found in the journal), running, left."""

    done: int = 0
    running: int = 0
    left: int = 0

    @property
    def total(self) -> int:
        return self.done + self.running + self.left


class RunGrid:
    """The state of an evaluation, rebuilt from its events; ``clock`` gives seconds (tests pass a fake)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.runs: dict[str, RunState] = {}
        self.current: RunState | None = None
        self.epoch: int | None = None
        self.epochs: int | None = None
        self._started: float | None = None  # when the current run started (by the clock)

    def apply(self, event: ProgressEvent) -> None:
        """Take one event of the evaluate stage into account (other stages' events change nothing)."""
        if event.stage != "evaluate":
            return
        for run in event.runs:
            self.runs[run.key] = run
            if run.status == "running":
                self.current, self._started = run, self.clock()
                self.epoch = self.epochs = None
            elif self.current is not None and run.key == self.current.key:
                self.current = self._started = None
                self.epoch = self.epochs = None
        if event.epoch is not None and self.current is not None:
            self.epoch, self.epochs = event.epoch, event.epochs

    @property
    def folds(self) -> list[int]:
        return sorted({run.fold for run in self.runs.values()})

    @property
    def methods(self) -> list[str]:
        """The grid's columns, in the order the evaluation runs them."""
        return list(dict.fromkeys(run.method for run in self.runs.values()))

    def cell(self, fold: int, method: str) -> Cell:
        states = [r.status for r in self.runs.values() if r.fold == fold and r.method == method]
        done = sum(s in ("done", "reused") for s in states)
        running = states.count("running")
        return Cell(done, running, len(states) - done - running)

    def counts(self) -> Cell:
        """Every run: done, running, left."""
        cells = [self.cell(f, m) for f in self.folds for m in self.methods]
        return Cell(sum(c.done for c in cells), sum(c.running for c in cells), sum(c.left for c in cells))

    def _estimate(self) -> Callable[[str], float | None]:
        """Seconds a run of a method is expected to take: its method's mean, else every finished run's."""
        timed = [r for r in self.runs.values() if r.seconds is not None and r.method != _INSTANT]
        timed = [r for r in timed if r.status in ("done", "reused")]
        overall = sum(r.seconds or 0.0 for r in timed) / len(timed) if timed else None

        def estimate(method: str) -> float | None:
            own = [r.seconds or 0.0 for r in timed if r.method == method]
            return sum(own) / len(own) if own else overall

        return estimate

    def eta(self) -> float | None:
        """Seconds left, or None before anything can be timed (no finished run, no epoch yet)."""
        estimate = self._estimate()
        current_left, pace = 0.0, None  # pace: the running fit's duration judged by its own epochs
        if self.current is not None and self._started is not None:
            elapsed = self.clock() - self._started
            if self.epoch and self.epochs:
                pace = elapsed * self.epochs / self.epoch
            expected = pace if pace is not None else estimate(self.current.method)
            if expected is None:
                return None
            current_left = max(expected - elapsed, 0.0)
        left = [r.method for r in self.runs.values() if r.status == "left" and r.method != _INSTANT]
        guesses = [estimate(method) for method in left]
        guesses = [pace if guess is None else guess for guess in guesses]
        if any(guess is None for guess in guesses):
            return None
        return current_left + sum(guess or 0.0 for guess in guesses)


def format_seconds(seconds: float | None) -> str:
    """``1 h 05 min``, ``12 min``, ``40 s``, or ``?`` without an estimate."""
    if seconds is None:
        return "?"
    s = round(seconds)
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    return f"{s // 60} min" if s >= 60 else f"{s} s"


class GridReporter(Reporter):
    """A `Reporter` that, in rich mode on a terminal, draws the run grid live instead of a bar."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.grid = RunGrid()
        self._live: Any = None
        self._plain = False

    def progress_event(self, event: ProgressEvent) -> None:
        self.grid.apply(event)
        if self.mode != "rich" or self._plain or not self._start_live():
            super().progress_event(event)
            return
        if event.log:
            self._live.console.print(event.message, highlight=False, markup=False)
        self._live.update(self._render(), refresh=True)

    def _start_live(self) -> bool:
        if self._live is not None:
            return True
        from rich.console import Console
        from rich.live import Live

        console = Console(file=self.err)
        if not console.is_terminal or self.state.quiet:
            self._plain = True
            return False
        self._live = Live(self._render(), console=console, transient=True, auto_refresh=False)
        self._live.start()
        return True

    def _render(self) -> Any:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        grid = self.grid
        table = Table(title="runs done / all (fold x method)", title_justify="left", box=None)
        table.add_column("fold")
        for method in grid.methods:
            table.add_column(method, justify="center")
        for fold in grid.folds:
            cells = []
            for method in grid.methods:
                c = grid.cell(fold, method)
                style = "green" if c.left == c.running == 0 else "yellow" if c.running else "dim"
                cells.append(Text(f"{c.done}/{c.total}" + (" *" if c.running else ""), style=style))
            table.add_row(str(fold + 1), *cells)
        total = grid.counts()
        parts: list[Any] = [table]
        if grid.current is not None:
            line = Text(f"{grid.current.key}: ")
            if grid.epoch and grid.epochs:
                line.append(f"epoch {grid.epoch}/{grid.epochs} ")
            parts.append(line)
            if grid.epoch and grid.epochs:
                parts.append(ProgressBar(total=grid.epochs, completed=grid.epoch, width=40))
        parts.append(
            Text(f"{total.done} of {total.total} runs done; about {format_seconds(grid.eta())} left")
        )
        return Group(*parts)

    def _stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        super()._stop()
