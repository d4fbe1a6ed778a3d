"""``geocrop predict``: a bundle applied to a samples table -> one row per sample (CSV or Parquet)."""

from __future__ import annotations

from typing import Any

import click

from geocrop.cli.declared import declared_options
from geocrop.cli.progress import ProgressMode, progress_option, reporting
from geocrop.inference.predict_config import PredictConfig


@click.command("predict")
@declared_options(PredictConfig)
@progress_option()
def predict(progress_mode: ProgressMode, **kw: Any) -> None:
    """Classify the series of a samples table with a bundle: class, confidence and probabilities."""
    import geocrop.api as api

    with reporting(progress_mode) as reporter:
        result = api.predict(**kw, tune_process=True, progress=reporter.progress_event)
        reporter.done({"predictions": result.out})
    if progress_mode == "json":
        return
    empty = f", {result.n_empty} without a clear observation" if result.n_empty else ""
    click.echo(f"wrote {result.out} ({result.n_samples} samples{empty}; {len(result.class_names)} classes)")
