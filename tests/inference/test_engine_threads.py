"""The engine's thread choice on the CPU: measured batch by batch with tune_process, fixed when asked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from geocrop.core.threads import usable_cores
from geocrop.inference.engine import Predictor
from tests.inference.inference_helpers import STEPS, random_block, write_tiny_bundle


@pytest.fixture
def keep_torch_threads() -> Iterator[None]:
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.usefixtures("keep_torch_threads")
def test_tuned_predictor_times_both_counts_and_answers_as_a_fixed_one(tmp_path: Path) -> None:
    if usable_cores() < 2:
        pytest.skip("one usable core: there is nothing to choose")
    bundle = write_tiny_bundle(tmp_path / "m.safetensors")
    x = random_block(h=16, w=16, seed=5)
    fixed = Predictor(bundle, device="cpu", num_threads=1, batch_rows=4 * STEPS).predict_block(x)
    tuned = Predictor(bundle, device="cpu", batch_rows=4 * STEPS)  # 4-pixel batches: ~45 steps
    assert tuned._threads is not None
    got = tuned.predict_block(x)
    assert tuned._threads.best in (1, usable_cores())
    assert set(tuned._threads._per_unit) == {1, usable_cores()}  # both were timed
    assert torch.get_num_threads() in (1, usable_cores())
    np.testing.assert_array_equal(got.classes, fixed.classes)
    np.testing.assert_allclose(got.probs, fixed.probs, atol=1e-6, equal_nan=True)


@pytest.mark.usefixtures("keep_torch_threads")
def test_an_explicit_count_is_kept_and_nothing_is_chosen(tmp_path: Path) -> None:
    predictor = Predictor(write_tiny_bundle(tmp_path / "m.safetensors"), device="cpu", num_threads=1)
    predictor.predict_block(random_block(seed=1))
    assert predictor._threads is None
    assert torch.get_num_threads() == 1


@pytest.mark.usefixtures("keep_torch_threads")
def test_without_tune_process_the_process_threads_are_left_alone(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    predictor = Predictor(write_tiny_bundle(tmp_path / "m.safetensors"), device="cpu", tune_process=False)
    predictor.predict_block(random_block(seed=2))
    assert predictor._threads is None
    assert torch.get_num_threads() == 1
