"""`pretrain`: contrastive pretraining of the pixel encoders (bi-modal, the paper's Eq. 1, or SCARF), or
temporal pretraining of a head (masked reconstruction of observations)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from geocrop.api_types import AoiLike, DateLike, PathLike, Progress, emit
from geocrop.core.params import config_args
from geocrop.training.pretrain_options import (
    PretrainMode,
    PretrainOptions,
    SecondModality,
    TemporalHead,
)

if TYPE_CHECKING:
    from geocrop.training.pretrain import PretrainResult

__all__ = ["PretrainMode", "SecondModality", "TemporalHead", "pretrain"]


def pretrain(
    *,
    s2: PathLike | None = None,
    planet: PathLike | None = None,
    second_modality: SecondModality = "auto",
    s1: PathLike | None = None,
    s1_collection: str = "sentinel-1",
    s1_window: int = 1,
    out: PathLike,
    aoi: AoiLike | None = None,
    start: DateLike | None = None,
    end: DateLike | None = None,
    fields: PathLike | None = None,
    s2_collection: str = "sentinel-2-l2a",
    planet_collection: str = "planetscope",
    mode: PretrainMode = "bimodal",
    head: TemporalHead = "transformer",
    head_params: Mapping[str, Any] | None = None,
    steps: int | Literal["auto"] = "auto",
    mask_ratio: float = 0.15,
    second_weight: float = 1.0,
    objective: Literal["masked", "contrastive"] = "masked",
    date_dropout: float | None = None,
    resample_dates: bool | None = None,
    corruption_rate: float = 0.2,
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float = 1e-3,
    temperature: float = 0.07,
    seed: int = 0,
    device: str = "auto",
    pixels_per_date: int | None = None,
    tolerance_days: int = 0,
    width: int = 256,
    depth: int = 8,
    threads: int | None = None,
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
    from geocrop.training.pretrain import pretrain as run_pretrain

    options = PretrainOptions(**config_args(PretrainOptions, locals()))
    if options.mode == "temporal":
        return _pretrain_temporal(options, bars=bars, progress=progress)
    config = options.contrastive_config()
    epochs = config.epochs

    def epoch_done(epoch: int, record: Mapping[str, Any]) -> None:
        message = f"epoch {epoch}/{epochs}: loss {float(record.get('loss', float('nan'))):.4f}"
        if "retrieval_top1" in record:
            message += f", held-out retrieval {float(record['retrieval_top1']):.3f}"
        emit(progress, "pretrain", epoch / epochs, message, log=True, epoch=epoch, epochs=epochs)

    emit(progress, "pretrain", 0.0, "pairing pixels" if s2 is not None else "reading the pairs")
    result = run_pretrain(config, progress=bars, on_epoch_end=epoch_done)
    emit(progress, "pretrain", 1.0, f"wrote {result.bundle}")
    return result


def _pretrain_temporal(options: PretrainOptions, *, bars: bool, progress: Progress | None) -> PretrainResult:
    """`pretrain` with ``mode="temporal"``: a temporal head on the series of ``s2``."""
    from geocrop.training.temporal_pretrain import describe_epoch, pretrain_temporal

    config = options.temporal_config()

    def epoch_done(epoch: int, record: Mapping[str, Any]) -> None:
        emit(progress, "pretrain", None, describe_epoch(record), log=True, epoch=epoch)

    emit(progress, "pretrain", 0.0, f"reading the series of {config.s2}")
    result = pretrain_temporal(config, progress=bars, on_epoch_end=epoch_done)
    emit(progress, "pretrain", 1.0, f"wrote {result.bundle}")
    return result
