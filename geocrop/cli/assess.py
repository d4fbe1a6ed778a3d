"""``geocrop assess``: a crop map against labelled reference points -> accuracy and area with 95 % CIs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from geocrop.cli.progress import ProgressMode, progress_option, reporting


@click.command("assess")
@click.option(
    "--map", "map", required=True, type=click.Path(path_type=Path), help="Class COG of `geocrop map`."
)
@click.option(
    "--reference", required=True, type=click.Path(path_type=Path),
    help="Labelled points (.gpkg, any CRS), e.g. from `geocrop sample --stratified`.",
)  # fmt: skip
@click.option(
    "--class-column", default="reference", show_default=True,
    help="Column with each point's reference class: a map class name (any case) or value; another name "
    "(a crop the map lacks, 'other') is kept as a reference-only class.",
)  # fmt: skip
@click.option(
    "--out", required=True, type=click.Path(path_type=Path), help="Report folder (created if missing)."
)
@progress_option()
def assess(progress_mode: ProgressMode, **kw: Any) -> None:
    """Error matrix, accuracies and error-adjusted class areas with 95 % CIs (Olofsson et al. 2014)."""
    import geocrop.api as api

    with reporting(progress_mode) as reporter:
        result = api.assess(**kw, progress=reporter.progress_event)
        reporter.done({"report": Path(kw["out"]) / "report.md"})
    if progress_mode == "json":
        return
    e = result.estimates
    click.echo(
        f"overall accuracy {e.overall_accuracy:.3f} +- {e.ci95(e.overall_accuracy_se):.3f} "
        f"({result.n_points} points); report in {Path(kw['out']) / 'report.md'}"
    )
