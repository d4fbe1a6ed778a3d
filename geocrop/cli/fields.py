"""``geocrop fields``: a crop map summarised per parcel (majority class, shares, mean probabilities)."""

from __future__ import annotations

from pathlib import Path

import click

from geocrop.cli.progress import ProgressMode, progress_option, reporting


@click.command("fields")
@click.option(
    "--map", "map_path", required=True, type=click.Path(path_type=Path), help="Class COG of `geocrop map`."
)
@click.option(
    "--parcels",
    required=True,
    type=click.Path(path_type=Path),
    help="Parcels (GeoPackage, GeoJSON, GeoParquet...).",
)
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Results, .gpkg or .parquet.")
@click.option("--column", "columns", multiple=True, help="Parcel attribute to keep (repeat; default: all).")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=10_000,
    show_default=True,
    help="Parcels read at a time.",
)
@progress_option()
def fields(
    map_path: Path,
    parcels: Path,
    out: Path,
    columns: tuple[str, ...],
    batch_size: int,
    progress_mode: ProgressMode,
) -> None:
    """Per parcel: majority class and share, mean confidence and probabilities, pixel count, clear share."""
    import geocrop.api as api

    with reporting(progress_mode) as reporter:
        result = api.field_results(
            map=map_path,
            parcels=parcels,
            out=out,
            columns=list(columns) or None,
            batch_size=batch_size,
            progress=reporter.progress_event,
        )
        reporter.done({"fields": result.out})
    if progress_mode != "json":
        probs = ", mean probabilities" if result.probabilities else ""
        click.echo(f"wrote {result.out} ({result.parcels} parcels, {result.with_pixels} with a class{probs})")
