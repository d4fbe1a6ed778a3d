"""`InspectConfig`: the one declaration of every `geocrop inspect` option (`geocrop.core.params`).

The labelled input is read exactly as `geocrop train` reads it (the same argument names and meanings), so
what the page shows is what a head would learn from.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from geocrop.core.bands import S2_BANDS
from geocrop.core.params import as_path, param, settle
from geocrop.core.temporal import as_date
from geocrop.data.label_params import labels_param

__all__ = ["VARIABLES", "InspectConfig"]

#: What a profile can show: NDVI and each Sentinel-2 band.
VARIABLES: tuple[str, ...] = ("NDVI", *S2_BANDS)


def _variables_problem(value: Any) -> str | None:
    unknown = [v for v in value if v not in VARIABLES]
    if unknown:
        return f"names unknown variable(s) {', '.join(map(str, unknown))}; choose from {', '.join(VARIABLES)}"
    return None


def _steps_problem(value: Any) -> str | None:
    if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value >= 2):
        return None
    return "is neither auto nor a whole number >= 2; give auto or e.g. 36"


def _min_parcels_problem(value: Any) -> str | None:
    if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
        return None
    return "is neither auto nor a whole number >= 0; give auto or e.g. 5"


def _auto_or_int(value: Any, name: str) -> Any:
    text = str(value).strip()
    return int(text) if text.lstrip("-").isdigit() else text


def _names(value: Any, name: str) -> tuple[str, ...]:
    """Names given as one comma-separated text or several; none given means all `VARIABLES`."""
    items = [value] if isinstance(value, str) else list(value)
    names = tuple(part.strip() for item in items for part in str(item).split(",") if part.strip())
    return names or VARIABLES


@dataclass(frozen=True, kw_only=True)
class InspectConfig:
    """One `geocrop inspect` run (field order is ``geocrop inspect --help``'s)."""

    labels: Path = labels_param()
    class_column: str = param(help="Column holding the crop type")
    out: Path = param(
        help="Folder for index.html, the profile and count figures and their CSV tables",
        convert=as_path,
        kind="folder_out",
    )
    group_column: str | None = param(None, help="Samples table: parcel id column")
    id_column: str | None = param(None, help="Parcels: parcel id column (default: row number)")
    s2: str | None = param(None, help="S2 source for parcels: STAC API URL, catalog.json or folder")
    start: dt.date | None = param(None, help="Season start", convert=as_date)
    end: dt.date | None = param(None, help="Season end", convert=as_date)
    steps: int | Literal["auto"] = param(
        "auto",
        help="Temporal grid steps: a number, or auto (a table's own cadence; 144 for imagery)",
        convert=_auto_or_int,
        check=_steps_problem,
        metavar="AUTO|N",
    )
    class_map: str | None = param(
        None, help="Code -> name table for coded labels: JSON (file.json:KEY) or CSV"
    )
    drop_unmapped: bool = param(False, help="Leave out samples whose code `class_map` lacks")
    nodata: tuple[float, ...] = param(
        (), help="Table value that means 'no observation' (repeatable; 65535 always is)"
    )
    scale: float | None = param(
        None, help="Multiply table values by this to get reflectance (default: DN tables are detected)"
    )
    min_parcels: int | Literal["auto"] = param(
        0,
        help="Leave out crop types with fewer parcels, as train does (0, the default here: every class)",
        convert=_auto_or_int,
        check=_min_parcels_problem,
        metavar="AUTO|N",
    )
    variables: tuple[str, ...] = param(
        VARIABLES,
        help="What to draw (repeat, or comma-separate): NDVI and any Sentinel-2 band; default: all",
        convert=_names,
        check=_variables_problem,
        metavar="NDVI,B04,...",
    )
    colors: Path | None = param(
        None,
        help="Class colours: CSV (class, color), JSON ({class: #rrggbb}) or a QGIS .qml style; "
        "classes it does not name keep geocrop's colours",
        convert=as_path,
        kind="file",
    )

    def __post_init__(self) -> None:
        settle(self, season=("start", "end"))
