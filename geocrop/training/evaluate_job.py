"""What `geocrop evaluate` is asked (`EvaluateJob`), checked before anything is read or written
(`check_job`), and what follows from it alone: the input variants run (`job_variants`), the pretrained
temporal heads (`pretrained_heads`) and each family's configurations (`job_configs`). The run itself:
`geocrop.training.evaluate`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from geocrop.data.labelled import LabelSource
from geocrop.data.splits import SCHEME_PARTS
from geocrop.errors import InputError
from geocrop.training.fit import TrainConfig
from geocrop.training.head_bundle import PretrainedHead
from geocrop.training.head_init import read_init
from geocrop.training.hparams import (
    FAMILIES,
    TREE_FAMILIES,
    HeadConfig,
    check_family,
    default_config,
    sample_configs,
)
from geocrop.training.label_draws import DEFAULT_DRAWS, check_draws, check_labels_per_class
from geocrop.training.records import RunRecord

__all__ = ["EvaluateJob", "EvaluateResult", "check_job", "job_configs", "job_variants", "pretrained_heads"]


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
    labels_per_class: tuple[int | None, ...] = (None,)
    draws: int | tuple[int, ...] = DEFAULT_DRAWS
    #: Pretrained temporal heads (`geocrop pretrain --mode temporal`): each starts its own family's
    #: head on raw bands, fine-tuned (``temporal``) or with the body frozen (``temporal_frozen``).
    temporal: tuple[Path, ...] = ()
    temporal_frozen: tuple[Path, ...] = ()
    #: Train nothing: report the runs of this setup already in the journal (e.g. while another
    #: evaluation of other counts or methods fills the same folder).
    report_only: bool = False


@dataclass(frozen=True)
class EvaluateResult:
    out: Path
    report: Path
    records: list[RunRecord]
    trained: int
    reused: int


def job_variants(
    job: EvaluateJob, heads: dict[Path, PretrainedHead] | None = None
) -> list[tuple[str, int, Path | None]]:
    """(variant, number among its kind, bundle) of every input; pretrained temporal heads are numbered
    within their family (``heads``), since each one starts its own family only."""
    runs: list[tuple[str, int, Path | None]] = [("supervised", 0, None)]
    runs += [("unimodal", k, p) for k, p in enumerate(job.unimodal)]
    runs += [("bimodal", k, p) for k, p in enumerate(job.bimodal)]
    for variant, paths in (("temporal", job.temporal), ("temporal_frozen", job.temporal_frozen)):
        family = [heads[p].family if heads else "" for p in paths]
        runs += [(variant, family[:k].count(family[k]), p) for k, p in enumerate(paths)]
    return runs


def pretrained_heads(paths: tuple[Path, ...], families: tuple[str, ...]) -> dict[Path, PretrainedHead]:
    """The pretrained temporal heads by path; each one's family must be among the evaluated ``families``."""
    heads = {}
    for path in paths:
        if not Path(path).is_file():
            raise InputError(
                f"`temporal` {path} does not exist; give a head.safetensors of `geocrop pretrain` with "
                "`mode` temporal",
                param="temporal",
            )
        pre = heads[path] = read_init(path)
        if pre.family not in families:
            raise InputError(
                f"`temporal` {path.name} is a pretrained {pre.family} head; add {pre.family} to `families`",
                param="temporal",
            )
    return heads


def check_job(job: EvaluateJob) -> None:
    """Every option checked before anything is read or written."""
    for family in (*job.families, *job.baselines):
        check_family(family)
    for family in job.families:
        if family in TREE_FAMILIES:
            raise InputError(
                f"`families` {family}: tree heads are baselines; give them with `baselines`", param="families"
            )
    if not job.families and not job.baselines:
        raise InputError("nothing to evaluate: give `families` and/or `baselines`", param="families")
    if job.n_configs is not None and job.n_configs < 1:
        raise InputError(f"`configs` {job.n_configs} must be >= 1 (or 'default')", param="configs")
    if job.folds < 1:
        raise InputError(f"`folds` {job.folds} must be >= 1 (1: one {job.scheme} split)", param="folds")
    if job.scheme not in SCHEME_PARTS:
        raise InputError(f"split scheme {job.scheme!r} is unknown; choose one of {', '.join(SCHEME_PARTS)}")
    check_draws(job.draws, check_labels_per_class(job.labels_per_class))
    out = Path(job.out)
    if out.exists() and not out.is_dir():
        raise InputError(f"`out` {out} is a file; give a folder for the report", param="out")


def job_configs(job: EvaluateJob) -> dict[str, list[HeadConfig]]:
    deep = {
        f: [default_config(f)]
        if job.n_configs is None
        else sample_configs(f, job.n_configs, seed=job.hparam_seed)
        for f in job.families
    }
    return {**deep, **{f: [default_config(f)] for f in job.baselines}}
