"""Class-prior correction and temperature scaling of a classifier's logits, in numpy.

**Prior correction** (Saerens et al. 2002, "Adjusting the outputs of a classifier to new a priori
probabilities"; Menon et al. 2021, "Long-tail learning via logit adjustment", eq. 5 with tau = 1).
geocrop trains every head with class-balanced weights (deep heads: cross-entropy weighted by
``1 / n_y``; trees: scikit-learn's ``balanced`` weights), which is the same, in expectation, as training
on a set where every class is equally common. The head's softmax therefore estimates the posterior under
a *uniform* prior, ``p_u(y | x) = p(x | y) / sum_k p(x | k)``, and its logits are ``f_y(x) = log p(x | y)
+ c(x)``. Under class shares ``pi`` (the area's), Bayes' rule gives

    p_pi(y | x) = pi_y p(x | y) / sum_k pi_k p(x | k) = softmax_y( f(x) + log pi ),

so the correction adds ``log pi_y`` to each logit (`adjust_logits`). ``pi`` = the training frequencies
before balancing restores the posterior of the data the head learned from (best for overall accuracy
and class areas); ``pi`` uniform adds a constant, i.e. no correction (the balanced decision, best for
rare classes and macro-F1). A zero share removes a class (its logit becomes -inf).

In general a head decides under some prior ``rho`` (its ``head_prior``) and the correction to shares
``pi`` adds ``log(pi_y / rho_y)`` (Saerens et al. 2002, eq. 2.4; `correction`). ``rho`` is uniform for
the deep heads, whose class-weighted loss is smooth and early-stopped on held-out parcels. The tree
heads are trained with balanced weights too, but their outputs do not behave as balanced posteriors: a
RandomForest's trees grow until their leaves are (nearly) pure, so the weights move split choices more
than votes, and gradient boosting fits a few hundred series almost exactly. Measured on the France table
(5 grouped folds; `bench/prior_shift_trees.py`), adding ``log pi`` would cut the forest's OA from 0.792
to 0.713 (macro-F1 0.518 to 0.300) and gradient boosting's from 0.815 to 0.775 (macro-F1 0.640 to
0.494), where it should raise OA if the outputs were balanced posteriors. geocrop records ``rho`` = the
training frequencies for both tree heads, so their default map is their raw output and ``uniform``
divides the frequencies out.

A deep head is not exactly balanced either: early stopping on a few dozen series and augmentation leave
it somewhere between. A **partial prior** ``rho = pi^s`` (normalised; ``s`` in [0, 1], 0 uniform, 1 the
training frequencies) covers the range; its default correction adds ``(1 - s) log pi``, the logit
adjustment of strength ``tau = 1 - s`` (Menon et al. 2021). `fit_calibration` fits ``T`` and ``s``
together on held-out labels (a bundle records ``s`` as its ``head_prior``, a number). On the France
folds the fitted ``s`` averages 0.48 for TempCNN and 0.55 for InceptionTime (``tau`` about 0.5), and
their ECE with ``T`` alone stays at 0.078 and 0.088, against 0.050 and 0.060 with ``T`` and ``s``
(docs/evaluation/france-auto).

**Temperature scaling** (Guo et al. 2017, "On calibration of modern neural networks"): a single
``T > 0`` divides the logits before the prior term, ``softmax(f(x) / T + log pi)``; it changes no
decision under a fixed ``pi`` but makes the winning probability mean what it says. `fit_temperature`
picks ``T`` by minimising the negative log-likelihood of held-out labels (the inner validation split of
`geocrop train`) under the prior those labels were drawn with (the training frequencies). The NLL is
convex in ``1 / T`` (a log-sum-exp of terms affine in it), so a golden-section search over a bracket
finds the optimum.

**Expected calibration error** (`expected_calibration_error`; Naeini et al. 2015, Guo et al. 2017): the
winning probabilities cut into ``n_bins`` equal-width bins on [0, 1]; the weighted mean over bins of
``|accuracy - mean confidence|``, weights = the bins' shares of the samples.

Shapes: logits (N, K) float, labels (N,) int in 0..K-1, shares (K,) non-negative.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

__all__ = [
    "ECE_BINS",
    "adaptive_calibration_error",
    "adjust_logits",
    "calibrated_proba",
    "calibration_summary",
    "class_shares",
    "classwise_calibration_error",
    "correction",
    "ece_floor",
    "expected_calibration_error",
    "fit_calibration",
    "fit_temperature",
    "log_shares",
    "nll",
    "prior_exponent",
    "separated",
    "softmax",
]

#: Bins of the expected calibration error (Guo et al. 2017 use 15).
ECE_BINS = 15
#: Temperatures `fit_temperature` searches between (a wider optimum is clipped to the bracket).
T_MIN, T_MAX = 0.05, 20.0


#: The prior a head's raw outputs decide under: ``uniform`` (a balanced loss) or ``training`` (the training
#: class frequencies: the tree heads), or a number ``s`` in [0, 1]: the partial prior ``frequencies ** s``.
HEAD_PRIORS = ("uniform", "training")
HeadPrior = str | float


def prior_exponent(head_prior: HeadPrior) -> float:
    """``s`` of a head prior (``rho = frequencies ** s``): 0 for ``uniform``, 1 for ``training``."""
    if isinstance(head_prior, str):
        if head_prior not in HEAD_PRIORS:
            raise ValueError(f"head prior {head_prior!r} is not one of {', '.join(HEAD_PRIORS)}")
        return 0.0 if head_prior == "uniform" else 1.0
    s = float(head_prior)
    if not 0 <= s <= 1:
        raise ValueError(f"head prior {head_prior!r} is not a number in [0, 1]")
    return s


def correction(
    target: npt.ArrayLike | None, *, frequencies: npt.ArrayLike, head_prior: HeadPrior = "uniform"
) -> np.ndarray | None:
    """(K,) shares whose log, added to the logits, moves a head that decides under ``head_prior`` to the
    class shares ``target`` (None: uniform): ``target / rho``, normalised (see the module docstring).

    ``frequencies``: the training class frequencies (``rho = frequencies ** s``, `prior_exponent`; a class
    with none counts as 1e-6 of the largest). None when the correction is a constant (nothing to do).
    """
    k = len(np.asarray(frequencies))
    aim = np.full(k, 1.0 / k) if target is None else np.asarray(target, dtype=np.float64)
    aim = aim / aim.sum()
    freq = np.asarray(frequencies, dtype=np.float64)
    freq = np.maximum(freq / freq.sum(), 1e-6 * freq.max() / freq.sum())
    rho = freq ** prior_exponent(head_prior)
    ratio = aim / rho
    ratio = ratio / ratio.sum()
    return None if np.allclose(ratio, ratio[0], rtol=1e-9, atol=0) else ratio


def softmax(logits: npt.ArrayLike) -> np.ndarray:
    """(N, K) probabilities of (N, K) logits, row-wise; -inf logits get probability 0."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - np.max(z, axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def log_shares(shares: npt.ArrayLike) -> np.ndarray:
    """(K,) ``log(shares / sum(shares))``; -inf where a share is 0 (that class is never predicted)."""
    s = np.asarray(shares, dtype=np.float64)
    if s.ndim != 1 or not np.all(np.isfinite(s)) or np.any(s < 0) or not s.sum() > 0:
        raise ValueError(f"class shares {s.tolist()} must be finite, non-negative and not all zero")
    with np.errstate(divide="ignore"):
        return np.log(s / s.sum())


