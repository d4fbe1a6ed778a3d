"""The `geocrop` command group.

Each subcommand lives in its own module under `geocrop.cli` and is listed in `_COMMANDS`; third-party
packages can add more through the ``geocrop.commands`` entry-point group.

The group is the error boundary: a `GeocropError` raised anywhere below, and every click usage error (a bad
date, a missing option, a value out of range, a folder given for a file...), becomes exactly one line
``geocrop: error: <what was wrong>; <how to fix it>`` on stderr and exit code 2, never a traceback or
click's multi-line usage text. Library messages name arguments as a Python caller writes them (`` `end` ``,
with ``exc.param`` set); `geocrop.cli.flags.in_flags` turns those names into the running command's flags
(for the error line, the JSON error event and warnings alike).

Logging is quiet by default so that an error stays one line: third-party loggers (GDAL through rasterio,
urllib3, dask...) are silent and geocrop's own say only warnings; ``-v`` adds geocrop's progress notes and
third-party warnings, ``-vv`` everything at debug level, ``-q`` keeps errors only (no warnings).

Warnings (Python's and log records at WARNING) are held while a command runs and shown when it has passed
every check, so an error found late in a run (a truncated scene, a bundle whose tensors disagree with its
metadata) is still the only line; a command that fails shows none.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import logging
import sys
import warnings
from collections.abc import Sequence
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, NoReturn

import click

from geocrop._version import __version__
from geocrop.cli.flags import in_flags
from geocrop.errors import GeocropError

if TYPE_CHECKING:
    from geocrop.cli.progress import Output

#: subcommand name -> "module:attribute" of its click command; imported lazily so `geocrop --help` is fast.
_COMMANDS: dict[str, str] = {
    "simulate": "geocrop.cli.simulate:simulate",
    "pretrain": "geocrop.cli.pretrain:pretrain",
    "train": "geocrop.cli.train:train",
    "evaluate": "geocrop.cli.evaluate:evaluate",
    "predict": "geocrop.cli.predict:predict",
    "map": "geocrop.cli.map:map_command",
    "sample": "geocrop.cli.sample:sample",
    "fields": "geocrop.cli.fields:fields",
    "smooth": "geocrop.cli.smooth:smooth",
    "assess": "geocrop.cli.assess:assess",
    "inspect": "geocrop.cli.inspect:inspect",
    "demo": "geocrop.cli.demo:demo",
    "info": "geocrop.cli.info:info",
}


class _LazyGroup(click.Group):
    """A group that imports a subcommand's module only when that subcommand runs or is listed."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = {name for name in _COMMANDS if _module_exists(_COMMANDS[name])}
        names |= {ep.name for ep in entry_points(group="geocrop.commands")}
        return sorted(names | set(super().list_commands(ctx)))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = _COMMANDS.get(cmd_name)
        if target is not None and _module_exists(target):
            module_name, attr = target.split(":")
            return getattr(importlib.import_module(module_name), attr)
        for ep in entry_points(group="geocrop.commands"):
            if ep.name == cmd_name:
                return ep.load()
        return super().get_command(ctx, cmd_name)


def _module_exists(target: str) -> bool:
    return importlib.util.find_spec(target.split(":")[0]) is not None


def _fail(message: str, code: int = 2) -> NoReturn:
    """Print ``geocrop: error: <message>`` as one line on stderr and exit with ``code``."""
    from geocrop.cli.progress import plain_text

    line = plain_text(" ".join(str(message).split()))
    click.echo(f"geocrop: error: {line}", err=True)
    sys.exit(code)


class _ErrorHandlingGroup(_LazyGroup):
    def invoke(self, ctx: click.Context) -> Any:
        """Run the subcommand with its warnings held: shown when it succeeds (or is interrupted, or
        crashes), dropped when it ends in a `GeocropError` or a usage error, whose one line stands alone."""
        from geocrop.cli import progress

        state = progress.output()  # this run's: held warnings, -q
        with warnings.catch_warnings():
            warnings.showwarning = functools.partial(_hold_warning, state=state)  # outside `reporting` too
            for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
                warnings.simplefilter("ignore", category)  # dependencies' own future, not the user's data
            progress.hold_warnings(state)
            try:
                rv = super().invoke(ctx)
            except GeocropError as exc:
                progress.drop_warnings(state)
                name = ctx.invoked_subcommand
                _fail(in_flags(str(exc), self.get_command(ctx, name) if name else None, ctx))
            except click.exceptions.Exit:
                progress.release_warnings(state)
                raise
            except click.ClickException:
                progress.drop_warnings(state)
                raise
            except KeyboardInterrupt:
                progress.release_warnings(state)
                click.echo("geocrop: interrupted; rerun the same command to resume.", err=True)
                sys.exit(130)
            except BaseException:
                progress.release_warnings(state)
                raise
            progress.release_warnings(state)
            return rv

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Click's main, with usage errors turned into one ``geocrop: error:`` line (exit 2)."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as exc:
            _fail(usage_error_line(exc), 2)
        except click.ClickException as exc:
            _fail(exc.format_message(), exc.exit_code)
        except click.Abort:
            click.echo("geocrop: interrupted; rerun the same command to resume.", err=True)
            sys.exit(130)
        sys.exit(rv if isinstance(rv, int) else 0)


