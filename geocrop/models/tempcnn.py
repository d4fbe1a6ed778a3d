"""TempCNN head (Pelletier, Webb & Petitjean, 2019, Remote Sensing 11(5):523), a temporal network added to
the paper's three.

Three 1-D convolutions (kernel 5, same padding) with batch norm, ReLU and dropout, then the whole
``(channels, T)`` map **flattened** into a dense layer. Flattening keeps *when* a feature happens: a crop's
calendar (sowing, peak, harvest dates) is most of what tells crops apart on a few hundred samples, and the
pooling heads (Bi-LSTM and Transformer average over time, InceptionTime pools globally) have to relearn it.
On real samples it is the deep head that best matches tree ensembles, which see every (date, band) value
as its own feature (see ``docs/evaluation/``). The input length is fixed by the bundle's temporal grid,
so ``steps`` is part of the spec.
"""

from __future__ import annotations

import torch
from torch import nn

from geocrop.models.registry import register_head


@register_head("tempcnn")
class TempCNNHead(nn.Module):
    """(batch, steps, in_features) -> (batch, n_classes) logits.

    Args:
        in_features: features per timestamp. n_classes: classes. steps: series length (fixed).
        hidden: channels of each convolution. dense: width of the dense layer.
        kernel_size: convolution width in time steps. dropout: after every block.
    """

    def __init__(
        self,
        in_features: int,
        n_classes: int,
        *,
        steps: int,
        hidden: int = 64,
        dense: int = 256,
        kernel_size: int = 5,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        if in_features < 1 or n_classes < 2 or steps < 1 or hidden < 1 or kernel_size < 1:
            raise ValueError(
                f"TempCNNHead needs in_features, steps, hidden, kernel_size >= 1 and n_classes >= 2, got "
                f"{in_features}, {steps}, {hidden}, {kernel_size}, {n_classes}"
            )
        self.spec = {
            "name": "tempcnn",
            "in_features": in_features,
            "n_classes": n_classes,
            "steps": steps,
            "hidden": hidden,
            "dense": dense,
            "kernel_size": kernel_size,
            "dropout": dropout,
        }
        self.steps = steps
        layers: list[nn.Module] = []
        channels = in_features
        for _ in range(3):
            layers += [
                nn.Conv1d(channels, hidden, kernel_size, padding="same"),
                nn.BatchNorm1d(hidden),
                nn.ReLU(),
                nn.Dropout(dropout),
            ]
            channels = hidden
        self.convs = nn.Sequential(*layers)
        self.dense = nn.Sequential(
            nn.Flatten(),
            nn.Linear(hidden * steps, dense),
            nn.BatchNorm1d(dense),
            nn.ReLU(),
            nn.Dropout(dropout),
        )
        self.classifier = nn.Linear(dense, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (batch, steps, in_features) -> logits (batch, n_classes)."""
        if x.shape[1] != self.steps:
            raise ValueError(f"TempCNNHead was built for {self.steps} steps, got a series of {x.shape[1]}")
        h = self.convs(x.transpose(1, 2))
        return self.classifier(self.dense(h))
