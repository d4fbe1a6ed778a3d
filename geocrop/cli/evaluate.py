"""``geocrop evaluate``: the paper's protocol (supervised vs uni-modal vs bi-modal) into a report folder.

Parses flags into an `EvaluateJob`, calls `geocrop.training.evaluate.evaluate`, prints progress lines and
the report's path. Rerunning the same command resumes without retraining finished configurations.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from geocrop.cli.label_options import label_options, label_source, train_config


@click.command("evaluate")
@label_options
@click.option(
    "--bimodal", multiple=True, type=click.Path(path_type=Path), help="Bi-modal backbone bundle (repeat)."
)
@click.option(
    "--unimodal", multiple=True, type=click.Path(path_type=Path), help="Uni-modal backbone bundle (repeat)."
)
@click.option("--configs", type=int, default=10, show_default=True, help="Configurations drawn per family.")
@click.option("--families", default="lstm,inception,transformer", show_default=True, help="Head families.")
@click.option("--hparam-seed", type=int, default=0, show_default=True, help="Seed of the configuration draw.")
@click.option("--simulated", is_flag=True, help="Label the report as made from simulated data.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Report folder.")
def evaluate(**kw: Any) -> None:
    """Compare supervised, uni-modal and bi-modal inputs over N head configurations per family."""
    from geocrop.training.evaluate import EvaluateJob
    from geocrop.training.evaluate import evaluate as run_evaluate
    from geocrop.training.report import SIMULATED_CAVEAT

    job = EvaluateJob(
        source=label_source(kw),
        out=kw.pop("out"),
        bimodal=tuple(kw.pop("bimodal")),
        unimodal=tuple(kw.pop("unimodal")),
        families=tuple(f.strip() for f in kw.pop("families").split(",") if f.strip()),
        n_configs=kw.pop("configs"),
        n_train=kw.pop("train_pixels"),
        n_val=kw.pop("val_pixels"),
        scheme=kw.pop("scheme"),
        hparam_seed=kw.pop("hparam_seed"),
        data_note=SIMULATED_CAVEAT if kw.pop("simulated") else None,
        config=train_config(kw),
    )
    result = run_evaluate(job, progress=click.echo)
    click.echo(f"{result.trained} run(s) trained, {result.reused} reused; report: {result.report}")
