"""A temporal head wrapped for masked reconstruction of whole observations (temporal pretraining).

`MaskedSeriesModel` holds a registered temporal head (its body is what pretraining is for), a learned
mask vector and small output layers that are dropped after pretraining:

- the input (batch, T, C) has its hidden dates replaced by ``mask_token`` (C values, learned, in
  standardised band units): the head cannot see what it must predict, and knows where the holes are;
- the head's body turns the series into features, per step (`step_features`: Transformer, InceptionTime,
  Bi-LSTM) or for the whole series (TempCNN, whose dense layer flattens time);
- ``decoder`` maps them to the C band values of every step, and ``second_decoder`` (when a second
  sensor is present) to its values (Sentinel-1 VV, VH) at every step. The loss reads the hidden steps only.

Per-step features: the Transformer's encoder output after its output LayerNorm; InceptionTime's last
module (B, hidden, 1, T); the Bi-LSTM's outputs of both directions. TempCNN: the dense layer's output,
decoded to all T x C values at once. The classifier layer (``head.classifier``) is never used here.
Dropout is off while pretraining (`dropout_off`); the spec keeps its rates for fine-tuning.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from geocrop.models.registry import build_head

__all__ = ["PER_SERIES_FAMILIES", "MaskedSeriesModel", "body_width", "dropout_off", "step_features"]

#: Families whose body summarises the whole series in one vector (decoded to all steps at once).
PER_SERIES_FAMILIES = frozenset({"tempcnn"})
#: Any class count builds the head; its classifier is not trained or kept.
_PLACEHOLDER_CLASSES = 2


def step_features(family: str, module_of: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The body's output for x (B, T, C): (B, T, D) per step, or (B, D) for `PER_SERIES_FAMILIES`."""
    h: Any
    head: Any = module_of  # the head's submodules, by the names its class gives them
    if family == "transformer":
        h = head.embed(x)
        if head.cls_token is not None:
            h = torch.cat([head.cls_token.expand(h.shape[0], -1, -1), h], dim=1)
        h = head.encoder(h + head.pe[: h.shape[1]])
        if head.cls_token is not None:
            h = h[:, 1:]
        return head.out_norm(h)
    if family == "inception":
        h = x.transpose(1, 2).unsqueeze(2)
        residual = h
        for i, block in enumerate(head.modules_):
            h = block(h)
            if i % 3 == 2:
                h = head.act(h + head.shortcuts[i // 3](residual))
                residual = h
        return h.squeeze(2).transpose(1, 2)
    if family == "lstm":
        out, _ = head.lstm(x)
        return head.dropout(out)
    if family == "tempcnn":
        return head.dense(head.convs(x.transpose(1, 2)))
    raise ValueError(f"no masked-reconstruction body for head family {family!r}")


def body_width(family: str, spec: Mapping[str, Any]) -> int:
    """D, the width of `step_features` for a head built from ``spec``."""
    if family == "transformer":
        return int(spec.get("d_model", 64))
    if family == "inception":
        return int(spec.get("hidden", 128))
    if family == "lstm":
        return 2 * int(spec.get("hidden", 128))
    if family == "tempcnn":
        return int(spec.get("dense", 256))
    raise ValueError(f"no masked-reconstruction body for head family {family!r}")


def dropout_off(head: nn.Module) -> None:
    """Set every dropout rate of ``head`` to 0 (its spec keeps the rates fine-tuning will use).

    Hiding dates is the noise of this task; on the CPU, drawing the dropout masks took 27 % of a
    Transformer step, and attention with dropout cannot use the fused kernel.
    """
    for module in head.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
        elif isinstance(getattr(module, "dropout", None), float):  # attention, LSTM between layers
            plain: Any = module
            plain.dropout = 0.0


class MaskedSeriesModel(nn.Module):
    """(x (B, T, C), hidden (B, T) bool) -> (bands (B, T, C), second (B, T, S) or None).

    Args:
        spec: the head's registry spec (``n_classes`` may be absent: a placeholder is used).
        steps: series length T (fixed for TempCNN, whose decoder emits T x C values).
        second_features: S, the second sensor's values per step to predict (0: none).
    """

    def __init__(self, spec: Mapping[str, Any], *, steps: int, second_features: int = 0) -> None:
        super().__init__()
        self.family = str(spec["name"])
        if self.family not in ("transformer", "inception", "lstm", "tempcnn"):
            raise ValueError(f"no masked-reconstruction body for head family {self.family!r}")
        full = {"n_classes": _PLACEHOLDER_CLASSES, **dict(spec)}
        self.head = build_head(full)
        dropout_off(self.head)
        self.in_features = int(full["in_features"])
        self.steps = steps
        self.second_features = second_features
        self.mask_token = nn.Parameter(torch.zeros(self.in_features))
        width = body_width(self.family, full)
        per_series = self.family in PER_SERIES_FAMILIES
        self.decoder = nn.Linear(width, steps * self.in_features if per_series else self.in_features)
        self.second_decoder = (
            nn.Linear(width, steps * second_features if per_series else second_features)
            if second_features
            else None
        )

    def forward(self, x: torch.Tensor, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        b, t, c = x.shape
        masked = torch.where(hidden.unsqueeze(-1), self.mask_token.expand(b, t, c), x)
        h = step_features(self.family, self.head, masked)
        per_series = self.family in PER_SERIES_FAMILIES
        bands = self.decoder(h)
        bands = bands.view(b, t, c) if per_series else bands
        second = None
        if self.second_decoder is not None:
            second = self.second_decoder(h)
            second = second.view(b, t, self.second_features) if per_series else second
        return bands, second
