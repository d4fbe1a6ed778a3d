"""``geocrop sample``: reference points to label, drawn from a crop map (stratified or most uncertain)."""

from __future__ import annotations

from typing import Any

import click

from geocrop.cli.declared import declared_options
from geocrop.cli.flags import FLAG_ALIASES
from geocrop.cli.progress import ProgressMode, progress_option, reporting
from geocrop.post.configs import StratifiedSampleConfig, UncertainSampleConfig


@click.command("sample")
@declared_options(
    StratifiedSampleConfig,
    skip=["n", "seed"],  # n: --stratified N or --uncertain N
    after={
        "map": [
            click.option(
                "--stratified",
                type=click.IntRange(min=1),
                default=None,
                help="N points, stratified by map class.",
            ),
            click.option(
                "--uncertain",
                type=click.IntRange(min=1),
                default=None,
                help="N most uncertain pixels, spread out.",
            ),
        ]
    },
)
@declared_options(UncertainSampleConfig, only=["min_distance", "seed"])
@progress_option()
def sample(progress_mode: ProgressMode, **kw: Any) -> None:
    """Draw reference points to label in QGIS: fill their `reference` column, then run `geocrop assess`."""
    import geocrop.api as api

    stratified, uncertain = kw.pop("stratified"), kw.pop("uncertain")
    if (stratified is None) == (uncertain is None):
        raise click.UsageError("give either --stratified N or --uncertain N (one of them)")
    # the library's `n` is whichever of the two flags was given
    click.get_current_context().meta[FLAG_ALIASES] = {"n": "--stratified" if stratified else "--uncertain"}
    with reporting(progress_mode) as reporter:
        if stratified is not None:
            kw.pop("min_distance")
            result = api.stratified_sample(**kw, n=stratified, progress=reporter.progress_event)
        else:
            kw.pop("min_per_class")
            result = api.uncertain_sample(**kw, n=uncertain, progress=reporter.progress_event)
        reporter.done({"points": result.out})
    if progress_mode == "json":
        return
    per_class = ", ".join(f"{name} {count}" for name, count in result.per_class.items())
    spacing = f"; at least {result.min_distance:g} apart" if result.min_distance is not None else ""
    click.echo(f"wrote {result.out} ({result.n} points: {per_class}{spacing})")
