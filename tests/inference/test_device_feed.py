"""The device feed (`geocrop.inference.device_feed`) on the CPU: the same pixels, in the same order, with the
same values as the host feed; the engine's maps identical with either feed; batch growth to free memory."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from geocrop.errors import InputError
from geocrop.inference.device_feed import MAX_GROWN_ROWS, BatchGrowth, grown_rows, stage_block
from geocrop.inference.engine import Predictor
from tests.inference.inference_helpers import STEPS, random_block, write_tiny_bundle


def host_batch(block: np.ndarray, index: np.ndarray, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """What the host feed hands the model: NumPy gather out of the (P, T, B) view, then normalise."""
    pixels = block.transpose(2, 0, 1)
    x = torch.from_numpy(np.ascontiguousarray(pixels[index]))
    return torch.nan_to_num((x - mean) / std, nan=0.0)


def awkward_block(seed: int = 0) -> np.ndarray:
    """(T, B, P) with wholly masked pixels, cloudy dates, single masked bands and infinities."""
    rng = np.random.default_rng(seed)
    block = rng.uniform(0.0, 0.5, (STEPS, 12, 40)).astype(np.float32)
    block[:, :, :7] = np.nan  # never clear
    block[rng.random(STEPS) < 0.5, :, 7:20] = np.nan  # cloudy dates
    block[:, 3, 20:25] = np.nan  # one band always missing: never a fully clear timestamp
    block[1, 5, 30] = np.inf  # one infinite value: still clear on other dates
    block[:, 0, 35] = -np.inf  # never clear
    return block


def test_device_feed_gives_the_host_feeds_pixels_order_and_values() -> None:
    block = awkward_block()
    mean = torch.linspace(0.1, 0.2, 12)
    std = torch.linspace(0.05, 0.1, 12)
    pixels = block.transpose(2, 0, 1)
    want_index = np.flatnonzero(np.any(np.all(np.isfinite(pixels), axis=2), axis=1))
    staged = stage_block(block, torch.device("cpu"))
    index = staged.clear_index()
    np.testing.assert_array_equal(index.numpy(), want_index)
    assert 0 < want_index.size < block.shape[2]
    for start, stop in ((0, 5), (5, want_index.size)):
        got = staged.batch(index[start:stop], mean, std)
        want = host_batch(block, want_index[start:stop], mean, std)
        assert got.is_contiguous() and got.shape == want.shape
        assert torch.equal(got, want)  # bit for bit, NaN -> 0 included
    assert np.isnan(block).any()  # the staged block was normalised in copies, never in place


def test_device_feed_takes_any_strides() -> None:
    block = awkward_block(seed=1)
    strided = np.asfortranarray(block)
    staged = stage_block(strided, torch.device("cpu"))
    np.testing.assert_array_equal(staged.values.numpy(), block)


@pytest.mark.parametrize("backbone", [True, False], ids=["resmlp", "raw-bands"])
def test_engine_maps_are_identical_with_either_feed(tmp_path: Path, backbone: bool) -> None:
    path = write_tiny_bundle(tmp_path / "m.safetensors", backbone=backbone)
    x = random_block(h=9, w=7, seed=11, masked=0.4)
    host = Predictor(path, device="cpu", feed="host", batch_rows=5 * STEPS)
    device = Predictor(path, device="cpu", feed="device", batch_rows=5 * STEPS)
    assert host.feed == "host" and device.feed == "device"
    want, got = host.predict_block(x), device.predict_block(x)
    np.testing.assert_array_equal(got.classes, want.classes)
    np.testing.assert_array_equal(got.confidence, want.confidence)
    np.testing.assert_array_equal(got.probs, want.probs)
    assert (got.classes == 255).any() and (got.classes != 255).any()
    assert device.counters.pixels == host.counters.pixels


def test_device_feed_on_a_fully_masked_block(tmp_path: Path) -> None:
    predictor = Predictor(write_tiny_bundle(tmp_path / "m.safetensors"), device="cpu", feed="device")
    got = predictor.predict_block(np.full((STEPS, 12, 3, 4), np.nan, dtype=np.float32))
    assert (got.classes == 255).all() and np.isnan(got.probs).all()
    assert predictor.counters.backbone_rows == 0


def test_feed_defaults_and_checks(tmp_path: Path) -> None:
    path = write_tiny_bundle(tmp_path / "m.safetensors")
    assert Predictor(path, device="cpu").feed == "host"  # the CPU default (measured no faster)
    with pytest.raises(InputError, match="`feed`") as info:
        Predictor(path, device="cpu", feed="gpu")  # type: ignore[arg-type]
    assert info.value.param == "feed"


def test_grown_rows_fill_half_the_free_memory_in_whole_pixels() -> None:
    # 1 KiB a row, 8 GiB free: half of it is 4Mi rows, rounded down to whole 144-step pixels.
    rows = grown_rows(1 << 20, bytes_per_row=1024, free_bytes=8 << 30, steps=144)
    assert rows == (4 << 20) // 144 * 144
    assert grown_rows(1 << 20, bytes_per_row=1024, free_bytes=1 << 30, steps=144) == 1 << 20  # never shrinks
    assert grown_rows(1 << 20, bytes_per_row=1, free_bytes=1 << 40, steps=144) <= MAX_GROWN_ROWS
    assert grown_rows(1 << 20, bytes_per_row=0, free_bytes=1 << 40, steps=144) == 1 << 20


def test_engine_grows_its_batch_once_and_keeps_the_result(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The growth logic on the CPU with a simulated device: 100 bytes per row, 1 MB free."""
    path = write_tiny_bundle(tmp_path / "m.safetensors")
    x = random_block(h=12, w=12, seed=2, masked=0.2)
    want = Predictor(path, device="cpu", batch_rows=4 * STEPS).predict_block(x)
    predictor = Predictor(path, device="cpu", feed="device", batch_rows=4 * STEPS)
    allocated = {"now": 0}
    seen: list[int] = []
    real = predictor._run_batch

    def run(batch: torch.Tensor) -> torch.Tensor:
        seen.append(batch.shape[0])
        allocated["peak"] = 100 * batch.shape[0] * STEPS
        return real(batch)

    predictor._run_batch = run  # type: ignore[method-assign]
    predictor._growth = BatchGrowth(
        torch.device("cpu"), enabled=True, memory=lambda: (0, allocated.get("peak", 0), 1_000_000)
    )
    with caplog.at_level(logging.INFO, logger="geocrop.inference.device_feed"):
        got = predictor.predict_block(x)
    # Half of 1 MB at 100 bytes a row: 5,000 rows, 833 pixels of 6 steps; the block has fewer.
    assert predictor.batch_rows == 5000 // STEPS * STEPS
    assert seen[0] == 4 and len(seen) == 2 and "batch grown" in caplog.text
    np.testing.assert_array_equal(got.classes, want.classes)
    np.testing.assert_allclose(got.probs, want.probs, atol=1e-6, equal_nan=True)


def test_growth_is_off_on_the_cpu_and_for_a_fixed_batch() -> None:
    assert not BatchGrowth(torch.device("cpu"), enabled=True).active
    growth = BatchGrowth(torch.device("cpu"), enabled=False, memory=lambda: (0, 10, 10))
    assert not growth.active and growth.after(100, 100, 1) == 100
