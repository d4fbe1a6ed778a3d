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


def option_for(item: Declared, *, kind: Any = None, text: str | None = None) -> Decorator[Any]:
    """The click option of one declared field; ``kind`` a click type of the CLI's own reading of it,
    ``text`` (with its default) makes it one text value the command itself reads (a comma list)."""
    extra: dict[str, Any] = {"help": help_text(item)}
    if item.param.metavar:
        extra["metavar"] = item.param.metavar
    names = [item.flag, item.name]
    if text is not None:
        return click.option(*names, type=kind or str, default=text, show_default=True, **extra)
    if item.base is bool and not item.multiple:
        if item.optional:  # unset (None) is a third value: the library's choice
            extra["default"] = None
        return click.option(*names, is_flag=True, **extra)
    kind = kind or _click_type(item)
    if item.multiple:
        return click.option(*names, type=kind, multiple=True, **extra)
    if item.required:
        return click.option(*names, type=kind, required=True, **extra)
    default = item.default
    shown = (default is not None and item.base in (int, float, str)) or bool(item.choices)
    if item.param.convert is not None and not isinstance(default, int | float | str):
        default = None  # a converted default (None -> a library object) is the library's to fill in
        shown = False
    shown = shown or isinstance(default, str)
    return click.option(*names, type=kind, default=default, show_default=shown, **extra)


def declared_options(
    config: type,
    *,
    after: Mapping[str, Sequence[Decorator[Any]]] | None = None,
    skip: Iterable[str] = (),
    only: Iterable[str] | None = None,
    types: Mapping[str, Any] | None = None,
    texts: Mapping[str, str] | None = None,
) -> Callable[[F], F]:
    """Add the CLI options of ``config``'s declared fields (and ``after``'s own options) to a command;
    ``skip`` leaves fields out, ``only`` takes just those. Where the CLI reads a value its own way,
    ``types`` gives the click type (``auto`` or a number, a free-text device) and ``texts`` the default of
    a value the command parses from one text (``5,10,all``; ``none``) before calling the library."""
    left_out = set(skip)
    taken = None if only is None else set(only)
    kinds, text_defaults = types or {}, texts or {}
    decorators: list[Decorator[Any]] = []
    for item in declared(config):
        if taken is not None and item.name not in taken:
            continue
        if item.param.cli and item.param.api and item.name not in left_out:
            decorators.append(option_for(item, kind=kinds.get(item.name), text=text_defaults.get(item.name)))
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
#: The commands whose QGIS algorithm reads its parameters from `qgis_plugin/declared.json`, and the
#: configs that declare them (several: their fields together, the first declaration of a name kept).
QGIS_COMMANDS: dict[str, tuple[str, ...]] = {
    "map": ("geocrop.inference.map_config:MapConfig",),
    "train": ("geocrop.training.labelled_options:LabelledOptions",),
    "inspect": ("geocrop.viz.inspect_config:InspectConfig",),
    "fields": ("geocrop.post.configs:FieldsConfig",),
    "smooth": ("geocrop.post.configs:SmoothConfig",),
    "sample": ("geocrop.post.configs:StratifiedSampleConfig", "geocrop.post.configs:UncertainSampleConfig"),
    "assess": ("geocrop.post.configs:AssessConfig",),
}
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
    if base is Path:
        return kind or "file"
    return kind or "text"


def _qgis_name(name: str) -> str:
    """A QGIS parameter name as Processing spells them: ``max_cloud`` -> ``MAX_CLOUD``, an output ``out``
    -> ``OUTPUT``, a ``*_column`` -> ``*_FIELD`` (QGIS's word for a column)."""
    upper = name.upper()
    if upper == "OUT":
        return "OUTPUT"
    return upper.removesuffix("_COLUMN") + "_FIELD" if upper.endswith("_COLUMN") else upper


def qgis_entry(item: Declared) -> dict[str, Any]:
    """One parameter of the QGIS table: what the plugin (which cannot import geocrop) needs to build it."""
    entry: dict[str, Any] = {
        "name": item.name,
        "qgis": item.param.qgis if isinstance(item.param.qgis, str) else _qgis_name(item.name),
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
    if low is not None and not getattr(check, "strict", False):
        entry["min"] = low
    if high is not None:
        entry["max"] = high
    return entry


def qgis_table() -> dict[str, Any]:
    """Per command, the QGIS parameters of its config's declared fields, and the season rule's message
    (`qgis_plugin/declared.json`)."""
    import importlib

    from geocrop.core.temporal import SEASON_RULE

    commands = {}
    for command, targets in QGIS_COMMANDS.items():
        entries: dict[str, dict[str, Any]] = {}
        for target in targets:
            module, name = target.split(":")
            for item in declared(getattr(importlib.import_module(module), name)):
                if item.param.qgis and item.param.api and item.name not in entries:
                    entries[item.name] = qgis_entry(item)
        commands[command] = list(entries.values())
    return {"commands": commands, "season_rule": SEASON_RULE}


def qgis_table_text() -> str:
    """`qgis_table` as the checked-in JSON (``python -m geocrop.cli.declared`` rewrites the file)."""
    import json

    return json.dumps(qgis_table(), indent=1, sort_keys=True) + "\n"


if __name__ == "__main__":  # python -m geocrop.cli.declared: regenerate qgis_plugin/declared.json
    QGIS_TABLE.write_text(qgis_table_text(), encoding="utf-8")
    print(f"wrote {QGIS_TABLE}")
