"""`geocrop evaluate`: the paper's protocol (section 5) on the user's labelled data.

For every head family and each of N configurations drawn from the section 5.1 space (same seed for every
variant), one head is trained on the same parcel split and pixels for each input variant:

- ``supervised``: the raw 12 bands, normalised (section 5.1);
- ``unimodal``: features of each uni-modal (SCARF, S2-only) backbone bundle (section 5.2);
- ``bimodal``: features of each bi-modal backbone bundle (section 5.3).

Backbone features are computed once per bundle and reused by every configuration. Each finished run is
appended to ``results.jsonl`` in the output folder (one JSON line: key, configuration, accuracy, history,
validation predictions) and heads checkpoint after every epoch, so an interrupted evaluation resumes
where it stopped and never retrains a finished configuration. ``evaluation.json`` holds the setup's
fingerprint: rerunning into a folder made by a different setup is refused instead of mixing results.
The report (`geocrop.training.report`) is rebuilt from the journal at the end.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from geocrop.data.labelled import LabelSource
from geocrop.data.splits import SCHEME_PARTS
from geocrop.errors import InputError, OutputError
from geocrop.io.atomic import write_text_atomic
from geocrop.io.bundle import read_bundle_metadata
from geocrop.training.features import FrozenBackbone, encode, load_backbone, raw_bands, resolve_device
from geocrop.training.hparams import FAMILIES, HeadConfig, check_family, sample_configs
from geocrop.training.train import TrainConfig, data_digest, fit_head, prepare_data

log = logging.getLogger(__name__)

#: Variant keys in report order, and how the report names them.
VARIANTS: dict[str, str] = {"supervised": "supervised", "unimodal": "uni-modal", "bimodal": "bi-modal"}
JOURNAL = "results.jsonl"
SETUP = "evaluation.json"


@dataclass(frozen=True)
class EvaluateJob:
    """Typed form of `geocrop evaluate`'s options."""

    source: LabelSource
    out: Path
    bimodal: tuple[Path, ...] = ()
    unimodal: tuple[Path, ...] = ()
    families: tuple[str, ...] = FAMILIES
    n_configs: int = 10
    config: TrainConfig = field(default_factory=TrainConfig)
    n_train: int = 5000
    n_val: int = 1000
    scheme: str = "70-30"
    hparam_seed: int = 0
    data_note: str | None = None


@dataclass(frozen=True)
class RunRecord:
    """One trained head, as stored in the journal."""

    key: str
    family: str
    config_index: int
    config: dict[str, Any]
    variant: str
    bundle: str
    bundle_index: int
    val_accuracy: float
    history: list[dict[str, float]]
    val_pred: list[int]
    seconds: float


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


def _atomic_json(path: Path, payload: Any) -> None:
    write_text_atomic(path, json.dumps(payload, indent=1, sort_keys=True) + "\n")


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


