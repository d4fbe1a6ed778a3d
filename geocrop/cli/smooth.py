"""``geocrop smooth``: a crop map smoothed (Bayesian on the probabilities, or modal) into a new map."""

from __future__ import annotations

from typing import Any

import click

from geocrop.cli.declared import declared_options
from geocrop.cli.progress import ProgressMode, progress_option, run_verb
from geocrop.post.configs import SmoothConfig


@click.command("smooth")
@declared_options(SmoothConfig)
@progress_option()
def smooth(progress_mode: ProgressMode, **arguments: Any) -> None:
    """Smooth a crop map: new class and confidence COGs, style and STAC item, like `geocrop map` writes."""
    result = run_verb("smooth_map", progress_mode, arguments, _outputs)
    if progress_mode != "json":
        share = result.changed_pixels / result.clear_pixels if result.clear_pixels else 0.0
        click.echo(
            f"smoothed map: {result.cog} ({result.method}; {result.changed_pixels} of {result.clear_pixels} "
            f"pixels changed class, {share:.1%})"
        )
        if result.html is not None:
            click.echo(f"web page: {result.html}")


def _outputs(result: Any) -> dict[str, Any]:
    """The smoothed map's files; the STAC item and the web page where they were written."""
    optional = {"stac_item": result.stac_item, "html": result.html}
    written = {role: path for role, path in optional.items() if path is not None}
    return {"cog": result.cog, "confidence": result.confidence, "qml": result.qml} | written
