"""``--head auto``: the head chosen for the user on training parcels it never fitted on.

No head wins on every table: on the France LPIS table gradient boosting leads, on another real table
InceptionTime does and TempCNN only ties the RandomForest (docs/evaluation). A user should not have to
find out which. ``auto`` fits each candidate (`AUTO_CANDIDATES`, each at its default configuration and
the adaptive `TrainConfig`, nothing tuned here) **once, exactly as** ``--head <family>`` **would**: a
deep head on the training part less `geocrop.training.any_head.INNER_SELECT` of its parcels, which pick
its epoch and temperature; a tree head on the whole training part, with a probe fit without those
parcels for its temperature. Every candidate thus predicts the same held-out training parcels (the
*selection split*, never the user's validation parcels), and the fits compared are the fits kept: no
refit. Its options are each candidate alone and the mean of a tree candidate's and a deep candidate's
default probabilities (both corrected to the training class frequencies, `ProbabilityAverage`; the best
two deep heads when no tree candidate fits the inputs). The rule (`choose`):

1. an option whose OA on the selection split is below the majority class's (the training majority
   predicted everywhere) is out; if every option is, the one with the highest OA is kept with a warning;
2. the default is the **mean of two** with the highest selection macro-F1: heads that fail differently
   (trees on raw values, convolutions on shapes in time) average to a steadier head than either, and a
   few dozen selection series cannot tell apart heads within a few points of each other (the earlier
   rule, the best of three by inner macro-F1, chose InceptionTime on one France fold where it lost 0.21
   to gradient boosting: docs/evaluation/france-auto);
3. a single candidate replaces it only when its selection macro-F1 beats the mean's by more than
   `MARGIN_SE` paired bootstrap standard errors (selection parcels resampled, `paired_se`).

A chosen mean keeps its members' calibration (each member's temperature and prior, fitted alone) and no
temperature of its own: one fitted on the selection split, where the deep members picked their epoch and
temperature, sharpened the mean on every France fold (T 0.84-0.92) and did not lower its held-out NLL;
no other calibration of the mean tried won beyond the noise (docs/evaluation/france-auto). Its bundle's
head decides under the training frequencies (``head_prior`` ``training``): ``class_priors`` moves it
like any tree head.

Cost: the sum of the candidates' single fits (plus a second, cheap tree fit), the least a comparison can
cost: the France table (297 training series) takes about 85 CPU seconds. Each deep candidate checkpoints
every epoch beside the run's checkpoint (`candidate_checkpoint`); an interrupted choice resumes there and
refits the trees (deterministic, seconds). Gradient boosting is a candidate while a series flattens to at
most `MAX_TREE_INPUTS` inputs (raw bands; wide backbone features are what the deep heads are for).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import logging
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from torch import nn

from geocrop.core.progress import Progress, emit
from geocrop.models.ensemble import ProbabilityAverage
from geocrop.training.calibration import (
    HeadPrior,
    calibration_summary,
    correction,
    softmax,
)
from geocrop.training.fit import EpochStats, ProgressFn, TrainConfig, plan_training
from geocrop.training.hparams import AUTO_CANDIDATES, TREE_FAMILIES, HeadConfig, default_config
from geocrop.training.metrics import macro_f1, scores

if TYPE_CHECKING:
    from geocrop.data.labelled import LabelledSeries

log = logging.getLogger(__name__)

#: Largest flattened series (steps x features) gradient boosting is a candidate for.
MAX_TREE_INPUTS = 2048
#: A single candidate replaces the mean of two only when it wins by more than this many standard errors.
MARGIN_SE = 2.0
#: Bootstrap draws of the paired standard error (`paired_se`).
BOOTSTRAP = 400
#: Seed offset of the bootstrap draws (apart from the split seeds).
_BOOT_SEED = 104729

#: Where auto's lines go: `ProgressEvent`s of the train stage (``step``/``total`` over the candidates' fits).
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
    head_prior: HeadPrior
    temperature: float | None
    calibration: dict[str, float]
    held_out: tuple[np.ndarray, np.ndarray] | None


#: ``fit(head, series, features, train_idx, val_idx, *, config, checkpoint=None, progress=None)``
FitFn = Callable[..., Fitted]
#: ``split(series, train_idx, seed) -> (fit_idx, select_idx)``: the selection split every head keeps back.
SplitFn = Callable[..., tuple[np.ndarray, np.ndarray]]
#: ``outputs(module, x) -> (N, K) raw logits``.
OutputsFn = Callable[[nn.Module, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class AutoPlan:
    """What ``auto`` compares: its candidates, and the means of two it may choose instead."""

    candidates: tuple[str, ...]
    pairs: tuple[tuple[str, str], ...]


def plan_auto(*, steps: int, features: int, candidates: Sequence[str] = AUTO_CANDIDATES) -> AutoPlan:
    """The candidates for series of ``steps`` x ``features`` inputs, and the pairs to average: each tree
    candidate with each deep one, or every two deep ones when no tree candidate remains."""
    kept = tuple(c for c in candidates if c not in TREE_FAMILIES or steps * features <= MAX_TREE_INPUTS)
    trees = [c for c in kept if c in TREE_FAMILIES]
    deep = [c for c in kept if c not in TREE_FAMILIES]
    if trees and deep:
        pairs = tuple((t, d) for t in trees for d in deep)
    else:
        pairs = tuple((a, b) for i, a in enumerate(kept) for b in kept[i + 1 :])
    return AutoPlan(kept, pairs)


def candidate_config(family: str, auto: HeadConfig) -> HeadConfig:
    """A candidate at its default configuration; deep ones end their schedule at ``auto``'s final lr."""
    cfg = default_config(family)
    return cfg if family in TREE_FAMILIES else HeadConfig(family, cfg.params, auto.lr)


