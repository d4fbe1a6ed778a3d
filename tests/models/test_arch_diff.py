"""A bundle whose metadata disagrees with its tensors: the message names the setting or the family that
differs and the fix, never "expected X, found X" with the same text twice."""

from __future__ import annotations

from typing import Any

import pytest

from geocrop.errors import BundleError
from geocrop.models.arch_diff import spec_difference
from geocrop.models.registry import build_backbone, build_head, load_state, state_to_numpy

RESMLP = {"name": "resmlp", "in_features": 12, "width": 256, "depth": 8}
FIX = "retrain, or re-export the bundle so that its metadata describes its weights"


def _refusal(kind: str, real: dict[str, Any], metadata: dict[str, Any]) -> str:
    build = build_backbone if kind == "backbone" else build_head
    tensors = state_to_numpy(build(real), kind)
    with pytest.raises(BundleError) as info:
        load_state(build(metadata), tensors, kind, found=metadata)
    message = str(info.value)
    assert "\n" not in message and FIX in message
    return message


@pytest.mark.parametrize(
    ("kind", "real", "metadata", "named"),
    [
        ("backbone", RESMLP, {**RESMLP, "width": 128}, "(width: metadata says 128, tensors are 256)"),
        ("backbone", RESMLP, {**RESMLP, "depth": 6}, "(depth: metadata says 6, tensors are 8)"),
        ("backbone", RESMLP, {**RESMLP, "depth": 6, "width": 128},
         "(depth: metadata says 6, tensors are 8; width: metadata says 128, tensors are 256)"),
        ("head", {"name": "transformer", "in_features": 12, "n_classes": 4},
         {"name": "lstm", "in_features": 12, "n_classes": 4},
         "(metadata says lstm, the tensors hold transformer head weights)"),
        ("head", {"name": "lstm", "in_features": 12, "n_classes": 4, "layers": 2},
         {"name": "lstm", "in_features": 12, "n_classes": 4, "layers": 3},
         "(layers: metadata says 3, tensors are 2)"),
        ("head", {"name": "inception", "in_features": 12, "n_classes": 4},
         {"name": "tempcnn", "in_features": 12, "n_classes": 4, "steps": 12},
         "(metadata says tempcnn, the tensors hold inception head weights)"),
        ("head", {"name": "lstm", "in_features": 12, "n_classes": 5},
         {"name": "lstm", "in_features": 12, "n_classes": 4}, "(n_classes: metadata says 4, tensors are 5)"),
    ],
)  # fmt: skip
def test_the_difference_is_named(kind: str, real: dict, metadata: dict, named: str) -> None:
    message = _refusal(kind, real, metadata)
    assert f"bundle weights '{kind}.*' do not match the bundle's metadata {named}" in message


def test_a_module_other_than_the_metadata_keeps_expected_and_found() -> None:
    """Where the caller built another module than the metadata describes, both specs are named."""
    tensors = state_to_numpy(build_backbone({**RESMLP, "width": 32, "depth": 3}), "backbone")
    found = {**RESMLP, "width": 32, "depth": 3}
    with pytest.raises(BundleError, match=r"expected resmlp\(depth=3, in_features=12, width=64\), found "):
        load_state(build_backbone({**RESMLP, "width": 64, "depth": 3}), tensors, "backbone", found=found)


def test_spec_difference() -> None:
    text = spec_difference({"name": "a", "x": 1, "y": 2}, {"name": "a", "x": 1, "y": 3}, said="m", are="t")
    assert text == "y: m 2, t 3"
    assert spec_difference({"name": "a"}, {"name": "b"}, said="m", are="t") == "m a, t b"