def _check_job(job: EvaluateJob) -> None:
    for family in job.families:
        check_family(family)
    if not job.families:
        raise InputError("--families is empty; give one or more of lstm, inception, transformer")
    if job.n_configs < 1:
        raise InputError(f"--configs {job.n_configs} must be >= 1")
    if not job.bimodal and not job.unimodal:
        raise InputError("give at least one pretrained backbone with --bimodal or --unimodal to compare")
    if job.scheme not in SCHEME_PARTS:
        raise InputError(f"split scheme {job.scheme!r} is unknown; choose one of {', '.join(SCHEME_PARTS)}")
    out = Path(job.out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file; give a folder for the report")


def evaluate(job: EvaluateJob, *, progress: ProgressFn | None = None) -> EvaluateResult:
    """Run (or resume) the protocol and write the report into ``job.out``; see the module docstring.

    All inputs (labels, bundles, options) are validated before the output folder is created.
    """
    from geocrop.training.report import write_report

    say = progress or (lambda _msg: None)
    _check_job(job)
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
    series, train_idx, val_idx = prepare_data(
        job.source, scheme=job.scheme, n_train=job.n_train, n_val=job.n_val, seed=job.config.seed
    )
    y_tr, y_va = series.labels[train_idx], series.labels[val_idx]
    setup = {
        "format": "geocrop-evaluation/1",
        "data": data_digest(series.values[train_idx], y_tr, series.values[val_idx], y_va),
        "class_names": list(series.class_names),
        "scheme": job.scheme,
        "pixels_per_class": [job.n_train, job.n_val],
        "train": {k: v for k, v in asdict(job.config).items() if k != "device"},
        "hparam_seed": job.hparam_seed,
    }
    out = Path(job.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create --out {out} ({exc.strerror}); choose a writable folder") from exc
    setup_path = out / SETUP
    if setup_path.exists():
        previous = json.loads(setup_path.read_text(encoding="utf-8"))
        if previous != setup:
            raise InputError(
                f"{out} holds results of a different evaluation (other data, split or settings); "
                "use a new --out folder or delete it"
            )
    else:
        _atomic_json(setup_path, setup)
    journal = out / JOURNAL
    done = read_journal(journal)
    configs = {f: sample_configs(f, job.n_configs, seed=job.hparam_seed) for f in job.families}
    device = resolve_device(job.config.device)
    trained = reused = 0
    for variant, k, path in _variants(job):
        bid = "raw" if path is None else bundle_id(path)
        pending = [
            (f, i, c)
            for f in job.families
            for i, c in enumerate(configs[f])
            if _key(f, i, variant, bid) not in done
        ]
        reused += sum(len(configs[f]) for f in job.families) - len(pending)
        if not pending:
            continue
        backbone = raw_bands(series.values[train_idx]) if path is None else backbones[path]
        n_series = len(train_idx) + len(val_idx)
        say(f"encoding {n_series} pixel series for {VARIANTS[variant]} {path or ''}".strip())
        x_tr = encode(series.values[train_idx], backbone, device=device)
        x_va = encode(series.values[val_idx], backbone, device=device)
        for family, i, cfg in pending:
            key = _key(family, i, variant, bid)
            say(f"training {key}: {cfg.describe()}")
            record = _run(
                key, cfg, i, variant, k, path, (x_tr, y_tr), (x_va, y_va), job, out, len(series.class_names)
            )
            append_journal(journal, record)
            done[key] = record
            trained += 1
            say(f"finished {key}: validation accuracy {record.val_accuracy:.4f}")
    with contextlib.suppress(OSError):
        (out / "checkpoints").rmdir()  # only when empty: nothing left to resume
    wanted = [
        done[_key(f, i, v, "raw" if p is None else bundle_id(p))]
        for v, _, p in _variants(job)
        for f in job.families
        for i in range(job.n_configs)
    ]
    report = write_report(
        out,
        records=wanted,
        class_names=series.class_names,
        y_val=y_va,
        families=job.families,
        n_configs=job.n_configs,
        setup={**setup, "n_train": len(train_idx), "n_val": len(val_idx), "labels": str(job.source.path)},
        data_note=job.data_note,
    )
    return EvaluateResult(out, report, wanted, trained, reused)


def _key(family: str, index: int, variant: str, bid: str) -> str:
    return f"{family}-{index:03d}-{variant}-{bid}"


def _run(
    key: str,
    cfg: HeadConfig,
    index: int,
    variant: str,
    bundle_index: int,
    path: Path | None,
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    job: EvaluateJob,
    out: Path,
    n_classes: int,
) -> RunRecord:
    ckpt = out / "checkpoints" / f"{key}.safetensors"
    t0 = time.perf_counter()
    spec = cfg.spec(in_features=train[0].shape[-1], n_classes=n_classes)
    result = fit_head(spec, train, val, config=job.config, final_lr=cfg.lr, checkpoint=ckpt)
    for leftover in (ckpt, ckpt.with_suffix(".json")):
        with contextlib.suppress(OSError):
            leftover.unlink()
    return RunRecord(
        key=key,
        family=cfg.family,
        config_index=index,
        config=cfg.to_dict(),
        variant=variant,
        bundle="" if path is None else str(path),
        bundle_index=bundle_index,
        val_accuracy=result.val_accuracy,
        history=[asdict(h) for h in result.history],
        val_pred=[int(p) for p in result.val_pred],
        seconds=time.perf_counter() - t0,
    )


def records_by(records: Iterable[RunRecord], family: str, variant: str, n_configs: int) -> np.ndarray:
    """(n_configs, K) accuracies of one family and variant, configurations by row, bundles by column."""
    rows = [r for r in records if r.family == family and r.variant == variant]
    k = max((r.bundle_index for r in rows), default=-1) + 1
    acc = np.full((n_configs, max(k, 1)), np.nan)
    for r in rows:
        acc[r.config_index, r.bundle_index] = r.val_accuracy
    return acc[:, :k] if k else acc[:, :0]
