"""Masked-reconstruction wrapper: every pretrainable family predicts every step, hidden inputs never reach
the body, and the body's weights load into the same head built for a classification task."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from geocrop.models.masked_series import MaskedSeriesModel
from geocrop.models.registry import build_head

SPECS: list[dict[str, Any]] = [
    {"name": "transformer", "in_features": 12, "d_model": 32, "heads": 4, "layers": 2},
    {"name": "transformer", "in_features": 12, "d_model": 32, "heads": 4, "layers": 1, "pooling": "cls"},
    {"name": "inception", "in_features": 12, "layers": 3, "hidden": 32, "kernel_size": 8},
    {"name": "lstm", "in_features": 12, "hidden": 16, "layers": 1},
    {"name": "tempcnn", "in_features": 12, "steps": 20, "hidden": 16, "dense": 32},
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s['name']}-{s.get('pooling', '')}")
def test_every_family_reconstructs_every_step(spec: dict[str, Any]) -> None:
    torch.manual_seed(0)
    model = MaskedSeriesModel(spec, steps=20, second_features=2).eval()
    x = torch.randn(4, 20, 12)
    hidden = torch.zeros(4, 20, dtype=torch.bool)
    hidden[:, [3, 11]] = True
    bands, second = model(x, hidden)
    assert bands.shape == (4, 20, 12) and second is not None and second.shape == (4, 20, 2)
    # what the hidden dates held never reaches the body: only the mask vector does
    changed = x.clone()
    changed[:, [3, 11]] = torch.randn(4, 2, 12) * 50
    again, _ = model(changed, hidden)
    assert torch.allclose(bands, again)
    # a visible date does reach it
    changed[:, 5] += 5
    assert not torch.allclose(bands, model(changed, hidden)[0])


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s['name']}-{s.get('pooling', '')}")
def test_the_body_is_the_classifying_heads_body(spec: dict[str, Any]) -> None:
    model = MaskedSeriesModel(spec, steps=20)
    classifier = build_head({**spec, "n_classes": 7})
    body = {k: v for k, v in model.head.state_dict().items() if not k.startswith("classifier.")}
    missing, unexpected = classifier.load_state_dict(body, strict=False)
    assert unexpected == [] and sorted(missing) == ["classifier.bias", "classifier.weight"]
    assert model.second_decoder is None


def test_an_unknown_family_is_refused() -> None:
    with pytest.raises(ValueError, match="rf"):
        MaskedSeriesModel({"name": "rf", "in_features": 12}, steps=10)


def test_dropout_is_off_while_pretraining_and_kept_in_the_spec() -> None:
    spec = {"name": "transformer", "in_features": 12, "d_model": 16, "heads": 2, "layers": 1, "dropout": 0.3}
    model = MaskedSeriesModel(spec, steps=10)
    rates = [m.p for m in model.head.modules() if isinstance(m, torch.nn.Dropout)]
    assert rates and set(rates) == {0.0}
    floats = [m.dropout for m in model.head.modules() if isinstance(getattr(m, "dropout", None), float)]
    assert floats and set(floats) == {0.0}  # attention's own rate
    model.train()
    x, hidden = torch.randn(2, 10, 12), torch.zeros(2, 10, dtype=torch.bool)
    assert torch.equal(model(x, hidden)[0], model(x, hidden)[0])  # no random masks in training mode
    assert build_head({**spec, "n_classes": 2}).encoder.layers[0].dropout.p == 0.3
