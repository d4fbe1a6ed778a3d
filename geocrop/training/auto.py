"""``--head auto``: the head chosen for the user by grouped inner validation on the training part only.

No head wins on every table: on the France LPIS table gradient boosting, TempCNN and InceptionTime tie;
on another real table InceptionTime leads and TempCNN only ties the RandomForest (docs/evaluation). A
user should not have to find out which. ``auto`` fits each of its candidates (`AUTO_CANDIDATES`, each at
its default configuration and the adaptive `TrainConfig`, nothing tuned here) on grouped inner folds of
the **training part** (`grouped_folds` over its parcels: the user's validation parcels are never seen),
pools each candidate's out-of-fold predictions, and chooses:

1. rank the candidates by pooled inner macro-F1;
2. never choose one whose pooled inner OA is below the majority class's (each inner fold's training
   majority predicted on its validation part): a head that buys macro-F1 by losing the common classes is
   out (if every candidate is below it, the one with the highest OA is kept and a warning says so);
3. the mean of the two best candidates' probabilities (`ProbabilityAverage`, a registered head that maps
   like any other) is chosen instead when its pooled inner macro-F1 is higher than the best one's and
   its OA clears the majority class's.

The choice is then refitted on the whole training part exactly as ``--head <family>`` would be, and the
bundle records every candidate's inner scores and why it was chosen (`fit_auto`'s ``selection``).

Cost (`plan_auto`): `INNER_FOLDS` = 2 grouped folds over at most `MAX_INNER_SERIES` training series (a
random subset beyond that). Two halves let every inner series validate once (the pooled scores rank on
all of them) for about the cost of one fit per candidate on the whole training part, and the number of
folds never depends on how busy the machine is: the same data and seed always give the same choice (a
wall-clock budget chose on one fold of a third of the series under load, and its choice changed with
the load). Work grows with the data up to the series cap, then stays flat. Gradient boosting
is a candidate while a series flattens to at most `MAX_TREE_INPUTS` inputs (raw bands: 12 x T; wide
backbone features would make tree fits slow and are what the deep heads are for).

Every finished (candidate, fold) fit is journaled beside the checkpoint, so an interrupted choice
resumes where it stopped; the journal is removed once the choice is refitted.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import logging
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from torch import nn

from geocrop.core.progress import Progress, emit
from geocrop.data.splits import grouped_folds
from geocrop.io.atomic import write_json_atomic
from geocrop.models.ensemble import ProbabilityAverage
from geocrop.training.calibration import calibrated_proba, correction, softmax
from geocrop.training.fit import ProgressFn, TrainConfig, data_digest, plan_training
from geocrop.training.hparams import AUTO_CANDIDATES, TREE_FAMILIES, HeadConfig, default_config
from geocrop.training.metrics import scores

if TYPE_CHECKING:
    from geocrop.data.labelled import LabelledSeries

log = logging.getLogger(__name__)

#: Grouped inner folds the candidates are compared on (each training parcel validates once).
INNER_FOLDS = 2
#: Training series the inner folds use at most (a random subset beyond: parcels + imagery give tens of
#: thousands of pixel series, and a few thousand rank the candidates as well).
MAX_INNER_SERIES = 4000
#: Largest flattened series (steps x features) gradient boosting is a candidate for.
MAX_TREE_INPUTS = 2048
#: Seed offset of the inner folds (apart from the outer split's and the epoch-selection split's seeds).
_FOLD_SEED = 104729

#: Where auto's lines go: `ProgressEvent`s of the train stage (``step``/``total`` on the inner fits).
Note = Progress
Say = Callable[..., None]


class Fitted(Protocol):
    """What `geocrop.training.any_head.FittedHead` holds that ``auto`` reads and sets (it is passed the
    fitting function, `fit_any_head`, rather than importing `geocrop.training.any_head`, which calls it)."""

    module: nn.Module
    spec: dict[str, Any]
    val_proba: np.ndarray
    history: list[Any]
    resumed_from: int
    best_epoch: int
    selection: dict[str, Any] | None
    val_logits: np.ndarray | None
    class_shares: np.ndarray | None
    head_prior: str
    temperature: float | None
    calibration: dict[str, float]


#: ``fit(head, series, features, train_idx, val_idx, *, config, checkpoint=None, progress=None)``
FitFn = Callable[..., Fitted]


@dataclass(frozen=True)
class AutoPlan:
    """What ``auto`` compares and on what: candidates, inner folds, inner series."""

    candidates: tuple[str, ...]
    folds: int
    n_series: int


def plan_auto(
    n_train: int, *, steps: int, features: int, candidates: Sequence[str] = AUTO_CANDIDATES
) -> AutoPlan:
    """The inner-validation plan for ``n_train`` training series of ``steps`` x ``features`` inputs."""
    kept = tuple(c for c in candidates if c not in TREE_FAMILIES or steps * features <= MAX_TREE_INPUTS)
    n_series = min(n_train, MAX_INNER_SERIES)
    return AutoPlan(kept, INNER_FOLDS, n_series)


def candidate_config(family: str, auto: HeadConfig) -> HeadConfig:
    """A candidate at its default configuration; deep ones end their schedule at ``auto``'s final lr."""
    cfg = default_config(family)
    return cfg if family in TREE_FAMILIES else HeadConfig(family, cfg.params, auto.lr)


