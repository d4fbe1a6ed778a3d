"""Projector heads ``P_s, P_p: R^256 -> R^256`` used only during contrastive pretraining (paper Section 3).

As in SimCLR (Chen et al., 2020) the contrastive loss is computed on ``z = P(E(x))`` rather than on the
representation ``E(x)`` itself; the projector is discarded after pretraining and the temporal heads consume
``E(x)``. Two linear layers with a ReLU between them, SimCLR's choice, with no normalisation layer so that
each pixel's projection depends on that pixel only (see `geocrop.models.resmlp` for why not BatchNorm).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from geocrop.errors import InputError

__all__ = ["Projector"]


class Projector(nn.Module):
    """``(N, in_features) -> (N, out_features)``: Linear -> ReLU -> Linear (hidden size = ``in_features``)."""

    def __init__(self, in_features: int = 256, out_features: int = 256) -> None:
        super().__init__()
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InputError(f"Projector {name}={value!r} is invalid; pass a positive integer")
        self.in_features = in_features
        self.out_features = out_features
        self.net = nn.Sequential(
            nn.Linear(in_features, in_features), nn.ReLU(), nn.Linear(in_features, out_features)
        )

    @property
    def spec(self) -> dict[str, Any]:
        """The JSON-able architecture spec (`geocrop.models.registry.build_backbone` rebuilds it)."""
        return {"name": "projector", "in_features": self.in_features, "out_features": self.out_features}

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(h)
        return out

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"
