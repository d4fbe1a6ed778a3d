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
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from geocrop.core.temporal import TemporalGrid
from geocrop.data.labelled import LabelledSeries, LabelSource, load_labelled
from geocrop.data.splits import split_fields, split_pixels
from geocrop.errors import GeocropWarning, InputError
from geocrop.io.bundle import save_bundle
from geocrop.io.bundle_metadata import ClassifierMetadata, Normalization, read_backbone_source
from geocrop.io.classes import class_colours, classes_from_names
from geocrop.io.provenance import training_provenance
from geocrop.models.device import resolve_device
from geocrop.models.registry import state_to_numpy
from geocrop.training.auto import fit_auto
from geocrop.training.calibration import (
    calibrated_proba,
    calibration_summary,
    class_shares,
    correction,
    fit_temperature,
)
from geocrop.training.features import (
    FrozenBackbone,
    encode,
    filled_band_mismatch,
    load_backbone,
    raw_bands,
)
from geocrop.training.fit import EpochStats, ProgressFn, TrainConfig, fit_head, plan_training
from geocrop.training.head_init import check_init, init_backbone, read_init
from geocrop.training.hparams import AUTO, HeadConfig, check_family
from geocrop.training.metrics import scores
from geocrop.training.trees import TREE_KINDS, fit_trees

log = logging.getLogger(__name__)

#: Share of the training groups a head with adaptive settings keeps back to pick its epoch.
INNER_SELECT = 0.2


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
            f"{where}, {selection['chosen']} chosen by {selection['folds_run']}-fold grouped inner "
            "validation on the training parcels"
        )
    if job.head.family in TREE_KINDS:
        return f"{where}, {job.head.family} trees"
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
        raise InputError(f"--out {out} must end in .safetensors (e.g. model.safetensors)")
    if out.parent.exists() and not out.parent.is_dir():
        raise InputError(f"--out {out}: {out.parent} is not a folder")
    return out


def prepare_data(
    source: LabelSource, *, scheme: str, n_train: int, n_val: int, seed: int
) -> tuple[LabelledSeries, np.ndarray, np.ndarray]:
    """Labelled series plus the (training, validation) pixel indices of the parcel split."""
    series = load_labelled(source, max_per_class=4 * (n_train + n_val), seed=seed)
    train_idx, val_idx = split_pixels(
        series.labels,
        series.groups,
        class_names=series.class_names,
        scheme=scheme,
        n_train=n_train,
        n_val=n_val,
        seed=seed,
        warn_unbalanced=series.kind == "parcels",  # a table's points are no pixels to balance
    )
    return series, train_idx, val_idx


