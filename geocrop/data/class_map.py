"""Label codes -> class names: the code tables that come with real sample sets.

Real sample tables often carry a numeric code instead of a crop name: ESA WorldCereal's ``ewoc_code``
(e.g. 1101060000), national LPIS codes. A class map turns those into names before training, so bundles,
maps and reports speak in crop names. Accepted files:

- **JSON**, ``{"code": "name", ...}``, or several such tables under keys, as WorldCereal's
  ``class_mappings.json`` (``{"CROPTYPE28": {...}, "LANDCOVER10": {...}}``): pick one table with
  ``file.json:KEY``; a file with a single table needs no key.
- **CSV** with two columns, code then name (a header row is expected).

Codes are compared as text, with integral numbers written without a decimal point (``1101060000.0`` and
``1101060000`` are the same code). Several codes may map to one name: their samples form one class.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from geocrop.errors import GeocropWarning, InputError, SourceError


def code_text(value: object) -> str:
    """A label value as text; integral floats lose their ``.0`` so numeric codes compare as written."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def read_class_map(spec: str | Path) -> dict[str, str]:
    """Code -> name table from ``spec`` = ``path`` or ``path:KEY`` (see module docstring)."""
    text = str(spec)
    path, key = Path(text), None
    if not path.exists() and ":" in text:
        head, _, tail = text.rpartition(":")
        path, key = Path(head), tail
    if not path.exists():
        raise SourceError(f"class map {path} does not exist; check `class_map`", param="class_map")
    if path.suffix.lower() == ".csv":
        frame = pd.read_csv(path, dtype=str)
        if frame.shape[1] < 2:
            raise InputError(f"class map {path} needs two columns (code, name); found {frame.shape[1]}")
        return dict(zip(frame.iloc[:, 0].map(code_text), frame.iloc[:, 1].astype(str), strict=True))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SourceError(f"class map {path} is not readable JSON ({exc}); give a JSON or CSV file") from exc
    if not isinstance(data, Mapping) or not data:
        raise InputError(f"class map {path} holds no code -> name table; give {{'code': 'name', ...}}")
    tables = {k: v for k, v in data.items() if isinstance(v, Mapping)}
    if not tables:
        return {code_text(k): str(v) for k, v in data.items()}
    if key is None:
        if len(tables) > 1:
            raise InputError(
                f"class map {path} holds {len(tables)} tables ({', '.join(tables)}); "
                f"pick one with `class_map` {path}:{next(iter(tables))}",
                param="class_map",
            )
        key = next(iter(tables))
    if key not in tables:
        raise InputError(f"class map {path} has no table {key!r}; choose one of: {', '.join(tables)}")
    return {code_text(k): str(v) for k, v in tables[key].items()}


def apply_class_map(
    labels: np.ndarray, mapping: Mapping[str, str], *, what: str, drop_unmapped: bool = False
) -> np.ndarray:
    """(N,) names for the (N,) label codes.

    A code without a name is an `InputError` listing them, or, with ``drop_unmapped``, gets the name
    ``""`` (the caller leaves those samples out) and a warning says how many.
    """
    codes = np.array([code_text(v) for v in labels])
    unknown = sorted(set(codes) - set(mapping))
    if unknown and not drop_unmapped:
        raise InputError(
            f"{what}: {len(unknown)} label code(s) are not in the class map ({', '.join(unknown[:5])}"
            f"{' ...' if len(unknown) > 5 else ''}); add them to the map, use the map's matching table, "
            "or leave those samples out with `drop_unmapped`",
            param="class_map",
        )
    if unknown:
        n = int(np.isin(codes, unknown).sum())
        warnings.warn(
            f"{what}: left out {n} sample(s) whose label code is not in the class map "
            f"({', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''})",
            GeocropWarning,
            stacklevel=2,
        )
    return np.array([mapping.get(c, "") for c in codes])
