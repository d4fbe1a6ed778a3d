"""Augmentations that fit satellite image time series, and the gap filling they share with the grid.

A series here is ``x`` (batch, T, C) on the temporal grid with ``observed`` (batch, T) marking the steps
that hold a clear observation; the other steps are gaps (clouds, no acquisition). Two augmentations:

- **Date resampling** (`resample_dates`, ``resample_dates=True``): every series keeps a random subset of
  its observed dates (each kept with probability ``u ~ U(RESAMPLE_KEEP, 1)`` drawn per series, at least
  one kept) and each kept observation moves by up to `RESAMPLE_JITTER` grid steps (to a step no other
  kept observation holds); the gaps are then filled again by the grid's rule (linear in time, ends
  held). The result is the same field seen under another acquisition and cloud pattern: the random
  resampling of observation dates that leads on S2-Agri100.
- **Date dropout** (`drop_dates`, ``date_dropout=p``): every grid step of every series is blanked with
  probability ``p`` after filling, i.e. set to 0 (the band mean in standardised units) across all bands,
  with no refilling: the head learns not to rely on any single date.

Both draw from a ``torch.Generator`` on the CPU so a resumed run repeats them. Defaults are off
(`SeriesAugment()`); `geocrop pretrain` takes ``date_dropout`` and ``resample_dates`` for both the temporal
and the contrastive temporal objectives.

Labelled series reach a classifier already filled on the grid, their gaps unmarked: `FilledSeriesAugment`
applies the same two augmentations to them with every step counted as observed (`TrainConfig`'s
``resample_dates`` and ``date_dropout``), so a step filled by interpolation may be dropped and filled again
from its neighbours, which gives it the value it had.

`fill_gaps` is `geocrop.core.temporal.regrid`'s fill step in torch, for batches already on the grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = [
    "RESAMPLE_JITTER",
    "RESAMPLE_KEEP",
    "FilledSeriesAugment",
    "SeriesAugment",
    "drop_dates",
    "fill_gaps",
    "resample_dates",
]

#: Lowest share of a series' observations kept by date resampling (the share is drawn in [this, 1]).
RESAMPLE_KEEP = 0.5
#: Largest move of a kept observation, in grid steps.
RESAMPLE_JITTER = 1


def fill_gaps(x: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
    """Linear interpolation in time between observed steps, ends held: (B, T, C), (B, T) -> (B, T, C).

    The rule of `geocrop.core.temporal.regrid`: a gap takes the value interpolated between the nearest
    observed steps before and after it; before the first (after the last) the first (last) value is held.
    A series with no observed step becomes zeros (the band mean in standardised units). Values at gaps
    are ignored (they may be NaN).
    """
    b, t, _ = x.shape
    steps = torch.arange(t, device=x.device).expand(b, t)
    before = torch.where(observed, steps, torch.full_like(steps, -1)).cummax(dim=1).values
    after = torch.where(observed, steps, torch.full_like(steps, t)).flip(1).cummin(dim=1).values.flip(1)
    before = torch.where(before < 0, after, before)
    after = torch.where(after >= t, before, after)
    lo, hi = before.clamp(0, t - 1), after.clamp(0, t - 1)
    clean = torch.where(observed.unsqueeze(-1), x, torch.zeros_like(x))
    v_lo = clean.gather(1, lo.unsqueeze(-1).expand_as(x))
    v_hi = clean.gather(1, hi.unsqueeze(-1).expand_as(x))
    weight = ((steps - lo).float() / (hi - lo).clamp(min=1).float()).unsqueeze(-1)
    out = v_lo + weight * (v_hi - v_lo)
    return torch.where(observed.any(dim=1, keepdim=True).unsqueeze(-1), out, torch.zeros_like(out))


def resample_dates(
    x: torch.Tensor, observed: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """A random subset of each series' observations, each moved by up to `RESAMPLE_JITTER` steps.

    x (B, T, C) with values at ``observed`` (B, T) steps -> (x', observed') on the same grid; gaps of
    ``x'`` are zeros (fill them with `fill_gaps`). A series with an observation keeps at least one.
    """
    b, t, _ = x.shape
    keep_share = RESAMPLE_KEEP + (1 - RESAMPLE_KEEP) * torch.rand((b, 1), generator=generator)
    keep = observed & (torch.rand((b, t), generator=generator).to(x.device) < keep_share.to(x.device))
    # a series left with nothing keeps its first observation
    first = observed.float().argmax(dim=1)
    empty = observed.any(dim=1) & ~keep.any(dim=1)
    keep[empty, first[empty]] = True
    shift = torch.randint(-RESAMPLE_JITTER, RESAMPLE_JITTER + 1, (b, t), generator=generator).to(x.device)
    target = (torch.arange(t, device=x.device) + shift).clamp(0, t - 1)
    out = torch.zeros_like(x)
    taken = torch.zeros_like(observed)
    # Kept observations move in a random order; one whose target step is taken stays on its own step,
    # and is left out when that one is taken too (so no step ever holds two observations).
    order = torch.randperm(t, generator=generator).to(x.device)
    rows = torch.arange(b, device=x.device)
    for step in order.tolist():
        move = keep[:, step]
        dest = torch.where(
            taken[rows, target[:, step]], torch.full_like(target[:, step], step), target[:, step]
        )
        dest = torch.where(taken[rows, dest], torch.full_like(dest, -1), dest)  # both taken: dropped
        move = move & (dest >= 0)
        out[rows[move], dest[move]] = x[rows[move], step]
        taken[rows[move], dest[move]] = True
    return out, taken


def drop_dates(x: torch.Tensor, rate: float, generator: torch.Generator) -> torch.Tensor:
    """x (B, T, C) with each step of each series set to 0 across all bands with probability ``rate``."""
    if rate <= 0:
        return x
    drop = torch.rand(x.shape[:2], generator=generator).to(x.device) < rate
    return x.masked_fill(drop.unsqueeze(-1), 0.0)


@dataclass(frozen=True)
class SeriesAugment:
    """Which series augmentations a run applies: ``date_dropout`` rate (0: off), ``resample_dates``."""

    date_dropout: float = 0.0
    resample_dates: bool = False

    @property
    def active(self) -> bool:
        return self.date_dropout > 0 or self.resample_dates

    def __call__(self, x: torch.Tensor, observed: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A filled, augmented copy of x (B, T, C) given its ``observed`` (B, T) steps."""
        if self.resample_dates:
            x, observed = resample_dates(x, observed, generator)
        return drop_dates(fill_gaps(x, observed), self.date_dropout, generator)

    def to_dict(self) -> dict[str, float | bool]:
        return {"date_dropout": self.date_dropout, "resample_dates": self.resample_dates}


class FilledSeriesAugment(SeriesAugment):
    """`SeriesAugment` for series already filled on the grid (no gaps marked): every step is observed."""

    def __call__(  # type: ignore[override]
        self, x: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        observed = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        return super().__call__(x, observed, generator)
