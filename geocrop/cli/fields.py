"""``geocrop fields``: a crop map summarised per parcel (majority class, shares, mean probabilities)."""

from __future__ import annotations

from typing import Any

import click

from geocrop.cli.declared import declared_options
from geocrop.cli.progress import ProgressMode, progress_option, run_verb
from geocrop.post.configs import FieldsConfig


@click.command("fields")
@declared_options(FieldsConfig)
@progress_option()
def fields(progress_mode: ProgressMode, **arguments: Any) -> None:
    """Per parcel: majority class and share, mean confidence and probabilities, pixel count, clear share."""
    result = run_verb("field_results", progress_mode, arguments, _outputs)
    if progress_mode != "json":
        probs = ", mean probabilities" if result.probabilities else ""
        click.echo(f"wrote {result.out} ({result.parcels} parcels, {result.with_pixels} with a class{probs})")
        if result.html is not None:
            click.echo(f"web page: {result.html}")


def _outputs(result: Any) -> dict[str, Any]:
    """The parcels' table, and the web page where it was written."""
    return {"fields": result.out} | ({"html": result.html} if result.html else {})