def journal_path(checkpoint: Path) -> Path:
    """Where the inner fits of a run checkpointed at ``checkpoint`` are journaled."""
    return checkpoint.with_name(f"{checkpoint.stem}.auto.json")


def _read_journal(path: Path | None, fingerprint: dict[str, Any]) -> dict[str, Any]:
    if path is None or not path.exists():
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(doc, dict) or doc.get("fingerprint") != fingerprint:
        log.warning("inner-validation journal %s belongs to another run; starting again", path)
        return {}
    runs = doc.get("runs")
    return dict(runs) if isinstance(runs, dict) else {}


def _pooled(
    y: np.ndarray, probas: Sequence[np.ndarray], n_classes: int, per_fold: Sequence[np.ndarray]
) -> dict[str, Any]:
    proba = np.concatenate(probas)
    pooled = scores(y, proba.argmax(axis=1), n_classes)
    folds = []
    start = 0
    for fold_y in per_fold:
        part = proba[start : start + len(fold_y)]
        folds.append(round(scores(fold_y, part.argmax(axis=1), n_classes)["macro_f1"], 4))
        start += len(fold_y)
    return {"macro_f1": round(pooled["macro_f1"], 4), "oa": round(pooled["oa"], 4), "fold_macro_f1": folds}


def fit_auto(
    auto: HeadConfig,
    series: LabelledSeries,
    features: Callable[[np.ndarray], np.ndarray],
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    *,
    fit: FitFn,
    config: TrainConfig,
    checkpoint: Path | None = None,
    progress: ProgressFn | None = None,
    note: Note | None = None,
) -> Fitted:
    """Choose among ``auto``'s candidates on inner folds of ``train_idx``, refit the choice on all of
    ``train_idx``, score ``val_idx``; the result's ``selection`` says what was tried and why (see module
    docstring). ``fit`` fits one candidate (`geocrop.training.any_head.fit_any_head`); ``note`` gets a line
    per inner fit and before the refit."""
    say: Say = functools.partial(
        emit, note or (lambda event: log.info("%s", event.message)), "train", None, log=True
    )
    n_classes = len(series.class_names)
    probe = features(train_idx[:1])
    wanted = tuple(auto.params.get("candidates", AUTO_CANDIDATES))
    plan = plan_auto(
        len(train_idx), steps=int(probe.shape[1]), features=int(probe.shape[2]), candidates=wanted
    )
    inner = np.asarray(train_idx)
    if len(inner) > plan.n_series:
        rng = np.random.default_rng(config.seed + _FOLD_SEED)
        inner = np.sort(rng.choice(inner, plan.n_series, replace=False))
    fold_of = grouped_folds(
        series.labels[inner], series.groups[inner], k=plan.folds, seed=config.seed + _FOLD_SEED
    )
    fingerprint = json.loads(  # as it reads back from the journal (tuples become lists)
        json.dumps(
            {
                "plan": asdict(plan),
                "config": {k: v for k, v in asdict(config).items() if k != "device"},
                "lr": auto.lr,
                "data": data_digest(features(inner), series.labels[inner], fold_of),
            }
        )
    )
    journal = journal_path(checkpoint) if checkpoint is not None else None
    runs = _read_journal(journal, fingerprint)
    t0 = time.perf_counter()
    done_folds: list[int] = []
    probas: dict[str, list[np.ndarray]] = {c: [] for c in plan.candidates}
    balanced: dict[str, list[np.ndarray]] = {c: [] for c in plan.candidates}
    shares: list[np.ndarray | None] = []
    majority: list[float] = []
    fold_y: list[np.ndarray] = []
    underfit = dict.fromkeys(plan.candidates, 0)
    total = plan.folds * len(plan.candidates)
    for fold in range(plan.folds):
        fit_rows, val_rows = inner[fold_of != fold], inner[fold_of == fold]
        if len(val_rows) == 0 or len(fit_rows) < 2:
            continue
        y_fit, y_val = series.labels[fit_rows], series.labels[val_rows]
        for c in plan.candidates:
            key = f"{c}-f{fold}"
            if key not in runs:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    fitted = fit(
                        candidate_config(c, auto), series, features, fit_rows, val_rows, config=config
                    )
                fold_shares = fitted.class_shares
                runs[key] = {
                    "proba": np.round(fitted.val_proba, 6).tolist(),
                    "balanced": np.round(_balanced(fitted), 6).tolist(),
                    "shares": None if fold_shares is None else np.asarray(fold_shares).tolist(),
                    "underfit": sum("underfit" in str(w.message) for w in caught),
                }
                if journal is not None:
                    journal.parent.mkdir(parents=True, exist_ok=True)
                    write_json_atomic(journal, {"fingerprint": fingerprint, "runs": runs})
            proba = np.asarray(runs[key]["proba"], dtype=np.float64)
            probas[c].append(proba)
            balanced[c].append(np.asarray(runs[key].get("balanced", proba), dtype=np.float64))
            underfit[c] += int(runs[key]["underfit"])
            sc = scores(y_val, proba.argmax(axis=1), n_classes)
            step = fold * len(plan.candidates) + plan.candidates.index(c) + 1
            say(
                f"inner validation {step}/{total}: {c} on inner fold {fold + 1} of {plan.folds}: "
                f"macro-F1 {sc['macro_f1']:.3f}, OA {sc['oa']:.3f}",
                step=step,
                total=total,
            )
        majority.append(float((y_val == np.bincount(y_fit).argmax()).sum()))  # right by the training majority
        first = runs[f"{plan.candidates[0]}-f{fold}"].get("shares")
        shares.append(None if first is None else np.asarray(first, dtype=np.float64))
        fold_y.append(y_val)
        done_folds.append(fold)
    y = np.concatenate(fold_y)
    table = {c: _pooled(y, probas[c], n_classes, fold_y) for c in plan.candidates}
    for c in plan.candidates:
        table[c]["underfit_folds"] = underfit[c]
    majority_oa = float(np.sum(majority) / len(y))

    def pair(a: str, b: str) -> list[np.ndarray]:
        """Per inner fold, the default probabilities of the mean of ``a`` and ``b`` (as the bundle maps)."""
        return [
            with_prior((qa + qb) / 2, fold_shares)
            for qa, qb, fold_shares in zip(balanced[a], balanced[b], shares, strict=True)
        ]

    choice, reason = choose(
        table,
        {c: np.concatenate(probas[c]) for c in plan.candidates},
        y,
        majority_oa,
        n_classes,
        pair=lambda a, b: np.concatenate(pair(a, b)),
    )
    if "+" in choice:
        table[choice] = _pooled(y, pair(*choice.split("+")), n_classes, fold_y)
    selection = {
        "candidates": list(plan.candidates),
        "inner_folds": plan.folds,
        "folds_run": len(done_folds),
        "inner_series": len(inner),
        "seconds": round(time.perf_counter() - t0, 1),
        "majority_oa": round(majority_oa, 4),
        "scores": table,
        "chosen": choice,
        "members": choice.split("+"),
        "reason": reason,
    }
    if reason.startswith("no candidate"):
        warnings.warn(f"auto head: {reason}", UserWarning, stacklevel=3)
    say(f"auto chose {choice} on {len(done_folds)} of {plan.folds} inner folds: {reason}")
    fitted = _refit(
        choice.split("+"), auto, series, features, train_idx, val_idx, config, checkpoint, progress, say, fit
    )
    fitted.selection = selection
    for leftover in [journal, *(_member_checkpoint(checkpoint, i) for i in range(2))]:
        if leftover is not None:
            for path in (leftover, leftover.with_suffix(".json")):
                with contextlib.suppress(OSError):
                    path.unlink()
    return fitted


