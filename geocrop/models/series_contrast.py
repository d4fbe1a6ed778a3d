"""A temporal head wrapped for contrastive pretraining on two augmented views of each series.

`ContrastiveSeriesModel` runs the head's body (`geocrop.models.masked_series.step_features`), pools it
over time (the mean of the per-step features; TempCNN's dense output is already one vector per series)
and projects it with a `Projector` (dropped after pretraining, as in SimCLR). Two views of a series made
by the date augmentations (`geocrop.training.series_augment`: resampled dates, dropped dates) should land
close together, views of other series far apart (NT-Xent, `geocrop.training.losses.ntxent`). Dropout is
off while pretraining, as for masked reconstruction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from geocrop.models.masked_series import PER_SERIES_FAMILIES, body_width, dropout_off, step_features
from geocrop.models.projector import Projector
from geocrop.models.registry import build_head

__all__ = ["PROJECTION", "ContrastiveSeriesModel"]

#: Width of the projection the loss compares.
PROJECTION = 128


class ContrastiveSeriesModel(nn.Module):
    """x (B, T, C), filled and augmented -> z (B, `PROJECTION`). ``spec``: the head's registry spec."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        super().__init__()
        self.family = str(spec["name"])
        full = {"n_classes": 2, **dict(spec)}  # any class count: the classifier is not trained or kept
        self.head = build_head(full)
        dropout_off(self.head)
        self.projector = Projector(body_width(self.family, full), PROJECTION)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = step_features(self.family, self.head, x)
        pooled = h if self.family in PER_SERIES_FAMILIES else h.mean(dim=1)
        return self.projector(pooled)
