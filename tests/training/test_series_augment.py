"""Series augmentations: gap filling equals the grid's rule, date resampling keeps real observations near
their dates, date dropout blanks whole dates, and every draw repeats under the same generator seed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geocrop.core.temporal import TemporalGrid, regrid
from geocrop.training.series_augment import (
    RESAMPLE_JITTER,
    FilledSeriesAugment,
    SeriesAugment,
    drop_dates,
    fill_gaps,
    resample_dates,
)


def _series(b: int = 16, t: int = 20, c: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(rng.normal(size=(b, t, c)).astype(np.float32))
    observed = torch.from_numpy(rng.random((b, t)) < 0.5)
    observed[0] = False  # a series with nothing observed
    observed[1] = False
    observed[1, 7] = True  # and one with a single observation
    return torch.where(observed.unsqueeze(-1), x, torch.full_like(x, float("nan"))), observed


def test_fill_gaps_is_the_grid_rule() -> None:
    x, observed = _series()
    grid = TemporalGrid("2021-01-01", "2021-01-20", 20)  # one step per day
    expected, _ = regrid(x.numpy(), grid.dates, grid, axis=1)
    got = fill_gaps(x, observed).numpy()
    assert np.allclose(got[1:], expected[1:], atol=1e-6)  # series 0: all-NaN in regrid, zeros here
    assert (got[0] == 0).all()
    assert (got[1] == x[1, 7].numpy()).all()  # one observation: held at both ends


def test_fill_gaps_reads_nothing_at_gaps() -> None:
    x, observed = _series()
    noisy = torch.where(observed.unsqueeze(-1), x, torch.randn_like(x) * 100)
    assert torch.equal(fill_gaps(x, observed), fill_gaps(noisy, observed))


def test_resample_dates_keeps_real_observations_near_their_dates() -> None:
    x, observed = _series(b=64, t=30)
    out, kept = resample_dates(x, observed, torch.Generator().manual_seed(3))
    assert (kept.sum(dim=1) <= observed.sum(dim=1)).all()
    has = observed.any(dim=1)
    assert (kept.any(dim=1) == has).all()  # a series with an observation keeps at least one
    assert kept.sum() < observed.sum()  # some were left out
    for i, step in kept.nonzero().tolist():
        lo, hi = max(0, step - RESAMPLE_JITTER), min(30, step + RESAMPLE_JITTER + 1)
        near = [s for s in range(lo, hi) if observed[i, s] and torch.equal(out[i, step], x[i, s])]
        assert near, f"series {i} step {step} holds no observation of its neighbourhood"
    assert (out[~kept] == 0).all()
    moved = sum(int(not torch.equal(out[i, s], x[i, s])) for i, s in kept.nonzero().tolist())
    assert moved > 0  # the jitter moved some


def test_draws_repeat_with_the_seed_and_differ_without() -> None:
    x, observed = _series(b=32)
    aug = SeriesAugment(date_dropout=0.2, resample_dates=True)
    a = aug(x, observed, torch.Generator().manual_seed(5))
    b = aug(x, observed, torch.Generator().manual_seed(5))
    c = aug(x, observed, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.isfinite(a).all()


@pytest.mark.parametrize("rate", [0.0, 0.3])
def test_date_dropout_blanks_whole_dates(rate: float) -> None:
    x = torch.randn(200, 40, 5) + 10  # no value is 0 by chance
    out = drop_dates(x, rate, torch.Generator().manual_seed(0))
    zero = out == 0
    assert (zero.all(dim=-1) == zero.any(dim=-1)).all()  # a date is blanked in every band or none
    share = float(zero.all(dim=-1).float().mean())
    assert abs(share - rate) < 0.02
    kept = ~zero.all(dim=-1)
    assert torch.equal(out[kept], x[kept])


def test_no_augmentation_by_default() -> None:
    x, observed = _series()
    aug = SeriesAugment()
    assert not aug.active and aug.to_dict() == {"date_dropout": 0.0, "resample_dates": False}
    assert torch.equal(aug(x, observed, torch.Generator()), fill_gaps(x, observed))


def test_filled_series_are_augmented_as_fully_observed() -> None:
    """Labelled series come filled: every step counts as observed, so resampling keeps a subset of the
    steps (moved by up to a step) and fills the rest again, and dropout blanks whole dates."""
    x = torch.randn(64, 30, 4) + 10  # no value is 0 by chance
    g = torch.Generator().manual_seed(3)
    out = FilledSeriesAugment(resample_dates=True)(x, g)
    assert out.shape == x.shape and torch.isfinite(out).all()
    assert not torch.equal(out, x)
    # every value lies between the series' own values of that band: moved or interpolated, never made up
    low, high = x.min(dim=1, keepdim=True).values, x.max(dim=1, keepdim=True).values
    assert ((out >= low - 1e-5) & (out <= high + 1e-5)).all()
    assert torch.equal(FilledSeriesAugment()(x, g), x)  # off: the series as it was
    blanked = FilledSeriesAugment(date_dropout=0.3)(x, torch.Generator().manual_seed(0))
    assert abs(float((blanked == 0).all(dim=-1).float().mean()) - 0.3) < 0.05
