"""`geocrop train`'s pipeline: labelled series -> split -> features -> any head -> a map-ready bundle.

Deep heads are fitted by `geocrop.training.fit` (settings that adapt to the number of series, an inner
selection split drawn from the training groups only, class-balanced loss); the tree baselines (``rf``,
``gbm``) by `geocrop.training.trees`. Every head is scored on the same held-out groups (OA, macro-F1,
kappa) and lands in the same bundle layout, so `geocrop map` and `geocrop predict` apply any of them.

`train_model` is the whole command: labelled data -> parcel split -> balanced pixels -> frozen backbone
features (computed once) -> head -> a map-ready bundle (backbone + head + class names and colours +
normalisation + temporal grid) written atomically by `geocrop.io.bundle`.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from geocrop.core.progress import Progress
from geocrop.core.temporal import TemporalGrid
from geocrop.data.labelled import LabelledSeries, LabelSource, load_labelled, split_series
from geocrop.errors import GeocropWarning, InputError
from geocrop.io.bundle import save_bundle
from geocrop.io.bundle_metadata import ClassifierMetadata, Normalization, read_backbone_source
from geocrop.io.classes import classes_from_names
from geocrop.io.colour_table import with_colours
from geocrop.io.provenance import training_provenance
from geocrop.models.device import resolve_device
from geocrop.models.registry import state_to_numpy
from geocrop.training.any_head import cached_features, fit_any_head, training_shares
from geocrop.training.calibration import (
    calibrated_proba,
    correction,
)
from geocrop.training.features import (
    FrozenBackbone,
    filled_band_mismatch,
    load_backbone,
    raw_bands,
)
from geocrop.training.fit import EpochStats, TrainConfig, plan_training
from geocrop.training.head_init import check_init, init_backbone, read_init, trained_spec
from geocrop.training.hparams import AUTO, HeadConfig, check_family
from geocrop.training.metrics import scores
from geocrop.training.progress import TrainBar
from geocrop.training.train_figures import write_training_figures
from geocrop.training.trees import TREE_KINDS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelBundleInfo:
    """What a map-ready bundle records besides the weights."""

    class_names: tuple[str, ...]
    class_colours: tuple[str, ...]
    grid: TemporalGrid
    missing_bands: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


def bundle_payload(
    *, backbone: FrozenBackbone, head: nn.Module, head_spec: Mapping[str, Any], info: ModelBundleInfo
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(tensors, metadata) of a map-ready bundle in the layout `geocrop.inference.schema` reads."""
    tensors = state_to_numpy(head, "head")
    if backbone.module is not None:
        tensors.update(state_to_numpy(backbone.module, "backbone"))
    source = None
    if backbone.path is not None:
        used = ("mode", "loss", "corruption_rate", "corruption")
        source = read_backbone_source(
            {"path": str(backbone.path), **{k: backbone.metadata[k] for k in used if k in backbone.metadata}}
        )
    extra = dict(info.extra)
    metadata = ClassifierMetadata(
        head=dict(head_spec),
        bands=tuple(backbone.bands),
        normalization=Normalization(tuple(backbone.mean.tolist()), tuple(backbone.std.tolist())),
        classes=classes_from_names(info.class_names, info.class_colours),
        steps=info.grid.steps,
        backbone=backbone.spec,
        grid_start=info.grid.start,
        grid_end=info.grid.end,
        missing_bands=tuple(info.missing_bands),
        backbone_source=source,
        training=extra.pop("training", {}),
        provenance=extra.pop("provenance", {}),
        class_frequencies=extra.pop("class_frequencies", None),
        temperature=extra.pop("temperature", None),
        head_prior=extra.pop("head_prior", None),
        extra=extra,
    ).to_dict()
    return tensors, metadata


def _protocol(job: TrainJob, best_epoch: int, epochs_run: int, selection: Mapping[str, Any] | None) -> str:
    """How the recorded accuracy was measured, in words for the map's provenance."""
    where = f"series of held-out validation parcels ({job.scheme} split by parcel)"
    if selection is not None:
        return (
            f"{where}, {selection['chosen']} chosen on {selection['selection_series']} series of held-out "
            "training parcels"
        )
    if job.head.family in TREE_KINDS:
        return f"{where}, {job.head.family} trees"
    if job.config.fits_frozen_logistic:
        return f"{where}, a logistic regression fitted on the frozen pretrained body (no epochs)"
    if best_epoch and best_epoch != epochs_run:
        return (
            f"{where}, epoch {best_epoch} of {epochs_run} (picked on a separate 20 % of the training parcels)"
        )
    return f"{where}, after the last epoch ({epochs_run})"


