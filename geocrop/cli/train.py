"""``geocrop train``: a temporal head on frozen backbone features (or raw bands) -> a map-ready bundle.

Parses flags, calls `geocrop.api.train`, shows progress (a bar, or JSON lines with ``--progress json``),
prints one line per epoch and where the bundle went. Rerunning the
same command after an interruption resumes from the last finished epoch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import click

from geocrop.cli.costs import cost_note
from geocrop.cli.declared import declared_options
from geocrop.cli.label_options import LABEL_TYPES
from geocrop.cli.progress import ProgressMode, progress_option, reporting
from geocrop.models.head_families import HEAD_OPTIONS
from geocrop.training.labelled_options import TrainOptions


def head_options(names: Iterable[str] = tuple(HEAD_OPTIONS)) -> list[Callable[[Any], Any]]:
    """The options that shape a deep head (`geocrop.models.head_families.HEAD_OPTIONS`, those ``names``), as
    click options; which head each applies to is checked by the library."""
    return [
        click.option(
            "--" + name.replace("_", "-"),
            type=click.Choice(option.choices) if option.choices else option.type,
            default=None,
            help=option.help[0].upper() + option.help[1:] + ".",
        )
        for name, option in ((name, HEAD_OPTIONS[name]) for name in names)
    ]


@click.command("train", epilog=cost_note("train"))
@declared_options(
    TrainOptions, types=LABEL_TYPES, texts={"backbone": "none"}, after={"head_params": head_options()}
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
    # a fit of one step (a frozen body's logistic classifier) kept no epoch worth naming
    kept = f", epoch {result.best_epoch} kept" if result.best_epoch and len(result.history) > 1 else ""
    sc = result.scores
    click.echo(
        f"wrote {result.bundle} ({len(result.class_names)} classes, {result.n_train} training / "
        f"{result.n_val} validation series{kept}; validation OA {sc['oa']:.3f}, "
        f"macro-F1 {sc['macro_f1']:.3f}, kappa {sc['kappa']:.3f})"
    )
