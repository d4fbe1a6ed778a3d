"""Click parameter types and options shared by several commands.

Each type turns a bad value into a `click.BadParameter` whose message says what was wrong and how to fix
it, so the command group prints one ``geocrop: error: <command> --<option>: ...`` line. The same checks
live in the library's config objects (the Python API and the QGIS plugin get them too); these types only
catch what can be told from the flag alone, before anything is imported or read.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import click

__all__ = [
    "BBOX",
    "DATE",
    "BBoxType",
    "BundleFileType",
    "DateType",
    "allow_any_asset_href_option",
]


class DateType(click.ParamType):
    """An ISO date, YYYY-MM-DD, parsed by the library's one date parser (`geocrop.core.temporal.as_date`):
    the library then takes the `date` as it is, without parsing or checking it again."""

    name = "YYYY-MM-DD"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> dt.date:
        from geocrop.core.temporal import as_date
        from geocrop.errors import InputError

        try:
            return as_date(value, param.name if param is not None and param.name else "date")
        except InputError:
            self.fail(f"{value!r} is not a date; give YYYY-MM-DD, e.g. 2023-03-01", param, ctx)


class BBoxType(click.ParamType):
    """``minx,miny,maxx,maxy`` in EPSG:4326 (lon/lat degrees)."""

    name = "MINX,MINY,MAXX,MAXY"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[float, float, float, float]:
        if isinstance(value, tuple):
            return value
        parts = [p.strip() for p in str(value).replace(" ", ",").split(",") if p.strip()]
        fix = "give four numbers minx,miny,maxx,maxy in lon/lat degrees (EPSG:4326)"
        if len(parts) != 4:
            self.fail(f"{value!r} has {len(parts)} numbers; {fix}", param, ctx)
        try:
            minx, miny, maxx, maxy = (float(p) for p in parts)
        except ValueError:
            self.fail(f"{value!r} is not four numbers; {fix}", param, ctx)
        if not all(math.isfinite(v) for v in (minx, miny, maxx, maxy)):
            self.fail(f"{value!r} holds a non-finite number; {fix}", param, ctx)
        if not (-180 <= minx <= 180 and -180 <= maxx <= 180 and -90 <= miny <= 90 and -90 <= maxy <= 90):
            self.fail(
                f"{value!r} is outside lon -180..180 / lat -90..90; --bbox takes lon/lat degrees in the "
                "order minx,miny,maxx,maxy (longitude first)",
                param,
                ctx,
            )
        if not (minx < maxx and miny < maxy):
            self.fail(f"{value!r} has min >= max; {fix} with minx < maxx and miny < maxy", param, ctx)
        return (minx, miny, maxx, maxy)


class BundleFileType(click.ParamType):
    """A model bundle file (``.safetensors``) that exists."""

    name = "BUNDLE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Path:
        path = Path(value).expanduser()
        if path.is_dir():
            found = sorted(path.glob("*.safetensors"))
            hint = f", e.g. {found[0]}" if found else ""
            self.fail(
                f"{str(path)!r} is a folder; give the bundle file (.safetensors) in it{hint}", param, ctx
            )
        return path


DATE = DateType()
BBOX = BBoxType()


def allow_any_asset_href_option() -> Any:
    """``--allow-any-asset-href``: read assets wherever a catalog points (see `geocrop.io.stac`)."""
    return click.option(
        "--allow-any-asset-href",
        is_flag=True,
        help="Trust the catalog: read assets it points at anywhere (local files outside its folder, "
        "file://, /vsi..., loopback hosts). Off by default.",
    )
