"""``geocrop smooth``: a crop map smoothed (Bayesian on the probabilities, or modal) into a new map."""

from __future__ import annotations

from pathlib import Path

import click

from geocrop.cli.progress import ProgressMode, progress_option, reporting


@click.command("smooth")
@click.option(
    "--map", "map_path", required=True, type=click.Path(path_type=Path), help="Class COG of `geocrop map`."
)
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Smoothed class COG (.tif).")
@click.option(
    "--method",
    type=click.Choice(["bayes", "modal"]),
    default="bayes",
    show_default=True,
    help="bayes: smooth the probabilities (map made with --probabilities); modal: majority filter.",
)
@click.option(
    "--window", type=int, default=7, show_default=True, help="Neighbourhood size, odd, 3..21 pixels."
)
@click.option(
    "--smoothness",
    type=float,
    default=10.0,
    show_default=True,
    help="bayes: logit variance; larger smooths more.",
)
@click.option(
    "--neigh-fraction",
    type=float,
    default=0.5,
    show_default=True,
    help="bayes: share of neighbours in the prior.",
)
@click.option(
    "--sieve", type=int, default=0, show_default=True, help="Merge patches below this many pixels (0: off)."
)
@progress_option()
def smooth(
    map_path: Path,
    out: Path,
    method: str,
    window: int,
    smoothness: float,
    neigh_fraction: float,
    sieve: int,
    progress_mode: ProgressMode,
) -> None:
    """Smooth a crop map: new class and confidence COGs, style and STAC item, like `geocrop map` writes."""
    import geocrop.api as api

    with reporting(progress_mode) as reporter:
        result = api.smooth_map(
            map=map_path,
            out=out,
            method=method,  # type: ignore[arg-type]  # click.Choice checked it
            window=window,
            smoothness=smoothness,
            neigh_fraction=neigh_fraction,
            sieve=sieve,
            progress=reporter.progress_event,
        )
        outputs = {"cog": result.cog, "confidence": result.confidence, "qml": result.qml}
        reporter.done(outputs | ({"stac_item": result.stac_item} if result.stac_item else {}))
    if progress_mode != "json":
        share = result.changed_pixels / result.clear_pixels if result.clear_pixels else 0.0
        click.echo(
            f"smoothed map: {result.cog} ({result.method}; {result.changed_pixels} of {result.clear_pixels} "
            f"pixels changed class, {share:.1%})"
        )
