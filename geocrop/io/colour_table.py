"""A user's class colours: a table that names a colour for some classes, in the forms people keep them.

- **CSV** with a class column (``class``, ``name`` or ``label``) and a colour column (``color`` or
  ``colour``, ``#rrggbb``), or ``r``, ``g``, ``b`` columns (0-255);
- **JSON**: ``{"maize": "#ff7f00", ...}`` or a list of ``{"name": ..., "color": ...}`` objects;
- **QGIS style** (``.qml``): the ``paletteEntry`` elements (``label``, ``color``) of a paletted renderer,
  e.g. the ``.qml`` geocrop writes beside a map, edited in QGIS.

`read_colour_table` gives ``{class name: "#rrggbb"}``; `with_colours` lays it over the colours geocrop
would choose (`geocrop.io.classes.class_colours`), so a table may name only the classes it cares about;
`recoloured` lays it over the colours a map's classes already have. Names match in any case.
A class the table names that the data lacks is left out with a warning (a misspelt name would otherwise
be silently ignored). `colours_param` declares the ``colors`` option of every stage that draws classes
(map, smooth, train, inspect): the table is read when the config is built, so that a bad one is refused
before anything is written.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from geocrop.core.params import as_path, param
from geocrop.errors import GeocropWarning, InputError, SourceError
from geocrop.io.classes import ClassInfo, class_colours

__all__ = [
    "COLOURS_HELP",
    "as_colour_table",
    "colours_param",
    "read_colour_table",
    "recoloured",
    "with_colours",
]

COLOURS_HELP = (
    "Class colours: CSV (class, color), JSON ({class: #rrggbb}) or a QGIS .qml style; "
    "classes it does not name keep geocrop's colours"
)

_HEX = re.compile(r"^#?([0-9a-fA-F]{6})(?:[0-9a-fA-F]{2})?$")  # QGIS writes #rrggbb or #rrggbbaa


def _hex(value: object, name: str, path: Path, param: str) -> str:
    match = _HEX.match(str(value).strip())
    if match is None:
        raise InputError(
            f"`{param}` {path.name}: class {name!r} has colour {value!r}; give #rrggbb (e.g. #ff7f00)",
            param=param,
        )
    return "#" + match.group(1).lower()


def _from_csv(path: Path, param: str) -> dict[str, str]:
    import pandas as pd  # only here: the configs that declare `colors` load with the CLI

    frame = pd.read_csv(path)
    columns = {c.lower().strip(): c for c in frame.columns}
    name = next((columns[c] for c in ("class", "name", "label") if c in columns), None)
    colour = next((columns[c] for c in ("color", "colour") if c in columns), None)
    if name is None or (colour is None and not {"r", "g", "b"} <= columns.keys()):
        raise InputError(
            f"`{param}` {path.name} has columns {', '.join(map(str, frame.columns))}; give a class column "
            "(class, name or label) and a colour column (color, #rrggbb) or r, g, b columns",
            param=param,
        )
    if colour is not None:
        return {str(row[name]): _hex(row[colour], str(row[name]), path, param) for _, row in frame.iterrows()}
    rgb = [columns["r"], columns["g"], columns["b"]]
    return {str(row[name]): "#" + "".join(f"{int(row[c]):02x}" for c in rgb) for _, row in frame.iterrows()}


def _from_json(path: Path, param: str) -> dict[str, str]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data, dict):
        return {str(k): _hex(v, str(k), path, param) for k, v in data.items()}
    if isinstance(data, list) and all(isinstance(item, dict) for item in data):
        return {
            str(item.get("name")): _hex(
                item.get("color", item.get("colour")), str(item.get("name")), path, param
            )
            for item in data
        }
    raise InputError(
        f'`{param}` {path.name} is neither {{"class": "#rrggbb", ...}} nor a list of {{"name", "color"}} '
        "objects; give one of those",
        param=param,
    )


def _from_qml(path: Path, param: str) -> dict[str, str]:
    entries = ElementTree.parse(path).getroot().iter("paletteEntry")
    table = {str(e.get("label")): _hex(e.get("color"), str(e.get("label")), path, param) for e in entries}
    if not table:
        raise InputError(
            f"`{param}` {path.name} has no paletteEntry: save the style of a paletted (unique values) "
            "raster layer",
            param=param,
        )
    return table


def read_colour_table(path: str | os.PathLike[str], *, param: str = "colors") -> dict[str, str]:
    """``{class name: "#rrggbb"}`` from a CSV, JSON or QGIS ``.qml`` file (see the module docstring)."""
    p = Path(path)
    if not p.is_file():
        raise SourceError(f"`{param}` {p} does not exist; give a CSV, JSON or .qml colour table", param=param)
    readers = {".csv": _from_csv, ".json": _from_json, ".qml": _from_qml}
    reader = readers.get(p.suffix.lower())
    if reader is None:
        raise InputError(f"`{param}` {p.name}: give a .csv, .json or .qml colour table", param=param)
    try:
        return reader(p, param)
    except InputError:
        raise
    except (ValueError, OSError, ElementTree.ParseError) as exc:  # pandas' ParserError is a ValueError
        raise SourceError(f"`{param}` {p.name} cannot be read ({exc}); check the file", param=param) from exc


def as_colour_table(value: Any, name: str = "colors") -> Path:
    """A colour table's path, read once here so that a bad table is refused before a stage writes."""
    path = as_path(value, name)
    read_colour_table(path, param=name)
    return path


def colours_param(**extra: Any) -> Any:
    """The ``colors`` option of a stage config: a colour table file, or None for the colours classes have."""
    return param(None, help=COLOURS_HELP, convert=as_colour_table, kind="file", **extra)


def with_colours(names: Sequence[str], table: dict[str, str] | None) -> tuple[str, ...]:
    """A colour per class: the table's where it names the class (any case), else geocrop's own choice."""
    return _laid_over(names, class_colours(names), table)


def recoloured(
    classes: Sequence[ClassInfo], colors: str | os.PathLike[str] | None, *, param: str = "colors"
) -> tuple[ClassInfo, ...]:
    """``classes`` with the colours the table file ``colors`` names (any case); the others keep theirs."""
    if colors is None:
        return tuple(classes)
    table = read_colour_table(colors, param=param)
    chosen = _laid_over([c.name for c in classes], [c.color for c in classes], table)
    return tuple(ClassInfo(c.value, c.name, colour) for c, colour in zip(classes, chosen, strict=True))


def _laid_over(names: Sequence[str], base: Sequence[str], table: dict[str, str] | None) -> tuple[str, ...]:
    chosen = list(base)
    if not table:
        return tuple(chosen)
    by_name = {k.lower(): v for k, v in table.items()}
    for i, name in enumerate(names):
        chosen[i] = by_name.get(name.lower(), chosen[i])
    unknown = sorted(set(by_name) - {n.lower() for n in names})
    if unknown:
        shown = ", ".join(unknown[:8]) + (", ..." if len(unknown) > 8 else "")
        warnings.warn(
            f"the colour table names {len(unknown)} class(es) the data does not have ({shown}); "
            "check their spelling",
            GeocropWarning,
            stacklevel=3,
        )
    return tuple(chosen)
