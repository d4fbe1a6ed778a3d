"""Progress reporting for long commands: a rich bar for people, JSON lines for programs, or nothing.

``--progress json`` is a line protocol on stdout (the QGIS plugin reads it), one JSON object per line:

* ``{"event": "progress", "fraction": 0.0..1.0, "message": str, "stage": str, ...}`` as work advances,
  with the event's structured fields that apply (`geocrop.core.progress.ProgressEvent`): ``step`` and
  ``total``, ``epoch`` and ``epochs``, ``initial_lr``, and for ``evaluate`` the ``runs`` whose state
  changed (``key``, ``fold``, ``folds``, ``method``, ``status``, ``seconds``, ``macro_f1``);
* ``{"event": "log", "message": str}`` for a line of the command's log that is not a progress step;
* ``{"event": "warning", "message": str, "text": str}`` for a degraded but usable result (also on stderr;
  ``text`` is the same line in argument names, for front ends with labels of their own);
* ``{"event": "plan", "lines": [str, ...]}`` for ``--dry-run`` (what would be read and computed);
* ``{"event": "done", "outputs": {"cog": path, ...}}`` once, at the end;
* ``{"event": "error", "message": str, "param": str | null, "text": str}`` instead of ``done`` when a
  `GeocropError` stops the command; the command then exits 2 with ``geocrop: error: <message>`` on
  stderr as always. ``message`` names flags (``--end``); ``param`` is the library argument the error is
  about (``"end"``) and ``text`` the message in library terms (`` `end` ``), so a front end with its own
  labels (the QGIS plugin) can name its own field.

Warnings raised by the library (``warnings.warn``) become one ``geocrop: warning: ...`` line on stderr in
every mode, never a source-code excerpt. While a command runs they are held (`hold_warnings`) and shown
once it has passed every check (`Reporter.done`, or the command's end), so an error found late in a run
is still the only line; a failed command shows none.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal, TextIO

import click

from geocrop.api_types import ProgressEvent
from geocrop.cli.flags import in_flags
from geocrop.errors import GeocropError

__all__ = [
    "PROGRESS_OPTION",
    "Output",
    "ProgressMode",
    "Reporter",
    "drop_warnings",
    "hold_warnings",
    "output",
    "plain_text",
    "progress_option",
    "release_warnings",
    "reporting",
    "run_verb",
    "set_warnings_shown",
    "show_or_hold",
]

ProgressMode = Literal["rich", "json", "none"]
PROGRESS_OPTION = click.Choice(["rich", "json", "none"])
#: Where a command run keeps its `Output` in click's context (shared by the group's and the command's).
_OUTPUT_KEY = "geocrop.output"


@dataclasses.dataclass
class Output:
    """What one command run shows: ``quiet`` under ``geocrop -q`` (warnings, the bar and log lines are not
    shown; errors still are), and the warnings ``held`` while it runs (None: shown at once)."""

    quiet: bool = False
    held: list[Callable[[], None]] | None = None


def output() -> Output:
    """This command run's `Output`, kept in click's context from the group to the command; outside a
    command (the Python API, a test) a fresh one: nothing hidden, nothing held."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return Output()
    state: Output = ctx.meta.setdefault(_OUTPUT_KEY, Output())
    return state


def shows_output() -> bool:
    """False under ``geocrop -q`` (see `set_warnings_shown`)."""
    return not output().quiet


def set_warnings_shown(shown: bool) -> None:
    """Show (default) or hide the library's one-line warnings in this run's `reporting` blocks (``-q``
    hides them, and with them the bar and the log lines, e.g. the epochs: errors only; JSON events are
    unchanged)."""
    output().quiet = not shown


_NUMPY_REPR = re.compile(
    r"""np\.str_\(('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")\)"""  # np.str_('maize') -> 'maize'
    r"|np\.(?:u?int|float)\d*\(([-+0-9.eE]+|nan|inf)\)"  # np.int64(3) -> 3
    r"|np\.(True|False)_"  # np.True_ -> True
)


