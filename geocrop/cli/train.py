"""``geocrop train``: a temporal head on frozen backbone features (or raw bands) -> a map-ready bundle.

Parses flags, calls `geocrop.api.train`, shows progress (a bar, or JSON lines with ``--progress json``),
prints one line per epoch and where the bundle went. Rerunning the
same command after an interruption resumes from the last finished epoch.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from geocrop.cli.label_options import label_options
from geocrop.cli.progress import ProgressMode, progress_option, reporting
from geocrop.models.registry import HEAD_FAMILIES, HEAD_OPTIONS, deep_families, tree_families

#: The tree baselines as ``--head``'s help names them (``rf: RandomForest, ...``).
_TREES = ", ".join(f"{f}: {HEAD_FAMILIES[f].label}" for f in tree_families())


def head_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options that shape a deep head (`geocrop.models.registry.HEAD_OPTIONS`), as click options;
    which head each applies to is checked by the library."""
    for option in reversed(HEAD_OPTIONS.values()):
        kind = click.Choice(option.choices) if option.choices else option.type
        command = click.option(
            "--" + option.name.replace("_", "-"),
            type=kind,
            default=None,
            help=option.help[0].upper() + option.help[1:] + ".",
        )(command)
    return command


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
    type=click.Choice(list(HEAD_FAMILIES)),
    default="auto",
    show_default=True,
    help=f"Temporal head family ({', '.join(deep_families())}), a tree baseline ({_TREES}), or auto: the "
    "one of tempcnn, inception and gbm (or the mean of two) that wins on inner validation.",
)
@head_options
@click.option("--lr", type=float, default=None, help="Initial learning rate [default: 1e-3].")
@click.option("--final-lr", type=float, default=None, help="Where the linear schedule ends [default: 1e-5].")
@click.option(
    "--init",
    default=None,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Start the head from a pretrained one (OUT/head.safetensors of `geocrop pretrain --mode temporal`, "
    "pretrained on your unlabelled series). On the France table it lifted TempCNN by +0.06 macro-F1 at 5 "
    "labelled parcels per class and +0.01-0.04 from 10 to all labels, InceptionTime by +0.05 at 10 and "
    "+0.11 with all labels; a RandomForest (--head rf) stayed better up to 20 per class "
    "(docs/pretraining.md).",
)
@click.option(
    "--freeze-init/--fine-tune-init",
    "freeze_init",
    default=False,
    show_default=True,
    help="With --init: train only the classifier layer (frozen) or every weight (fine-tune; frozen "
    "InceptionTime lost 0.1-0.2 macro-F1 on the France table).",
)
@click.option(
    "--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Bundle .safetensors."
)
@progress_option()
def train(progress_mode: ProgressMode, **kw: Any) -> None:
    """Train a crop classifier head and write a map-ready bundle (backbone + head + classes + grid)."""
    import geocrop.api as api

    given = {name: kw.pop(name) for name in HEAD_OPTIONS}
    backbone = kw.pop("backbone")
    with reporting(progress_mode) as reporter:
        result = api.train(
            **kw,
            head_params={name: value for name, value in given.items() if value is not None},
            backbone=None if backbone.lower() == "none" else backbone,
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
