"""Bi-directional LSTM head over a time series of per-timestamp features (Cornegruta et al., 2016).

One of the paper's three base models (section 3.2): the (batch, T, features) series of frozen backbone
features (or the raw 12 S2 bands, the supervised baseline) goes through a stacked Bi-LSTM; the outputs of
both directions are averaged over time and a linear layer gives class logits. Section 5.1's space: hidden
size in {32, 64, 128, 256}, 2 to 6 layers.
"""

from __future__ import annotations

import torch
from torch import nn

from geocrop.models.registry import register_head


@register_head("lstm")
class BiLSTMHead(nn.Module):
    """(batch, T, in_features) -> (batch, n_classes) logits.

    Args:
        in_features: features per timestamp (256 for backbone features, 12 for raw S2 bands).
        n_classes: number of crop classes.
        hidden: LSTM hidden size per direction.
        layers: stacked LSTM layers.
        dropout: dropout between LSTM layers and before the classifier.
    """

    def __init__(
        self, in_features: int, n_classes: int, *, hidden: int = 128, layers: int = 2, dropout: float = 0.1
    ) -> None:
        super().__init__()
        if in_features < 1 or n_classes < 2:
            raise ValueError(
                f"BiLSTMHead needs in_features >= 1 and n_classes >= 2, got {in_features}, {n_classes}"
            )
        if hidden < 1 or layers < 1:
            raise ValueError(
                f"BiLSTMHead needs hidden >= 1 and layers >= 1, got hidden={hidden}, layers={layers}"
            )
        # No LayerNorm over the input features: it would erase a shift shared by all bands (brightness),
        # which is signal. Inputs arrive standardised per band (raw) or LayerNorm'd by the backbone.
        self.lstm = nn.LSTM(
            input_size=in_features,
            hidden_size=hidden,
            num_layers=layers,
            batch_first=True,
            bidirectional=True,
            dropout=dropout if layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(2 * hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (batch, T, in_features) -> logits (batch, n_classes)."""
        out, _ = self.lstm(x)  # (batch, T, 2 * hidden)
        return self.classifier(self.dropout(out.mean(dim=1)))
