"""``geocrop inspect``: look at labelled samples before training.

Per-class temporal profiles (median and 10-90 % band of NDVI and each band, one panel per class), series
and parcels per class, and an offline ``index.html`` showing them; options declared once in
`geocrop.viz.inspect_config.InspectConfig`.
"""

from __future__ import annotations

from typing import Any

import click

from geocrop.cli.declared import declared_options
from geocrop.cli.progress import ProgressMode, progress_option, run_verb
from geocrop.viz.inspect_config import InspectConfig

__all__ = ["inspect"]


@click.command("inspect")
@declared_options(InspectConfig)
@progress_option()
def inspect(progress_mode: ProgressMode, **arguments: Any) -> None:
    """Draw each class's temporal profile (NDVI and every band) and class counts as PNGs and a page."""
    result = run_verb("inspect_labels", progress_mode, arguments, lambda r: {"page": r.page})
    if progress_mode == "json":
        return
    counts = ", ".join(f"{n} {s}" for n, s in zip(result.class_names, result.series, strict=True))
    click.echo(f"{sum(result.series)} series in {len(result.class_names)} classes: {counts}")
    click.echo(f"profiles: {result.figures[1].parent}/profiles_*.png ({len(result.figures) - 1} figures)")
    click.echo(f"page: {result.page}")
