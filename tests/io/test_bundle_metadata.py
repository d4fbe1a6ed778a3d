"""Bundle metadata: one typed form per kind, one spelling written, every older spelling still read."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from geocrop.core.bands import S2_BANDS
from geocrop.errors import BundleError
from geocrop.inference.plan import DEMO_BUNDLE
from geocrop.inference.schema import parse_bundle_metadata
from geocrop.io.bundle import read_bundle_metadata
from geocrop.io.bundle_metadata import CLASSIFIER_SCHEMA, read_classifier_metadata, read_normalization
from geocrop.io.encoder_metadata import ENCODER_SCHEMA, read_encoder_metadata

N = len(S2_BANDS)


def _current() -> dict[str, Any]:
    return {
        "kind": "classifier",
        "backbone": {"name": "resmlp", "in_features": N, "width": 16, "depth": 2},
        "head": {"name": "lstm", "in_features": 16, "n_classes": 2},
        "bands": list(S2_BANDS),
        "normalization": {"mean": [0.1] * N, "std": [0.2] * N},
        "classes": [
            {"value": 0, "name": "maize", "color": "#ff7f00"},
            {"value": 1, "name": "wheat", "color": "#e6ab02"},
        ],
        "temporal_grid": {"start": "2021-03-01", "end": "2021-10-31", "steps": 24},
        "backbone_source": {"path": "enc.safetensors", "mode": "bimodal", "corruption_rate": 0.2},
        "training": {"val_accuracy": 0.5},
        "format_version": 1,
        "something_new": [1, 2],
    }


def _older(meta: dict[str, Any]) -> dict[str, Any]:
    """The same metadata in the spellings bundles used before: normalisation, class_names, corruption."""
    old = dict(meta)
    old["normalisation"] = old.pop("normalization")
    classes = old.pop("classes")
    old["class_names"] = [c["name"] for c in classes]
    old["class_colours"] = [c["color"] for c in classes]
    old["backbone_source"] = {**old["backbone_source"], "corruption": 0.2}
    del old["backbone_source"]["corruption_rate"]
    return old


def test_older_spellings_read_like_the_current_one() -> None:
    new = read_classifier_metadata(_current(), source="new", default_bands=S2_BANDS)
    old = read_classifier_metadata(_older(_current()), source="old", default_bands=S2_BANDS)
    assert new.schema == old.schema == 0  # neither records a schema version yet
    for attr in ("head", "bands", "normalization", "classes", "steps", "backbone", "backbone_source"):
        assert getattr(new, attr) == getattr(old, attr), attr
    assert new.grid_start == dt.date(2021, 3, 1) and new.steps == 24
    assert new.backbone_source == {"path": "enc.safetensors", "mode": "bimodal", "corruption_rate": 0.2}
    assert new.extra == {"something_new": [1, 2]}


def test_written_form_has_one_spelling_and_reads_back_the_same() -> None:
    typed = read_classifier_metadata(_older(_current()), source="old", default_bands=S2_BANDS)
    written = typed.to_dict()
    assert written["classifier_schema"] == CLASSIFIER_SCHEMA and written["kind"] == "classifier"
    assert "normalization" in written and "normalisation" not in written
    assert "classes" in written and "class_names" not in written
    assert (
        written["backbone_source"]["corruption_rate"] == 0.2
        and "corruption" not in written["backbone_source"]
    )
    assert written["something_new"] == [1, 2]  # unknown keys survive
    again = read_classifier_metadata(written, source="again", default_bands=S2_BANDS)
    assert again.to_dict() == written and again.schema == CLASSIFIER_SCHEMA


def test_the_mapper_reads_both_spellings_the_same() -> None:
    new, old = (
        parse_bundle_metadata(_current(), source="a"),
        parse_bundle_metadata(_older(_current()), source="b"),
    )
    assert (new.mean, new.std, new.classes, new.steps) == (old.mean, old.std, old.classes, old.steps)


def test_shipped_demo_bundle_reads_and_round_trips() -> None:
    meta = read_bundle_metadata(DEMO_BUNDLE)
    typed = read_classifier_metadata(meta, source=str(DEMO_BUNDLE), default_bands=S2_BANDS)
    assert typed.bands == S2_BANDS and len(typed.classes) >= 9 and typed.provenance["data"] == "simulated"
    spec = parse_bundle_metadata(typed.to_dict(), source="rewritten")
    assert spec == parse_bundle_metadata(meta, source="rewritten")


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"head": None}, "no temporal head"),
        ({"classes": []}, "lists no classes"),
        ({"normalization": {"mean": [0.0], "std": [1.0]}}, "normalisation"),
        ({"normalization": {"mean": [0.0] * N, "std": [0.0] * N}}, "positive stds"),
        ({"temporal_grid": {"start": "spring"}}, "temporal grid"),
        ({"classifier_schema": CLASSIFIER_SCHEMA + 1}, "upgrade geocrop"),
    ],
)
def test_broken_metadata_is_refused_by_name(change: dict[str, Any], needle: str) -> None:
    with pytest.raises(BundleError, match=needle):
        read_classifier_metadata({**_current(), **change}, source="m.safetensors", default_bands=S2_BANDS)


def test_read_normalization_defaults_to_unit_statistics() -> None:
    norm = read_normalization({}, 3)
    assert norm is not None and norm.mean == (0.0,) * 3 and norm.std == (1.0,) * 3
    assert read_normalization({"normalisation": {"mean": [1, 2], "std": [1, 1]}}, 3) is None


def _encoder() -> dict[str, Any]:
    """A bi-modal pretraining bundle's metadata as `geocrop pretrain` writes it now."""
    return {
        "kind": "pretrained_encoder",
        "encoder_schema": ENCODER_SCHEMA,
        "mode": "bimodal",
        "backbone": {"name": "resmlp", "in_features": N, "width": 16, "depth": 2},
        "projector": {"name": "projector", "in_features": 16, "out_features": 16},
        "bands": list(S2_BANDS),
        "normalization": {"mean": [0.1] * N, "std": [0.2] * N},
        "corruption_rate": 0.2,
        "loss": "bimodal_ntxent_eq1",
        "temperature": 0.07,
        "lr": 0.001,
        "batch_size": 64,
        "seed": 0,
        "epochs": 3,
        "world_size": 1,
        "final": {"epoch": 3, "loss": 1.5},
        "provenance": {"pairs": {}},
        "filled_bands": ["B01"],
        "second_modality": "sentinel-1",
        "s1_backbone": {"name": "resmlp", "in_features": 2, "width": 16, "depth": 2},
        "s1_projector": {"name": "projector", "in_features": 16, "out_features": 16},
        "s1_bands": ["VV", "VH"],
        "s1_units": "backscatter dB",
        "s1_normalization": {"mean": [-12.0, -18.0], "std": [3.0, 3.0]},
    }


def test_encoder_metadata_round_trips_in_one_spelling() -> None:
    typed = read_encoder_metadata(_encoder(), source="enc")
    assert typed.second is not None and typed.second.sensor == "sentinel-1"
    assert typed.second.normalization.mean == (-12.0, -18.0)
    assert typed.to_dict() == _encoder() and typed.extra == {}


def test_an_encoder_written_before_still_reads() -> None:
    """Before the schema: no ``encoder_schema``, ``normalisation``, ``corruption`` (and ``corruption_rate``
    beside it, or not), ``s1_normalisation``."""
    old = _encoder()
    del old["encoder_schema"], old["corruption_rate"]
    old["normalisation"] = old.pop("normalization")
    old["s1_normalisation"] = old.pop("s1_normalization")
    old["corruption"] = 0.2
    typed = read_encoder_metadata(old, source="old")
    assert typed.schema == 0 and typed.corruption_rate == 0.2
    assert typed.to_dict() == _encoder()  # written back in the current spelling


def test_a_classifier_is_not_an_encoder() -> None:
    with pytest.raises(BundleError, match="not a pretrained encoder"):
        read_encoder_metadata(_current(), source="clf")
