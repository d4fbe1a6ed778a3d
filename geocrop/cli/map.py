"""`geocrop map`: parse the flags, call `geocrop.api.map_aoi` (or `plan_map` for --dry-run), report."""

from __future__ import annotations

from typing import Any

import click

from geocrop.cli.costs import cost_note
from geocrop.cli.declared import declared_options, help_text
from geocrop.cli.options import BBOX
from geocrop.cli.progress import ProgressMode, progress_option, reporting
from geocrop.core.params import config_args, declaration
from geocrop.errors import InputError
from geocrop.inference.map_config import MapConfig

__all__ = ["map_command"]

_AOI = declaration(MapConfig, "aoi")


@click.command("map", epilog=cost_note("map"))
@declared_options(
    MapConfig,
    skip=["aoi"],  # --aoi FILE or --bbox: either gives the area
    after={
        "aoi": [
            click.option("--aoi", type=str, help=help_text(_AOI)),
            click.option(
                "--bbox",
                type=BBOX,
                help="Area to map as minx,miny,maxx,maxy in EPSG:4326 (instead of --aoi).",
            ),
        ],
        "device": [
            click.option(
                "--dry-run",
                is_flag=True,
                help="Print scenes, bytes, pixels x timestamps and compute; read nothing.",
            )
        ],
        "read_cache_mb": [
            click.option(
                "-v",
                "--verbose",
                count=True,
                help="Log progress notes and where the time went (search, read, ...).",
            )
        ],
    },
)
@progress_option()
def map_command(
    aoi: str | None,
    bbox: tuple[float, float, float, float] | None,
    dry_run: bool,
    verbose: int,
    progress_mode: ProgressMode,
    **arguments: Any,
) -> None:
    """Map crop types over an area: search scenes, classify every pixel, write a COG (+ style, STAC item)."""
    import geocrop.api as api

    if verbose:  # `geocrop map -v` as `geocrop -v map`
        from geocrop.cli.main import configure_logging

        configure_logging(verbose)
    with reporting(progress_mode) as reporter:
        if (aoi is None) == (bbox is None):
            raise InputError("give exactly one of --aoi FILE or --bbox minx,miny,maxx,maxy")
        options = config_args(MapConfig, {**arguments, "aoi": aoi if aoi is not None else bbox})
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
