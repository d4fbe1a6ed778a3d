"""``geocrop pretrain``: bi-modal (or uni-modal SCARF) contrastive pretraining of the pixel encoders, or
temporal pretraining of a head (``--mode temporal``: masked reconstruction of observations).

Parses flags, calls `geocrop.api.pretrain`, reports where the outputs went. Rerunning the same command
resumes after the last finished epoch. Under torchrun
(``torchrun --nproc_per_node N -m geocrop.cli.main pretrain ...``) every rank runs this command and rank 0
writes the outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from geocrop.cli.costs import cost_note
from geocrop.cli.declared import declared_options
from geocrop.cli.label_options import StepsType
from geocrop.cli.progress import ProgressMode, progress_option, reporting
from geocrop.cli.train import head_options
from geocrop.training.pretrain_options import PretrainOptions

#: The head options `--mode temporal` takes (those of `geocrop train` but --pooling), in this order.
_HEAD_OPTIONS = ("d_model", "heads", "layers", "hidden", "kernel_size", "dense")


@click.command("pretrain", epilog=cost_note("pretrain"))
@declared_options(
    PretrainOptions,
    types={"out": click.Path(file_okay=False, path_type=Path), "steps": StepsType()},
    after={
        "head_params": head_options(_HEAD_OPTIONS),
        "threads": [  # before --progress took rich|json|none; scripts still pass it
            click.option("--no-progress", "quiet", is_flag=True, hidden=True, help="Same as --progress none.")
        ],
    },
)
@progress_option()
def pretrain(progress_mode: ProgressMode, quiet: bool, **kw: Any) -> None:
    """Pretrain pixel encoders on S2 + Planet or S2 + S1 pairs (the paper's Eq. 1), or on S2 alone (SCARF);
    or (--mode temporal) a temporal head on unlabelled series, for `geocrop train --init
    OUT/head.safetensors`.

    Without --s2, the pairs already in OUT/pairs are reused (contrastive modes).
    """
    import geocrop.api as api

    mode = kw["mode"]
    head_params = {name: kw.pop(name) for name in _HEAD_OPTIONS}
    progress_mode = "none" if quiet else progress_mode
    with reporting(progress_mode) as reporter:
        result = api.pretrain(
            **kw,
            head_params={k: v for k, v in head_params.items() if v is not None} or None,
            progress=reporter.progress_event,
        )
        reporter.done({"bundle": result.bundle} if result.is_main else {})
    if progress_mode == "json":
        return
    if result.is_main and result.history and mode == "temporal":
        from geocrop.training.temporal_pretrain import describe_epoch

        line = describe_epoch(result.history[-1]).split(": ", 1)[1]
        click.echo(f"pretrained {len(result.history)} epochs: {line}; head {result.bundle}")
    elif result.is_main and result.history:
        last = result.history[-1]
        back = f", back {last['retrieval_top1_back']:.3f}" if "retrieval_top1_back" in last else ""
        rank = ""
        if "retrieval_median_rank" in last:  # histories written before ranks were kept lack it
            rank = f", partner's median rank {last['retrieval_median_rank']:g} of {last['candidates']}"
        click.echo(
            f"pretrained {len(result.history)} epochs: loss {last['loss']:.4f}, held-out retrieval "
            f"{last['retrieval_top1']:.3f}{back} (chance {last['chance']:.4f}){rank}; bundle {result.bundle}"
        )
