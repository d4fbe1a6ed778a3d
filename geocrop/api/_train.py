"""`train`, `evaluate`, `predict`: temporal heads on labelled series, their evaluation, their use."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Required, TypedDict, Unpack

from geocrop.api_types import BundleLike, DateLike, Device, PathLike, Progress, emit
from geocrop.core.params import config_args, signature_from
from geocrop.errors import InputError
from geocrop.models.head_families import DeepFamily, HeadName, TreeFamily, check_head_options
from geocrop.training.labelled_options import (
    EvaluateOptions,
    SplitScheme,
    TrainOptions,
)

if TYPE_CHECKING:
    from geocrop.training.evaluate import EvaluateResult
    from geocrop.training.train import TrainResult

__all__ = [
    "DeepFamily",
    "EvaluateArguments",
    "HeadFamily",
    "LabelledArguments",
    "SplitScheme",
    "TrainArguments",
    "TreeFamily",
    "evaluate",
    "train",
]

#: Temporal head families, the tree baselines, and ``auto`` (`geocrop.training.auto`'s choice among
#: TempCNN, InceptionTime and gradient boosting, or the mean of gbm and a deep head):
#: `geocrop.models.head_families`'.
HeadFamily = HeadName


class LabelledArguments(TypedDict, total=False):
    """The keywords `train` and `evaluate` share, typed as callers may give them; their defaults, help
    and checks are `LabelledOptions`' declarations (`signature_from` holds the two in step)."""

    labels: Required[PathLike]
    class_column: Required[str]
    group_column: str | None
    id_column: str | None
    s2: PathLike | None
    start: DateLike | None
    end: DateLike | None
    steps: int | Literal["auto"]
    class_map: PathLike | None
    drop_unmapped: bool
    nodata: Sequence[float]
    scale: float | None
    min_parcels: int | Literal["auto"]
    split: SplitScheme
    train_pixels: int
    val_pixels: int
    epochs: int | None
    batch_size: int | None
    seed: int
    device: Device
    allow_any_asset_href: bool


class TrainArguments(LabelledArguments, total=False):
    """`train`'s keywords (`TrainOptions`)."""

    backbone: BundleLike | None
    head: HeadFamily
    head_params: Mapping[str, Any] | None
    lr: float | None
    final_lr: float | None
    init: PathLike | None
    freeze_init: bool
    out: Required[PathLike]
    colors: PathLike | None


class EvaluateArguments(LabelledArguments, total=False):
    """`evaluate`'s keywords (`EvaluateOptions`)."""

    bimodal: Sequence[BundleLike]
    unimodal: Sequence[BundleLike]
    temporal: Sequence[PathLike]
    temporal_frozen: Sequence[PathLike]
    configs: int | None
    folds: int
    families: Sequence[DeepFamily] | None
    baselines: Sequence[TreeFamily] | None
    hparam_seed: int
    labels_per_class: Sequence[int | Literal["all"] | None] | None
    draws: int | Sequence[int]
    report_only: bool
    simulated: bool
    lr: float
    out: Required[PathLike]