def _param_name(param: click.Parameter | None) -> str:
    if param is None:
        return "a value"
    opts = [o for o in getattr(param, "opts", []) if o.startswith("--")] or list(getattr(param, "opts", []))
    if param.param_type_name == "argument" or not opts:
        return (param.human_readable_name or param.name or "argument").upper()
    return opts[0]


def _fix_for(param: click.Parameter | None, message: str, command: str) -> str:
    """How to fix a bad value of one of click's own parameter types (ours already say it)."""
    kind = getattr(param, "type", None)
    low = message.lower()
    if isinstance(kind, click.Choice):
        return f"choose one of {', '.join(map(str, kind.choices))}"
    if isinstance(kind, click.IntRange | click.FloatRange):
        lo, hi = kind.min, kind.max
        if lo is not None and hi is not None:
            return f"give a value from {lo} to {hi}"
        return f"give a value {'>=' if lo is not None else '<='} {lo if lo is not None else hi}"
    if isinstance(kind, click.Path):
        if "is a directory" in low:
            return "give a file path, not a folder"
        if "is a file" in low:
            return "give a folder path, not a file"
        if "does not exist" in low:
            return "check the path"
        if "not writable" in low or "not readable" in low:
            return "choose a path you can read and write"
    if kind is click.INT or isinstance(kind, click.types.IntParamType):
        return "give a whole number"
    if kind is click.FLOAT or isinstance(kind, click.types.FloatParamType):
        return "give a number"
    return f"see `{command} --help`"


def usage_error_line(exc: click.UsageError) -> str:
    """One line for a click usage error: the command, the option, what was wrong and the fix."""
    ctx = exc.ctx
    command = ctx.command_path if ctx is not None else "geocrop"
    help_hint = f"see `{command} --help`"
    where = command.split(" ", 1)[1] if " " in command else command  # "map", not "geocrop map"
    if isinstance(exc, click.MissingParameter):
        name = _param_name(exc.param)
        metavar = ""
        if exc.param is not None and ctx is not None:
            metavar = " " + exc.param.make_metavar(ctx) if not getattr(exc.param, "is_flag", False) else ""
        helptext = getattr(exc.param, "help", None)
        what = f" ({helptext.rstrip('.')})" if helptext else ""
        return f"{where}: missing option {name}{what}; give {name}{metavar}"
    if isinstance(exc, click.BadParameter):
        hint = exc.param_hint if isinstance(exc.param_hint, str) else None
        name = _param_name(exc.param) if exc.param is not None else (hint or "a value")
        message = str(exc.message).strip().rstrip(".")
        if ";" not in message:  # click's own types give no fix; ours always do
            message = f"{message}; {_fix_for(exc.param, message, command)}"
        return f"{where} {name}: {message}"
    if isinstance(exc, click.NoSuchOption):
        maybe = ""
        if exc.possibilities:
            maybe = f"did you mean {' or '.join(sorted(exc.possibilities))}? "
        return f"{where}: no such option {exc.option_name}; {maybe}{help_hint}"
    message = str(exc.message).strip().rstrip(".")
    if message.startswith("No such command"):
        return f"{message}; run `geocrop --help` for the list of commands"
    if "unexpected extra argument" in message.lower():
        return f"{where}: {message}; quote values that contain spaces, or {help_hint}"
    return f"{where}: {message}; {help_hint}"


#: Third-party loggers are silent by default: their INFO/WARNING lines (GDAL via rasterio, urllib3 retries)
#: would come before geocrop's one-line error; ``-v`` shows their warnings, ``-vv`` everything.
_THIRD_PARTY_LEVEL = {0: logging.CRITICAL + 1, 1: logging.WARNING, 2: logging.DEBUG}
_GEOCROP_LEVEL = {0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG}