def adjust_logits(
    logits: npt.ArrayLike, *, temperature: float = 1.0, shares: npt.ArrayLike | None = None
) -> np.ndarray:
    """``logits / temperature + log(shares)`` (see the module docstring); ``shares`` None: uniform."""
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature {temperature} must be a positive number")
    z = np.asarray(logits, dtype=np.float64) / temperature
    return z if shares is None else z + log_shares(shares)


def calibrated_proba(
    logits: npt.ArrayLike, *, temperature: float = 1.0, shares: npt.ArrayLike | None = None
) -> np.ndarray:
    """(N, K) ``softmax(logits / temperature + log(shares))``."""
    return softmax(adjust_logits(logits, temperature=temperature, shares=shares))


def nll(logits: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """Mean negative log-likelihood of ``labels`` under ``softmax(logits)``."""
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    top = np.max(z, axis=1, keepdims=True)
    lse = top[:, 0] + np.log(np.exp(z - top).sum(axis=1))
    return float(np.mean(lse - z[np.arange(len(y)), y]))


def _golden(loss: Callable[[float], float], lo: float, hi: float, steps: int = 80) -> tuple[float, float]:
    """(argmin, min) of a convex ``loss`` on [lo, hi] by golden-section search (the bracket shrinks by
    0.618 per step: ~1e-15 of its width after 80)."""
    ratio = (math.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = loss(a), loss(b)
    for _ in range(steps):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = loss(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = loss(b)
    x = (lo + hi) / 2
    return x, loss(x)


def fit_temperature(
    logits: npt.ArrayLike, labels: npt.ArrayLike, *, shares: npt.ArrayLike | None = None
) -> float:
    """The ``T`` in [`T_MIN`, `T_MAX`] minimising ``nll(logits / T + log(shares), labels)``.

    ``T > 1`` softens an over-confident model, ``T < 1`` sharpens an under-confident one. Returns 1.0 for
    an empty set, and for held-out labels that all win already (`separated`). Golden-section search on
    ``beta = 1 / T`` (the NLL is convex in beta).
    """
    z = np.asarray(logits, dtype=np.float64)
    bias = np.zeros(z.shape[1]) if shares is None else log_shares(shares)
    return _fit_beta(z, np.asarray(labels, dtype=np.int64), bias)[0]


def _fit_beta(z: np.ndarray, y: np.ndarray, bias: np.ndarray) -> tuple[float, float]:
    """(T, NLL) of the best ``beta = 1 / T`` for ``z * beta + bias``; (1, 0) without a usable label."""
    # a label whose class has share 0 would have infinite NLL at every T: leave such rows out
    keep = np.isfinite(bias[y]) if len(y) else np.zeros(0, dtype=bool)
    z, y = z[keep], y[keep]
    if len(y) == 0 or separated(z, y):
        return 1.0, 0.0
    beta, loss = _golden(lambda b: nll(z * b + bias, y), 1.0 / T_MAX, 1.0 / T_MIN)
    return float(1.0 / beta), loss


def separated(logits: np.ndarray, labels: np.ndarray) -> bool:
    """True when every held-out label already has the highest logit: then a smaller T always lowers the NLL
    (towards 0 as T -> 0) and nothing bounds the fit. On a small, easy selection split (one class
    dominant, a few rare parcels all right) that sent T to the bracket's end (0.05) and the probabilities
    to 0 and 1; such a split is no evidence, and the fits keep T = 1 (and a balanced head's prior)."""
    return bool(len(labels)) and bool(np.all(np.asarray(logits).argmax(axis=1) == labels))


def fit_calibration(
    logits: npt.ArrayLike, labels: npt.ArrayLike, *, frequencies: npt.ArrayLike
) -> tuple[float, float]:
    """(T, s): the temperature and the partial head prior ``frequencies ** s`` (s in [0, 1]) minimising
    the NLL of held-out ``labels`` drawn with the training ``frequencies``, i.e. of
    ``softmax(logits / T + (1 - s) log frequencies)`` (see the module docstring).

    The NLL is jointly convex in ``(1 / T, 1 - s)`` (a log-sum-exp of affine terms), so a golden-section
    search over ``s`` of the best ``T`` at each ``s`` finds the optimum. (1, 0) for an empty set and for
    held-out labels that all win already (`separated`: no evidence; the head taken as balanced).
    """
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    if len(y) == 0 or separated(z, y):
        return 1.0, 0.0
    freq = np.asarray(frequencies, dtype=np.float64)
    log_freq = np.log(np.maximum(freq / freq.sum(), 1e-6 * freq.max() / freq.sum()))
    s, _ = _golden(lambda s: _fit_beta(z, y, (1 - s) * log_freq)[1], 0.0, 1.0, steps=40)
    s = round(s, 4)
    return _fit_beta(z, y, (1 - s) * log_freq)[0], s


def expected_calibration_error(
    proba: npt.ArrayLike, labels: npt.ArrayLike, *, n_bins: int = ECE_BINS
) -> float:
    """ECE of (N, K) probabilities against ``labels`` with ``n_bins`` equal-width confidence bins.

    The winning probability of each row is its confidence; a row with confidence ``c`` falls in bin
    ``min(floor(c * n_bins), n_bins - 1)``. NaN for an empty set.
    """
    confidence, correct = _winners(proba, labels)
    if len(correct) == 0:
        return float("nan")
    bins = np.minimum((confidence * n_bins).astype(np.int64), n_bins - 1)
    conf_sum = np.bincount(bins, weights=confidence, minlength=n_bins)
    hit_sum = np.bincount(bins, weights=correct, minlength=n_bins)
    return float(np.abs(hit_sum - conf_sum).sum() / len(correct))


def _winners(proba: npt.ArrayLike, labels: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """(N,) each row's winning probability and (N,) 1.0 where the winner is the label, else 0.0."""
    p = np.asarray(proba, dtype=np.float64)
    hits = p.argmax(axis=1) == np.asarray(labels, dtype=np.int64) if len(p) else np.zeros(0, dtype=bool)
    return (p.max(axis=1) if len(p) else np.zeros(0)), hits.astype(np.float64)


def adaptive_calibration_error(
    proba: npt.ArrayLike, labels: npt.ArrayLike, *, n_bins: int = ECE_BINS
) -> float:
    """ECE with equal-mass bins (Nixon et al. 2019, "Measuring calibration in deep learning"): the rows
    sorted by confidence and cut into ``n_bins`` groups of (nearly) equal size. Equal-width bins leave most
    rows of a good model in the top bin and a handful in each other, whose noise the standard ECE adds
    up; equal-mass bins hold about N / ``n_bins`` rows each. NaN for an empty set."""
    confidence, correct = _winners(proba, labels)
    if len(correct) == 0:
        return float("nan")
    order = np.argsort(confidence, kind="stable")
    gaps = [abs(correct[b].sum() - confidence[b].sum()) for b in np.array_split(order, n_bins) if len(b)]
    return float(sum(gaps) / len(correct))


def classwise_calibration_error(
    proba: npt.ArrayLike, labels: npt.ArrayLike, *, n_bins: int = ECE_BINS
) -> float:
    """Classwise ECE (Kull et al. 2019, "Beyond temperature scaling"): for every class, its probability
    (not only the winner's) in ``n_bins`` equal-width bins against how often that class is the label,
    averaged over the classes. It checks the whole probability vector, rare classes included, which the
    winner-only ECE never looks at. NaN for an empty set."""
    p = np.asarray(proba, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    if len(y) == 0:
        return float("nan")
    errors = []
    for k in range(p.shape[1]):
        bins = np.minimum((p[:, k] * n_bins).astype(np.int64), n_bins - 1)
        said = np.bincount(bins, weights=p[:, k], minlength=n_bins)
        seen = np.bincount(bins, weights=(y == k).astype(np.float64), minlength=n_bins)
        errors.append(np.abs(seen - said).sum() / len(y))
    return float(np.mean(errors))


def class_shares(labels: npt.ArrayLike, n_classes: int) -> np.ndarray:
    """(K,) each class's share of ``labels`` (class indices); uniform for an empty set."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=n_classes).astype(np.float64)
    return counts / counts.sum() if counts.sum() > 0 else np.full(n_classes, 1.0 / n_classes)


def calibration_summary(
    logits: npt.ArrayLike,
    labels: npt.ArrayLike,
    *,
    temperature: float,
    shares: npt.ArrayLike | None,
    before_shares: npt.ArrayLike | None = None,
) -> dict[str, float]:
    """ECE and NLL of ``softmax(logits + log shares)`` before (T = 1, ``before_shares`` when given) and
    after temperature scaling."""
    z, y = np.asarray(logits, dtype=np.float64), np.asarray(labels, dtype=np.int64)
    out: dict[str, float] = {"temperature": float(temperature), "n": float(len(y))}
    first = shares if before_shares is None else before_shares
    for tag, t, prior in (("before", 1.0, first), ("after", temperature, shares)):
        adjusted = adjust_logits(z, temperature=t, shares=prior)
        out[f"ece_{tag}"] = expected_calibration_error(softmax(adjusted), y)
        out[f"nll_{tag}"] = nll(adjusted, y) if len(y) else float("nan")
    return out


def ece_floor(
    proba: npt.ArrayLike,
    *,
    n_bins: int = ECE_BINS,
    draws: int = 200,
    seed: int = 0,
    error: Callable[..., float] = expected_calibration_error,
) -> float:
    """The ECE that ``proba`` would show even if it were exactly right: the mean ECE over ``draws`` label
    sets drawn from its own rows. ECE is biased upward on small sets (few samples per bin); a measured
    ECE near this floor is as good as this many samples can show. ``error``: the calibration error to
    take the floor of (`adaptive_calibration_error`, `classwise_calibration_error` also fit). NaN for an
    empty set."""
    p = np.asarray(proba, dtype=np.float64)
    if len(p) == 0:
        return float("nan")
    rng = np.random.default_rng(seed)
    cumulative = np.cumsum(p / p.sum(axis=1, keepdims=True), axis=1)
    values = []
    for _ in range(draws):
        u = rng.random((len(p), 1))
        labels = np.minimum((u > cumulative).sum(axis=1), p.shape[1] - 1)
        values.append(error(p, labels, n_bins=n_bins))
    return float(np.mean(values))
