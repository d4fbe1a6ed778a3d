"""The `geocrop` command group.

Each subcommand lives in its own module under `geocrop.cli` and is listed in `_COMMANDS`; third-party
packages can add more through the ``geocrop.commands`` entry-point group. A `GeocropError` raised anywhere
below becomes one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
import warnings
from importlib.metadata import entry_points
from typing import Any

import click

from geocrop import __version__
from geocrop.errors import GeocropError

#: subcommand name -> "module:attribute" of its click command; imported lazily so `geocrop --help` is fast.
_COMMANDS: dict[str, str] = {
    "simulate": "geocrop.cli.simulate:simulate",
    "pretrain": "geocrop.cli.pretrain:pretrain",
    "train": "geocrop.cli.train:train",
    "evaluate": "geocrop.cli.evaluate:evaluate",
    "map": "geocrop.cli.map:map_command",
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


class _ErrorHandlingGroup(_LazyGroup):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GeocropError as exc:
            click.echo(f"geocrop: error: {exc}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("geocrop: interrupted; rerun the same command to resume.", err=True)
            sys.exit(130)


@click.group(cls=_ErrorHandlingGroup)
@click.version_option(__version__, prog_name="geocrop")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors.")
def cli(verbose: int, quiet: bool) -> None:
    """Map crop types from satellite image time series."""
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    warnings.formatwarning = _one_line_warning


def _one_line_warning(
    message: Warning | str, category: type[Warning], filename: str, lineno: int, line: str | None = None
) -> str:
    """Warnings (degraded but usable results) reach users as one line, without a source excerpt."""
    return f"geocrop: warning: {message}\n"


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="geocrop")


if __name__ == "__main__":  # `python -m geocrop.cli.main`, and `torchrun -m geocrop.cli.main pretrain ...`
    main()