class _StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at the time (click's test runner swaps it); warnings wait
    with the others while a command runs (`geocrop.cli.progress.hold_warnings`): ``state`` is the run's
    `Output`, so a record logged from a worker thread waits too."""

    def __init__(self, state: Output) -> None:
        super().__init__()
        self.state = state

    def emit(self, record: logging.LogRecord) -> None:
        from geocrop.cli import progress

        line = self.format(record) + "\n"
        if record.levelno >= logging.WARNING:
            progress.show_or_hold(lambda: self._write(line, record), self.state)
        else:
            self._write(line, record)

    def _write(self, line: str, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(line)
            sys.stderr.flush()
        except Exception:  # a closed stream must never turn a log line into a crash
            self.handleError(record)


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = " ".join(record.getMessage().split())
        if record.name.split(".")[0] != "geocrop":
            return f"{record.levelname} {record.name}: {message}"
        message = in_flags(message)  # geocrop's records name arguments (`planet`); show this command's flags
        if record.levelno >= logging.WARNING:
            return f"geocrop: {record.levelname.lower()}: {message}"
        return f"{record.levelname} {record.name}: {message}"


def configure_logging(verbose: int = 0, quiet: bool = False) -> None:
    """Set log levels and the one-line formats for a command run (see the module docstring)."""
    from geocrop.cli import progress

    level = 0 if quiet else min(verbose, 2)
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(handler)
    handler = _StderrHandler(progress.output())
    handler.setFormatter(_Formatter())
    root.addHandler(handler)
    root.setLevel(_THIRD_PARTY_LEVEL[level])
    logging.getLogger("geocrop").setLevel(logging.ERROR if quiet else _GEOCROP_LEVEL[level])
    logging.captureWarnings(False)
    warnings.formatwarning = _one_line_warning
    # GDAL says this of every NetCDF variable it opens; geocrop places a cube by its own x/y coordinates
    # and CRS (geocrop.io.cube_file), so it is noise in every command, not only those with a progress bar.
    warnings.filterwarnings("ignore", message="Dataset has no geotransform")
    progress.set_warnings_shown(not quiet)
    if quiet:
        warnings.simplefilter("ignore")


@click.group(name="geocrop", cls=_ErrorHandlingGroup)
@click.version_option(__version__, prog_name="geocrop")
@click.option("-v", "--verbose", count=True, help="More log output: -v progress notes, -vv debug.")
@click.option("-q", "--quiet", is_flag=True, help="Errors only: no warnings, no log lines.")
def cli(verbose: int, quiet: bool) -> None:
    """Map crop types from satellite image time series."""
    configure_logging(verbose, quiet)


def _hold_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
    *,
    state: Output | None = None,
) -> None:
    """`warnings.showwarning` while a command runs: the one-line warning waits with the others of the
    run (``state``, its `geocrop.cli.progress.Output`)."""
    from geocrop.cli import progress

    text = warnings.formatwarning(message, category, filename, lineno, line)

    def write() -> None:
        stream = file or sys.stderr
        try:
            stream.write(text)
            stream.flush()
        except Exception:  # a closed stream must never turn a warning into a crash
            pass

    progress.show_or_hold(write, state)


def _one_line_warning(
    message: Warning | str, category: type[Warning], filename: str, lineno: int, line: str | None = None
) -> str:
    """Warnings (degraded but usable results) reach users as one line, without a source excerpt."""
    from geocrop.cli.progress import plain_text

    text = plain_text(" ".join(in_flags(str(message)).split()))
    return f"geocrop: warning: {text}\n"


def main() -> None:
    """Console-script entry point."""
    _choose_wait_policy()
    cli(prog_name="geocrop")


def _choose_wait_policy() -> None:
    """OpenMP reads its wait policy once, when torch or scikit-learn first loads it: set it before then
    (`geocrop.core.threads.wait_policy`); worker processes this one starts inherit it."""
    import os

    from geocrop.core.threads import wait_policy

    policy = wait_policy(dict(os.environ), os.getloadavg()[0])
    if policy is not None:
        os.environ["OMP_WAIT_POLICY"] = policy


if __name__ == "__main__":  # `python -m geocrop.cli.main`, and `torchrun -m geocrop.cli.main pretrain ...`
    main()
