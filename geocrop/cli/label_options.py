"""Options shared by `geocrop train` and `geocrop evaluate`: where the labelled data comes from, the split
and the optimisation settings. Parsing only; the typed objects are built by the library's dataclasses."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

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
    click.option("--start", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Season start."),
    click.option("--end", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Season end."),
    click.option("--steps", type=int, default=144, show_default=True, help="Temporal grid steps."),
    click.option(
        "--min-parcels",
        type=click.IntRange(min=0),
        default=0,
        show_default=True,
        help="Leave out crop types with fewer parcels (a warning names them); 0 keeps all.",
    ),
    click.option(
        "--split",
        "scheme",
        type=click.Choice(["70-30", "70-21-9"]),
        default="70-30",
        show_default=True,
        help="Parcel split: 70-30 (train/validation) or 70-21-9 (21 % train, 9 % validation).",
    ),
    click.option("--train-pixels", type=int, default=5000, show_default=True, help="Train pixels/class."),
    click.option("--val-pixels", type=int, default=1000, show_default=True, help="Val pixels/class."),
    click.option("--epochs", type=int, default=20, show_default=True),
    click.option("--batch-size", type=int, default=256, show_default=True),
    click.option("--seed", type=int, default=0, show_default=True),
    click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda."),
]


def label_options(func: F) -> F:
    """Decorate a click command with the shared options (in the order listed above)."""
    for option in reversed(_OPTIONS):
        func = option(func)
    return func


def label_source(kw: dict[str, Any]) -> Any:
    """A `LabelSource` from the parsed options (removes them from ``kw``)."""
    from geocrop.data.labelled import LabelSource

    def day(value: dt.datetime | None) -> dt.date | None:
        return value.date() if value is not None else None

    return LabelSource(
        path=kw.pop("labels"),
        class_column=kw.pop("class_column"),
        group_column=kw.pop("group_column"),
        id_column=kw.pop("id_column"),
        s2=kw.pop("s2"),
        start=day(kw.pop("start")),
        end=day(kw.pop("end")),
        steps=kw.pop("steps"),
        min_parcels=kw.pop("min_parcels"),
    )


def train_config(kw: dict[str, Any], *, lr: float = 1e-3) -> Any:
    """A `TrainConfig` from the parsed options (removes them from ``kw``)."""
    from geocrop.training.train import TrainConfig

    return TrainConfig(
        epochs=kw.pop("epochs"), batch_size=kw.pop("batch_size"), initial_lr=lr, seed=kw.pop("seed"),
        device=kw.pop("device"),
    )  # fmt: skip
