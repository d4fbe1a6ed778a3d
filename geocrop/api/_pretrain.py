"""`pretrain`: contrastive pretraining of the pixel encoders (bi-modal, the paper's Eq. 1, or SCARF), or
temporal pretraining of a head (masked reconstruction of observations)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from geocrop.api_types import (
    AoiLike,
    DateLike,
    Device,
    PathLike,
    Progress,
    as_aoi,
    as_optional_date,
    as_path,
    as_source,
    check_season,
    emit,
)
from geocrop.errors import InputError

if TYPE_CHECKING:
    from geocrop.training.pretrain import PretrainResult

__all__ = ["PretrainMode", "SecondModality", "pretrain"]

PretrainMode = Literal["bimodal", "unimodal", "temporal"]
#: The second view of bi-modal pretraining: ``auto`` is PlanetScope when ``planet`` is given, else
#: Sentinel-1 (a table's or cube's S1 columns, or ``s1``). Temporal mode: ``auto`` is Sentinel-1 where
#: the source has it, ``s1`` requires it, ``none`` leaves it out.
SecondModality = Literal["auto", "planetscope", "s1", "none"]
#: Head families temporal pretraining can train.
TemporalHead = Literal["transformer", "inception", "tempcnn", "lstm"]


def pretrain(
    *,
    out: PathLike,
    s2: PathLike | None = None,
    planet: PathLike | None = None,
    second_modality: SecondModality = "auto",
    s1: PathLike | None = None,
    s1_window: int = 1,
    aoi: AoiLike | None = None,
    start: DateLike | None = None,
    end: DateLike | None = None,
    fields: PathLike | None = None,
    mode: PretrainMode = "bimodal",
    corruption_rate: float = 0.2,
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float = 1e-3,
    temperature: float = 0.07,
    seed: int = 0,
    device: Device = "auto",
    pixels_per_date: int | None = None,
    tolerance_days: int = 0,
    width: int = 256,
    depth: int = 8,
    threads: int | None = None,
    s2_collection: str = "sentinel-2-l2a",
    planet_collection: str = "planetscope",
    s1_collection: str = "sentinel-1",
    head: TemporalHead = "transformer",
    head_params: Mapping[str, Any] | None = None,
    steps: int | Literal["auto"] = "auto",
    objective: Literal["masked", "contrastive"] = "masked",
    mask_ratio: float = 0.15,
    second_weight: float = 1.0,
    date_dropout: float | None = None,
    resample_dates: bool | None = None,
    allow_any_asset_href: bool = False,
    bars: bool = False,
    progress: Progress | None = None,
) -> PretrainResult:
    """Contrastive pretraining of the pixel encoders into the run folder ``out``; see
    `geocrop.training.pretrain`. Bi-modal (the paper's Eq. 1) pairs ``s2`` with ``planet`` or Sentinel-1
    (``second_modality``: the S2 table's or cube's S1 data, or an ``s1`` source; ``s1_window`` 3 pairs each
    S2 pixel with its 3x3 S1 neighbourhood, imagery only); ``unimodal``
    (SCARF) ``s2`` alone; without ``s2`` the pairs already in ``out/pairs`` are reused. Reruns resume.

    ``mode="temporal"`` pretrains a temporal ``head`` (``head_params``: its options) on the unlabelled
    series of ``s2`` (a samples table or cube) by masked reconstruction of whole observations
    (``mask_ratio`` of the clear dates hidden) and, where Sentinel-1 is present, by predicting it at the
    hidden dates (weight ``second_weight``); ``steps`` the grid (auto: `geocrop train`'s rule for the same
    source); it writes ``out/head.safetensors`` for `train`'s ``init``. ``objective="contrastive"``
    trains the head instead to match two augmented views of each series (NT-Xent, ``temperature``).
    ``date_dropout`` and ``resample_dates`` augment the series (`geocrop.training.series_augment`; None:
    off for ``masked``, 0.2 and on for ``contrastive``). ``epochs``/``batch_size``
    None: 100 and 2048 for the contrastive modes (the paper's), adapted to the number of series for
    temporal (`geocrop.training.temporal_config`).

    ``bars`` draws the library's own progress bars on the terminal (off: ``progress`` gets the epochs);
    ``threads`` sets torch's thread count for the whole process (None: left alone).
    """
    from geocrop.training.pretrain import PretrainConfig
    from geocrop.training.pretrain import pretrain as run_pretrain

    first, last = as_optional_date(start, "start"), as_optional_date(end, "end")
    check_season(first, last)
    area = None if aoi is None else as_aoi(aoi)
    if isinstance(area, tuple):  # the pair builder reads bboxes as "minx,miny,maxx,maxy"
        area = ",".join(repr(v) for v in area)
    elif isinstance(area, os.PathLike):
        area = os.fspath(area)
    if mode == "temporal":
        return _pretrain_temporal(dict(locals()))
    if date_dropout or resample_dates:
        raise InputError(
            f"`date_dropout` and `resample_dates` act on series; `mode` {mode} pairs single dates: use "
            "`mode` temporal",
            param="date_dropout" if date_dropout else "resample_dates",
        )
    if second_modality == "none":
        raise InputError(
            "`second_modality` none applies to `mode` temporal; use `mode` unimodal for Sentinel-2 alone",
            param="second_modality",
        )
    epochs = 100 if epochs is None else epochs
    batch_size = 2048 if batch_size is None else batch_size
    config = PretrainConfig(
        out=as_path(out, "out"),
        s2=None if s2 is None else as_source(s2, "s2"),
        planet=None if planet is None else as_source(planet, "planet"),
        second_modality=second_modality,
        s1=None if s1 is None else as_source(s1, "s1"),
        s1_collection=s1_collection,
        s1_window=s1_window,
        aoi=area,
        start=None if first is None else first.isoformat(),
        end=None if last is None else last.isoformat(),
        fields=None if fields is None else os.fspath(as_path(fields, "fields")),
        s2_collection=s2_collection,
        planet_collection=planet_collection,
        mode=mode,
        corruption=corruption_rate,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        temperature=temperature,
        seed=seed,
        device=device,
        pixels_per_date=pixels_per_date,
        tolerance_days=tolerance_days,
        width=width,
        depth=depth,
        threads=threads,
        allow_any_asset_href=allow_any_asset_href,
    )

    def epoch_done(epoch: int, record: Mapping[str, Any]) -> None:
        message = f"epoch {epoch}/{epochs}: loss {float(record.get('loss', float('nan'))):.4f}"
        if "retrieval_top1" in record:
            message += f", held-out retrieval {float(record['retrieval_top1']):.3f}"
        emit(progress, "pretrain", epoch / epochs, message, log=True, epoch=epoch, epochs=epochs)

    emit(progress, "pretrain", 0.0, "pairing pixels" if s2 is not None else "reading the pairs")
    result = run_pretrain(config, progress=bars, on_epoch_end=epoch_done)
    emit(progress, "pretrain", 1.0, f"wrote {result.bundle}")
    return result


def _pretrain_temporal(arguments: Mapping[str, Any]) -> PretrainResult:
    """`pretrain` with ``mode="temporal"``: ``arguments`` are `pretrain`'s own; each one that names a
    field of `TemporalPretrainConfig` (the same names) goes to it, and the contrastive modes' inputs must
    be unset."""
    from geocrop.training.temporal_config import TemporalPretrainConfig
    from geocrop.training.temporal_pretrain import pretrain_temporal

    if arguments["s2"] is None:
        raise InputError("`mode` temporal needs `s2`: a samples table or imagery with series", param="s2")
    for name in ("planet", "aoi", "fields"):
        if arguments[name] is not None:
            raise InputError(
                f"`{name}` does not apply to `mode` temporal (it reads every series of `s2`); drop it",
                param=name,
            )
    if arguments["second_modality"] == "planetscope":
        raise InputError(
            "`second_modality` planetscope cannot be read as series; use s1, none or auto with `mode` "
            "temporal",
            param="second_modality",
        )
    names = {f.name for f in dataclasses.fields(TemporalPretrainConfig)}
    given = {name: value for name, value in arguments.items() if name in names}
    s1, head_params = given["s1"], given["head_params"]
    config = TemporalPretrainConfig(
        **given
        | {
            "out": as_path(given["out"], "out"),
            "s2": as_source(given["s2"], "s2"),
            "s1": None if s1 is None else as_source(s1, "s1"),
            "head_params": dict(head_params) if head_params else None,
        }
    )
    progress: Progress | None = arguments["progress"]

    def epoch_done(epoch: int, record: Mapping[str, Any]) -> None:
        from geocrop.training.temporal_pretrain import describe_epoch

        emit(progress, "pretrain", None, describe_epoch(record), log=True, epoch=epoch)

    emit(progress, "pretrain", 0.0, f"reading the series of {config.s2}")
    result = pretrain_temporal(config, progress=arguments["bars"], on_epoch_end=epoch_done)
    emit(progress, "pretrain", 1.0, f"wrote {result.bundle}")
    return result
