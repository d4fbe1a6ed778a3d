"""``geocrop pretrain``: bi-modal (or uni-modal SCARF) contrastive pretraining of the pixel encoders, or
temporal pretraining of a head (``--mode temporal``: masked reconstruction of observations).

Parses flags, calls `geocrop.api.pretrain`, reports where the outputs went. Rerunning the same command
resumes after the last finished epoch. Under torchrun
(``torchrun --nproc_per_node N -m geocrop.cli.main pretrain ...``) every rank runs this command and rank 0
writes the outputs.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Literal

import click

from geocrop.cli.options import DATE, allow_any_asset_href_option

#: The head options `--mode temporal` takes (those of `geocrop train` but --pooling).
_HEAD_OPTIONS = ("d_model", "heads", "layers", "hidden", "kernel_size", "dense")


@click.command("pretrain")
@click.option(
    "--s2",
    "s2",
    help="Sentinel-2 L2A source: STAC API URL, catalog.json, saved ItemCollection, GeoTIFF folder, "
    "NetCDF/Zarr cube, or a samples table (.parquet/.csv).",
)
@click.option("--planet", help="PlanetScope source (STAC kinds); the paper's second view.")
@click.option(
    "--second-modality",
    type=click.Choice(["auto", "planetscope", "s1", "none"]),
    default="auto",
    show_default=True,
    help="Second view of --mode bimodal: auto = planetscope with --planet, else s1 (Sentinel-1 VV/VH). "
    "--mode temporal: auto = s1 where the source has it; none = Sentinel-2 alone.",
)
@click.option(
    "--s1",
    default=None,
    help="Sentinel-1 source for --second-modality s1 (default: the --s2 source's S1 columns/variables).",
)
@click.option("--s1-collection", default="sentinel-1", show_default=True, help="S1 collection in a catalog.")
@click.option(
    "--s1-window",
    type=int,
    default=1,
    show_default=True,
    help="Pair each S2 pixel with its k x k S1 neighbourhood (odd k, imagery only; 1: the pixel's VV/VH).",
)
@click.option(
    "--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Run folder."
)
@click.option(
    "--aoi", help="Area of interest (GeoJSON/GPKG/... or minx,miny,maxx,maxy); default: the S2 extent."
)
@click.option("--start", type=DATE, help="First date, YYYY-MM-DD (default: all).")
@click.option("--end", type=DATE, help="Last date, YYYY-MM-DD (default: all).")
@click.option(
    "--fields", help="Parcel polygons for the field-level 70-21-9 split (default: 8x8-pixel blocks)."
)
@click.option("--s2-collection", default="sentinel-2-l2a", show_default=True)
@click.option("--planet-collection", default="planetscope", show_default=True)
@click.option(
    "--mode",
    type=click.Choice(["bimodal", "unimodal", "temporal"]),
    default="bimodal",
    show_default=True,
    help="bimodal/unimodal: contrastive pixel encoders; temporal: a temporal head by masked reconstruction.",
)
@click.option(
    "--head",
    type=click.Choice(["transformer", "inception", "tempcnn", "lstm"]),
    default="transformer",
    show_default=True,
    help="--mode temporal: the head family to pretrain (options as in `geocrop train`).",
)
@click.option("--d-model", type=int, default=None, help="temporal, transformer: model width [64].")
@click.option("--heads", type=int, default=None, help="temporal, transformer: attention heads [4].")
@click.option("--layers", type=int, default=None, help="temporal: layers (transformer, lstm) or modules.")
@click.option("--hidden", type=int, default=None, help="temporal: lstm hidden size; conv channels.")
@click.option("--kernel-size", type=int, default=None, help="temporal, inception/tempcnn: kernel.")
@click.option("--dense", type=int, default=None, help="temporal, tempcnn: dense layer width [256].")
@click.option("--steps", default="auto", show_default=True, help="temporal: grid steps (auto: as `train`).")
@click.option(
    "--mask-ratio", type=float, default=0.15, show_default=True, help="temporal: share of dates hidden."
)
@click.option(
    "--second-weight", type=float, default=1.0, show_default=True, help="temporal: weight of the S1 term."
)
@click.option(
    "--objective",
    type=click.Choice(["masked", "contrastive"]),
    default="masked",
    show_default=True,
    help="temporal: reconstruct hidden dates (+ S1 there), or match two augmented views (NT-Xent).",
)
@click.option(
    "--date-dropout",
    type=float,
    default=None,
    help="temporal: blank each date of a series with this probability [masked: 0; contrastive: 0.2].",
)
@click.option(
    "--resample-dates/--no-resample-dates",
    default=None,
    help="temporal: keep a random subset of each series' dates, jittered by a step, then regrid [on].",
)
@click.option(
    "--corruption",
    "corruption_rate",
    type=float,
    default=0.2,
    show_default=True,
    help="SCARF corruption rate.",
)
@click.option("--epochs", type=int, default=None, help="[contrastive: 100; temporal: adapts to the series]")
@click.option(
    "--batch-size",
    type=int,
    default=None,
    help="Global batch, all ranks [contrastive: 2048; temporal: adapts].",
)
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--temperature", type=float, default=0.07, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
@click.option(
    "--pixels-per-date", type=int, default=None, help="Training pixels per S2 date [min(100000, all)]."
)
@click.option("--tolerance-days", type=int, default=0, show_default=True, help="Largest S2-Planet date gap.")
@click.option("--width", type=int, default=256, show_default=True, help="Encoder width (the paper: 256).")
@click.option("--depth", type=int, default=8, show_default=True, help="Residual layers (the paper: 8).")
@click.option("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice).")
@click.option("--progress/--no-progress", default=True, help="Progress bars on a terminal.")
@allow_any_asset_href_option()
def pretrain(**kw: Any) -> None:
    """Pretrain pixel encoders on S2 + Planet or S2 + S1 pairs (the paper's Eq. 1), or on S2 alone (SCARF);
    or (--mode temporal) a temporal head on unlabelled series, for `geocrop train --init
    OUT/head.safetensors`.

    Without --s2, the pairs already in OUT/pairs are reused (contrastive modes).
    """
    import geocrop.api as api

    mode, progress = kw["mode"], kw.pop("progress")
    head_params = {name: kw.pop(name) for name in _HEAD_OPTIONS}
    result = api.pretrain(
        **kw | {"steps": _steps(kw["steps"])},
        head_params={k: v for k, v in head_params.items() if v is not None} or None,
        bars=progress and sys.stderr.isatty(),
    )
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


def _steps(text: str) -> int | Literal["auto"]:
    if text == "auto":
        return "auto"
    try:
        return int(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not 'auto' or a whole number", param_hint="--steps") from None