def candidate_checkpoint(checkpoint: Path | None, family: str) -> Path | None:
    """Where a candidate of a run checkpointed at ``checkpoint`` keeps its own per-epoch checkpoint."""
    return None if checkpoint is None else checkpoint.with_name(f"{checkpoint.stem}.{family}.safetensors")


def default_proba(logits: np.ndarray, fitted: Fitted) -> np.ndarray:
    """(N, K) what ``fitted``'s bundle predicts at defaults from its raw ``logits``: temperature-scaled,
    corrected from its head prior to its training class frequencies."""
    z = np.asarray(logits, dtype=np.float64) / (fitted.temperature or 1.0)
    offset = _to_training(fitted)
    return softmax(z if offset is None else z + offset)


def _to_training(fitted: Fitted) -> np.ndarray | None:
    """(K,) what to add to a head's tempered logits so that it decides under its training frequencies
    (a deep head's balanced loss decides under a uniform prior); None: nothing (trees)."""
    if fitted.class_shares is None:
        return None
    fix = correction(fitted.class_shares, frequencies=fitted.class_shares, head_prior=fitted.head_prior)
    return None if fix is None else np.log(np.clip(fix, 1e-12, None))


def paired_se(
    y: np.ndarray,
    pred_a: np.ndarray,
    pred_b: np.ndarray,
    n_classes: int,
    groups: np.ndarray,
    *,
    draws: int = BOOTSTRAP,
    seed: int = 0,
) -> float:
    """Bootstrap standard error of macro-F1(a) - macro-F1(b) on the same series, resampling ``groups``
    (parcels: their series stay together); 0 for fewer than two groups."""
    names, inverse = np.unique(groups, return_inverse=True)
    if len(names) < 2:
        return 0.0
    members = [np.flatnonzero(inverse == g) for g in range(len(names))]
    rng = np.random.default_rng(seed + _BOOT_SEED)
    diffs = []
    for _ in range(draws):
        rows = np.concatenate([members[g] for g in rng.integers(0, len(names), len(names))])
        diffs.append(macro_f1(y[rows], pred_a[rows], n_classes) - macro_f1(y[rows], pred_b[rows], n_classes))
    return float(np.std(diffs))


