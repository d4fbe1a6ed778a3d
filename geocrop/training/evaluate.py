"""`geocrop evaluate`: the paper's protocol (section 5) on the user's labelled data, with its spread.

Every method is trained and scored on the same **grouped, stratified folds** (`geocrop.data.splits.
grouped_folds`: each parcel validates in exactly one fold; ``folds=1`` is the paper's single split):

- the **majority class** of each fold's training part (the floor every method must clear);
- the **tree baselines** ``rf`` and ``gbm`` (`geocrop.training.trees`) on the normalised bands;
- each **deep head family** on each input variant: ``supervised`` (the raw 12 bands, section 5.1),
  ``unimodal`` (features of each SCARF backbone bundle, section 5.2), ``bimodal`` (features of each
  bi-modal backbone bundle, section 5.3); with ``n_configs=None`` the family's default configuration
  (what `geocrop train` uses), else N configurations drawn from section 5.1's space (the paper's 10).

Each finished run is appended to ``results.jsonl`` in the output folder (one JSON line: key, fold,
configuration, scores, predictions) and deep heads checkpoint after every epoch, so an interrupted
evaluation resumes where it stopped and never retrains a finished run. ``evaluation.json`` holds the
setup's fingerprint: rerunning into a folder made by a different setup is refused instead of mixing
results. The report (`geocrop.training.report`) is rebuilt from the journal at the end.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from geocrop.data.labelled import LabelledSeries, LabelSource, load_labelled
from geocrop.data.splits import SCHEME_PARTS, fold_pixels, grouped_folds, split_pixels
from geocrop.errors import InputError, OutputError
from geocrop.io.atomic import write_json_atomic, write_text_atomic
from geocrop.io.bundle import read_bundle_metadata
from geocrop.models.device import resolve_device
from geocrop.training.features import FrozenBackbone, load_backbone, raw_bands
from geocrop.training.fit import TrainConfig, data_digest
from geocrop.training.hparams import (
    FAMILIES,
    TREE_FAMILIES,
    HeadConfig,
    check_family,
    default_config,
    sample_configs,
)
from geocrop.training.metrics import scores
from geocrop.training.records import VARIANTS, RunRecord
from geocrop.training.train import cached_features, fit_any_head

log = logging.getLogger(__name__)

JOURNAL = "results.jsonl"
SETUP = "evaluation.json"
FORMAT = "geocrop-evaluation/2"


@dataclass(frozen=True)
class EvaluateJob:
    """Typed form of `geocrop evaluate`'s options (see the module docstring)."""

    source: LabelSource
    out: Path
    bimodal: tuple[Path, ...] = ()
    unimodal: tuple[Path, ...] = ()
    families: tuple[str, ...] = FAMILIES
    baselines: tuple[str, ...] = TREE_FAMILIES
    n_configs: int | None = None
    folds: int = 5
    config: TrainConfig = field(default_factory=TrainConfig)
    n_train: int = 5000
    n_val: int = 1000
    scheme: str = "70-30"
    hparam_seed: int = 0
    data_note: str | None = None


@dataclass(frozen=True)
class EvaluateResult:
    out: Path
    report: Path
    records: list[RunRecord]
    trained: int
    reused: int


ProgressFn = Callable[[str], None]


def bundle_id(path: Path) -> str:
    """Short identity of a bundle: hash of its bytes (a changed bundle gets a new id, a moved one not)."""
    read_bundle_metadata(path)  # refuse a file that is not a bundle before hashing it
    h = hashlib.blake2b(digest_size=5)
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_journal(path: Path) -> dict[str, RunRecord]:
    """Finished runs by key. A torn last line (killed mid-write) is dropped and the file repaired."""
    if not path.exists():
        return {}
    records: dict[str, RunRecord] = {}
    good: list[str] = []
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    for line in lines:
        try:
            rec = RunRecord(**json.loads(line))
        except (json.JSONDecodeError, TypeError):
            continue
        if not line.endswith("\n"):
            continue
        records[rec.key] = rec
        good.append(line)
    if len(good) != len(lines):
        write_text_atomic(path, "".join(good), what="results journal")
    return records


def append_journal(path: Path, record: RunRecord) -> None:
    """Append one record as a line and fsync, so a finished run survives a crash right after it."""
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(asdict(record)) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _variants(job: EvaluateJob) -> list[tuple[str, int, Path | None]]:
    runs: list[tuple[str, int, Path | None]] = [("supervised", 0, None)]
    runs += [("unimodal", k, p) for k, p in enumerate(job.unimodal)]
    runs += [("bimodal", k, p) for k, p in enumerate(job.bimodal)]
    return runs


