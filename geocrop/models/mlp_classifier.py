"""The classifier a frozen pretrained body trains: a small MLP in place of the single linear layer.

With ``TrainConfig.freeze_init`` only a head's classifier learns, on features its pretraining shaped to
reconstruct hidden dates, not to separate crops. One linear layer on them lost to raw bands on the France
LPIS table (docs/evaluation/france-few-labels/all-labels.md); a hidden layer lets the labels bend the
frozen features. Every temporal head ends in ``self.classifier = nn.Linear(width, n_classes)`` (the
layer `geocrop.training.head_bundle` leaves out of a pretrained head), so the MLP replaces it in place:
the body, its forward and the state-dict keys of its weights stay as they are, and the MLP's weights
live under ``classifier.*``, which a frozen fit trains and a pretrained-head bundle drops.

A head spec asks for it with ``"classifier": {"hidden": H, "dropout": p}`` (`CLASSIFIER_KEY`);
`geocrop.models.registry.build_head` builds the family's head and then calls `attach_classifier`, so a
trained bundle's metadata rebuilds the same module when it maps.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

__all__ = ["CLASSIFIER_KEY", "DEFAULT_DROPOUT", "MLPClassifier", "attach_classifier", "with_classifier"]

#: The head-spec key of a classifier other than the family's single linear layer.
CLASSIFIER_KEY = "classifier"
#: Dropout between the MLP's hidden layer and its output (the heads' own rate).
DEFAULT_DROPOUT = 0.2


class MLPClassifier(nn.Sequential):
    """(batch, in_features) -> (batch, n_classes): BatchNorm (no affine), Linear, ReLU, Dropout, Linear.

    The batch norm standardises the frozen features first (as linear probes of masked autoencoders do):
    their scale is whatever pretraining left. InceptionTime's time-averaged features have a mean of 0.39
    and a spread of 0.24 on the France table, so a classifier on them at geocrop's learning rate was
    still learning when training stopped (all-labels.md).
    """

    def __init__(self, in_features: int, n_classes: int, *, hidden: int, dropout: float = DEFAULT_DROPOUT):
        if hidden < 1 or not 0 <= dropout < 1:
            raise ValueError(
                f"MLPClassifier needs hidden >= 1 and dropout in [0, 1), got {hidden}, {dropout}"
            )
        super().__init__(
            nn.BatchNorm1d(in_features, affine=False),
            nn.Linear(in_features, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, n_classes),
        )


def with_classifier(spec: Mapping[str, Any], hidden: int, dropout: float = DEFAULT_DROPOUT) -> dict[str, Any]:
    """``spec`` asking for an MLP classifier of ``hidden`` units (0: the family's linear layer, unchanged)."""
    out = {k: v for k, v in spec.items() if k != CLASSIFIER_KEY}
    if hidden:
        out[CLASSIFIER_KEY] = {"hidden": int(hidden), "dropout": float(dropout)}
    return out


def attach_classifier(head: nn.Module, options: Mapping[str, Any]) -> nn.Module:
    """Replace ``head.classifier`` (a linear layer) by an `MLPClassifier` with ``options``; returns ``head``.

    Raises ValueError for a head without a linear ``classifier`` or unknown options (the registry turns
    it into a `BundleError` naming the spec).
    """
    layer = getattr(head, "classifier", None)
    if not isinstance(layer, nn.Linear):
        raise ValueError(f"{type(head).__name__} has no linear `classifier` layer to replace")
    unknown = sorted(set(options) - {"hidden", "dropout"})
    if unknown:
        raise ValueError(f"unknown classifier options {unknown} (known: hidden, dropout)")
    head.classifier = MLPClassifier(
        layer.in_features,
        layer.out_features,
        hidden=int(options["hidden"]),
        dropout=float(options.get("dropout", DEFAULT_DROPOUT)),
    )
    own_spec = getattr(head, "spec", None)
    if isinstance(own_spec, dict):  # heads that describe themselves (TempCNN) say so too
        own_spec[CLASSIFIER_KEY] = dict(options)
    return head
