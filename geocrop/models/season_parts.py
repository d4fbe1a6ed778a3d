"""Season-part pooling: a head's classifier reads the mean of each of P equal parts of the season, side by
side, instead of one mean over every date.

InceptionTime ends in a global average over time: a feature that is high in spring and one that is high in
autumn look the same to its classifier. A body trained end to end can learn to put *when* into its
features; a frozen pretrained body cannot, and on the France LPIS table a classifier on its time-mean lost
to raw bands (docs/evaluation/france-few-labels/all-labels.md) while one on the means of a few season
parts did not. The parts keep the coarse timing (early, middle, late season) and still average many
dates, so a date shifted by a week or a cloudy date changes little.

The number of parts follows the series length (`season_parts`), never a constant of one table: about
``sqrt(T) / 2`` parts of about ``2 sqrt(T)`` dates each, so the classifier's input (channels x parts)
grows more slowly than the series. 52 dekads give 4 parts of 13 dates; 36 give 3; 144 give 6; 12
monthly steps give 2.
"""

from __future__ import annotations

import math

import torch

__all__ = ["PARTS_KEY", "PART_POOLED", "part_means", "season_parts"]

#: Head families whose classifier can read season parts (a ``parts`` keyword of their constructor).
PART_POOLED = frozenset({"inception"})
#: The head-spec key (and constructor keyword) of the number of parts; absent or 1: the mean over time.
PARTS_KEY = "parts"


def season_parts(steps: int) -> int:
    """The number of season parts for a series of ``steps`` dates: ``round(sqrt(steps) / 2)``, at least 1
    and at most ``steps``."""
    if steps < 1:
        raise ValueError(f"season_parts needs at least one date, got {steps}")
    return max(1, min(steps, round(math.sqrt(steps) / 2)))


def part_means(h: torch.Tensor, parts: int) -> torch.Tensor:
    """(batch, C, ..., T) -> (batch, parts * C): the mean over each of ``parts`` consecutive, near-equal
    parts of the last (time) axis, part after part (their lengths differ by at most one date).

    ``parts`` 1 is the mean over every date and every axis between channels and time. Raises ValueError
    when the series has fewer dates than parts."""
    steps = h.shape[-1]
    reduce = tuple(range(2, h.dim()))
    if parts == 1:
        return h.mean(dim=reduce)
    if steps < parts:
        raise ValueError(f"a series of {steps} dates cannot be read in {parts} season parts")
    return torch.cat([part.mean(dim=reduce) for part in torch.tensor_split(h, parts, dim=-1)], dim=1)
