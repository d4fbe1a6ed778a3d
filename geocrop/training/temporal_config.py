"""The settings of a temporal pretraining run (`TemporalPretrainConfig`) and the plan that adapts to the data.

Defaults that follow the data (`plan_pretraining`), for N training series:

- **batch**: the power of two nearest N / 10, between 16 and 256 (the rule `geocrop train` uses);
- **epochs**: enough for `TARGET_STEPS` optimiser steps, at least `MIN_EPOCHS` and at most `MAX_EPOCHS`
  (so a few hundred series get ~130 passes, 100,000 series the 10-epoch floor).

Explicit ``epochs``/``batch_size`` override either. AdamW; the learning rate decays linearly from ``lr``
to a tenth of it at the last planned step, so the epoch count is part of the trajectory (a checkpoint
resumes only under the same plan).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from geocrop.errors import InputError
from geocrop.training.pretrain_config import check_run_folder
from geocrop.training.series_augment import SeriesAugment

__all__ = ["TEMPORAL_FAMILIES", "Plan", "TemporalPretrainConfig", "plan_pretraining"]

#: Head families with a masked-reconstruction body (`geocrop.models.masked_series`).
TEMPORAL_FAMILIES = ("transformer", "inception", "tempcnn", "lstm")
#: Optimiser steps an adaptive run plans for, and its epoch bounds.
TARGET_STEPS = 2000
MIN_EPOCHS, MAX_EPOCHS = 10, 300
#: The learning rate decays linearly from ``lr`` to this share of it at the last planned step.
FINAL_LR_SHARE = 0.1


@dataclass(frozen=True)
class TemporalPretrainConfig:
    """Everything a temporal pretraining run depends on (see `geocrop.training.temporal_pretrain`)."""

    out: Path
    s2: str
    head: str = "transformer"
    #: Constructor keywords of the head (None: `geocrop train`'s defaults for the family).
    head_params: dict[str, Any] | None = None
    steps: int | Literal["auto"] = "auto"
    #: ``auto``: Sentinel-1 where the source has it; ``s1``: required; ``none``: S2 alone.
    second_modality: Literal["auto", "s1", "none"] = "auto"
    s1: str | None = None
    #: ``masked``: reconstruct hidden observations (+ Sentinel-1 there); ``contrastive``: NT-Xent between
    #: two augmented views of each series (`geocrop.training.temporal_contrast`).
    objective: Literal["masked", "contrastive"] = "masked"
    #: Share of a series' observed dates hidden and reconstructed (at least one per series).
    mask_ratio: float = 0.15
    #: Weight of the Sentinel-1 term (the second sensor's values at the hidden dates).
    second_weight: float = 1.0
    #: Series augmentations; None: date resampling on (it lifted fine-tuned and frozen TempCNN most
    #: with few labels, docs/pretraining.md), date dropout 0 for ``masked`` and 0.2 for ``contrastive``.
    date_dropout: float | None = None
    resample_dates: bool | None = None
    #: NT-Xent temperature of the contrastive objective (the paper's 0.07).
    temperature: float = 0.07
    epochs: int | None = None
    batch_size: int | None = None
    lr: float = 1e-3
    weight_decay: float = 1e-2
    #: Share of the series kept out of training for the held-out reconstruction signal.
    heldout: float = 0.1
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    #: Read assets wherever the imagery's catalog points (`geocrop.io.stac.check_asset_hrefs`).
    allow_any_asset_href: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "out", Path(self.out).expanduser())
        validate(self)

    def augment(self) -> SeriesAugment:
        """The augmentation this run applies (see ``date_dropout``/``resample_dates``)."""
        contrastive = self.objective == "contrastive"
        dropout = self.date_dropout if self.date_dropout is not None else (0.2 if contrastive else 0.0)
        resample = self.resample_dates if self.resample_dates is not None else True
        return SeriesAugment(dropout, resample)

    def params(self) -> dict[str, Any]:
        """The head's keywords: `geocrop train`'s defaults for the family, updated by ``head_params``."""
        from geocrop.training.hparams import DEFAULT_PARAMS

        return {**DEFAULT_PARAMS.get(self.head, {}), **dict(self.head_params or {})}

    def fingerprint(self, plan: Plan, n_train: int) -> dict[str, Any]:
        """What shapes the trajectory; a checkpoint only resumes under the same values."""
        keys = ("head", "mask_ratio", "second_weight", "lr")
        out = {k: getattr(self, k) for k in keys} | self.augment().to_dict()
        if self.objective != "masked":  # absent for masked runs, so their checkpoints still resume
            out |= {"objective": self.objective, "temperature": self.temperature}
        return out | {
            "params": self.params(),
            "weight_decay": self.weight_decay,
            "heldout": self.heldout,
            "seed": self.seed,
            "batch_size": plan.batch_size,
            "epochs": plan.epochs,
            "series": n_train,
        }


@dataclass(frozen=True)
class Plan:
    epochs: int
    batch_size: int

    def steps_per_epoch(self, n_train: int) -> int:
        return max(1, n_train // self.batch_size)


def plan_pretraining(config: TemporalPretrainConfig, n_train: int) -> Plan:
    """Epochs and batch for ``n_train`` series (module docstring); explicit settings win."""
    batch = config.batch_size or int(np.clip(2 ** round(math.log2(max(n_train, 1) / 10)), 16, 256))
    batch = max(2, min(batch, n_train))
    if config.epochs is not None:
        return Plan(config.epochs, batch)
    per_epoch = max(1, n_train // batch)
    return Plan(int(np.clip(math.ceil(TARGET_STEPS / per_epoch), MIN_EPOCHS, MAX_EPOCHS)), batch)


def validate(config: TemporalPretrainConfig) -> None:
    """Every check that needs no data, so a bad option fails before anything is read or written."""
    from geocrop.training.hparams import DEFAULT_PARAMS

    if config.head not in TEMPORAL_FAMILIES:
        raise InputError(
            f"`head` {config.head!r} cannot be pretrained along time; choose one of "
            f"{', '.join(TEMPORAL_FAMILIES)}",
            param="head",
        )
    unknown = sorted(set(config.head_params or {}) - set(DEFAULT_PARAMS[config.head]) - {"dropout"})
    if unknown:
        raise InputError(
            f"`head_params` {unknown} do not apply to head {config.head!r}; its options are: "
            f"{', '.join(sorted(DEFAULT_PARAMS[config.head]))}",
            param="head_params",
        )
    if config.second_modality not in ("auto", "s1", "none"):
        raise InputError(
            f"`second_modality` {config.second_modality!r} does not fit temporal pretraining; choose auto, "
            "s1 or none (PlanetScope cannot come as series)",
            param="second_modality",
        )
    if config.steps != "auto" and (not isinstance(config.steps, int) or config.steps < 2):
        raise InputError(
            f"`steps` {config.steps!r} is invalid; give 'auto' or a whole number >= 2", param="steps"
        )
    if not 0 < config.mask_ratio < 1:
        raise InputError(
            f"`mask_ratio` {config.mask_ratio} is not a fraction in (0, 1); give e.g. 0.15",
            param="mask_ratio",
        )
    if config.objective not in ("masked", "contrastive"):
        raise InputError(
            f"`objective` {config.objective!r} does not exist; choose masked or contrastive",
            param="objective",
        )
    if config.objective == "contrastive" and not config.augment().active:
        raise InputError(
            "`objective` contrastive compares two augmented views: give `date_dropout` > 0 or "
            "`resample_dates`, or leave both out for the defaults",
            param="objective",
        )
    if not (config.temperature > 0 and math.isfinite(config.temperature)):
        raise InputError(
            f"`temperature` must be a positive number, got {config.temperature}", param="temperature"
        )
    if config.date_dropout is not None and not 0 <= config.date_dropout < 1:
        raise InputError(
            f"`date_dropout` {config.date_dropout} is not a fraction in [0, 1); give e.g. 0.2 or 0 for none",
            param="date_dropout",
        )
    if not 0 <= config.heldout < 1:
        raise InputError(f"`heldout` {config.heldout} is not a fraction in [0, 1)", param="heldout")
    if not (config.second_weight >= 0 and math.isfinite(config.second_weight)):
        raise InputError(f"`second_weight` must be >= 0, got {config.second_weight}", param="second_weight")
    for name in ("epochs", "batch_size"):
        value = getattr(config, name)
        if value is not None and value < (2 if name == "batch_size" else 1):
            raise InputError(f"`{name}` {value} is too small; leave it out to adapt to the data", param=name)
    if not (config.lr > 0 and math.isfinite(config.lr)):
        raise InputError(f"`lr` must be a positive number, got {config.lr}", param="lr")
    if config.threads is not None and config.threads < 1:
        raise InputError(f"`threads` must be >= 1, got {config.threads}", param="threads")
    if config.device not in ("auto", "cpu") and not str(config.device).startswith("cuda"):
        raise InputError(
            f"`device` {config.device!r} is not one of auto, cpu, cuda; choose one of those", param="device"
        )
    check_run_folder(Path(config.out))
