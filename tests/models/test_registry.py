"""Registry: specs rebuild modules; bundles round-trip weights; another architecture gives a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from geocrop.errors import BundleError
from geocrop.io.bundle import load_bundle, save_bundle
from geocrop.models import registry
from geocrop.models.projector import Projector
from geocrop.models.registry import (
    build_backbone,
    build_head,
    describe_spec,
    load_state,
    register_head,
    registered_heads,
    state_to_numpy,
)
from geocrop.models.resmlp import ResMLP


def test_build_backbone_from_spec() -> None:
    model = build_backbone({"name": "resmlp", "in_features": 36, "width": 32, "depth": 2})
    assert isinstance(model, ResMLP) and model.spec["in_features"] == 36
    assert isinstance(build_backbone(Projector(32, 8).spec), Projector)


def test_unknown_or_bad_specs_are_bundle_errors() -> None:
    with pytest.raises(BundleError, match=r"unknown backbone architecture 'vit'.*resmlp"):
        build_backbone({"name": "vit"})
    with pytest.raises(BundleError, match="no 'name'"):
        build_backbone({"in_features": 12})
    with pytest.raises(BundleError, match="cannot build backbone resmlp"):
        build_backbone({"name": "resmlp", "in_features": 12, "heads": 3})
    with pytest.raises(BundleError, match="unknown head architecture"):
        build_head({"name": "no-such-head"})


def test_register_head_and_build_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # Register into a copy of the registry so the test head does not leak into other tests.
    monkeypatch.setattr(registry, "_HEADS", dict(registry._HEADS))

    @register_head("test-mean-head")
    class MeanHead(nn.Module):
        def __init__(self, features: int, n_classes: int) -> None:
            super().__init__()
            self.fc = nn.Linear(features, n_classes)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = self.fc(x.mean(dim=1))
            return out

    head = build_head({"name": "test-mean-head", "features": 4, "n_classes": 3})
    assert isinstance(head, MeanHead)
    assert head(torch.rand(2, 144, 4)).shape == (2, 3)
    assert "test-mean-head" in registered_heads()
    assert {"lstm", "inception", "transformer"} <= set(registered_heads())  # built-ins found lazily


def test_weights_round_trip_through_a_bundle(tmp_path: Path) -> None:
    torch.manual_seed(0)
    source = ResMLP(12, width=32, depth=3)
    tensors = {**state_to_numpy(source, "backbone"), **state_to_numpy(Projector(32, 8), "projector.")}
    assert all(k.startswith(("backbone.", "projector.")) for k in tensors)
    path = save_bundle(tmp_path / "m.safetensors", tensors, {"backbone": source.spec})
    bundle = load_bundle(path)
    rebuilt = build_backbone(bundle.metadata["backbone"])
    load_state(rebuilt, bundle.tensors, "backbone")
    x = torch.rand(7, 12)
    torch.testing.assert_close(rebuilt(x), source(x), rtol=0, atol=0)


def test_another_architecture_names_expected_and_found() -> None:
    tensors = state_to_numpy(ResMLP(12, width=32, depth=3), "backbone")
    found = {"name": "resmlp", "in_features": 12, "width": 32, "depth": 3}
    with pytest.raises(BundleError) as err:
        load_state(ResMLP(12, width=64, depth=3), tensors, "backbone", found=found)
    message = str(err.value)
    print(message)
    assert "expected resmlp(depth=3, in_features=12, width=64)" in message
    assert "found resmlp(depth=3, in_features=12, width=32)" in message
    assert "\n" not in message
    with pytest.raises(BundleError, match=r"found 16 tensors.*missing \[.layers\.3"):
        load_state(ResMLP(12, width=32, depth=4), tensors, "backbone")
    with pytest.raises(BundleError, match=r"no tensors under 'head\.'"):
        load_state(ResMLP(12), tensors, "head")


def test_describe_spec() -> None:
    assert describe_spec({"name": "lstm", "layers": 2, "hidden": 64}) == "lstm(hidden=64, layers=2)"
