"""`geocrop evaluate`: the paper's protocol (section 5) on the user's labelled data, with its spread.

Every method is trained and scored on the same **grouped, stratified folds** (`geocrop.data.splits.
grouped_folds`: each parcel validates in exactly one fold; ``folds=1`` is the paper's single split):

- the **majority class** of each fold's training part (the floor every method must clear);
- the **tree baselines** ``rf`` and ``gbm`` (`geocrop.training.trees`) on the normalised bands;
- each **deep head family** on each input variant: ``supervised`` (the raw 12 bands, section 5.1),
  ``unimodal`` (features of each SCARF backbone bundle, section 5.2), ``bimodal`` (features of each
  bi-modal backbone bundle, section 5.3); with ``n_configs=None`` the family's default configuration
  (what `geocrop train` uses), else N configurations drawn from section 5.1's space (the paper's 10).

With ``labels_per_class`` (e.g. ``(5, 10, 20, None)``; None = all labels) every method is also trained
on seeded draws of that many parcels per class from each fold's training part and scored on the full
held-out fold (`geocrop.training.label_draws`); the report adds learning curves
(`geocrop.training.curves`). The tables of the paper's protocol use the all-label runs.

Each finished run is appended to ``results.jsonl`` in the output folder (one JSON line: key, fold,
labels and draw, configuration, scores, predictions; `geocrop.training.journal`) and deep heads checkpoint
after every epoch, so an interrupted
evaluation resumes where it stopped and never retrains a finished run. ``evaluation.json`` holds the
setup's fingerprint: rerunning into a folder made by a different setup is refused instead of mixing
results. The report (`geocrop.training.report`) is rebuilt from the journal at the end.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from geocrop.core.progress import Progress, RunState, RunStatus
from geocrop.data.labelled import load_labelled
from geocrop.models.device import resolve_device
from geocrop.models.season_parts import PART_POOLED
from geocrop.training.any_head import cached_features, fit_any_head
from geocrop.training.both_sides import with_both_sides
from geocrop.training.curves import learning_curve_section
from geocrop.training.evaluate_job import (
    EvaluateJob,
    EvaluateResult,
    check_job,
    job_configs,
    job_variants,
    pretrained_heads,
)
from geocrop.training.features import FrozenBackbone, load_backbone, raw_bands
from geocrop.training.fit import TrainConfig, data_digest
from geocrop.training.head_bundle import PretrainedHead
from geocrop.training.head_init import check_init, init_backbone
from geocrop.training.hparams import (
    TREE_FAMILIES,
    HeadConfig,
)
from geocrop.training.journal import (
    JOURNAL,
    append_journal,
    bundle_id,
    open_folder,
    read_journal,
    remove_checkpoint,
    run_key,
)
from geocrop.training.label_draws import (
    LabelDraw,
    available,
    check_counts_fit,
    check_draws,
    check_labels_per_class,
    fold_draws,
    fold_splits,
    shortfalls,
)
from geocrop.training.metrics import scores
from geocrop.training.progress import MAJORITY, EvaluateBoard, method_label
from geocrop.training.records import TEMPORAL_VARIANTS, VARIANTS, RunRecord

log = logging.getLogger(__name__)

FORMAT = "geocrop-evaluation/2"


def evaluate(job: EvaluateJob, *, progress: Progress | None = None) -> EvaluateResult:
    """Run (or resume) the protocol and write the report into ``job.out``; see the module docstring.

    ``progress`` gets the grid of runs and the running fit's epochs (`geocrop.training.progress`).

    All inputs (labels, bundles, options) are validated before the output folder is created.
    """
    from geocrop.training.report import write_report

    check_job(job)
    backbones: dict[Path, FrozenBackbone] = {}
    heads = pretrained_heads(job.temporal + job.temporal_frozen, job.families)
    for flag, _, bundle_path in job_variants(job):
        if bundle_path is None or flag in TEMPORAL_VARIANTS:
            continue
        # loading checks bands and architecture before any training
        backbones[bundle_path] = load_backbone(bundle_path)
        mode = backbones[bundle_path].metadata.get("mode")
        if mode in VARIANTS and mode != flag:
            log.warning(
                "%s was pretrained as %s but given as --%s; the report follows the flag",
                bundle_path,
                mode,
                flag,
            )
    series = load_labelled(job.source, max_per_class=4 * (job.n_train + job.n_val), seed=job.config.seed)
    for head in heads.values():
        check_init(head, family=head.family, steps=series.grid.steps, in_features=series.values.shape[-1])
    splits = fold_splits(
        series, folds=job.folds, scheme=job.scheme, n_train=job.n_train, n_val=job.n_val, seed=job.config.seed
    )
    counts = check_labels_per_class(job.labels_per_class)
    n_draws = check_draws(job.draws, counts)
    parcels = available(series, splits)
    check_counts_fit(counts, parcels)
    # labels_per_class and draws stay out of the fingerprint: runs are keyed by them, so a folder can
    # grow by more counts or draws and keep what it has
    setup = {
        "format": FORMAT,
        "data": data_digest(series.values, series.labels),
        "class_names": list(series.class_names),
        "folds": job.folds,
        "scheme": job.scheme,
        "pixels_per_class": [job.n_train, job.n_val],
        # the fine-tuning recipe's settings are carried by the run keys and names of the heads they change
        "train": {k: v for k, v in asdict(job.config).items() if k not in ("device", *RECIPE_SETTINGS)},
        "hparam_seed": job.hparam_seed,
        "n_configs": job.n_configs,
    }
    out = open_folder(Path(job.out), setup)
    journal = out / JOURNAL
    done = read_journal(journal)
    configs = job_configs(job)
    device = resolve_device(job.config.device)
    trained = reused = 0
    wanted: list[str] = []
    n_classes = len(series.class_names)
    all_draws = [
        fold_draws(series, train_idx, fold=fold, counts=counts, draws=n_draws, seed=job.config.seed)
        for fold, (train_idx, _) in enumerate(splits)
    ]
    all_groups = [_fold_groups(job, heads, configs, draws, fold) for fold, draws in enumerate(all_draws)]
    board = EvaluateBoard(progress, _run_states(all_draws, all_groups, done))
    for fold, (train_idx, val_idx) in enumerate(splits):
        y_va = series.labels[val_idx]
        draws, groups = all_draws[fold], all_groups[fold]
        for draw in draws:
            key = run_key("majority", fold, draw.labels, draw.draw)
            wanted.append(key)
            if key not in done:
                y_tr = series.labels[draw.rows]
                pred = np.full(len(val_idx), np.bincount(y_tr, minlength=n_classes).argmax())
                done[key] = _record(
                    key, "majority", 0, HeadConfig("majority"), "supervised", None, 0, fold, y_va, pred,
                    0.0, n_classes, draw=draw,
                )  # fmt: skip
                append_journal(journal, done[key])
                board.majority(key, done[key].scores["macro_f1"])
        for variant, k, path, pre, runs, keys, recipes in groups:
            wanted += keys
            pending = [(key, run) for key, run in zip(keys, runs, strict=True) if key not in done]
            reused += len(runs) - len(pending)
            if not pending or job.report_only:
                continue
            # normalisation statistics from every training series of the fold (no label is read), or
            # those a pretrained temporal head was pretrained with
            if pre is not None:
                backbone = init_backbone(pre)
                config = replace(job.config, init=str(path), freeze_init=variant == "temporal_frozen")
            else:
                backbone = raw_bands(series.values[train_idx]) if path is None else backbones[path]
                config = job.config
            n_series = len(train_idx) + len(val_idx)
            board.line(f"fold {fold + 1}/{len(splits)}: encoding {n_series} series for {VARIANTS[variant]}")
            features = cached_features(series, backbone, np.concatenate([train_idx, val_idx]), device)
            for key, (draw, family, i, cfg) in pending:
                if pre is not None:  # the architecture the head was pretrained with
                    cfg = replace(cfg, params={**cfg.params, **pre.head_params()})
                board.start(
                    key, f"training {key}: {cfg.describe(config.initial_lr)}", initial_lr=config.initial_lr
                )
                t0 = time.perf_counter()
                fitted = fit_any_head(
                    cfg,
                    series,
                    features,
                    draw.rows,
                    val_idx,
                    config=config,
                    checkpoint=out / "checkpoints" / f"{key}.safetensors",
                    progress=board.epoch,
                )
                remove_checkpoint(out / "checkpoints" / f"{key}.safetensors")
                record = _record(
                    key, family, i, cfg, variant, path, k, fold, y_va, fitted.val_proba.argmax(axis=1),
                    time.perf_counter() - t0, n_classes, fitted.best_epoch, draw=draw,
                )  # fmt: skip
                record = replace(with_both_sides(record, fitted, n_classes), recipe=recipes[family][0])
                append_journal(journal, record)
                done[key] = record
                trained += 1
                f1, oa = record.scores["macro_f1"], record.val_accuracy
                board.finish(
                    key,
                    f"finished {key}: macro-F1 {f1:.3f}, OA {oa:.3f}",
                    seconds=record.seconds,
                    macro_f1=f1,
                )
    with contextlib.suppress(OSError):
        (out / "checkpoints").rmdir()  # only when empty: nothing left to resume
    records = [done[key] for key in wanted if key in done]
    note = job.data_note
    if len(records) < len(wanted):  # report_only: what has finished so far
        board.line(f"report of {len(records)} finished runs; {len(wanted) - len(records)} not run yet")
        partial = f"> Report of the runs finished so far: {len(records)} of {len(wanted)}."
        note = partial if note is None else f"{note}\n\n{partial}"
    report = write_report(
        out,
        records=_table_records(records),
        class_names=series.class_names,
        setup={**setup, "n_series": len(series), "labels": Path(job.source.path).name},
        data_note=note,
        sections=learning_curve_section(
            out, records, shortfalls(counts, parcels, series.class_names), draws=n_draws
        )
        if counts != (None,)
        else (),
    )
    return EvaluateResult(out, report, records, trained, reused)


#: Training settings a run's key and name carry (`_recipe`) instead of the folder's fingerprint.
RECIPE_SETTINGS = (
    "body_lr",
    "probe",
    "resample_dates",
    "date_dropout",
    "frozen_hidden",
    "frozen_classifier",
    "epoch_choice",
)


def _recipe(config: TrainConfig, variant: str, family: str) -> tuple[str, str]:
    """(name, key suffix) of the training recipe of one run, when not geocrop's plain way: a fine-tuned
    pretrained head's body lr share and probe, and the series augmentations of a deep head's batches."""
    if family in TREE_FAMILIES:
        return "", ""
    parts = []
    if variant == "temporal" and config.body_lr != 1:
        parts.append((f"body lr {config.body_lr:g}", f"-body{config.body_lr:g}"))
    if variant == "temporal" and config.probe:
        parts.append((f"probe {config.probe:g}", f"-probe{config.probe:g}"))
    if variant == "temporal_frozen" and config.frozen_classifier == "logistic":
        parts.append(("logistic", "-logistic"))
    elif variant == "temporal_frozen" and config.frozen_hidden:  # without: the linear layer of older runs
        parts.append((f"MLP {config.frozen_hidden}", f"-mlp{config.frozen_hidden}"))
    if variant == "temporal_frozen" and family in PART_POOLED:  # `head_init.trained_spec`: season parts
        parts.append(("season parts", "-parts"))
    if config.epoch_choice != "inner":
        parts.append((f"epochs by {config.epoch_choice}", f"-{config.epoch_choice}"))
    if config.resample_dates:
        parts.append(("resampled dates", "-resample"))
    if config.date_dropout:
        parts.append((f"date dropout {config.date_dropout:g}", f"-dropout{config.date_dropout:g}"))
    return ", ".join(name for name, _ in parts), "".join(suffix for _, suffix in parts)


def _fold_groups(
    job: EvaluateJob,
    heads: dict[Path, PretrainedHead],
    configs: dict[str, list[HeadConfig]],
    draws: list[LabelDraw],
    fold: int,
) -> list[tuple[Any, ...]]:
    """Each input variant of one fold as (variant, k, path, pre, runs, keys, recipes):
    the runs it trains, their keys, and each family's recipe (name, key suffix)."""
    groups: list[tuple[Any, ...]] = []
    for variant, k, path in job_variants(job, heads):
        bid = "raw" if path is None else bundle_id(path)
        pre = heads[path] if variant in TEMPORAL_VARIANTS and path is not None else None
        runs = [
            (d, f, i, c)
            for d in draws
            for f in (*job.families, *(job.baselines if path is None else ()))
            for i, c in enumerate(configs[f])
            if pre is None or f == pre.family  # a pretrained head starts its own family only
        ]
        recipes = {f: _recipe(job.config, variant, f) for f in (*job.families, *job.baselines)}
        keys = [
            run_key(f"{f}-{i:03d}-{variant}-{bid}{recipes[f][1]}", fold, d.labels, d.draw)
            for d, f, i, _ in runs
        ]
        groups.append((variant, k, path, pre, runs, keys, recipes))
    return groups