def fit_auto(
    auto: HeadConfig,
    series: LabelledSeries,
    features: Callable[[np.ndarray], np.ndarray],
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    *,
    fit: FitFn,
    split: SplitFn,
    outputs: OutputsFn,
    config: TrainConfig,
    checkpoint: Path | None = None,
    progress: ProgressFn | None = None,
    note: Note | None = None,
) -> Fitted:
    """Fit ``auto``'s candidates on ``train_idx``, choose on their common selection split (module
    docstring), score ``val_idx``; the result's ``selection`` says what was tried and why. ``fit`` fits one
    candidate (`geocrop.training.any_head.fit_any_head`), ``split`` draws the selection split
    (`~geocrop.training.any_head.inner_split`), ``outputs`` gives a module's logits
    (`~geocrop.training.any_head.head_logits`); ``note`` gets an event per epoch or tree fit and the
    choice."""
    say: Say = functools.partial(
        emit, note or (lambda event: log.info("%s", event.message)), "train", None, log=True
    )
    n_classes = len(series.class_names)
    probe = features(train_idx[:1])
    wanted = tuple(auto.params.get("candidates", AUTO_CANDIDATES))
    plan = plan_auto(steps=int(probe.shape[1]), features=int(probe.shape[2]), candidates=wanted)
    fit_rows, sel_rows = split(series, train_idx, config.seed)
    t0 = time.perf_counter()
    epochs = plan_training(config, len(fit_rows)).epochs
    units = [1 if c in TREE_FAMILIES else epochs for c in plan.candidates]  # what the bar counts
    fitted: dict[str, Fitted] = {}
    sel_proba: dict[str, np.ndarray] = {}
    for i, c in enumerate(plan.candidates):
        done = sum(units[:i])
        say(f"candidate {i + 1}/{len(plan.candidates)}: fitting {c}", step=done, total=sum(units))
        # a deep head with fixed epochs keeps no selection split: it fits without those parcels here
        rows = fit_rows if (c not in TREE_FAMILIES and not config.adaptive) else train_idx
        f = fit(
            candidate_config(c, auto),
            series,
            features,
            rows,
            val_idx,
            config=config,
            checkpoint=candidate_checkpoint(checkpoint, c) if c not in TREE_FAMILIES else None,
            progress=_epochs_as_steps(say, c, done, sum(units)),
        )
        fitted[c] = f
        if f.held_out is not None and np.array_equal(f.held_out[0], sel_rows):
            logits = f.held_out[1]
        else:
            logits = outputs(f.module, features(sel_rows)) if len(sel_rows) else np.zeros((0, n_classes))
        sel_proba[c] = default_proba(logits, f)
    y = series.labels[sel_rows]
    options = dict(sel_proba)
    for a, b in plan.pairs:
        options[f"{a}+{b}"] = (sel_proba[a] + sel_proba[b]) / 2
    majority_oa = float(np.mean(y == np.bincount(series.labels[fit_rows], minlength=n_classes).argmax()))
    choice, reason, table = choose(
        options,
        y,
        majority_oa,
        n_classes,
        groups=series.groups[sel_rows],
        pairs=[f"{a}+{b}" for a, b in plan.pairs],
        seed=config.seed,
    )
    selection = {
        "rule": f"mean of two unless one candidate wins by > {MARGIN_SE:g} paired SE; OA >= majority",
        "candidates": list(plan.candidates),
        "selection_series": len(sel_rows),
        "selection_parcels": len(np.unique(series.groups[sel_rows])),
        "seconds": round(time.perf_counter() - t0, 1),
        "majority_oa": round(majority_oa, 4),
        "scores": table,
        "chosen": choice,
        "members": choice.split("+"),
        "reason": reason,
    }
    if reason.startswith("no option"):
        warnings.warn(f"auto head: {reason}", UserWarning, stacklevel=3)
    say(f"auto chose {choice} on {len(sel_rows)} held-out training series: {reason}")
    members = choice.split("+")
    if len(members) == 1:
        result = fitted[choice]
    else:
        result = _ensemble([fitted[m] for m in members], options[choice], y)
    result.selection = selection
    for c in plan.candidates:
        ckpt = candidate_checkpoint(checkpoint, c)
        if ckpt is not None:
            for path in (ckpt, ckpt.with_suffix(".json")):
                with contextlib.suppress(OSError):
                    path.unlink()
    return result


def _epochs_as_steps(say: Say, family: str, done: int, total: int) -> ProgressFn:
    """A candidate's per-epoch callback as events counting epochs over all candidates' planned epochs."""

    def epoch(stats: EpochStats) -> None:
        say(
            f"{family} epoch {stats.epoch}: val loss {stats.val_loss:.4f}, selection macro-F1 "
            f"{stats.select_f1:.3f}",
            step=min(done + stats.epoch, total),
            total=total,
        )

    return epoch


