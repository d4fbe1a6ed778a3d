"""``geocrop train``: a temporal head on frozen backbone features (or raw bands) -> a map-ready bundle.

Parses flags, calls `geocrop.api.train`, shows progress (a bar, or JSON lines with ``--progress json``),
prints one line per epoch and where the bundle went. Rerunning the
same command after an interruption resumes from the last finished epoch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from geocrop.cli.label_options import label_options
from geocrop.cli.progress import ProgressMode, progress_option, reporting
from geocrop.errors import InputError

#: Options that shape a deep head (they mean nothing to the tree baselines).
_HEAD_FLAGS = ("hidden", "layers", "kernel_size", "d_model", "heads", "pooling", "dense")


@click.command("train")
@label_options
@click.option(
    "--backbone",
    default="none",
    show_default=True,
    help="Pretrained backbone bundle, or 'none' for raw bands. On real labels pretraining has not "
    "helped yet; with 5-10 parcels per class --head rf won (docs/pretraining.md): measure yours with "
    "geocrop evaluate --labels-per-class.",
)
@click.option(
    "--head",
    type=click.Choice(["auto", "lstm", "inception", "transformer", "tempcnn", "rf", "gbm"]),
    default="auto",
    show_default=True,
    help="Temporal head family, a tree baseline (rf: RandomForest, gbm: gradient boosting), or auto: the "
    "one of tempcnn, inception and gbm (or the mean of two) that wins on inner validation.",
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
    "--init",
    default=None,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Start the head from a pretrained one (OUT/head.safetensors of `geocrop pretrain --mode temporal`; "
    "on the France table, fine-tuned, it moved macro-F1 by at most 0.025; frozen, it lost up to 0.11: "
    "docs/pretraining.md).",
)
@click.option(
    "--freeze-init/--fine-tune-init",
    "freeze_init",
    default=False,
    show_default=True,
    help="With --init: train only the classifier layer (frozen) or every weight (fine-tune).",
)
@click.option(
    "--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Bundle .safetensors."
)
@progress_option()
def train(progress_mode: ProgressMode, **kw: Any) -> None:
    """Train a crop classifier head and write a map-ready bundle (backbone + head + classes + grid)."""
    import geocrop.api as api
    from geocrop.training.hparams import TREE_FAMILIES, default_config

    head = kw.pop("head")
    defaults = default_config(head).params
    given = {flag: kw.pop(flag) for flag in _HEAD_FLAGS}
    if head in TREE_FAMILIES:
        deep = [
            f for f in (*_HEAD_FLAGS, "epochs", "batch_size", "lr", "final_lr") if kw.get(f, given.get(f))
        ]
        if deep:
            shown = ", ".join("--" + f.replace("_", "-") for f in deep)
            raise InputError(f"{shown} only apply to deep heads, not --head {head}; drop them")
    for flag, value in given.items():
        if value is not None and flag not in defaults:
            raise InputError(f"--{flag.replace('_', '-')} does not apply to --head {head}; drop it")
    backbone, lr = kw.pop("backbone"), kw.pop("lr")
    with reporting(progress_mode) as reporter:
        result = api.train(
            **kw,
            head=head,
            head_params={flag: value for flag, value in given.items() if value is not None},
            backbone=None if backbone.lower() == "none" else backbone,
            lr=1e-3 if lr is None else lr,
            progress=reporter.progress_event,
        )
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