def _to_uniform(fitted: Fitted) -> np.ndarray | None:
    """(K,) what to add to a head's temperature-scaled logits so that it decides under a uniform class
    prior (trees decide under the training frequencies, `geocrop.training.calibration.correction`);
    None: nothing (a deep head with its class-balanced loss)."""
    if fitted.class_shares is None:
        return None
    fix = correction(None, frequencies=fitted.class_shares, head_prior=fitted.head_prior)
    return None if fix is None else np.log(fix)


def _balanced(fitted: Fitted) -> np.ndarray:
    """(N, K) a fitted head's validation probabilities under a uniform class prior, temperature-scaled:
    what an ensemble averages (`ProbabilityAverage`). Without recorded logits: its probabilities."""
    if fitted.val_logits is None:
        return np.asarray(fitted.val_proba, dtype=np.float64)
    offset = _to_uniform(fitted)
    z = np.asarray(fitted.val_logits, dtype=np.float64) / (fitted.temperature or 1.0)
    return softmax(z if offset is None else z + offset)


def with_prior(balanced: np.ndarray, shares: np.ndarray | None) -> np.ndarray:
    """Probabilities under a uniform prior corrected for the class ``shares`` (what the engine does to a
    head deciding under a uniform prior); None: unchanged."""
    if shares is None:
        return balanced
    return calibrated_proba(np.log(np.clip(balanced, 1e-300, None)), shares=shares)