def choose(
    options: dict[str, np.ndarray],
    y: np.ndarray,
    majority_oa: float,
    n_classes: int,
    *,
    groups: np.ndarray | None = None,
    pairs: Sequence[str] = (),
    seed: int = 0,
) -> tuple[str, str, dict[str, dict[str, float]]]:
    """(choice, reason, scores) by the rule of the module docstring.

    ``options``: name -> (N, K) selection probabilities (candidates, and the means named in ``pairs``,
    ``a+b``); ``groups``: the selection series' parcels (default: one each) for the bootstrap."""
    table = {n: _rounded(scores(y, p.argmax(axis=1), n_classes)) for n, p in options.items()}
    if len(y) == 0:  # nothing held out to compare on: the first mean of two, else the first candidate
        first = next(iter(pairs), next(iter(options)))
        return first, "no training parcel was left to compare on; the first option kept", table
    groups = np.arange(len(y)) if groups is None else np.asarray(groups)
    order = list(options)
    eligible = [n for n in order if table[n]["oa"] >= majority_oa]
    below = [n for n in order if n not in eligible]
    dropped = (
        f"; {', '.join(below)} left out: OA below the majority class's {majority_oa:.3f}" if below else ""
    )
    if not eligible:
        best = max(order, key=lambda n: (table[n]["oa"], -order.index(n)))
        return (
            best,
            (
                f"no option reached the majority class's OA ({majority_oa:.3f}) on the held-out training "
                f"series; {best} has the highest ({table[best]['oa']:.3f}): check the labels, or give more "
                "samples of the rare classes"
            ),
            table,
        )

    def rank(names: Sequence[str]) -> str:  # highest macro-F1, ties to the earlier option
        return max(names, key=lambda n: (table[n]["macro_f1"], -order.index(n)))

    means = [n for n in pairs if n in eligible]
    singles = [n for n in eligible if n not in pairs]
    if not means:
        best = rank(singles)
        return (
            best,
            (
                f"highest macro-F1 ({table[best]['macro_f1']:.3f}, OA {table[best]['oa']:.3f} >= majority "
                f"{majority_oa:.3f}), no mean of two eligible{dropped}"
            ),
            table,
        )
    mean = rank(means)
    a, b = mean.split("+")
    f1 = {n: table[n]["macro_f1"] for n in table}
    reason = (
        f"the mean of {a} and {b} has the highest macro-F1 of the means of two ({f1[mean]:.3f}, "
        f"OA {table[mean]['oa']:.3f} >= majority {majority_oa:.3f})"
    )
    if not singles:
        return mean, reason + dropped, table
    rival = rank(singles)
    gain = f1[rival] - f1[mean]
    if gain <= 0:
        return mean, f"{reason}; no candidate alone beats it (best {rival} {f1[rival]:.3f}){dropped}", table
    pred_r, pred_m = options[rival].argmax(axis=1), options[mean].argmax(axis=1)
    se = paired_se(y, pred_r, pred_m, n_classes, groups, seed=seed)
    margin = f"{MARGIN_SE:g} paired SE ({se:.3f})"
    if gain > MARGIN_SE * se:
        why = (
            f"{rival} alone beats the mean of {a} and {b} by {gain:.3f} macro-F1 ({f1[rival]:.3f} against "
            f"{f1[mean]:.3f}), more than {margin}; OA {table[rival]['oa']:.3f} >= majority {majority_oa:.3f}"
        )
        return rival, why + dropped, table
    return mean, f"{reason}; {rival} alone is {gain:.3f} higher, within {margin}{dropped}", table


def _rounded(values: dict[str, float]) -> dict[str, float]:
    return {k: round(float(values[k]), 4) for k in ("macro_f1", "oa")}


def _ensemble(members: Sequence[Fitted], sel_proba: np.ndarray, y: np.ndarray) -> Fitted:
    """The mean of ``members``' default probabilities as one fitted head: a `ProbabilityAverage` whose
    output decides under the training frequencies (no temperature of its own: module docstring), with
    its ECE and NLL on the selection split."""
    offsets = [_to_training(f) for f in members]
    module = ProbabilityAverage.of(
        [(f.spec, f.module) for f in members],
        temperatures=[f.temperature or 1.0 for f in members],
        offsets=[None if o is None else o.tolist() for o in offsets],
    )
    log_mean = np.log(np.clip(sel_proba, 1e-7, None))
    calibration = calibration_summary(log_mean, y, temperature=1.0, shares=None) if len(y) else {}
    val = np.mean([default_proba(f.val_logits, f) for f in members if f.val_logits is not None], axis=0)
    val_logits = np.log(np.clip(val, 1e-7, None))  # what the module outputs (its log-mean, clamped)
    deep = next((f for f in members if f.history), members[0])
    ensemble = copy.copy(deep)  # a fitted head of the same kind, its module and outputs replaced
    ensemble.module, ensemble.spec = module, dict(module.spec)
    ensemble.val_logits = val_logits
    ensemble.val_proba = softmax(val_logits).astype(np.float32)
    ensemble.class_shares = members[0].class_shares
    ensemble.head_prior, ensemble.temperature, ensemble.calibration = "training", None, calibration
    ensemble.held_out = None
    return ensemble
