"""Options shared by `geocrop train` and `geocrop evaluate`: where the labelled data comes from, the split
and the optimisation settings. Parsing only: the options keep `geocrop.api`'s argument names, so a command
passes them on as keywords."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from geocrop.cli.options import DATE, allow_any_asset_href_option

F = TypeVar("F", bound=Callable[..., Any])


class MinParcelsType(click.ParamType):
    """``auto`` or a whole number >= 0."""

    name = "auto|N"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, int) or value == "auto":
            return value
        if not str(value).isdigit():
            self.fail(f"{value!r} is neither 'auto' nor a whole number >= 0; give auto or e.g. 5", param, ctx)
        return int(str(value))


class StepsType(click.ParamType):
    """``auto`` or a whole number >= 2."""

    name = "auto|N"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, int) or value == "auto":
            return value
        try:
            steps = int(str(value))
        except ValueError:
            self.fail(f"{value!r} is neither 'auto' nor a number; give auto or e.g. 36", param, ctx)
        if steps < 2:
            self.fail(f"{steps} is too few; give auto or at least 2", param, ctx)
        return steps


_OPTIONS = [
    click.option(
        "--labels",
        required=True,
        type=click.Path(path_type=Path),
        help="Parcels (GeoJSON/GPKG/GeoParquet/Shapefile, any CRS) or a samples table (Parquet/CSV).",
    ),
    click.option("--class-column", required=True, help="Column holding the crop type."),
    click.option("--group-column", default=None, help="Samples table: parcel id column used for splitting."),
    click.option("--id-column", default=None, help="Parcels: parcel id column (default: row number)."),
    click.option(
        "--s2", "s2", default=None, help="S2 source for parcels: STAC API URL, catalog.json or folder."
    ),
    click.option("--start", type=DATE, default=None, help="Season start (YYYY-MM-DD)."),
    click.option("--end", type=DATE, default=None, help="Season end (YYYY-MM-DD)."),
    click.option(
        "--steps",
        type=StepsType(),
        default="auto",
        show_default=True,
        help="Temporal grid steps: a number, or auto (a table's own cadence; 144 for imagery).",
    ),
    click.option(
        "--class-map",
        default=None,
        help="Code -> name table for coded labels: JSON (file.json:KEY for one of several tables) or CSV.",
    ),
    click.option("--drop-unmapped", is_flag=True, help="Leave out samples whose code the --class-map lacks."),
    click.option(
        "--nodata",
        type=float,
        multiple=True,
        help="Table value that means 'no observation' (repeatable; 65535 always is).",
    ),
    click.option(
        "--scale",
        type=click.FloatRange(min=0, min_open=True),
        default=None,
        help="Multiply table values by this to get reflectance (default: DN tables are detected).",
    ),
    click.option(
        "--min-parcels",
        type=MinParcelsType(),
        default="auto",
        show_default=True,
        help="Leave out crop types with fewer parcels/samples (a warning names them); 0 keeps all; "
        "auto: 10 (3 where fewer than two classes have 10).",
    ),
    click.option(
        "--split",
        type=click.Choice(["70-30", "70-21-9"]),
        default="70-30",
        show_default=True,
        help="Parcel split: 70-30 (train/validation) or 70-21-9 (21 % train, 9 % validation).",
    ),
    click.option("--train-pixels", type=int, default=5000, show_default=True, help="Train pixels/class."),
    click.option("--val-pixels", type=int, default=1000, show_default=True, help="Val pixels/class."),
    click.option(
        "--epochs",
        type=click.IntRange(min=1),
        default=None,
        help="Epochs (default: enough for ~1,000 steps, best inner-validation epoch kept; paper: 20).",
    ),
    click.option(
        "--batch-size",
        type=click.IntRange(min=2),
        default=None,
        help="Batch size (default: ~1/10 of the training series, 16..256; paper: 256).",
    ),
    click.option("--seed", type=int, default=0, show_default=True),
    click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda."),
    allow_any_asset_href_option(),
]


def label_options(func: F) -> F:
    """Decorate a click command with the shared options (in the order listed above)."""
    for option in reversed(_OPTIONS):
        func = option(func)
    return func
