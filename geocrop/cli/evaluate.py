"""``geocrop evaluate``: every head beside the majority class and the tree baselines, on grouped folds,
plus the paper's protocol (supervised vs uni-modal vs bi-modal) when backbones are given.

Parses flags, calls `geocrop.api.evaluate`, shows progress (on a terminal the grid of runs, fold x
method, with the running fit's epochs and the time left; ``--progress json``: one JSON event per line) and
the report's path. Rerunning the same command resumes without retraining finished runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import click

from geocrop.cli.costs import cost_note
from geocrop.cli.declared import declared_options
from geocrop.cli.label_options import LABEL_TYPES
from geocrop.cli.progress import ProgressMode, progress_option, reporting
from geocrop.cli.run_grid import GridReporter
from geocrop.errors import InputError
from geocrop.models.head_families import deep_families, tree_families
from geocrop.training.labelled_options import EvaluateOptions

#: The options the command reads from one text (a comma list, ``default``) before calling the library.
_TEXTS = {
    "configs": "default",
    "families": ",".join(deep_families()),
    "baselines": ",".join(tree_families()),
    "labels_per_class": "all",
    "draws": "3",
}


@click.command("evaluate", epilog=cost_note("evaluate"))
@declared_options(
    EvaluateOptions,
    types={**LABEL_TYPES, "out": click.Path(file_okay=False, path_type=Path)},
    texts=_TEXTS,
)
@progress_option()
def evaluate(progress_mode: ProgressMode, **kw: Any) -> None:
    """Compare every head with the majority class and tree baselines (and pretrained inputs) by folds."""
    import geocrop.api as api
    from geocrop.training.hparams import family_list

    configs = str(kw.pop("configs")).strip()
    if configs != "default" and not configs.isdigit():
        raise InputError(f"--configs {configs!r} is neither 'default' nor a number; give default or e.g. 10")
    baselines = kw.pop("baselines").strip()
    families: Any = family_list(kw.pop("families"))  # "" names nothing: refused, not read as "none"
    counts = _label_counts(kw.pop("labels_per_class"))
    draws = _numbers(kw.pop("draws"))
    with reporting(progress_mode, kind=GridReporter) as reporter:
        result = api.evaluate(
            **kw,
            families=families,
            baselines=[] if baselines == "none" else [f.strip() for f in baselines.split(",") if f.strip()],
            configs=None if configs == "default" else int(configs),
            labels_per_class=counts,
            draws=draws[0] if len(draws) == 1 else draws,
            progress=reporter.progress_event,
        )
        reporter.done({"report": result.report})
    if progress_mode != "json":
        click.echo(f"{result.trained} run(s) trained, {result.reused} reused; report: {result.report}")


def _label_counts(text: str) -> list[int | Literal["all"] | None]:
    """``"5,10,all"`` -> ``[5, 10, "all"]``; words other than 'all' are refused here, the numbers' range
    by the library."""
    counts: list[int | Literal["all"] | None] = []
    for token in (t.strip() for t in str(text).split(",")):
        if token == "all":
            counts.append("all")
        elif token.lstrip("-").isdigit():
            counts.append(int(token))
        else:
            raise InputError(
                f"--labels-per-class {token!r} is not a whole number; give counts such as 5,10,20,50,all"
            )
    return counts


def _numbers(text: str) -> list[int]:
    tokens = [t.strip() for t in str(text).split(",")]
    if not all(t.lstrip("-").isdigit() for t in tokens):
        raise InputError(f"--draws {text!r} is not a whole number; give e.g. 3, or one per count as 3,3,1")
    return [int(t) for t in tokens]
