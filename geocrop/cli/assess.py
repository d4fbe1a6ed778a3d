"""``geocrop assess``: a crop map against labelled reference points -> accuracy and area with 95 % CIs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from geocrop.cli.declared import declared_options, help_text
from geocrop.cli.progress import ProgressMode, progress_option, run_verb
from geocrop.core.params import declaration
from geocrop.post.configs import AssessConfig

_OUT = help_text(declaration(AssessConfig, "out"))


@click.command("assess")
@declared_options(
    AssessConfig,
    skip=["out"],  # the command always writes the report: its folder is required here
    after={"out": [click.option("--out", required=True, type=click.Path(path_type=Path), help=_OUT)]},
)
@progress_option()
def assess(progress_mode: ProgressMode, **kw: Any) -> None:
    """Error matrix, accuracies and error-adjusted class areas with 95 % CIs (Olofsson et al. 2014)."""
    result = run_verb("assess", progress_mode, kw, lambda r: {"report": Path(kw["out"]) / "report.md"})
    if progress_mode == "json":
        return
    e = result.estimates
    click.echo(
        f"overall accuracy {e.overall_accuracy:.3f} +- {e.ci95(e.overall_accuracy_se):.3f} "
        f"({result.n_points} points); report in {Path(kw['out']) / 'report.md'}"
    )