def inner_split(series: LabelledSeries, train_idx: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(fit, select) indices: `INNER_SELECT` of the training groups, by class, pick the epoch.

    Drawn from the training part only, so the reported validation never chooses anything.
    """
    fit_groups, _ = split_fields(
        series.groups[train_idx],
        fractions=(1 - INNER_SELECT, INNER_SELECT),
        seed=seed + 7919,
        labels=series.labels[train_idx],
    )
    in_fit = np.isin(series.groups[train_idx], fit_groups)
    return train_idx[in_fit], train_idx[~in_fit]


@dataclass
class FittedHead:
    """What any head family gives back: the module, its spec and its validation probabilities.

    ``val_proba``: (N_val, K) what the bundle predicts at defaults, ``softmax(val_logits / temperature +
    log(class_shares / head prior))`` (`geocrop.training.calibration.correction`); ``val_logits``: the head's
    raw outputs; ``head_prior``: the prior they decide under (``uniform`` for a balanced loss, ``training``
    for the tree heads). ``class_shares``: the training part's
    class frequencies before balancing; ``temperature``: fitted on the inner split (None: not fitted);
    ``calibration``: ECE/NLL on that split before and after.
    """

    module: nn.Module
    spec: dict[str, Any]
    val_proba: np.ndarray
    history: list[EpochStats] = field(default_factory=list)
    resumed_from: int = 0
    best_epoch: int = 0
    val_logits: np.ndarray | None = None
    class_shares: np.ndarray | None = None
    head_prior: str = "uniform"
    temperature: float | None = None
    calibration: dict[str, float] = field(default_factory=dict)
    #: ``auto`` only: what it tried, each candidate's inner scores and why it chose (`fit_auto`).
    selection: dict[str, Any] | None = None


def fit_any_head(
    head: HeadConfig,
    series: LabelledSeries,
    features: Callable[[np.ndarray], np.ndarray],
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    *,
    config: TrainConfig,
    checkpoint: Path | None = None,
    progress: ProgressFn | None = None,
    note: Callable[[str], None] | None = None,
    shares: np.ndarray | None = None,
    calibrate: bool = True,
) -> FittedHead:
    """Fit ``head`` (deep or tree family, or ``auto``) on ``train_idx`` and score ``val_idx``.

    ``features(idx)`` gives the (len(idx), T, F) inputs of those series (normalised bands or frozen
    backbone features). Deep heads with adaptive settings keep back `INNER_SELECT` of the training groups
    to pick their epoch (`inner_split`). ``auto`` chooses its head on inner folds of ``train_idx``
    (`geocrop.training.auto`; ``note`` gets a line per inner fit) and refits it on all of them.

    ``shares``: the class frequencies the default probabilities are corrected for (None: the training
    parcels', `training_shares`). ``calibrate``: fit the temperature on the inner split (deep heads with
    adaptive settings: the split that picks the epoch; trees: a second fit without it). See `FittedHead`.
    """
    if head.family == AUTO:
        chosen = fit_auto(
            head,
            series,
            features,
            train_idx,
            val_idx,
            fit=fit_any_head,  # each candidate is fitted as --head <family> would be
            config=config,
            checkpoint=checkpoint,
            progress=progress,
            note=note,
        )
        assert isinstance(chosen, FittedHead)
        return chosen
    n_classes = len(series.class_names)
    x_va, y_va = features(val_idx), series.labels[val_idx]
    if shares is None:
        shares = training_shares(series, train_idx)
    # tree outputs follow the training frequencies despite their class weights (`calibration` docstring)
    head_prior = "training" if head.family in TREE_KINDS else "uniform"
    fix = correction(shares, frequencies=shares, head_prior=head_prior)
    if head.family in TREE_KINDS:
        module = fit_trees(
            head.family, features(train_idx), series.labels[train_idx], n_classes=n_classes, seed=config.seed
        )
        calibration: dict[str, float] = {}
        if calibrate:  # trees keep no inner split: a second fit without it gives held-out logits
            fit_idx, sel_idx = inner_split(series, train_idx, config.seed)
            if len(sel_idx) and len(np.unique(series.labels[fit_idx])) > 1:
                probe = fit_trees(
                    head.family,
                    features(fit_idx),
                    series.labels[fit_idx],
                    n_classes=n_classes,
                    seed=config.seed,
                )
                calibration = _calibrate(head_logits(probe, features(sel_idx)), series.labels[sel_idx], fix)
        return _fitted(module, dict(module.spec), x_va, (shares, fix, head_prior), calibration)
    spec = head.spec(in_features=int(x_va.shape[-1]), n_classes=n_classes, steps=int(x_va.shape[1]))
    select = None
    fit_idx = train_idx
    if config.adaptive:
        fit_idx, sel_idx = inner_split(series, train_idx, config.seed)
        select = (features(sel_idx), series.labels[sel_idx])
    result = fit_head(
        spec,
        (features(fit_idx), series.labels[fit_idx]),
        (x_va, y_va),
        config=config,
        final_lr=head.lr,
        checkpoint=checkpoint,
        progress=progress,
        select=select,
    )
    calibration = {}
    if calibrate and select is not None and len(select[1]):
        calibration = _calibrate(head_logits(result.head, select[0]), select[1], fix)
    return _fitted(
        result.head,
        spec,
        x_va,
        (shares, fix, head_prior),
        calibration,
        history=result.history,
        resumed_from=result.resumed_from,
        best_epoch=result.best_epoch,
    )


def training_shares(series: LabelledSeries, train_idx: np.ndarray) -> np.ndarray:
    """(K,) class frequencies of every series in the training parcels of ``train_idx``, before the
    per-class balancing drew ``train_idx`` from them: what a prior-corrected map assumes by default."""
    in_train = np.isin(series.groups, np.unique(series.groups[train_idx]))
    return class_shares(series.labels[in_train], len(series.class_names))


def head_logits(module: nn.Module, x: np.ndarray, batch: int = 4096) -> np.ndarray:
    """(N, K) float64 raw outputs of ``module`` (eval mode, on the CPU) for inputs x (N, T, F)."""
    module = module.cpu().eval()
    out = []
    with torch.inference_mode():
        for s in range(0, len(x), batch):
            out.append(module(torch.from_numpy(np.ascontiguousarray(x[s : s + batch], np.float32))).double())
    return torch.cat(out).numpy() if out else np.zeros((0, 0))


def _calibrate(logits: np.ndarray, labels: np.ndarray, shares: np.ndarray | None) -> dict[str, float]:
    """The temperature fitted on held-out ``logits`` under the default correction ``shares`` (None: none:
    the held-out labels follow the training frequencies), with ECE/NLL before and
    after (`geocrop.training.calibration`)."""
    temperature = fit_temperature(logits, labels, shares=shares)
    return calibration_summary(logits, labels, temperature=temperature, shares=shares)


def _fitted(
    module: nn.Module,
    spec: dict[str, Any],
    x_va: np.ndarray,
    priors: tuple[np.ndarray, np.ndarray | None, str],
    calibration: dict[str, float],
    **history: Any,
) -> FittedHead:
    shares, fix, head_prior = priors  # training frequencies, default correction, head prior
    logits = head_logits(module, x_va)
    temperature = calibration.get("temperature")
    proba = calibrated_proba(logits, temperature=temperature or 1.0, shares=fix).astype(np.float32)
    return FittedHead(
        module,
        spec,
        proba,
        **history,
        val_logits=logits,
        class_shares=shares,
        head_prior=head_prior,
        temperature=temperature,
        calibration=calibration,
    )


def cached_features(
    series: LabelledSeries, backbone: FrozenBackbone, rows: np.ndarray, device: torch.device
) -> Callable[[np.ndarray], np.ndarray]:
    """``features(idx)`` for any ``idx`` within ``rows``, encoding ``rows`` once."""
    rows = np.asarray(rows)
    encoded = encode(series.values[rows], backbone, device=device)
    position = np.full(len(series), -1, dtype=np.int64)
    position[rows] = np.arange(len(rows))

    def features(idx: np.ndarray) -> np.ndarray:
        return encoded[position[np.asarray(idx)]]

    return features


def train_model(
    job: TrainJob,
    *,
    progress: ProgressFn | None = None,
    stage: Callable[[str], None] | None = None,
) -> TrainResult:
    """`geocrop train`: labelled data -> split -> features -> head -> map-ready bundle at ``job.out``.

    ``progress`` gets each finished epoch's `EpochStats`; ``stage`` a line before each step that comes
    first (reading imagery, encoding, training). Every input is checked before anything is written; the
    only file written before the bundle is the per-epoch checkpoint (`checkpoint_path`), which a rerun
    resumes from and success removes.
    """
    say = stage or (lambda message: None)
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
    elif job.head.family == AUTO:
        candidates = ", ".join(job.head.params.get("candidates", ()))
        say(f"choosing the head among {candidates} by grouped inner validation on the training parcels")
    else:
        plan = plan_training(job.config, len(train_idx))
        say(f"training the {job.head.family} head (up to {plan.epochs} epochs, batch {plan.batch_size})")
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
        progress=progress,
        note=say,
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
        class_colours=class_colours(series.class_names),
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
        backbone=backbone, head=fitted.module, head_spec=fitted.spec, info=info
    )
    save_bundle(out, tensors, metadata)
    for leftover in (ckpt, ckpt.with_suffix(".json")):
        leftover.unlink(missing_ok=True)
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
    )
