"""``geocrop predict``: a bundle applied to a samples table -> one row per sample (CSV or Parquet)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from geocrop.cli.options import DATE


@click.command("predict")
@click.option("--model", required=True, type=click.Path(path_type=Path), help="Bundle (.safetensors).")
@click.option(
    "--samples", required=True, type=click.Path(path_type=Path), help="Samples table (Parquet/CSV)."
)
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Predictions, .csv or .parquet.")
@click.option("--id-column", default="sample_id", show_default=True, help="Sample id column (long tables).")
@click.option("--class-column", default=None, help="Copy this label column beside the predictions.")
@click.option("--nodata", type=float, multiple=True, help="Value meaning 'no observation' (65535 always is).")
@click.option(
    "--scale", type=click.FloatRange(min=0, min_open=True), default=None, help="Value -> reflectance."
)
@click.option("--start", type=DATE, default=None, help="The table's season start, if not the bundle's.")
@click.option("--end", type=DATE, default=None, help="The table's season end, if not the bundle's.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
@click.option(
    "--class-priors",
    default=None,
    metavar="train|uniform|FILE",
    help="Class shares to correct the probabilities for: train (default: the training frequencies, "
    "best for areas), uniform (all classes equally common: favours rare ones) or a CSV/JSON of shares.",
)
def predict(**kw: Any) -> None:
    """Classify the series of a samples table with a bundle: class, confidence and probabilities."""
    import geocrop.api as api

    result = api.predict(**kw, tune_process=True)
    empty = f", {result.n_empty} without a clear observation" if result.n_empty else ""
    click.echo(f"wrote {result.out} ({result.n_samples} samples{empty}; {len(result.class_names)} classes)")
