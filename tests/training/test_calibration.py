"""Temperature scaling, prior correction and the expected calibration error, on cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from geocrop.training.calibration import (
    adaptive_calibration_error,
    adjust_logits,
    calibrated_proba,
    calibration_summary,
    class_shares,
    classwise_calibration_error,
    correction,
    ece_floor,
    expected_calibration_error,
    fit_calibration,
    fit_temperature,
    log_shares,
    nll,
    softmax,
)
from geocrop.training.metrics import majority_accuracy, overall_accuracy


def _calibrated_sample(n: int, k: int, *, scale: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels drawn from softmax(logits): a model calibrated at T = 1 by construction."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, scale, (n, k))
    p = softmax(logits)
    labels = (rng.random((n, 1)) > np.cumsum(p, axis=1)).sum(axis=1)
    return logits, np.minimum(labels, k - 1)


def test_an_overconfident_model_gets_a_temperature_above_one() -> None:
    logits, labels = _calibrated_sample(20_000, 4, scale=1.5, seed=0)
    overconfident = 3.0 * logits  # the same ranking, three times too sharp
    t = fit_temperature(overconfident, labels)
    assert t == pytest.approx(3.0, rel=0.05)
    before = expected_calibration_error(softmax(overconfident), labels)
    after = expected_calibration_error(calibrated_proba(overconfident, temperature=t), labels)
    assert before > 0.1 and after < 0.02


def test_an_underconfident_model_gets_a_temperature_below_one() -> None:
    logits, labels = _calibrated_sample(20_000, 3, scale=2.0, seed=1)
    assert fit_temperature(logits / 2.0, labels) == pytest.approx(0.5, rel=0.05)


def test_a_calibrated_model_keeps_temperature_one_and_ece_near_zero() -> None:
    logits, labels = _calibrated_sample(20_000, 5, scale=1.0, seed=2)
    assert fit_temperature(logits, labels) == pytest.approx(1.0, abs=0.04)
    assert expected_calibration_error(softmax(logits), labels) < 0.015


def test_the_fitted_temperature_minimises_the_nll() -> None:
    logits, labels = _calibrated_sample(2_000, 3, scale=1.0, seed=3)
    logits = 2.5 * logits
    t = fit_temperature(logits, labels)
    best = nll(logits / t, labels)
    for other in (t * 0.9, t * 1.1, 1.0):
        assert nll(logits / other, labels) > best


def test_temperature_is_fitted_under_the_training_shares() -> None:
    """Labels drawn with class shares pi from a balanced model: T is recovered only with the prior term."""
    rng = np.random.default_rng(4)
    balanced = rng.normal(0.0, 1.5, (30_000, 3))
    shares = np.array([0.7, 0.2, 0.1])
    p = softmax(balanced + np.log(shares))
    labels = np.minimum((rng.random((len(p), 1)) > np.cumsum(p, axis=1)).sum(axis=1), 2)
    sharp = 2.0 * balanced
    assert fit_temperature(sharp, labels, shares=shares) == pytest.approx(2.0, rel=0.06)
    summary = calibration_summary(sharp, labels, temperature=2.0, shares=shares)
    assert summary["ece_after"] < summary["ece_before"] and summary["nll_after"] < summary["nll_before"]


def test_prior_correction_is_bayes_rule() -> None:
    likelihood = np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])  # p(x | y) of two pixels
    shares = np.array([0.5, 0.3, 0.2])
    expected = likelihood * shares / (likelihood * shares).sum(axis=1, keepdims=True)
    got = calibrated_proba(np.log(likelihood) + 7.0, shares=shares)  # a per-row constant changes nothing
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    # uniform shares are no correction; a zero share removes its class
    np.testing.assert_allclose(calibrated_proba(np.log(likelihood), shares=[1, 1, 1]), likelihood, rtol=1e-12)
    assert (calibrated_proba(np.log(likelihood), shares=[1, 0, 1])[:, 1] == 0).all()
    assert np.isneginf(log_shares([2.0, 0.0, 2.0])[1])


def test_prior_correction_moves_decisions_to_the_common_class() -> None:
    logits = np.array([[0.0, 0.4]])  # balanced decision: the rare class 1
    assert adjust_logits(logits).argmax() == 1
    assert adjust_logits(logits, shares=[0.8, 0.2]).argmax() == 0
    assert adjust_logits(logits, temperature=2.0, shares=[0.8, 0.2]).argmax() == 0


@pytest.mark.parametrize("bad", [[0.5, -0.1], [0.0, 0.0], [np.nan, 1.0]])
def test_bad_shares_are_refused(bad: list[float]) -> None:
    with pytest.raises(ValueError, match="non-negative"):
        log_shares(bad)


def test_ece_by_hand() -> None:
    # two bins used: confidence 0.95 (2 rows, both right) and 0.55 (2 rows, one right)
    proba = np.array([[0.95, 0.05], [0.05, 0.95], [0.55, 0.45], [0.45, 0.55]])
    labels = np.array([0, 1, 0, 0])
    expected = 0.5 * abs(1.0 - 0.95) + 0.5 * abs(0.5 - 0.55)
    assert expected_calibration_error(proba, labels, n_bins=10) == pytest.approx(expected)
    # always right at confidence 1: no error; always wrong: error 1
    sure = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert expected_calibration_error(sure, np.array([0, 1])) == 0.0
    assert expected_calibration_error(sure, np.array([1, 0])) == 1.0
    assert np.isnan(expected_calibration_error(np.zeros((0, 2)), np.zeros(0)))


def test_ece_floor_shrinks_with_the_sample() -> None:
    logits, _ = _calibrated_sample(5_000, 4, scale=1.0, seed=5)
    p = softmax(logits)
    small, large = ece_floor(p[:80]), ece_floor(p)
    assert small > large > 0 and large < 0.02


def test_equal_mass_and_classwise_errors_by_hand() -> None:
    # confidences 0.6, 0.6 (one right), 0.9, 0.9 (both right): two equal-mass bins of two rows each
    proba = np.array([[0.6, 0.4], [0.4, 0.6], [0.9, 0.1], [0.1, 0.9]])
    labels = np.array([0, 0, 0, 1])
    assert adaptive_calibration_error(proba, labels, n_bins=2) == pytest.approx(
        0.5 * abs(0.5 - 0.6) + 0.5 * abs(1.0 - 0.9)
    )
    # class 0 said 0.4 + 0.1 in the lower half (one class-0 label there) and 0.6 + 0.9 in the upper (two);
    # class 1 said 0.4 + 0.1 (no label) and 0.6 + 0.9 (one): each class off by 0.5 in both bins
    per_class = (abs(1 - 0.5) + abs(2 - 1.5)) / 4
    assert classwise_calibration_error(proba, labels, n_bins=2) == pytest.approx(per_class)
    assert np.isnan(adaptive_calibration_error(np.zeros((0, 2)), np.zeros(0)))
    assert np.isnan(classwise_calibration_error(np.zeros((0, 2)), np.zeros(0)))


def test_equal_mass_bins_see_less_noise_than_equal_width_on_a_calibrated_model() -> None:
    logits, labels = _calibrated_sample(400, 9, scale=3.0, seed=11)
    p = softmax(logits)
    for error in (adaptive_calibration_error, classwise_calibration_error):
        floor = ece_floor(p, error=error)
        assert 0 < floor < 0.1 and error(p, labels) < 2 * floor + 0.02
    # an over-confident model (logits doubled) is caught by every error
    sharp = softmax(2 * logits)
    for error in (expected_calibration_error, adaptive_calibration_error, classwise_calibration_error):
        assert error(sharp, labels) > error(p, labels) + 0.02


def test_class_shares_and_majority_accuracy() -> None:
    np.testing.assert_allclose(class_shares(np.array([0, 0, 2, 2, 2, 1]), 4), [2 / 6, 1 / 6, 3 / 6, 0])
    y_val = np.array([0, 1, 1, 2])
    assert majority_accuracy(y_val) == 0.5  # its own majority (1)
    assert majority_accuracy(y_val, np.array([2, 2, 0])) == 0.25  # the training majority (2)
    assert overall_accuracy(y_val, np.array([0, 1, 2, 2])) == 0.75


def test_a_partial_prior_lies_between_uniform_and_training() -> None:
    shares = np.array([0.6, 0.3, 0.1])
    full = correction(shares, frequencies=shares, head_prior="uniform")
    assert correction(shares, frequencies=shares, head_prior=0.0) == pytest.approx(full)
    assert correction(shares, frequencies=shares, head_prior=1.0) is None  # the trees' default: nothing
    half = correction(shares, frequencies=shares, head_prior=0.5)
    assert half is not None and half == pytest.approx(np.sqrt(shares) / np.sqrt(shares).sum())
    with pytest.raises(ValueError, match="not a number in"):
        correction(shares, frequencies=shares, head_prior=1.5)


def test_fit_calibration_recovers_temperature_and_prior_strength() -> None:
    """A head that absorbed 40 % of the class prior and is twice too sharp: (T, s) = (2, 0.4) restore the
    posterior the labels were drawn from, and beat T alone in NLL and ECE."""
    rng = np.random.default_rng(7)
    balanced = rng.normal(0.0, 1.5, (10_000, 3))  # T within 3 %, s within 0.02 over seeds 1-3 and 7
    shares = np.array([0.7, 0.2, 0.1])
    p = softmax(balanced + np.log(shares))
    labels = np.minimum((rng.random((len(p), 1)) > np.cumsum(p, axis=1)).sum(axis=1), 2)
    raw = 2.0 * (balanced + 0.4 * np.log(shares))
    temperature, s = fit_calibration(raw, labels, frequencies=shares)
    assert temperature == pytest.approx(2.0, rel=0.05) and s == pytest.approx(0.4, abs=0.05)
    t_only = fit_temperature(raw, labels, shares=shares)
    partial = correction(shares, frequencies=shares, head_prior=s)
    both = calibrated_proba(raw, temperature=temperature, shares=partial)
    alone = calibrated_proba(raw, temperature=t_only, shares=shares)
    assert nll(np.log(both), labels) < nll(np.log(alone), labels)
    assert expected_calibration_error(both, labels) < expected_calibration_error(alone, labels)
    assert fit_calibration(raw[:0], labels[:0], frequencies=shares) == (1.0, 0.0)


def test_a_split_whose_labels_all_win_already_keeps_t_one_and_a_balanced_prior() -> None:
    """Every held-out label has the top logit: any smaller T lowers the NLL without bound, so the split
    says nothing; T stays 1 (not the bracket's 0.05) and a deep head keeps the full prior correction."""
    logits = np.array([[3.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.5, 0.0, 1.0], [4.0, 1.0, 0.0]])
    labels = np.array([0, 1, 2, 0])
    assert fit_temperature(logits, labels) == 1.0
    assert fit_temperature(logits, labels, shares=[0.7, 0.2, 0.1]) == 1.0
    assert fit_calibration(logits, labels, frequencies=[0.7, 0.2, 0.1]) == (1.0, 0.0)
    wrong = np.array([0, 1, 2, 1])  # one label loses: a finite optimum, inside the bracket
    assert 0.05 < fit_temperature(logits, wrong) < 20