def choose(
    table: dict[str, dict[str, Any]],
    probas: dict[str, np.ndarray],
    y: np.ndarray,
    majority_oa: float,
    n_classes: int,
    pair: Callable[[str, str], np.ndarray] | None = None,
) -> tuple[str, str]:
    """(choice, reason) by the rule of the module docstring; ``choice`` is a family or ``a+b``.

    ``pair(a, b)``: the pooled probabilities of the mean of ``a`` and ``b`` (default: the mean of
    ``probas``)."""
    ranked = sorted(table, key=lambda c: -table[c]["macro_f1"])  # stable: ties keep the candidates' order
    eligible = [c for c in ranked if table[c]["oa"] >= majority_oa]
    below = [c for c in ranked if c not in eligible]
    dropped = (
        f"; {', '.join(below)} left out: inner OA below the majority class's {majority_oa:.3f}"
        if below
        else ""
    )
    if not eligible:
        best = max(ranked, key=lambda c: table[c]["oa"])
        return best, (
            f"no candidate reached the majority class's inner OA ({majority_oa:.3f}); {best} has the highest "
            f"({table[best]['oa']:.3f}): check the labels, or give more samples of the rare classes"
        )
    best = eligible[0]
    reason = (
        f"highest inner macro-F1 ({table[best]['macro_f1']:.3f}, OA {table[best]['oa']:.3f} >= majority "
        f"{majority_oa:.3f}){dropped}"
    )
    if len(eligible) < 2:
        return best, reason
    second = eligible[1]
    mean = (probas[best] + probas[second]) / 2 if pair is None else pair(best, second)
    both = scores(y, mean.argmax(axis=1), n_classes)
    if both["macro_f1"] > table[best]["macro_f1"] and both["oa"] >= majority_oa:
        return f"{best}+{second}", (
            f"the mean of {best}'s and {second}'s probabilities reaches inner macro-F1 "
            f"{both['macro_f1']:.3f} (OA {both['oa']:.3f}), above {best} alone "
            f"({table[best]['macro_f1']:.3f}){dropped}"
        )
    return best, f"{reason}; the mean with {second} reaches only {both['macro_f1']:.3f}"


def _member_checkpoint(checkpoint: Path | None, index: int) -> Path | None:
    return (
        None if checkpoint is None else checkpoint.with_name(f"{checkpoint.stem}.member{index}.safetensors")
    )


def _refit(
    members: Sequence[str],
    auto: HeadConfig,
    series: LabelledSeries,
    features: Callable[[np.ndarray], np.ndarray],
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    config: TrainConfig,
    checkpoint: Path | None,
    progress: ProgressFn | None,
    say: Say,
    fit: FitFn,
) -> Fitted:
    """The chosen head(s) fitted on the whole training part, as ``--head <family>`` fits them."""
    fitted = []
    for i, family in enumerate(members):
        if family in TREE_FAMILIES:
            say(f"refitting {family} on all {len(train_idx):,} training series")
        else:
            p = plan_training(config, len(train_idx))
            say(
                f"refitting {family} on all {len(train_idx):,} training series "
                f"(up to {p.epochs} epochs, batch {p.batch_size})",
                epochs=p.epochs,
                initial_lr=config.initial_lr,
            )
        ckpt = checkpoint if len(members) == 1 else _member_checkpoint(checkpoint, i)
        fitted.append(
            fit(
                candidate_config(family, auto),
                series,
                features,
                train_idx,
                val_idx,
                config=config,
                checkpoint=ckpt,
                progress=progress,
            )
        )
    if len(fitted) == 1:
        return fitted[0]
    offsets = [_to_uniform(f) for f in fitted]
    module = ProbabilityAverage.of(
        [(f.spec, f.module) for f in fitted],
        temperatures=[f.temperature or 1.0 for f in fitted],
        offsets=[None if o is None else o.tolist() for o in offsets],
    )
    mean = np.mean([_balanced(f) for f in fitted], axis=0)
    shares = fitted[0].class_shares
    deep = next((f for f in fitted if f.history), fitted[0])
    ensemble = copy.copy(deep)  # a fitted head of the same kind, its module and outputs replaced
    ensemble.module, ensemble.spec = module, dict(module.spec)
    ensemble.val_proba = with_prior(mean, shares).astype(np.float32)
    # the bundle corrects the mean (a uniform-prior posterior) for the training shares once, untempered
    ensemble.val_logits = np.log(np.clip(mean, 1e-7, None))
    ensemble.head_prior, ensemble.temperature, ensemble.calibration = "uniform", None, {}
    return ensemble
