"""``geocrop train``: a temporal head on frozen backbone features (or raw bands) -> a map-ready bundle.

Parses flags into a `TrainJob`, calls `geocrop.training.train.train_model`, shows progress (a bar, or
JSON lines with ``--progress json``), prints one line per epoch and where the bundle went. Rerunning the
same command after an interruption resumes from the last finished epoch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from geocrop.cli.label_options import asset_trust, label_options, label_source, train_config
from geocrop.cli.progress import ProgressMode, progress_option, reporting
from geocrop.errors import InputError

#: Share of the progress bar given to reading and encoding the labelled pixels; epochs fill the rest.
_PREPARATION = 0.1
#: Options that shape a deep head (they mean nothing to the tree baselines).
_HEAD_FLAGS = ("hidden", "layers", "kernel_size", "d_model", "heads", "pooling", "dense")


@click.command("train")
@label_options
@click.option(
    "--backbone",
    default="none",
    show_default=True,
    help="Pretrained backbone bundle, or 'none' for raw bands.",
)
@click.option(
    "--head",
    type=click.Choice(["lstm", "inception", "transformer", "tempcnn", "rf", "gbm"]),
    required=True,
    help="Temporal head family, or a tree baseline: rf (RandomForest), gbm (gradient boosting).",
)
@click.option(
    "--hidden", type=int, default=None, help="lstm: hidden size; inception, tempcnn: convolution channels."
)
@click.option("--layers", type=int, default=None, help="Layers (lstm, transformer) or modules (inception).")
@click.option("--kernel-size", type=int, default=None, help="inception: longest kernel; tempcnn: kernel.")
@click.option("--dense", type=int, default=None, help="tempcnn: width of the dense layer.")
@click.option("--d-model", type=int, default=None, help="transformer: model width.")
@click.option("--heads", type=int, default=None, help="transformer: attention heads.")
@click.option("--pooling", type=click.Choice(["mean", "cls"]), default=None, help="transformer: pooling.")
@click.option("--lr", type=float, default=None, help="Initial learning rate [default: 1e-3].")
@click.option("--final-lr", type=float, default=None, help="Where the linear schedule ends [default: 1e-5].")
@click.option(
    "--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Bundle .safetensors."
)
@progress_option()
def train(progress_mode: ProgressMode, **kw: Any) -> None:
    """Train a crop classifier head and write a map-ready bundle (backbone + head + classes + grid)."""
    from geocrop.training.hparams import DEFAULT_FINAL_LR, TREE_FAMILIES, HeadConfig, default_config
    from geocrop.training.train import EpochStats, TrainJob, train_model

    head = kw.pop("head")
    params = dict(default_config(head).params)
    given = {flag: kw.pop(flag) for flag in _HEAD_FLAGS}
    if head in TREE_FAMILIES:
        deep = [
            f for f in (*_HEAD_FLAGS, "epochs", "batch_size", "lr", "final_lr") if kw.get(f, given.get(f))
        ]
        if deep:
            shown = ", ".join("--" + f.replace("_", "-") for f in deep)
            raise InputError(f"{shown} only apply to deep heads, not --head {head}; drop them")
    for flag, value in given.items():
        if value is None:
            continue
        if flag not in params:
            raise InputError(f"--{flag.replace('_', '-')} does not apply to --head {head}; drop it")
        params[flag] = value
    trust = asset_trust(kw)
    backbone = kw.pop("backbone")
    final_lr = kw.pop("final_lr")
    lr = kw.pop("lr")
    job = TrainJob(
        source=label_source(kw),
        out=kw.pop("out"),
        head=HeadConfig(head, params, DEFAULT_FINAL_LR if final_lr is None else final_lr),
        backbone=None if backbone.lower() == "none" else Path(backbone),
        n_train=kw.pop("train_pixels"),
        n_val=kw.pop("val_pixels"),
        scheme=kw.pop("scheme"),
        config=train_config(kw, lr=1e-3 if lr is None else lr),
    )

    with trust, reporting(progress_mode) as reporter:
        steps = iter((0.0, _PREPARATION / 2, _PREPARATION))

        def stage(message: str) -> None:
            reporter(next(steps, _PREPARATION), message)

        planned = 1

        def stage_and_plan(message: str) -> None:
            nonlocal planned
            if "up to " in message:  # "training the lstm head (up to N epochs, ...)"
                planned = int(message.split("up to ")[1].split()[0])
            stage(message)

        def epoch_done(stats: EpochStats) -> None:
            line = (
                f"epoch {stats.epoch}/{planned}: train loss {stats.train_loss:.4f}, "
                f"val loss {stats.val_loss:.4f}, val accuracy {100 * stats.val_accuracy:.2f}%, "
                f"val macro-F1 {stats.val_f1:.3f}"
            )
            done = min(stats.epoch / planned, 1.0)
            reporter(_PREPARATION + (1 - _PREPARATION) * done, line)
            if progress_mode != "json":  # in JSON the progress event carries the line
                reporter.note(line)

        result = train_model(job, progress=epoch_done, stage=stage_and_plan)
        reporter.done({"bundle": result.bundle})
    if progress_mode == "json":
        return
    if result.resumed_from:
        click.echo(f"resumed after epoch {result.resumed_from}")
    kept = f", epoch {result.best_epoch} kept" if result.best_epoch else ""
    sc = result.scores
    click.echo(
        f"wrote {result.bundle} ({len(result.class_names)} classes, {result.n_train} training / "
        f"{result.n_val} validation series{kept}; validation OA {sc['oa']:.3f}, "
        f"macro-F1 {sc['macro_f1']:.3f}, kappa {sc['kappa']:.3f})"
    )
