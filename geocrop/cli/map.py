"""`geocrop map`: parse the flags, call `geocrop.api.map_aoi` (or `plan_map` for --dry-run), report."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import click

from geocrop.cli.options import BBOX, DATE, BundleFileType, allow_any_asset_href_option
from geocrop.cli.progress import ProgressMode, progress_option, reporting
from geocrop.errors import InputError
from geocrop.inference.plan import EARTH_SEARCH
from geocrop.io.reading import ReadSettings

__all__ = ["map_command"]


@click.command("map")
@click.option("--aoi", type=str, help="Area to map: GeoJSON, GeoPackage, GeoParquet or Shapefile (any CRS).")
@click.option("--bbox", type=BBOX, help="Area to map as minx,miny,maxx,maxy in EPSG:4326 (instead of --aoi).")
@click.option("--start", required=True, type=DATE, help="First date of the season, YYYY-MM-DD.")
@click.option("--end", required=True, type=DATE, help="Last date of the season, YYYY-MM-DD.")
@click.option(
    "--stac",
    default=EARTH_SEARCH,
    show_default=True,
    help="STAC API URL, a static catalog.json, or a folder.",
)
@click.option("--collection", default="sentinel-2-l2a", show_default=True, help="Sentinel-2 L2A collection.")
@click.option("--planet", default=None, help="Optional PlanetScope source, used when the model needs it.")
@click.option(
    "--max-cloud", type=float, default=60.0, show_default=True, help="Skip scenes cloudier than this %."
)
@click.option(
    "--model",
    type=BundleFileType(),
    default=None,
    help="Model bundle (.safetensors); default: the demo bundle from `geocrop demo`.",
)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output crop-map COG (.tif).")
@click.option("--html", type=click.Path(path_type=Path), default=None, help="Also write an offline web map.")
@click.option("--probabilities", is_flag=True, help="Add one probability band per class.")
@click.option("--chunk-size", type=int, default=256, show_default=True, help="Tile size in pixels.")
@click.option(
    "--scheduler", default=None, help="dask.distributed scheduler address (default: local threads)."
)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option(
    "--dry-run", is_flag=True, help="Print scenes, bytes, pixels x timestamps and compute; read nothing."
)
@click.option("--yes", is_flag=True, help="Run even when the AOI exceeds the size limits.")
@click.option(
    "--allow-simulated-model",
    is_flag=True,
    help="Map real scenes with a model trained on simulated data (a demo: its map means nothing).",
)
@click.option(
    "--mask",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Map only where this raster (any CRS, e.g. a cropland layer) holds --mask-values; elsewhere nodata.",
)
@click.option(
    "--mask-values",
    type=float,
    multiple=True,
    help="Value of --mask that means 'map here' (repeatable; default: any non-zero value).",
)
@click.option(
    "--class-priors",
    default=None,
    metavar="train|uniform|FILE",
    help="Class shares to correct the probabilities for: train (default: the training frequencies, "
    "best for areas), uniform (all classes equally common: favours rare ones) or a CSV/JSON of shares.",
)
@click.option(
    "--read-threads",
    type=int,
    default=ReadSettings.threads,
    show_default=True,
    help="Scene/band reads of one tile at once (range requests in flight, for remote COGs).",
)
@click.option(
    "--read-ahead",
    type=int,
    default=ReadSettings.read_ahead,
    show_default=True,
    help="Tiles read ahead of the engine (memory holds this many tiles plus one).",
)
@click.option(
    "--read-cache-mb",
    type=int,
    default=ReadSettings.cache_mb,
    show_default=True,
    help="MB of downloaded COG byte ranges GDAL keeps in memory (reused by later tiles).",
)
@click.option(
    "-v", "--verbose", count=True, help="Log progress notes and where the time went (search, read, ...)."
)
@allow_any_asset_href_option()
@progress_option()
def map_command(
    aoi: str | None,
    bbox: tuple[float, float, float, float] | None,
    start: dt.date,
    end: dt.date,
    stac: str,
    collection: str,
    planet: str | None,
    max_cloud: float,
    model: Path | None,
    out: Path,
    html: Path | None,
    probabilities: bool,
    chunk_size: int,
    scheduler: str | None,
    device: str,
    dry_run: bool,
    yes: bool,
    allow_simulated_model: bool,
    mask: Path | None,
    mask_values: tuple[float, ...],
    class_priors: str | None,
    read_threads: int,
    read_ahead: int,
    read_cache_mb: int,
    verbose: int,
    allow_any_asset_href: bool,
    progress_mode: ProgressMode,
) -> None:
    """Map crop types over an area: search scenes, classify every pixel, write a COG (+ style, STAC item)."""
    import geocrop.api as api

    if verbose:  # `geocrop map -v` as `geocrop -v map`
        from geocrop.cli.main import configure_logging

        configure_logging(verbose)
    with reporting(progress_mode) as reporter:
        if (aoi is None) == (bbox is None):
            raise InputError("give exactly one of --aoi FILE or --bbox minx,miny,maxx,maxy")
        options: dict[str, Any] = dict(
            aoi=aoi if aoi is not None else bbox,
            start=start,
            end=end,
            out=out,
            model=model,
            stac=stac,
            collection=collection,
            planet=planet,
            max_cloud=max_cloud,
            html=html,
            probabilities=probabilities,
            chunk_size=chunk_size,
            scheduler=scheduler,
            device=device,
            yes=yes,
            allow_simulated_model=allow_simulated_model,
            allow_any_asset_href=allow_any_asset_href,
            mask=mask,
            mask_values=mask_values,
            class_priors=class_priors,
            read_threads=read_threads,
            read_ahead=read_ahead,
            read_cache_mb=read_cache_mb,
        )
        if dry_run:
            plan = api.plan_map(**options)
            if progress_mode == "json":
                reporter.event("plan", lines=plan.describe())
                reporter.done({})
            else:
                click.echo("\n".join(["dry run: nothing is read or written", *plan.describe()]))
            return
        result = api.map_aoi(**options, tune_process=True, progress=reporter.progress_event)
        reporter.done(result.outputs)
        if progress_mode != "json":
            resumed = f", {result.tiles_resumed} resumed" if result.tiles_resumed else ""
            click.echo(f"crop map: {result.cog} ({result.tiles} tiles{resumed}, {result.seconds:.1f} s)")
            click.echo(f"style: {result.qml}")
            click.echo(f"STAC item: {result.stac_item}")
            if result.confidence is not None:
                click.echo(f"confidence: {result.confidence}")
            if result.notice:
                click.echo(f"WARNING: {result.notice}: this map is a demonstration, not a measurement")
            if result.html is not None:
                click.echo(f"web map: {result.html}")