def plain_text(message: str) -> str:
    """``message`` with numpy scalar reprs (``np.str_('maize')``, ``np.int64(3)``) as plain values: the
    last guard, at the edge, for a library message that formatted a numpy scalar with ``!r``."""
    return _NUMPY_REPR.sub(lambda m: next(g for g in m.groups() if g is not None), message)


def hold_warnings(state: Output | None = None) -> None:
    """From now on this run's warnings wait (`show_or_hold`) until `release_warnings` shows them or
    `drop_warnings` drops them: the command group holds them while a command runs, so that bad input
    found late (a truncated scene, a bundle whose tensors disagree with its metadata) ends in its one
    error line alone."""
    (state or output()).held = []


def show_or_hold(write: Callable[[], None], state: Output | None = None) -> None:
    """Call ``write`` (which prints one warning) now, or keep it for `release_warnings`."""
    held = (state or output()).held
    if held is None:
        write()
    else:
        held.append(write)


def release_warnings(state: Output | None = None) -> None:
    """Show the held warnings in order and stop holding (the checks passed: the result stands)."""
    state = state or output()
    held, state.held = state.held or [], None
    for write in held:
        write()


def drop_warnings(state: Output | None = None) -> None:
    """Forget the held warnings and stop holding (the command failed: its warnings describe nothing)."""
    (state or output()).held = None


def progress_option(default: ProgressMode = "rich") -> Any:
    """The shared ``--progress rich|json|none`` click option."""
    return click.option(
        "--progress",
        "progress_mode",
        type=PROGRESS_OPTION,
        default=default,
        show_default=True,
        help="rich: a progress bar; json: one JSON object per line on stdout (for programs); none: quiet.",
    )


class Reporter:
    """Callable as ``reporter(fraction, message)``; ``done(outputs)`` and ``error(message)`` end the run."""

    def __init__(
        self,
        mode: ProgressMode,
        *,
        out: TextIO | None = None,
        err: TextIO | None = None,
        state: Output | None = None,
    ) -> None:
        self.mode = mode
        #: This run's output settings (``-q``, held warnings); read once, so threads that warn share them.
        self.state = state or output()
        self._out = out
        self._err = err
        self._bar: Any = None
        self._task: Any = None
        self._no_bar = False

    @property
    def out(self) -> TextIO:
        return self._out or sys.stdout

    @property
    def err(self) -> TextIO:
        return self._err or sys.stderr

    def _json(self, payload: Mapping[str, Any]) -> None:
        self.out.write(json.dumps(payload) + "\n")
        self.out.flush()

    def __call__(self, fraction: float, message: str, **fields: Any) -> None:
        fraction = min(max(float(fraction), 0.0), 1.0)
        if self.state.quiet and self.mode != "json":
            return  # geocrop -q: errors only, no bar
        if self.mode == "json":
            self._json({"event": "progress", "fraction": round(fraction, 4), "message": message, **fields})
        elif self.mode == "rich" and not self._no_bar:
            if self._bar is None:
                from rich.console import Console
                from rich.progress import (
                    BarColumn,
                    Progress,
                    TaskProgressColumn,
                    TextColumn,
                    TimeElapsedColumn,
                )

                console = Console(file=self.err)
                if not console.is_terminal:
                    # a bar in a log file is noise, and stopping it writes an empty line before an error
                    self._no_bar = True
                    return
                self._bar = Progress(
                    TextColumn("{task.description}"),
                    BarColumn(),
                    TaskProgressColumn(),
                    TimeElapsedColumn(),
                    console=console,
                    transient=True,
                )
                self._bar.start()
                self._task = self._bar.add_task(message, total=1.0)
            self._bar.update(self._task, completed=fraction, description=message)

    def progress_event(self, event: ProgressEvent) -> None:
        """The `geocrop.api` progress callback: a step moves the bar; a step without a fraction (an
        evaluation's next run) or a line worth keeping (``event.log``: an epoch's scores) is also noted."""
        if event.fraction is not None:
            self(event.fraction, event.message, **event_fields(event))
        if event.fraction is None or (event.log and self.mode != "json"):
            self.note(event.message)  # in JSON mode the progress event already carries an epoch's line

    def note(self, message: str) -> None:
        """A line of the command's log (e.g. an epoch's losses): on stdout (on a terminal rich shows it
        above the bar, which lives on stderr), or a ``log`` event in JSON mode."""
        if self.mode == "json":
            self._json({"event": "log", "message": message})
        elif not self.state.quiet:  # geocrop -q: errors only, no log lines
            click.echo(message, file=self.out)

    def event(self, name: str, **fields: Any) -> None:
        """Another JSON event (e.g. ``plan`` for a dry run); only in JSON mode."""
        if self.mode == "json":
            self._json({"event": name, **fields})

    def warning(self, message: str) -> None:
        """One warning line in this command's flags; the JSON event adds the library-terms ``text``."""
        text = plain_text(message)
        message = in_flags(text)

        def write() -> None:
            self._stop()
            self.err.write(f"geocrop: warning: {message}\n")
            self.err.flush()
            if self.mode == "json":
                self._json({"event": "warning", "message": message, "text": text})

        show_or_hold(write, self.state)

    def done(self, outputs: Mapping[str, Any]) -> None:
        release_warnings(self.state)  # every check has passed; warnings come before the "done" event
        self._stop()
        if self.mode == "json":
            self._json({"event": "done", "outputs": {k: str(v) for k, v in outputs.items()}})

    def error(self, message: str, *, param: str | None = None, text: str | None = None) -> None:
        drop_warnings(self.state)
        self._stop()
        if self.mode == "json":
            message, text = plain_text(message), plain_text(text or message)
            self._json({"event": "error", "message": message, "param": param, "text": text})

    def _stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def event_fields(event: ProgressEvent) -> dict[str, Any]:
    """The structured fields of ``event`` a JSON ``progress`` event carries: its stage and those set."""
    fields: dict[str, Any] = {"stage": event.stage}
    for name in ("step", "total", "epoch", "epochs", "initial_lr"):
        if getattr(event, name) is not None:
            fields[name] = getattr(event, name)
    if event.runs:
        fields["runs"] = [dataclasses.asdict(run) for run in event.runs]
    return fields


