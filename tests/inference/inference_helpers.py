"""Tiny model bundles and cubes for the inference tests (random weights: a test instrument)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from geocrop.core.bands import S2_BANDS
from geocrop.inference.tiles import PredictorRef, Tile, plan_tiles, run_tiles
from geocrop.io.bundle import save_bundle
from geocrop.models.registry import build_backbone, build_head, state_to_numpy

STEPS = 6
CLASSES = [
    {"value": 0, "name": "wheat", "color": "#e6ab02"},
    {"value": 1, "name": "maize", "color": "#1b9e77"},
    {"value": 2, "name": "rapeseed", "color": "#d95f02"},
]


def tiny_metadata(
    *,
    backbone: bool = True,
    steps: int = STEPS,
    bands: tuple[str, ...] = S2_BANDS,
    season: tuple[str, str] = ("2021-04-01", "2021-07-10"),
) -> dict[str, Any]:
    n = len(bands)
    rng = np.random.default_rng(1)
    return {
        "name": "tiny-test-model",
        "backbone": {"name": "resmlp", "in_features": n, "width": 16, "depth": 2} if backbone else None,
        "head": {
            "name": "lstm",
            "in_features": 16 if backbone else n,
            "n_classes": 3,
            "hidden": 8,
            "layers": 1,
        },
        "bands": list(bands),
        "normalization": {
            "mean": rng.uniform(0.05, 0.2, n).round(4).tolist(),
            "std": rng.uniform(0.05, 0.1, n).round(4).tolist(),
        },
        "classes": CLASSES,
        "temporal_grid": {"start": season[0], "end": season[1], "steps": steps},
    }


def write_tiny_bundle(path: Path, *, backbone: bool = True, seed: int = 0, **kwargs: Any) -> Path:
    """A random-init map-ready bundle: ResMLP(width 16, depth 2) + Bi-LSTM(hidden 8) over 3 classes."""
    meta = tiny_metadata(backbone=backbone, **kwargs)
    torch.manual_seed(seed)
    tensors: dict[str, np.ndarray] = {}
    if meta["backbone"] is not None:
        tensors.update(state_to_numpy(build_backbone(meta["backbone"]), "backbone"))
    tensors.update(state_to_numpy(build_head(meta["head"]), "head"))
    return save_bundle(path, tensors, meta)


def random_block(
    steps: int = STEPS, bands: int = 12, h: int = 5, w: int = 7, *, seed: int = 0, masked: float = 0.3
) -> np.ndarray:
    """Reflectance (T, B, h, w) in [0, 0.5] with a few wholly masked pixels and some masked timestamps."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 0.5, (steps, bands, h, w)).astype(np.float32)
    dead = rng.random((h, w)) < masked  # no clear observation at all
    x[:, :, dead] = np.nan
    cloudy = rng.random((steps, h, w)) < 0.2  # some clouded timestamps in live pixels
    x[np.broadcast_to(cloudy[:, None], x.shape)] = np.nan
    return x


class Canvas:
    """A sink that paints tiles into whole-map arrays (fine for tiny test maps)."""

    def __init__(self, h: int, w: int) -> None:
        self.classes = np.full((h, w), 254, dtype=np.uint8)  # 254: never written
        self.probs = np.zeros((3, h, w), dtype=np.uint8)
        self.writes = 0

    def __call__(self, tile: Tile, arrays: dict[str, Any]) -> None:
        ys, xs = slice(tile.y0, tile.y0 + tile.height), slice(tile.x0, tile.x0 + tile.width)
        self.classes[ys, xs] = arrays["classes"]
        self.probs[:, ys, xs] = arrays["probs"]
        self.writes += 1


def run(cube: Any, ref: PredictorRef, size: int, **kwargs: Any) -> Canvas:
    canvas = Canvas(cube.shape[2], cube.shape[3])
    run_tiles(cube, tiles=plan_tiles(cube.shape[2], cube.shape[3], size), ref=ref, sink=canvas,
              probabilities=True, **kwargs)  # fmt: skip
    return canvas
