"""The engine against a plain per-pixel, per-timestamp reference; masking; bundle loading and mismatches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from geocrop.errors import BundleError
from geocrop.inference.engine import Predictor
from tests.inference.inference_helpers import STEPS, random_block, write_tiny_bundle


def reference_predict(predictor: Predictor, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Loop over pixels and timestamps: one backbone call per (pixel, t), one head call per pixel."""
    steps, _, h, w = x.shape
    mean = np.asarray(predictor.spec.mean, dtype=np.float32)
    std = np.asarray(predictor.spec.std, dtype=np.float32)
    values = np.array([c.value for c in predictor.spec.classes])
    classes = np.full((h, w), 255, dtype=np.uint8)
    probs = np.full((predictor.n_classes, h, w), np.nan, dtype=np.float32)
    with torch.no_grad():
        for i in range(h):
            for j in range(w):
                series = x[:, :, i, j]
                if not np.isfinite(series).all(axis=1).any():
                    continue
                rows = []
                for t in range(steps):
                    z = np.nan_to_num((series[t] - mean) / std, nan=0.0)
                    row = torch.from_numpy(z)[None]
                    rows.append(predictor.backbone(row)[0] if predictor.backbone is not None else row[0])
                logits = predictor.head(torch.stack(rows)[None])[0]
                p = torch.softmax(logits, dim=-1).numpy()
                probs[:, i, j] = p
                classes[i, j] = values[p.argmax()]
    return classes, probs


@pytest.mark.parametrize("backbone", [True, False], ids=["resmlp", "raw-bands"])
def test_engine_matches_per_pixel_reference(tmp_path: Path, backbone: bool) -> None:
    predictor = Predictor(write_tiny_bundle(tmp_path / "m.safetensors", backbone=backbone), device="cpu")
    x = random_block(seed=3)
    got = predictor.predict_block(x)
    want_classes, want_probs = reference_predict(predictor, x)
    np.testing.assert_array_equal(got.classes, want_classes)
    np.testing.assert_allclose(got.probs, want_probs, atol=1e-5, equal_nan=True)
    masked = want_classes == 255
    assert masked.any() and (~masked).any()
    assert (got.confidence[masked] == 255).all()
    expected_conf = np.rint(want_probs[:, ~masked].max(axis=0) * 100).astype(np.uint8)
    np.testing.assert_array_equal(got.confidence[~masked], expected_conf)


def test_masked_pixels_are_not_computed(tmp_path: Path) -> None:
    predictor = Predictor(write_tiny_bundle(tmp_path / "m.safetensors"), device="cpu", batch_rows=4 * STEPS)
    rows_seen: list[int] = []
    assert predictor.backbone is not None
    predictor.backbone.register_forward_hook(lambda mod, inp, out: rows_seen.append(inp[0].shape[0]))
    x = random_block(seed=5, masked=0.6)
    valid = np.isfinite(x).all(axis=1).any(axis=0)
    got = predictor.predict_block(x)
    assert sum(rows_seen) == int(valid.sum()) * STEPS  # only clear pixels' rows reached the backbone
    assert max(rows_seen) <= 4 * STEPS  # and in batches of the configured size
    np.testing.assert_array_equal(got.classes == 255, ~valid)


def test_fully_masked_block_costs_nothing(tmp_path: Path) -> None:
    predictor = Predictor(write_tiny_bundle(tmp_path / "m.safetensors"), device="cpu")
    got = predictor.predict_block(np.full((STEPS, 12, 3, 4), np.nan, dtype=np.float32))
    assert (got.classes == 255).all() and (got.confidence == 255).all()
    assert predictor.counters.backbone_rows == 0


def test_batch_size_does_not_change_results(tmp_path: Path) -> None:
    path = write_tiny_bundle(tmp_path / "m.safetensors")
    x = random_block(h=9, w=8, seed=7)
    big = Predictor(path, device="cpu").predict_block(x)
    small = Predictor(path, device="cpu", batch_rows=STEPS).predict_block(x)
    np.testing.assert_array_equal(big.classes, small.classes)
    np.testing.assert_allclose(big.probs, small.probs, atol=1e-6, equal_nan=True)


def test_block_with_other_bands_or_steps_is_a_bundle_error(tmp_path: Path) -> None:
    predictor = Predictor(write_tiny_bundle(tmp_path / "m.safetensors"), device="cpu")
    with pytest.raises(BundleError, match="expects 12 bands"):
        predictor.predict_block(np.zeros((STEPS, 10, 2, 2), np.float32))
    with pytest.raises(BundleError, match=f"expects {STEPS} timestamps"):
        predictor.predict_block(np.zeros((STEPS + 1, 12, 2, 2), np.float32))


def test_pretrain_only_bundle_cannot_map(tmp_path: Path) -> None:
    from geocrop.io.bundle import save_bundle

    path = save_bundle(tmp_path / "p.safetensors", {"backbone.x": np.zeros(1, np.float32)}, {"bands": []})
    with pytest.raises(BundleError, match="no temporal head"):
        Predictor(path, device="cpu")


def test_flops_count_backbone_and_recurrent_head(tmp_path: Path) -> None:
    predictor = Predictor(write_tiny_bundle(tmp_path / "m.safetensors"), device="cpu")
    # ResMLP(12 -> 16, depth 2): stem 12*16 + 2 layers 16*16 MACs per row; LSTM(16 -> 8, bidirectional,
    # 4 gates) per step; classifier 16 -> 3 once. x2 FLOPs per multiply-add.
    backbone = 2 * (12 * 16 + 2 * 16 * 16) * STEPS
    lstm = 2 * 4 * (16 * 8 + 8 * 8) * STEPS * 2
    assert predictor.flops_per_pixel() == pytest.approx(backbone + lstm + 2 * 16 * 3)


def test_quick_flops_estimate_is_close_to_the_count_for_the_backbone() -> None:
    from geocrop.inference.flops import count_flops_per_pixel, estimate_flops_per_pixel
    from geocrop.models.registry import build_backbone, build_head

    backbone = build_backbone({"name": "resmlp", "in_features": 12})  # the paper's E_s, ~534K parameters
    head = build_head({"name": "lstm", "in_features": 256, "n_classes": 9, "hidden": 32, "layers": 1})
    exact = count_flops_per_pixel(backbone, head, steps=144, n_bands=12)
    assert estimate_flops_per_pixel(backbone, head, steps=144) == pytest.approx(exact, rel=0.05)


def test_predictor_from_modules_matches_the_bundle(tmp_path: Path) -> None:
    from geocrop.inference.schema import spec_for_modules

    loaded = Predictor(write_tiny_bundle(tmp_path / "m.safetensors"), device="cpu")
    spec = spec_for_modules(bands=loaded.bands, classes=["wheat", "maize", "rapeseed"], steps=STEPS,
                            mean=loaded.spec.mean, std=loaded.spec.std)  # fmt: skip
    direct = Predictor.from_modules(backbone=loaded.backbone, head=loaded.head, spec=spec, device="cpu")
    x = random_block(seed=9)
    np.testing.assert_array_equal(direct.predict_block(x).classes, loaded.predict_block(x).classes)