@dataclass(frozen=True)
class TrainJob:
    """Everything `geocrop train` needs: labels, backbone (None = raw bands), head, pixels, output."""

    source: LabelSource
    out: Path
    head: HeadConfig
    backbone: Path | None = None
    config: TrainConfig = field(default_factory=TrainConfig)
    n_train: int = 5000
    n_val: int = 1000
    scheme: str = "70-30"
    #: Class name -> "#rrggbb" for the classes a user's colour table names (`geocrop.io.colour_table`);
    #: the others keep geocrop's colours. Every map made with the bundle draws these.
    colours: dict[str, str] | None = None


@dataclass(frozen=True)
class TrainResult:
    """Where the bundle went, the epochs run (empty for tree heads), the kept epoch and validation scores
    (``scores``: OA, macro-F1, kappa on the held-out groups)."""

    bundle: Path
    history: list[EpochStats]
    class_names: tuple[str, ...]
    n_train: int
    n_val: int
    resumed_from: int
    scores: dict[str, float] = field(default_factory=dict)
    best_epoch: int = 0
    #: ``--head auto``: what it tried and chose (the bundle's ``training.auto`` record); else None.
    selection: dict[str, Any] | None = None
    #: The training curve and validation confusion matrix drawn beside the bundle (`train_figures`).
    figures: tuple[Path, ...] = ()

    @property
    def val_accuracy(self) -> float:
        return self.scores.get("oa", float("nan"))


def _finite_or_none(values: dict[str, Any]) -> dict[str, Any]:
    """A record with NaN/inf floats as None, so it is valid JSON in the bundle."""
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in values.items()}


def checkpoint_path(out: Path) -> Path:
    """Where `train_model` keeps its per-epoch checkpoint for ``out`` (removed once the bundle exists)."""
    return out.with_name(f".{out.stem}.checkpoint.safetensors")


def check_output(out: Path) -> Path:
    if out.suffix != ".safetensors":
        raise InputError(f"`out` {out} must end in .safetensors (e.g. model.safetensors)", param="out")
    if out.parent.exists() and not out.parent.is_dir():
        raise InputError(f"`out` {out}: {out.parent} is not a folder", param="out")
    return out


def prepare_data(
    source: LabelSource, *, scheme: str, n_train: int, n_val: int, seed: int
) -> tuple[LabelledSeries, np.ndarray, np.ndarray]:
    """Labelled series plus the (training, validation) pixel indices of the parcel split."""
    series = load_labelled(source, max_per_class=4 * (n_train + n_val), seed=seed)
    train_idx, val_idx = split_series(series, scheme=scheme, n_train=n_train, n_val=n_val, seed=seed)
    return series, train_idx, val_idx