@contextlib.contextmanager
def reporting(mode: ProgressMode, *, kind: type[Reporter] = Reporter) -> Iterator[Reporter]:
    """A ``kind`` of `Reporter` for the block; turns warnings into one-line messages and reports errors
    in JSON mode.

    A `GeocropError` is re-raised after the JSON ``error`` event so the command group prints it and exits 2.
    """
    reporter = kind(mode)

    def show(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        reporter.warning(str(message))

    with warnings.catch_warnings():
        # Users see the library's own warnings (degraded results), not dependencies' deprecations.
        warnings.simplefilter("default")
        for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning, ResourceWarning):
            warnings.simplefilter("ignore", category)
        # GDAL says this of every NetCDF variable it opens; geocrop places a cube by its own x/y
        # coordinates and CRS (geocrop.io.cube_file), so it is noise here.
        warnings.filterwarnings("ignore", message="Dataset has no geotransform")
        if reporter.state.quiet:
            warnings.simplefilter("ignore")
        warnings.showwarning = show
        try:
            yield reporter
        except GeocropError as exc:
            reporter.error(in_flags(str(exc)), param=exc.param, text=str(exc))
            raise
        finally:
            reporter._stop()


def run_verb(
    verb: str,
    mode: ProgressMode,
    arguments: Mapping[str, Any],
    outputs: Callable[[Any], Mapping[str, Any]],
) -> Any:
    """Call `geocrop.api`'s ``verb`` with the command's ``arguments`` under `reporting` (its progress drawn,
    or written as JSON events) and end the run with the files ``outputs(result)`` names; the result comes
    back for the command's summary line."""
    import geocrop.api as api

    with reporting(mode) as reporter:
        result = getattr(api, verb)(**arguments, progress=reporter.progress_event)
        reporter.done(outputs(result))
    return result