def check_job(job: EvaluateJob) -> None:
    """Every option checked before anything is read or written."""
    for family in (*job.families, *job.baselines):
        check_family(family)
    for family in job.families:
        if family in TREE_FAMILIES:
            raise InputError(f"--families {family}: tree heads are baselines; give them with --baselines")
    if not job.families and not job.baselines:
        raise InputError("nothing to evaluate: give --families and/or --baselines")
    if job.n_configs is not None and job.n_configs < 1:
        raise InputError(f"--configs {job.n_configs} must be >= 1 (or 'default')")
    if job.folds < 1:
        raise InputError(f"--folds {job.folds} must be >= 1 (1: one {job.scheme} split)")
    if job.scheme not in SCHEME_PARTS:
        raise InputError(f"split scheme {job.scheme!r} is unknown; choose one of {', '.join(SCHEME_PARTS)}")
    out = Path(job.out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file; give a folder for the report")


def _configs(job: EvaluateJob) -> dict[str, list[HeadConfig]]:
    deep = {
        f: [default_config(f)]
        if job.n_configs is None
        else sample_configs(f, job.n_configs, seed=job.hparam_seed)
        for f in job.families
    }
    return {**deep, **{f: [default_config(f)] for f in job.baselines}}


def _splits(job: EvaluateJob, series: LabelledSeries) -> list[tuple[np.ndarray, np.ndarray]]:
    seed = job.config.seed
    if job.folds == 1:
        return [
            split_pixels(
                series.labels,
                series.groups,
                class_names=series.class_names,
                scheme=job.scheme,
                n_train=job.n_train,
                n_val=job.n_val,
                seed=seed,
            )
        ]
    folds = grouped_folds(series.labels, series.groups, k=job.folds, seed=seed)
    return [
        fold_pixels(
            series.labels,
            folds,
            f,
            class_names=series.class_names,
            n_train=job.n_train,
            n_val=job.n_val,
            seed=seed + f,
        )
        for f in range(job.folds)
    ]


def evaluate(job: EvaluateJob, *, progress: ProgressFn | None = None) -> EvaluateResult:
    """Run (or resume) the protocol and write the report into ``job.out``; see the module docstring.

    All inputs (labels, bundles, options) are validated before the output folder is created.
    """
    from geocrop.training.report import write_report

    say = progress or (lambda _msg: None)
    check_job(job)
    backbones: dict[Path, FrozenBackbone] = {}
    for flag, _, bundle_path in _variants(job):
        if bundle_path is None:
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
    splits = _splits(job, series)
    setup = {
        "format": FORMAT,
        "data": data_digest(series.values, series.labels),
        "class_names": list(series.class_names),
        "folds": job.folds,
        "scheme": job.scheme,
        "pixels_per_class": [job.n_train, job.n_val],
        "train": {k: v for k, v in asdict(job.config).items() if k != "device"},
        "hparam_seed": job.hparam_seed,
        "n_configs": job.n_configs,
    }
    out = _open_folder(Path(job.out), setup)
    journal = out / JOURNAL
    done = read_journal(journal)
    configs = _configs(job)
    device = resolve_device(job.config.device)
    trained = reused = 0
    wanted: list[str] = []
    n_classes = len(series.class_names)
    for fold, (train_idx, val_idx) in enumerate(splits):
        y_tr, y_va = series.labels[train_idx], series.labels[val_idx]
        key = f"majority-f{fold}"
        wanted.append(key)
        if key not in done:
            pred = np.full(len(val_idx), np.bincount(y_tr, minlength=n_classes).argmax())
            done[key] = _record(
                key,
                "majority",
                0,
                HeadConfig("majority"),
                "supervised",
                None,
                0,
                fold,
                y_va,
                pred,
                0.0,
                n_classes,
            )
            append_journal(journal, done[key])
        for variant, k, path in _variants(job):
            bid = "raw" if path is None else bundle_id(path)
            runs = [
                (f, i, c)
                for f in (*job.families, *(job.baselines if path is None else ()))
                for i, c in enumerate(configs[f])
            ]
            keys = {(f, i): f"{f}-{i:03d}-{variant}-{bid}-f{fold}" for f, i, _ in runs}
            wanted += keys.values()
            pending = [(f, i, c) for f, i, c in runs if keys[f, i] not in done]
            reused += len(runs) - len(pending)
            if not pending:
                continue
            backbone = raw_bands(series.values[train_idx]) if path is None else backbones[path]
            n_series = len(train_idx) + len(val_idx)
            say(f"fold {fold + 1}/{len(splits)}: encoding {n_series} series for {VARIANTS[variant]}")
            features = cached_features(series, backbone, np.concatenate([train_idx, val_idx]), device)
            for family, i, cfg in pending:
                run_key = keys[family, i]
                say(f"training {run_key}: {cfg.describe()}")
                t0 = time.perf_counter()
                fitted = fit_any_head(
                    cfg,
                    series,
                    features,
                    train_idx,
                    val_idx,
                    config=job.config,
                    checkpoint=out / "checkpoints" / f"{run_key}.safetensors",
                )
                _remove_checkpoint(out / "checkpoints" / f"{run_key}.safetensors")
                record = _record(
                    run_key,
                    family,
                    i,
                    cfg,
                    variant,
                    path,
                    k,
                    fold,
                    y_va,
                    fitted.val_proba.argmax(axis=1),
                    time.perf_counter() - t0,
                    n_classes,
                    fitted.best_epoch,
                )
                append_journal(journal, record)
                done[run_key] = record
                trained += 1
                f1, oa = record.scores["macro_f1"], record.val_accuracy
                say(f"finished {run_key}: macro-F1 {f1:.3f}, OA {oa:.3f}")
    with contextlib.suppress(OSError):
        (out / "checkpoints").rmdir()  # only when empty: nothing left to resume
    records = [done[key] for key in wanted]
    report = write_report(
        out,
        records=records,
        class_names=series.class_names,
        setup={**setup, "n_series": len(series), "labels": Path(job.source.path).name},
        data_note=job.data_note,
    )
    return EvaluateResult(out, report, records, trained, reused)


def _open_folder(out: Path, setup: dict[str, Any]) -> Path:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create --out {out} ({exc.strerror}); choose a writable folder") from exc
    setup_path = out / SETUP
    if setup_path.exists():
        previous = json.loads(setup_path.read_text(encoding="utf-8"))
        if previous != setup:
            raise InputError(
                f"{out} holds results of a different evaluation (other data, folds or settings); "
                "use a new --out folder or delete it"
            )
    else:
        write_json_atomic(setup_path, setup, sort_keys=True, newline=True)
    return out


def _remove_checkpoint(ckpt: Path) -> None:
    for leftover in (ckpt, ckpt.with_suffix(".json")):
        with contextlib.suppress(OSError):
            leftover.unlink()


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
    )