def train_model(
    job: TrainJob,
    *,
    progress: Progress | None = None,
) -> TrainResult:
    """`geocrop train`: labelled data -> split -> features -> head -> map-ready bundle at ``job.out``.

    ``progress`` gets a `ProgressEvent` before each step (reading imagery, encoding, training), one per
    inner fit of ``auto`` and one per finished epoch (`geocrop.training.progress.TrainBar`). Every input
    is checked before anything is written; the only file written before the bundle is the per-epoch
    checkpoint (`checkpoint_path`), which a rerun resumes from and success removes.
    """
    bar = TrainBar(progress)
    say = bar.step
    out = check_output(Path(job.out))
    check_family(job.head.family)
    pretrained = read_init(job.config.init) if job.config.init is not None else None
    if pretrained is not None:  # before any data is read: the family, and no backbone under it
        check_init(pretrained, family=job.head.family)
        if job.backbone is not None:
            raise InputError(
                "`init` is a head pretrained on raw bands; drop `backbone` to start from it", param="backbone"
            )
    backbone = load_backbone(job.backbone) if job.backbone is not None else None
    say(f"reading the labelled series from {job.source.path.name}")
    series, train_idx, val_idx = prepare_data(
        job.source, scheme=job.scheme, n_train=job.n_train, n_val=job.n_val, seed=job.config.seed
    )
    if pretrained is not None:  # inputs standardised as the head saw them in pretraining
        backbone = init_backbone(pretrained)
    elif backbone is None:
        backbone = raw_bands(series.values[train_idx], bands=series.bands)
    mismatch = filled_band_mismatch(backbone, series.missing_bands)
    if mismatch is not None:
        warnings.warn(mismatch, GeocropWarning, stacklevel=2)
    what = "encoding" if backbone.module is not None else "normalising"
    say(f"{what} {len(train_idx):,} training and {len(val_idx):,} validation series")
    ckpt = checkpoint_path(out)
    if job.head.family in TREE_KINDS:
        say(f"fitting the {job.head.family} trees")
    elif job.config.fits_frozen_logistic:
        say(f"fitting the {job.head.family} classifier on its frozen pretrained body (logistic regression)")
    elif job.head.family == AUTO:
        candidates = ", ".join(job.head.params.get("candidates", ()))
        say(f"choosing the head among {candidates} (or a mean of two) on held-out training parcels")
    else:
        plan = plan_training(job.config, len(train_idx))
        say(
            f"training the {job.head.family} head (up to {plan.epochs} epochs, batch {plan.batch_size}, "
            f"lr {job.config.initial_lr:.0e} -> {job.head.lr:.0e})",
            epochs=plan.epochs,
            initial_lr=job.config.initial_lr,
        )
    device = resolve_device(job.config.device)
    features = cached_features(series, backbone, np.concatenate([train_idx, val_idx]), device)
    fitted = fit_any_head(
        job.head,
        series,
        features,
        train_idx,
        val_idx,
        config=job.config,
        checkpoint=ckpt,
        progress=bar.epoch,
        note=bar.inner,
    )
    y_va = series.labels[val_idx]
    val_scores = scores(y_va, fitted.val_proba.argmax(axis=1), len(series.class_names))
    shares = fitted.class_shares if fitted.class_shares is not None else training_shares(series, train_idx)
    balanced = {}
    if fitted.val_logits is not None:  # the same head deciding as if classes were equally common
        fix = correction(None, frequencies=shares, head_prior=fitted.head_prior)
        uniform = calibrated_proba(fitted.val_logits, shares=fix).argmax(axis=1)
        balanced = {"val_scores_uniform": scores(y_va, uniform, len(shares))}
    ids = series.ids if series.ids is not None else None
    info = ModelBundleInfo(
        class_names=series.class_names,
        class_colours=with_colours(series.class_names, job.colours),
        grid=series.grid,
        missing_bands=series.missing_bands,
        extra={
            "training": {
                "labels": Path(job.source.path).name,
                "class_column": job.source.class_column,
                "split": job.scheme,
                "pixels_per_class": [job.n_train, job.n_val],
                "n_train": len(train_idx),
                "n_val": len(val_idx),
                "val_accuracy": val_scores["oa"],
                "val_scores": val_scores,
                **balanced,
                "calibration": _finite_or_none(fitted.calibration),
                "best_epoch": fitted.best_epoch,
                "history": [_finite_or_none(asdict(h)) for h in fitted.history],
                "config": {k: v for k, v in asdict(job.config).items() if k != "device"},
                "final_lr": job.head.lr,
                **({"auto": fitted.selection} if fitted.selection is not None else {}),
                **(
                    {"train_ids": ids[train_idx].tolist(), "val_ids": ids[val_idx].tolist()}
                    if ids is not None
                    else {}
                ),
            },
            "provenance": training_provenance(
                job.source,
                class_names=series.class_names,
                grid=series.grid,
                accuracy=val_scores["oa"],
                protocol=_protocol(job, fitted.best_epoch, len(fitted.history), fitted.selection),
                sample_ids=None if ids is None else ids[train_idx].tolist(),
            ),
            "class_frequencies": [float(v) for v in shares],
            "head_prior": fitted.head_prior,
            "temperature": fitted.temperature,
        },
    )
    tensors, metadata = bundle_payload(
        backbone=backbone, head=fitted.module, head_spec=trained_spec(fitted.spec, job.config), info=info
    )
    save_bundle(out, tensors, metadata)
    for leftover in (ckpt, ckpt.with_suffix(".json")):
        leftover.unlink(missing_ok=True)
    figures = write_training_figures(
        out,
        history=fitted.history,
        best_epoch=fitted.best_epoch,
        class_names=series.class_names,
        y_true=y_va,
        y_pred=fitted.val_proba.argmax(axis=1),
        head=str(fitted.spec.get("name", job.head.family)),
    )
    return TrainResult(
        out,
        fitted.history,
        series.class_names,
        len(train_idx),
        len(val_idx),
        fitted.resumed_from,
        val_scores,
        fitted.best_epoch,
        fitted.selection,
        figures,
    )