def _run_states(
    all_draws: list[list[LabelDraw]], all_groups: list[list[tuple[Any, ...]]], done: dict[str, RunRecord]
) -> list[RunState]:
    """Every run of the evaluation in the order it runs, finished (``reused``, with the seconds it took)
    or ``left``."""
    folds, states = len(all_draws), []
    for fold, (draws, groups) in enumerate(zip(all_draws, all_groups, strict=True)):
        listed = [(run_key(MAJORITY, fold, d.labels, d.draw), MAJORITY) for d in draws]
        for variant, k, _, _, runs, keys, *_ in groups:
            listed += [(key, method_label(run[1], variant, k)) for key, run in zip(keys, runs, strict=True)]
        for key, method in listed:
            old = done.get(key)
            status: RunStatus = "left" if old is None else "reused"
            seconds, f1 = (None, None) if old is None else (old.seconds, old.scores["macro_f1"])
            states.append(RunState(key, fold, folds, method, status, seconds, f1))
    return states


def _table_records(records: list[RunRecord]) -> list[RunRecord]:
    """The runs the protocol's tables are made of: all labels, else the largest count's first draw."""
    everything = [r for r in records if r.labels_per_class is None]
    if everything:
        return everything
    largest = max(r.labels_per_class or 0 for r in records)
    return [r for r in records if r.labels_per_class == largest and r.draw == 0]


def _record(
    key: str,
    family: str,
    index: int,
    cfg: HeadConfig,
    variant: str,
    path: Path | None,
    bundle_index: int,
    fold: int,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    seconds: float,
    n_classes: int,
    best_epoch: int = 0,
    *,
    draw: LabelDraw,
) -> RunRecord:
    return RunRecord(
        key=key,
        family=family,
        config_index=index,
        config=cfg.to_dict(),
        variant=variant,
        bundle="" if path is None else path.name,
        bundle_index=bundle_index,
        fold=fold,
        scores=scores(y_true, y_pred, n_classes),
        val_true=[int(v) for v in y_true],
        val_pred=[int(v) for v in y_pred],
        seconds=round(seconds, 3),
        best_epoch=best_epoch,
        labels_per_class=draw.labels,
        draw=draw.draw,
    )
