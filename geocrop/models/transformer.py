"""Transformer encoder head with sinusoidal positional encoding (Vaswani et al., 2017).

One of the paper's three base models (section 3.2). Each timestamp's feature vector is projected to
``d_model``, a fixed sinusoidal encoding of its position on the temporal grid is added, a stack of encoder
layers mixes the timestamps, and either the mean over time or a learned class token feeds the classifier.
Section 5.1's space: d_model in {32, 64, 128}, heads in {2, 4, 8}, 2 to 6 layers.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from geocrop.models.registry import register_head


def sinusoidal_encoding(length: int, d_model: int) -> torch.Tensor:
    """(length, d_model) table: PE[t, 2i] = sin(t / 10000^(2i/d)), PE[t, 2i+1] = cos(same)."""
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    div = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    pe = torch.zeros(length, d_model)
    pe[:, 0::2] = torch.sin(position * div)
    pe[:, 1::2] = torch.cos(position * div[: d_model // 2])
    return pe


@register_head("transformer")
class TransformerHead(nn.Module):
    """(batch, T, in_features) -> (batch, n_classes) logits.

    Args:
        in_features: features per timestamp (256 backbone features or 12 raw bands).
        n_classes: number of crop classes.
        d_model: model width; must be divisible by ``heads``.
        heads: attention heads.
        layers: encoder layers.
        pooling: ``"mean"`` over timestamps or a learned ``"cls"`` token prepended to the series.
        max_len: longest series the positional table covers (the grid has 144 steps by default).
    """

    def __init__(
        self,
        in_features: int,
        n_classes: int,
        *,
        d_model: int = 64,
        heads: int = 4,
        layers: int = 2,
        dropout: float = 0.1,
        pooling: Literal["mean", "cls"] = "mean",
        max_len: int = 1024,
    ) -> None:
        super().__init__()
        if d_model % heads:
            raise ValueError(f"TransformerHead needs d_model divisible by heads, got {d_model} and {heads}")
        if pooling not in ("mean", "cls"):
            raise ValueError(f"TransformerHead pooling must be 'mean' or 'cls', got {pooling!r}")
        if n_classes < 2 or layers < 1:
            raise ValueError(
                f"TransformerHead needs n_classes >= 2 and layers >= 1, got {n_classes}, {layers}"
            )
        self.pooling = pooling
        # Inputs arrive standardised; a LayerNorm over them would erase a shift shared by all bands.
        self.embed = nn.Linear(in_features, d_model)
        self.register_buffer("pe", sinusoidal_encoding(max_len + 1, d_model), persistent=False)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d_model)) if pooling == "cls" else None
        layer = nn.TransformerEncoderLayer(
            d_model=d_model,
            nhead=heads,
            dim_feedforward=4 * d_model,
            dropout=dropout,
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, num_layers=layers, enable_nested_tensor=False)
        self.out_norm = nn.LayerNorm(d_model)
        self.classifier = nn.Linear(d_model, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (batch, T, in_features) -> logits (batch, n_classes)."""
        h = self.embed(x)  # (batch, T, d_model)
        if self.cls_token is not None:
            h = torch.cat([self.cls_token.expand(h.shape[0], -1, -1), h], dim=1)
        pe: torch.Tensor = self.pe  # type: ignore[assignment]
        if h.shape[1] > pe.shape[0]:
            raise ValueError(
                f"TransformerHead got {h.shape[1]} timestamps, more than max_len={pe.shape[0] - 1}"
            )
        h = self.encoder(h + pe[: h.shape[1]])
        pooled = h[:, 0] if self.cls_token is not None else h.mean(dim=1)
        return self.classifier(self.out_norm(pooled))
