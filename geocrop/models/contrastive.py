"""The contrastive pretraining model: per-pixel encoders and projectors of one or two views."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from geocrop.core.bands import PLANET_FEATURES, S2_BANDS
from geocrop.models.projector import Projector
from geocrop.models.resmlp import ResMLP

#: ``bimodal``: S2 against a second sensor (the paper's Eq. 1); ``unimodal``: SCARF on S2 alone.
ContrastiveMode = Literal["bimodal", "unimodal"]
N_S2 = len(S2_BANDS)


class ContrastiveModel(nn.Module):
    """E_s + P_s (+ E_p + P_p when bi-modal); ``forward(view_a, view_b) -> (z_a, z_b)``, (B, width) each.

    ``second_features`` is the second view's input width: 36 for the Planet 3x3 window, 2 for Sentinel-1
    VV/VH. Its modules keep the names ``planet_encoder``/``planet_projector`` whatever the sensor, so
    checkpoints of earlier runs still load; the bundle names them after the sensor.
    """

    def __init__(
        self, *, mode: ContrastiveMode, width: int, depth: int, second_features: int = PLANET_FEATURES
    ) -> None:
        super().__init__()
        self.mode = mode
        self.s2_encoder = ResMLP(N_S2, width=width, depth=depth)
        self.s2_projector = Projector(width, width)
        if mode == "bimodal":
            self.planet_encoder = ResMLP(second_features, width=width, depth=depth)
            self.planet_projector = Projector(width, width)

    def forward(self, view_a: torch.Tensor, view_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z_a = self.s2_projector(self.s2_encoder(view_a))
        if self.mode == "bimodal":
            return z_a, self.planet_projector(self.planet_encoder(view_b))
        return z_a, self.s2_projector(self.s2_encoder(view_b))