@signature_from(TrainOptions, TrainArguments)
def train(*, progress: Progress | None = None, **arguments: Unpack[TrainArguments]) -> TrainResult:
    """Train a ``head`` on ``labels`` (parcels + an ``s2`` source, or a samples table) and write a
    map-ready bundle at ``out`` (``.safetensors``); see `geocrop.training.train`.

    ``head`` ``"auto"`` (default) fits TempCNN, InceptionTime and gradient boosting once each and chooses
    on a held-out 20 % selection split of the training parcels: the mean of gbm and one deep head, unless
    a single head wins by more than 2 paired bootstrap standard errors, and never a head below the
    majority class's OA; the bundle records why (`geocrop.training.auto`; ``head_params={"candidates":
    [...]}`` narrows the choice).
    ``head_params`` override the family's default configuration (e.g. ``{"d_model": 32}``);
    ``backbone`` is a pretrained bundle (path or `PretrainResult`), else raw bands. ``epochs`` and
    ``batch_size`` None adapt to the data; ``lr`` (initial) None is 1e-3. Options that do not apply to
    ``head`` are refused (`geocrop.models.head_families.check_head_options`). ``init``: a pretrained head
    (``head.safetensors`` of `pretrain` with ``mode="temporal"``) the head starts from, with its
    architecture (``head`` ``"auto"`` takes its family); ``freeze_init`` trains only the classifier
    layer on top of it (`geocrop.training.head_init`). The returned `TrainResult` (``.bundle``,
    ``.scores``) can be passed as ``model=`` to `map_aoi` and `predict`. ``colors``: a class colour table
    (CSV, JSON or a QGIS ``.qml``; `geocrop.io.colour_table`) that the bundle carries for the classes it
    names, so every map, style and web page made with it draws them.
    """
    from geocrop.io.colour_table import read_colour_table
    from geocrop.training.hparams import DEFAULT_FINAL_LR, HeadConfig, default_config
    from geocrop.training.train import TrainJob, train_model

    options = TrainOptions(**config_args(TrainOptions, arguments))
    head, head_params = options.head, dict(options.head_params or {})
    pretrained = None
    if options.init is not None:  # the pretrained head decides the family (for auto) and the architecture
        from geocrop.training.head_init import check_init, check_params, read_init

        pretrained = read_init(options.init)
        head = pretrained.family if head == "auto" else head  # type: ignore[assignment]
        check_init(pretrained, family=head)
        check_params(pretrained, head_params)
    elif options.freeze_init:
        raise InputError(
            "`freeze_init` needs a pretrained head to freeze; give `init` HEAD.safetensors or drop it",
            param="freeze_init",
        )
    defaults = default_config(head)
    if pretrained is not None:
        defaults = HeadConfig(head, {**defaults.params, **pretrained.head_params()}, defaults.lr)
    settings = {name: getattr(options, name) for name in ("epochs", "batch_size", "lr", "final_lr")}
    check_head_options(head, {**head_params, **settings})
    final_lr = DEFAULT_FINAL_LR if options.final_lr is None else options.final_lr
    job = TrainJob(
        source=options.source(),
        out=options.out,
        head=HeadConfig(head, {**defaults.params, **head_params}, final_lr),
        backbone=options.backbone,
        config=dataclasses.replace(
            options.train_config(1e-3 if options.lr is None else options.lr),
            init=None if options.init is None else os.fspath(options.init),
            freeze_init=options.freeze_init,
        ),
        n_train=options.train_pixels,
        n_val=options.val_pixels,
        scheme=options.split,
        colours=None if options.colors is None else read_colour_table(options.colors),
    )
    result = train_model(job, progress=progress)
    emit(progress, "train", 1.0, f"wrote {result.bundle}")
    return result


@signature_from(EvaluateOptions, EvaluateArguments)
def evaluate(*, progress: Progress | None = None, **arguments: Unpack[EvaluateArguments]) -> EvaluateResult:
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

    options = EvaluateOptions(**config_args(EvaluateOptions, arguments))
    families_and_baselines = {
        name: getattr(options, name)
        for name in ("families", "baselines")
        if getattr(options, name) is not None
    }
    counts = (None,) if options.labels_per_class is None else check_labels_per_class(options.labels_per_class)
    draws = options.draws
    check_draws(draws, counts)
    job = EvaluateJob(
        source=options.source(),
        out=options.out,
        bimodal=options.bimodal,
        unimodal=options.unimodal,
        temporal=options.temporal,
        temporal_frozen=options.temporal_frozen,
        **families_and_baselines,
        n_configs=options.configs,
        folds=options.folds,
        config=options.train_config(options.lr),
        n_train=options.train_pixels,
        n_val=options.val_pixels,
        scheme=options.split,
        hparam_seed=options.hparam_seed,
        data_note=SIMULATED_CAVEAT if options.simulated else None,
        labels_per_class=counts,
        draws=draws if isinstance(draws, int) else tuple(draws),
        report_only=options.report_only,
    )
    result = run_evaluate(job, progress=progress)
    emit(
        progress,
        "evaluate",
        1.0,
        f"{result.trained} run(s) trained, {result.reused} reused; report {result.report}",
    )
    return result
