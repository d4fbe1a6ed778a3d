"""``geocrop train``: a temporal head on frozen backbone features (or raw bands) -> a map-ready bundle.

Parses flags into a `TrainJob`, calls `geocrop.training.train.train_model`, shows progress (a bar, or
JSON lines with ``--progress json``), prints one line per epoch and where the bundle went. Rerunning the
same command after an interruption resumes from the last finished epoch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from geocrop.cli.label_options import label_options, label_source, train_config
from geocrop.cli.progress import ProgressMode, progress_option, reporting
from geocrop.errors import InputError

#: Which head flags belong to which family, and their defaults.
_HEAD_FLAGS: dict[str, dict[str, Any]] = {
    "lstm": {"hidden": 128, "layers": 2},
    "inception": {"layers": 4, "hidden": 128, "kernel_size": 40},
    "transformer": {"d_model": 64, "heads": 4, "layers": 2, "pooling": "mean"},
}
#: Share of the progress bar given to reading and encoding the labelled pixels; epochs fill the rest.
_PREPARATION = 0.1


@click.command("train")
@label_options
@click.option(
    "--backbone",
    default="none",
    show_default=True,
    help="Pretrained backbone bundle, or 'none' for raw bands.",
)
@click.option("--head", type=click.Choice(list(_HEAD_FLAGS)), required=True, help="Temporal head family.")
@click.option("--hidden", type=int, default=None, help="lstm: hidden size; inception: module channels.")
@click.option("--layers", type=int, default=None, help="Layers (lstm, transformer) or modules (inception).")
@click.option("--kernel-size", type=int, default=None, help="inception: longest kernel.")
@click.option("--d-model", type=int, default=None, help="transformer: model width.")
@click.option("--heads", type=int, default=None, help="transformer: attention heads.")
@click.option("--pooling", type=click.Choice(["mean", "cls"]), default=None, help="transformer: pooling.")
@click.option("--lr", type=float, default=1e-3, show_default=True, help="Initial learning rate.")
@click.option(
    "--final-lr", type=float, default=1e-5, show_default=True, help="Where the linear schedule ends."
)
@click.option(
    "--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Bundle .safetensors."
)
@progress_option()
def train(progress_mode: ProgressMode, **kw: Any) -> None:
    """Train a crop classifier head and write a map-ready bundle (backbone + head + classes + grid)."""
    from geocrop.training.hparams import HeadConfig
    from geocrop.training.train import EpochStats, TrainJob, train_model

    head = kw.pop("head")
    params = dict(_HEAD_FLAGS[head])
    for flag in ("hidden", "layers", "kernel_size", "d_model", "heads", "pooling"):
        value = kw.pop(flag)
        if value is None:
            continue
        if flag not in params:
            raise InputError(f"--{flag.replace('_', '-')} does not apply to --head {head}; drop it")
        params[flag] = value
    backbone = kw.pop("backbone")
    job = TrainJob(
        source=label_source(kw),
        out=kw.pop("out"),
        head=HeadConfig(head, params, kw.pop("final_lr")),
        backbone=None if backbone.lower() == "none" else Path(backbone),
        n_train=kw.pop("train_pixels"),
        n_val=kw.pop("val_pixels"),
        scheme=kw.pop("scheme"),
        config=train_config(kw, lr=kw.pop("lr")),
    )

    with reporting(progress_mode) as reporter:
        steps = iter((0.0, _PREPARATION / 2, _PREPARATION))

        def stage(message: str) -> None:
            reporter(next(steps, _PREPARATION), message)

        def epoch_done(stats: EpochStats) -> None:
            line = (
                f"epoch {stats.epoch}/{job.config.epochs}: train loss {stats.train_loss:.4f}, "
                f"val loss {stats.val_loss:.4f}, val accuracy {100 * stats.val_accuracy:.2f}%"
            )
            done = stats.epoch / job.config.epochs
            reporter(_PREPARATION + (1 - _PREPARATION) * done, line)
            if progress_mode != "json":  # in JSON the progress event carries the line
                reporter.note(line)

        result = train_model(job, progress=epoch_done, stage=stage)
        reporter.done({"bundle": result.bundle})
    if progress_mode == "json":
        return
    if result.resumed_from:
        click.echo(f"resumed after epoch {result.resumed_from}")
    click.echo(
        f"wrote {result.bundle} ({len(result.class_names)} classes, {result.n_train} training / "
        f"{result.n_val} validation pixels, validation accuracy {100 * result.val_accuracy:.2f}%)"
    )
