"""The MLP classifier of a frozen body: a spec asks for it, every family takes it in place of its linear
layer without touching the body's weights, and a bundle's spec rebuilds it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from geocrop.errors import BundleError
from geocrop.models.mlp_classifier import CLASSIFIER_KEY, MLPClassifier, with_classifier
from geocrop.models.registry import build_head, load_state, state_to_numpy

SPECS: list[dict[str, Any]] = [
    {"name": "tempcnn", "in_features": 12, "n_classes": 4, "steps": 10, "hidden": 8, "dense": 16},
    {"name": "inception", "in_features": 12, "n_classes": 4, "layers": 3, "hidden": 16, "kernel_size": 8},
    {"name": "transformer", "in_features": 12, "n_classes": 4, "d_model": 16, "heads": 2, "layers": 1},
    {"name": "lstm", "in_features": 12, "n_classes": 4, "hidden": 8, "layers": 2},
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s["name"])
def test_every_family_takes_the_mlp_in_place_of_its_linear_layer(spec: dict[str, Any]) -> None:
    torch.manual_seed(0)
    plain = build_head(spec)
    mlp = build_head(with_classifier(spec, 32, dropout=0.1))
    assert isinstance(plain.classifier, nn.Linear) and isinstance(mlp.classifier, MLPClassifier)
    width = plain.classifier.in_features
    assert mlp.classifier[1].in_features == width and mlp.classifier[1].out_features == 32
    assert mlp.classifier[3].p == 0.1 and mlp.classifier[-1].out_features == 4
    body = {k: v.shape for k, v in plain.state_dict().items() if not k.startswith("classifier.")}
    assert {k: v.shape for k, v in mlp.state_dict().items() if not k.startswith("classifier.")} == body
    assert all(k.startswith("classifier.") for k in set(mlp.state_dict()) - set(body))
    out = mlp.eval()(torch.randn(5, 10, 12))
    assert out.shape == (5, 4) and torch.isfinite(out).all()


def test_the_spec_round_trips_through_a_bundle_state() -> None:
    spec = with_classifier(SPECS[0], 24)
    assert spec[CLASSIFIER_KEY] == {"hidden": 24, "dropout": 0.2} and CLASSIFIER_KEY not in SPECS[0]
    torch.manual_seed(1)
    head = build_head(spec).eval()
    again = load_state(build_head(spec), state_to_numpy(head, "head"), "head").eval()
    x = torch.randn(3, 10, 12)
    assert np.array_equal(head(x).detach().numpy(), again(x).detach().numpy())
    assert head.spec[CLASSIFIER_KEY] == {"hidden": 24, "dropout": 0.2}  # TempCNN describes itself
    with pytest.raises(BundleError, match="architecture"):  # an MLP's weights are not a linear layer's
        load_state(build_head(SPECS[0]), state_to_numpy(head, "head"), "head", found=spec)
    assert CLASSIFIER_KEY not in with_classifier(spec, 0)  # 0: the family's linear layer


@pytest.mark.parametrize("options", [{"hidden": 0}, {"hidden": 8, "depth": 2}, {"dropout": 0.1}])
def test_bad_classifier_options_are_bundle_errors(options: dict[str, Any]) -> None:
    with pytest.raises(BundleError, match="cannot build head tempcnn"):
        build_head({**SPECS[0], CLASSIFIER_KEY: options})
