"""`inspect_labels`: look at labelled samples before training (per-class profiles, counts, a page)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from geocrop.api_types import PathLike, Progress
from geocrop.core.params import config_args
from geocrop.core.progress import emit
from geocrop.errors import InputError
from geocrop.viz.inspect_config import VARIABLES, InspectConfig

if TYPE_CHECKING:
    from geocrop.viz.profiles import InspectResult

__all__ = ["inspect_labels"]


def inspect_labels(
    *,
    labels: PathLike,
    class_column: str,
    out: PathLike,
    group_column: str | None = None,
    id_column: str | None = None,
    s2: str | None = None,
    start: dt.date | str | None = None,
    end: dt.date | str | None = None,
    steps: int | Literal["auto"] = "auto",
    class_map: str | None = None,
    drop_unmapped: bool = False,
    nodata: Sequence[float] = (),
    scale: float | None = None,
    min_parcels: int | Literal["auto"] = 0,
    variables: Sequence[str] = VARIABLES,
    colors: PathLike | None = None,
    progress: Progress | None = None,
) -> InspectResult:
    """Read ``labels`` as `train` would and write, to the folder ``out``, each class's temporal profile
    (median and 10-90 % band of NDVI and each band, or of ``variables``), the series and parcels per
    class, and ``index.html`` showing them (`geocrop.viz.profiles`). Nothing is written when the labels
    cannot be read; ``min_parcels`` is 0 here, so every class shows. ``colors``: a class colour table
    (`geocrop.io.colour_table`: CSV, JSON or a QGIS ``.qml``) for the classes it names."""
    from geocrop.data.labelled import LabelSource, load_labelled
    from geocrop.io.colour_table import read_colour_table, with_colours
    from geocrop.viz.profiles import inspect_labels as write_inspection

    config = InspectConfig(**config_args(InspectConfig, locals()))
    if config.out.exists() and not config.out.is_dir():
        raise InputError(f"`out` {config.out} is a file; give a folder for the page and figures", param="out")
    source = LabelSource(
        path=config.labels,
        class_column=config.class_column,
        group_column=config.group_column,
        id_column=config.id_column,
        s2=config.s2,
        start=config.start,
        end=config.end,
        steps=config.steps,
        min_parcels=config.min_parcels,
        class_map=config.class_map,
        drop_unmapped=config.drop_unmapped,
        nodata=tuple(float(v) for v in config.nodata),
        scale=config.scale,
    )
    table = None if config.colors is None else read_colour_table(config.colors)
    emit(progress, "inspect", 0.0, f"reading the labelled series from {config.labels.name}")
    series = load_labelled(source)
    return write_inspection(
        series,
        config.out,
        title=f"{config.labels.name}: {config.class_column}",
        variables=config.variables,
        colours=with_colours(series.class_names, table),
        progress=None if progress is None else (lambda f, m: emit(progress, "inspect", 0.1 + 0.9 * f, m)),
    )
