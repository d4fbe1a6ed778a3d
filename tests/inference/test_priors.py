"""`class_priors`: reading the caller's choice, checking it against a model, and the engine applying it."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from geocrop.errors import BundleError, InputError
from geocrop.inference.engine import Predictor
from geocrop.inference.priors import (
    PriorChoice,
    check_priors,
    prior_correction,
    read_class_priors,
    target_shares,
)
from geocrop.inference.schema import parse_bundle_metadata
from geocrop.io.bundle import read_bundle_metadata
from geocrop.training.calibration import softmax
from tests.inference.inference_helpers import random_block, tiny_metadata, write_tiny_bundle

NAMES = ("wheat", "maize", "rapeseed")  # the tiny bundle's classes, in logit order


def _bundle(path: Path, **fields: object) -> Path:
    """The tiny bundle with extra metadata keys (``class_frequencies``, ``temperature``)."""
    from geocrop.io.bundle import load_bundle, save_bundle

    plain = write_tiny_bundle(path.with_name("plain.safetensors"))
    bundle = load_bundle(plain)
    return save_bundle(path, bundle.tensors, {**bundle.metadata, **fields})


def test_read_class_priors_accepts_every_documented_form(tmp_path: Path) -> None:
    assert read_class_priors(None) == PriorChoice()
    assert read_class_priors("uniform").mode == "uniform" and read_class_priors(" Train ").explicit
    csv_file = tmp_path / "shares.csv"
    csv_file.write_text("class,share\nwheat,0.5\nmaize,0.3\nrapeseed,0.2\n")
    json_file = tmp_path / "shares.json"
    json_file.write_text(json.dumps({"wheat": 5, "maize": 3, "rapeseed": 2}))
    from_csv, from_json = read_class_priors(csv_file), read_class_priors(str(json_file))
    from_dict = read_class_priors({"wheat": 0.5, "maize": 0.3, "rapeseed": 0.2})
    assert from_csv.mode == from_json.mode == from_dict.mode == "shares"
    spec = parse_bundle_metadata({**tiny_metadata(), "class_frequencies": [0.2, 0.3, 0.5]}, source="m")
    for choice in (from_csv, from_json, from_dict):
        np.testing.assert_allclose(target_shares(choice, spec), [0.5, 0.3, 0.2])
    np.testing.assert_allclose(target_shares(None, spec), [0.2, 0.3, 0.5])
    np.testing.assert_allclose(target_shares(read_class_priors("uniform"), spec), [1 / 3] * 3)


def test_the_correction_divides_by_the_prior_the_head_decides_under() -> None:
    """A balanced head gets log(target); a forest (votes follow the training shares) log(target / train)."""
    meta = {**tiny_metadata(), "class_frequencies": [0.2, 0.3, 0.5]}
    balanced = parse_bundle_metadata(meta, source="m")
    assert balanced.head_prior == "uniform"
    np.testing.assert_allclose(prior_correction(None, balanced), [0.2, 0.3, 0.5])
    assert prior_correction(read_class_priors("uniform"), balanced) is None  # no correction at all
    votes = parse_bundle_metadata({**meta, "head_prior": "training"}, source="m")
    assert prior_correction(None, votes) is None  # the forest's raw vote is its default
    inverse = np.array([1 / 0.2, 1 / 0.3, 1 / 0.5])
    np.testing.assert_allclose(prior_correction(read_class_priors("uniform"), votes), inverse / inverse.sum())
    area = read_class_priors({"wheat": 0.4, "maize": 0.3, "rapeseed": 0.3})
    ratio = np.array([0.4 / 0.2, 0.3 / 0.3, 0.3 / 0.5])
    np.testing.assert_allclose(prior_correction(area, votes), ratio / ratio.sum())
    # a partial prior (frequencies ** 0.5, fitted with the temperature): half the log-correction
    partial = parse_bundle_metadata({**meta, "head_prior": 0.5}, source="m")
    half = np.sqrt([0.2, 0.3, 0.5])
    np.testing.assert_allclose(prior_correction(None, partial), half / half.sum())
    for bad in (1.5, -0.1, True, "balanced"):
        with pytest.raises(BundleError, match="head_prior"):
            parse_bundle_metadata({**meta, "head_prior": bad}, source="m")
    old = parse_bundle_metadata(tiny_metadata(), source="m")  # no frequencies: nothing can be corrected
    with pytest.warns(UserWarning, match="records no training class frequencies"):
        assert prior_correction(area, old) is None


@pytest.mark.parametrize(
    ("content", "suffix", "fragment"),
    [
        (None, ".csv", "is neither 'train', 'uniform' nor an existing file"),
        ("{not json", ".json", "is not valid JSON"),
        ("[0.5, 0.5]", ".json", "holds a JSON list"),
        ("wheat;0.5\nmaize;0.5\n", ".csv", "is not a table of 'class,share' rows"),
        ("wheat,0.5\nmaize,-0.1\nrapeseed,0.6\n", ".csv", "share of 'maize' is '-0.1'"),
        ('{"wheat": "lots"}', ".json", "share of 'wheat' is 'lots', not a number"),
        ("wheat,0\nmaize,0\nrapeseed,0\n", ".csv", "gives no positive share"),
    ],
)
def test_bad_priors_files_are_one_line_errors(
    tmp_path: Path, content: str | None, suffix: str, fragment: str
) -> None:
    path = tmp_path / f"priors{suffix}"
    if content is not None:
        path.write_text(content)
    with pytest.raises(InputError) as caught:
        read_class_priors(path)
    assert caught.value.param == "class_priors" and fragment in str(caught.value)
    assert str(caught.value).startswith("`class_priors`") and "\n" not in str(caught.value)


def test_priors_must_name_exactly_the_model_classes() -> None:
    spec = parse_bundle_metadata(tiny_metadata(), source="tiny.safetensors")
    with pytest.raises(InputError, match=r"names class\(es\) 'barley' that model .* use its classes: wheat"):
        check_priors(read_class_priors({"wheat": 1, "maize": 1, "rapeseed": 1, "barley": 1}), spec)
    with pytest.raises(InputError, match=r"gives no share for class\(es\) 'rapeseed'; give every class"):
        check_priors(read_class_priors({"wheat": 1, "maize": 1}), spec)


def test_the_engine_applies_temperature_and_priors(tmp_path: Path) -> None:
    """probs = softmax(logits / T + log shares), with the logits of the same weights read uncorrected."""
    x = random_block(seed=4)
    plain = Predictor(write_tiny_bundle(tmp_path / "plain.safetensors"), device="cpu").predict_block(x)
    shares = np.array([0.6, 0.3, 0.1])
    bundle = _bundle(tmp_path / "m.safetensors", class_frequencies=shares.tolist(), temperature=2.0)
    live = np.isfinite(plain.probs[0])
    logits = np.log(plain.probs[:, live].T)  # log-softmax: the logits up to a per-pixel constant
    default = Predictor(bundle, device="cpu").predict_block(x)
    np.testing.assert_allclose(default.probs[:, live].T, softmax(logits / 2 + np.log(shares)), atol=2e-5)
    uniform = Predictor(bundle, device="cpu", class_priors=read_class_priors("uniform")).predict_block(x)
    np.testing.assert_allclose(uniform.probs[:, live].T, softmax(logits / 2), atol=2e-5)
    # confidence and classes come from the corrected probabilities; a zero share is never predicted
    assert (default.confidence[live] == np.rint(default.probs[:, live].max(axis=0) * 100)).all()
    no_maize = read_class_priors({"wheat": 1, "maize": 0, "rapeseed": 1})
    assert not (Predictor(bundle, device="cpu", class_priors=no_maize).predict_block(x).classes == 1).any()


def test_an_old_bundle_maps_uncorrected_and_says_so_only_when_asked(tmp_path: Path) -> None:
    bundle = write_tiny_bundle(tmp_path / "old.safetensors")
    assert "class_frequencies" not in read_bundle_metadata(bundle)
    x = random_block(seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet = Predictor(bundle, device="cpu").predict_block(x)  # the default: no warning
    assert quiet.probs.shape[0] == 3
    with pytest.warns(UserWarning, match="records no training class frequencies"):
        asked = Predictor(bundle, device="cpu", class_priors=read_class_priors("train")).predict_block(x)
    np.testing.assert_array_equal(asked.classes, quiet.classes)
