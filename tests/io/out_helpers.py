"""A tiny synthetic crop map (300x300 px, UTM 33N, 10 m) written through CogWriter, for the output tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
from affine import Affine
from rasterio.windows import Window

from geocrop.io.classes import ClassInfo
from geocrop.io.cog import CogWriter

SIZE = 300
EPSG = 32633
TRANSFORM = Affine(10.0, 0.0, 399_960.0, 0.0, -10.0, 5_820_000.0)  # 10 m, upper-left corner
CLASSES = (
    ClassInfo(0, "winter wheat", "#e6c619"),
    ClassInfo(1, "maize", "#2e8b57"),
    ClassInfo(3, "sugar beet", "#8a2be2"),
)


def synthetic_classes(size: int = SIZE) -> npt.NDArray[np.uint8]:
    """Three vertical stripes (0, 1, 3) and a 50x50 nodata corner at the bottom right."""
    out = np.zeros((size, size), dtype=np.uint8)
    out[:, size // 3 : 2 * size // 3] = 1
    out[:, 2 * size // 3 :] = 3
    out[-50:, -50:] = 255
    return out


def synthetic_confidence(size: int = SIZE) -> npt.NDArray[np.uint8]:
    rng = np.random.default_rng(0)
    return rng.integers(30, 101, size=(size, size), dtype=np.uint8)


def write_synthetic_cog(path: Path, *, block: int = 128, n_prob_bands: int = 0) -> Path:
    """Write the synthetic map in `block`-sized windows (not aligned to the 256 px tiles); the class
    probabilities always go in (they give the uncertainty band), as bands only with ``n_prob_bands``."""
    classes, confidence = synthetic_classes(), synthetic_confidence()
    probs = np.zeros((len(CLASSES), SIZE, SIZE), dtype=np.float32)
    for i, c in enumerate(CLASSES):
        probs[i] = np.where(classes == c.value, confidence / 100.0, (1 - confidence / 100.0) / 2)
    metadata = {"model": "tiny-test-model", "start_date": "2021-03-01", "end_date": "2021-10-31",
                "scene_ids": ["S2A_33UUU_20210301_0_L2A", "S2B_33UUU_20210306_0_L2A"]}  # fmt: skip
    with CogWriter(
        path, crs=f"EPSG:{EPSG}", transform=TRANSFORM, width=SIZE, height=SIZE, classes=CLASSES,
        n_prob_bands=n_prob_bands, metadata=metadata,
    ) as writer:  # fmt: skip
        for row in range(0, SIZE, block):
            for col in range(0, SIZE, block):
                h, w = min(block, SIZE - row), min(block, SIZE - col)
                sl = (slice(row, row + h), slice(col, col + w))
                writer.write_block(
                    Window(col, row, w, h), classes[sl], confidence[sl],
                    probs[(slice(None), *sl)],
                )  # fmt: skip
    return path
