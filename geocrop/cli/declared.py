"""Click options derived from a stage config's declarations (`geocrop.core.params`), and back.

``@declared_options(MapConfig, after={"aoi": [bbox_option]})`` adds one option per declared field that the
CLI shows, in field order: flag ``--max-cloud`` (or the declaration's ``flag``), type from the annotation
(``Literal`` -> choice, ``bool`` -> a flag, ``tuple[X, ...]`` -> repeatable, `date` -> YYYY-MM-DD,
`Path` -> a path; ``kind`` ``bundle``/``file`` refine it), the declared default (shown), and the help with
its unit, argument names in backticks written as flags. Options that are the CLI's own (``--bbox``,
``--dry-run``) go in ``after`` behind the field they follow. The command then receives the values under
the fields' names, ready for `geocrop.core.params.config_args`.

`flag_for` maps an error's ``param`` back to the flag of the running command, from the same options.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from geocrop.cli.options import DATE, BundleFileType
from geocrop.core.params import Declared, declared
from geocrop.errors import as_flag

__all__ = ["declared_options", "flag_for", "help_text", "option_for"]

F = TypeVar("F", bound=Callable[..., Any])
Decorator = Callable[[F], F]
_NAME = re.compile(r"`([a-z_][a-z0-9_]*)`")


def help_text(item: Declared) -> str:
    """The declaration's help as ``--help`` says it: argument names as flags, the unit after it."""
    text = _NAME.sub(lambda m: as_flag(m.group(1)), item.param.help)
    unit = item.param.unit
    if unit and not text.endswith(f"({unit})"):
        text += f" ({unit})" if unit != "%" else " %"
    return text if text.endswith(".") else text + "."


def _click_type(item: Declared) -> Any:
    kind, base = item.param.kind, item.base
    if kind == "bundle":
        return BundleFileType()
    if item.choices:
        return click.Choice([str(c) for c in item.choices])
    if base is dt.date:
        return DATE
    if base is Path:
        return click.Path(dir_okay=kind != "file", path_type=Path)
    low = getattr(item.param.check, "low", None)
    if base in (int, float) and low is not None and not hasattr(item.param.check, "high"):
        strict = bool(getattr(item.param.check, "strict", False))
        ranged = click.IntRange if base is int else click.FloatRange
        return ranged(min=low, min_open=True) if strict else ranged(min=low)
    if base in (int, float):
        return base
    return str


def option_for(item: Declared) -> Decorator[Any]:
    """The click option of one declared field."""
    extra: dict[str, Any] = {"help": help_text(item)}
    if item.param.metavar:
        extra["metavar"] = item.param.metavar
    names = [item.flag, item.name]
    if item.base is bool and not item.multiple:
        return click.option(*names, is_flag=True, **extra)
    if item.multiple:
        return click.option(*names, type=_click_type(item), multiple=True, **extra)
    if item.required:
        return click.option(*names, type=_click_type(item), required=True, **extra)
    default = item.default
    shown = (default is not None and item.base in (int, float, str)) or bool(item.choices)
    if item.param.convert is not None and not isinstance(default, int | float | str):
        default = None  # a converted default (None -> a library object) is the library's to fill in
        shown = False
    return click.option(*names, type=_click_type(item), default=default, show_default=shown, **extra)


def declared_options(
    config: type,
    *,
    after: Mapping[str, Sequence[Decorator[Any]]] | None = None,
    skip: Iterable[str] = (),
    only: Iterable[str] | None = None,
) -> Callable[[F], F]:
    """Add the CLI options of ``config``'s declared fields (and ``after``'s own options) to a command;
    ``skip`` leaves fields out, ``only`` takes just those."""
    left_out = set(skip)
    taken = None if only is None else set(only)
    decorators: list[Decorator[Any]] = []
    for item in declared(config):
        if taken is not None and item.name not in taken:
            continue
        if item.param.cli and item.param.api and item.name not in left_out:
            decorators.append(option_for(item))
        decorators.extend((after or {}).get(item.name, ()))

    def apply(f: F) -> F:
        for decorate in reversed(decorators):  # click lists options in decorator order, top first
            f = decorate(f)
        return f

    return apply


def flag_for(command: click.Command, param: str) -> str | None:
    """The flag of ``command`` that sets the library argument ``param`` (``max_cloud`` -> ``--max-cloud``)."""
    for option in command.params:
        if option.name == param and isinstance(option, click.Option):
            longs = [o for o in option.opts if o.startswith("--")]
            return (longs or option.opts)[0]
    return None


def defaults(config: type) -> dict[str, Any]:
    """Each declared field's default (required fields left out), for tests and tables."""
    return {d.name: d.default for d in declared(config) if d.default is not dataclasses.MISSING}


# -- the QGIS plugin's table ---------------------------------------------------------------------------------
#: The commands whose QGIS algorithm reads its parameters from `qgis_plugin/declared.json`.
QGIS_COMMANDS: dict[str, str] = {"map": "geocrop.inference.map_config:MapConfig"}
QGIS_TABLE = Path(__file__).resolve().parents[2] / "qgis_plugin" / "declared.json"


def _qgis_type(item: Declared) -> str:
    kind, base = item.param.kind, item.base
    if item.choices:
        return "enum"
    if base is bool:
        return "boolean"
    if base is dt.date:
        return "date"
    if base in (int, float) and not item.multiple:
        return "integer" if base is int else "number"
    if item.multiple:
        return "numbers" if base in (int, float) else "strings"
    return kind or "text"


def qgis_entry(item: Declared) -> dict[str, Any]:
    """One parameter of the QGIS table: what the plugin (which cannot import geocrop) needs to build it."""
    entry: dict[str, Any] = {
        "name": item.name,
        "qgis": item.param.qgis if isinstance(item.param.qgis, str) else item.name.upper(),
        "flag": item.flag,
        "type": _qgis_type(item),
        "label": item.label,
        "help": _NAME.sub(lambda m: f"'{m.group(1)}'", item.param.help),
        "optional": not item.required,
        "advanced": item.param.advanced,
    }
    if not item.required and item.default is not None and not item.multiple:
        entry["default"] = (
            item.default if item.param.convert is None or isinstance(item.default, str) else None
        )
    if item.choices:
        entry["choices"] = [str(c) for c in item.choices]
    check = item.param.check
    low, high = getattr(check, "low", None), getattr(check, "high", None)
    if low is not None and high is not None:
        entry["min"], entry["max"] = low, high
    return entry


def qgis_table() -> dict[str, Any]:
    """Per command, the QGIS parameters of its config's declared fields, and the season rule's message
    (`qgis_plugin/declared.json`)."""
    import importlib

    from geocrop.core.temporal import SEASON_RULE

    commands = {}
    for command, target in QGIS_COMMANDS.items():
        module, name = target.split(":")
        config = getattr(importlib.import_module(module), name)
        commands[command] = [qgis_entry(d) for d in declared(config) if d.param.qgis and d.param.api]
    return {"commands": commands, "season_rule": SEASON_RULE}


def qgis_table_text() -> str:
    """`qgis_table` as the checked-in JSON (``python -m geocrop.cli.declared`` rewrites the file)."""
    import json

    return json.dumps(qgis_table(), indent=1, sort_keys=True) + "\n"


if __name__ == "__main__":  # python -m geocrop.cli.declared: regenerate qgis_plugin/declared.json
    QGIS_TABLE.write_text(qgis_table_text(), encoding="utf-8")
    print(f"wrote {QGIS_TABLE}")
