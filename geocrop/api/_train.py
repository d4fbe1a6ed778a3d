"""`train`, `evaluate`, `predict`: temporal heads on labelled series, their evaluation, their use."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from geocrop.api_types import (
    BundleLike,
    DateLike,
    Device,
    PathLike,
    Progress,
    as_bundle,
    as_path,
    emit,
)
from geocrop.core.params import config_args
from geocrop.errors import InputError
from geocrop.models.registry import DeepFamily, HeadName, TreeFamily, check_head_options
from geocrop.training.labelled_options import LabelledOptions, SplitScheme

if TYPE_CHECKING:
    from geocrop.training.evaluate import EvaluateResult
    from geocrop.training.train import TrainResult

__all__ = ["DeepFamily", "HeadFamily", "SplitScheme", "TreeFamily", "evaluate", "train"]

#: Temporal head families, the tree baselines, and ``auto`` (the one of TempCNN, InceptionTime and
#: gradient boosting, or the mean of two, that wins on inner validation): `geocrop.models.registry`'s.
HeadFamily = HeadName


def train(
    *,
    labels: PathLike,
    class_column: str,
    out: PathLike,
    head: HeadFamily = "auto",
    head_params: Mapping[str, Any] | None = None,
    backbone: BundleLike | None = None,
    s2: PathLike | None = None,
    start: DateLike | None = None,
    end: DateLike | None = None,
    group_column: str | None = None,
    id_column: str | None = None,
    steps: int | Literal["auto"] = "auto",
    min_parcels: int | Literal["auto"] = "auto",
    class_map: PathLike | None = None,
    drop_unmapped: bool = False,
    nodata: Sequence[float] = (),
    scale: float | None = None,
    split: SplitScheme = "70-30",
    train_pixels: int = 5000,
    val_pixels: int = 1000,
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    final_lr: float | None = None,
    seed: int = 0,
    device: Device = "auto",
    init: PathLike | None = None,
    freeze_init: bool = False,
    allow_any_asset_href: bool = False,
    progress: Progress | None = None,
) -> TrainResult:
    """Train a ``head`` on ``labels`` (parcels + an ``s2`` source, or a samples table) and write a
    map-ready bundle at ``out`` (``.safetensors``); see `geocrop.training.train`.

    ``head`` ``"auto"`` (default) chooses among TempCNN, InceptionTime and gradient boosting (or the mean
    of the best two) by grouped inner validation on the training parcels and records why in the bundle
    (`geocrop.training.auto`; ``head_params={"candidates": [...]}`` narrows the choice).
    ``head_params`` override the family's default configuration (e.g. ``{"d_model": 32}``);
    ``backbone`` is a pretrained bundle (path or `PretrainResult`), else raw bands. ``epochs`` and
    ``batch_size`` None adapt to the data; ``lr`` (initial) None is 1e-3. Options that do not apply to
    ``head`` are refused (`geocrop.models.registry.check_head_options`). ``init``: a pretrained head
    (``head.safetensors`` of `pretrain` with ``mode="temporal"``) the head starts from, with its
    architecture (``head`` ``"auto"`` takes its family); ``freeze_init`` trains only the classifier
    layer on top of it (`geocrop.training.head_init`). The returned `TrainResult` (``.bundle``,
    ``.scores``) can be passed as ``model=`` to `map_aoi` and `predict`.
    """
    from geocrop.training.hparams import DEFAULT_FINAL_LR, HeadConfig, default_config
    from geocrop.training.train import TrainJob, train_model

    options = LabelledOptions(**config_args(LabelledOptions, locals()))
    pretrained = None
    if init is not None:  # the pretrained head decides the family (for auto) and the architecture
        from geocrop.training.head_init import check_init, check_params, read_init

        pretrained = read_init(as_path(init, "init"))
        head = pretrained.family if head == "auto" else head  # type: ignore[assignment]
        check_init(pretrained, family=head)
        check_params(pretrained, dict(head_params or {}))
    elif freeze_init:
        raise InputError(
            "`freeze_init` needs a pretrained head to freeze; give `init` HEAD.safetensors or drop it",
            param="freeze_init",
        )
    defaults = default_config(head)
    if pretrained is not None:
        defaults = HeadConfig(head, {**defaults.params, **pretrained.head_params()}, defaults.lr)
    extra = dict(head_params or {})
    settings = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "final_lr": final_lr}
    check_head_options(head, {**extra, **settings})
    job = TrainJob(
        source=options.source(),
        out=as_path(out, "out"),
        head=HeadConfig(
            head, {**defaults.params, **extra}, DEFAULT_FINAL_LR if final_lr is None else final_lr
        ),
        backbone=None if backbone is None else as_bundle(backbone, "backbone"),
        config=dataclasses.replace(
            options.train_config(1e-3 if lr is None else lr),
            init=None if init is None else os.fspath(as_path(init, "init")),
            freeze_init=freeze_init,
        ),
        n_train=options.train_pixels,
        n_val=options.val_pixels,
        scheme=options.split,
    )
    result = train_model(job, progress=progress)
    emit(progress, "train", 1.0, f"wrote {result.bundle}")
    return result


def evaluate(
    *,
    labels: PathLike,
    class_column: str,
    out: PathLike,
    families: Sequence[DeepFamily] | None = None,
    baselines: Sequence[TreeFamily] | None = None,
    bimodal: Sequence[BundleLike] = (),
    unimodal: Sequence[BundleLike] = (),
    temporal: Sequence[PathLike] = (),
    temporal_frozen: Sequence[PathLike] = (),
    configs: int | None = None,
    folds: int = 5,
    hparam_seed: int = 0,
    labels_per_class: Sequence[int | Literal["all"] | None] | None = None,
    draws: int | Sequence[int] = 3,
    report_only: bool = False,
    simulated: bool = False,
    s2: PathLike | None = None,
    start: DateLike | None = None,
    end: DateLike | None = None,
    group_column: str | None = None,
    id_column: str | None = None,
    steps: int | Literal["auto"] = "auto",
    min_parcels: int | Literal["auto"] = "auto",
    class_map: PathLike | None = None,
    drop_unmapped: bool = False,
    nodata: Sequence[float] = (),
    scale: float | None = None,
    split: SplitScheme = "70-30",
    train_pixels: int = 5000,
    val_pixels: int = 1000,
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float = 1e-3,
    seed: int = 0,
    device: Device = "auto",
    allow_any_asset_href: bool = False,
    progress: Progress | None = None,
) -> EvaluateResult:
    """Every head family beside the majority class and the tree baselines on grouped ``folds``, plus the
    paper's protocol when ``bimodal``/``unimodal`` backbones are given; the report goes into the folder
    ``out``. ``families``/``baselines`` None: every deep family / both tree baselines (an empty list: none).
    ``configs`` None: each family's default configuration, else N drawn per family (paper: 10).
    ``temporal``/``temporal_frozen``: pretrained temporal heads (``head.safetensors`` of `pretrain` with
    ``mode="temporal"``), each starting its own family's head on raw bands, fine-tuned or with the body
    frozen. ``labels_per_class`` (e.g. ``[5, 10, 20, 50, "all"]``; None: all labels only) also trains every
    method on ``draws`` seeded draws (one number, or one per count) of that many parcels per class of
    each fold and adds learning curves to the report. ``report_only`` trains nothing and reports the runs
    already in ``out``'s journal. ``simulated`` labels the report as made from simulated data. Reruns
    resume; see `geocrop.training.evaluate`.
    """
    from geocrop.training.evaluate import EvaluateJob
    from geocrop.training.evaluate import evaluate as run_evaluate
    from geocrop.training.label_draws import check_draws, check_labels_per_class
    from geocrop.training.report import SIMULATED_CAVEAT

    options = LabelledOptions(**config_args(LabelledOptions, locals()))
    if isinstance(families, str) or isinstance(baselines, str):
        which = "families" if isinstance(families, str) else "baselines"
        raise InputError(f"`{which}` is a string; give a list such as ['lstm', 'transformer']", param=which)
    families_and_baselines = {
        name: tuple(value)
        for name, value in (("families", families), ("baselines", baselines))
        if value is not None
    }
    counts = (None,) if labels_per_class is None else check_labels_per_class(labels_per_class)
    check_draws(draws, counts)
    job = EvaluateJob(
        source=options.source(),
        out=as_path(out, "out"),
        bimodal=tuple(as_bundle(b, "bimodal") for b in bimodal),
        unimodal=tuple(as_bundle(b, "unimodal") for b in unimodal),
        temporal=tuple(as_path(p, "temporal") for p in temporal),
        temporal_frozen=tuple(as_path(p, "temporal_frozen") for p in temporal_frozen),
        **families_and_baselines,
        n_configs=configs,
        folds=folds,
        config=options.train_config(lr),
        n_train=options.train_pixels,
        n_val=options.val_pixels,
        scheme=options.split,
        hparam_seed=hparam_seed,
        data_note=SIMULATED_CAVEAT if simulated else None,
        labels_per_class=counts,
        draws=draws if isinstance(draws, int) else tuple(draws),
        report_only=report_only,
    )
    result = run_evaluate(job, progress=progress)
    emit(
        progress,
        "evaluate",
        1.0,
        f"{result.trained} run(s) trained, {result.reused} reused; report {result.report}",
    )
    return result
