"""Frozen backbones for downstream training: load one from a bundle and encode pixel series once.

The paper (section 3.2, Figure 1B) passes each of a pixel's 144 timestamps through the frozen pretrained
S2 encoder ``E_s: R^12 -> R^256`` and feeds the (T, 256) series to a temporal head. The backbone never
changes during head training, so its features are computed once per variant and reused by every head
configuration and epoch. The supervised baseline uses no backbone: the normalised 12 bands are the series.

Normalisation matches `geocrop.inference.engine`: ``(reflectance - mean) / std`` per band with the
statistics stored in the backbone's bundle (for the supervised baseline: the training pixels' own
statistics), and NaN left after the temporal fill becomes 0, i.e. the band mean.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from geocrop.core.bands import S2_BANDS
from geocrop.errors import BundleError
from geocrop.io.bundle import load_bundle
from geocrop.io.bundle_metadata import read_normalization
from geocrop.models.batching import CPU_BACKBONE_ROWS, CUDA_BATCH_ROWS
from geocrop.models.device import resolve_device
from geocrop.models.registry import build_backbone, load_state


@dataclass(frozen=True)
class FrozenBackbone:
    """A pretrained per-pixel encoder with the band order and statistics it was trained with."""

    module: nn.Module | None
    spec: dict[str, Any] | None
    bands: tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray
    metadata: dict[str, Any]
    path: Path | None = None

    @property
    def out_features(self) -> int | None:
        return None if self.spec is None else int(self.spec.get("width", 256))


def _stats(meta: dict[str, Any], n: int, path: Path) -> tuple[np.ndarray, np.ndarray]:
    norm = read_normalization(meta, n)  # either spelling (normalization / normalisation)
    if norm is None:
        raise BundleError(
            f"backbone bundle {path} has no normalisation of {n} bands with positive stds; "
            "re-export it with `geocrop pretrain`"
        )
    return np.asarray(norm.mean, dtype=np.float32), np.asarray(norm.std, dtype=np.float32)


def load_backbone(path: str | Path, *, bands: Sequence[str] = S2_BANDS) -> FrozenBackbone:
    """Load the S2 encoder (tensors ``backbone.*``) of a pretraining or map bundle, frozen, in eval mode.

    Raises `BundleError` when the bundle was trained on other bands than ``bands`` (the data's), has no
    backbone, or its weights do not fit the architecture it names.
    """
    path = Path(path)
    bundle = load_bundle(path)
    meta = bundle.metadata
    spec = meta.get("backbone")
    if not isinstance(spec, dict) or not spec.get("name") or spec.get("name") == "none":
        raise BundleError(
            f"bundle {path} holds no pretrained backbone; pass a bundle from `geocrop pretrain` "
            "or `backbone` none",
            param="backbone",
        )
    found = tuple(str(b) for b in meta.get("bands") or S2_BANDS)
    if found != tuple(bands):
        raise BundleError(
            f"backbone bundle {path} was pretrained on bands {list(found)} but the labelled data has "
            f"{list(bands)}; pretrain a backbone on the 12 Sentinel-2 bands or use `backbone` none",
            param="backbone",
        )
    if "in_features" in spec and int(spec["in_features"]) != len(found):
        raise BundleError(f"backbone bundle {path} takes {spec['in_features']} inputs for {len(found)} bands")
    module = build_backbone(spec)
    load_state(module, bundle.tensors, "backbone", found=spec)
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    mean, std = _stats(meta, len(found), path)
    return FrozenBackbone(module, dict(spec), found, mean, std, dict(meta), path)


def filled_band_mismatch(backbone: FrozenBackbone, data_filled: Sequence[str]) -> str | None:
    """A warning when the backbone's filled bands differ from the labelled data's, else None.

    A pretraining bundle lists in ``filled_bands`` the bands its source lacked (filled by the bandmap
    rule, not observed). An encoder that learnt B8A as an interpolation of B08 and B11 sees a real B8A
    differently (and the other way round): the features still flow, but they are out of distribution.
    `geocrop train --backbone` should print this after reading the labelled data.
    """
    if backbone.path is None:
        return None
    pre = {str(b) for b in backbone.metadata.get("filled_bands") or ()}
    now = {str(b) for b in data_filled}
    if pre == now:
        return None
    parts = []
    if pre - now:
        parts.append(f"filled (not observed) band(s) {', '.join(sorted(pre - now))} the labelled data has")
    if now - pre:
        parts.append(f"observed band(s) {', '.join(sorted(now - pre))} that the labelled data lacks (filled)")
    return (
        f"backbone {backbone.path.name} was pretrained on {' and on '.join(parts)}; its features for "
        "those bands are out of distribution: pretrain on a source with the same bands, or accept the risk"
    )


def raw_bands(values: np.ndarray, *, bands: Sequence[str] = S2_BANDS) -> FrozenBackbone:
    """The supervised baseline's 'backbone': identity, normalised with ``values``' per-band statistics.

    values: (N, T, B) reflectance (the training pixels), NaN allowed.
    """
    flat = values.reshape(-1, values.shape[-1])
    with np.errstate(all="ignore"):
        mean = np.nan_to_num(np.nanmean(flat, axis=0), nan=0.0).astype(np.float32)
        std = np.nan_to_num(np.nanstd(flat, axis=0), nan=1.0).astype(np.float32)
    std = np.maximum(std, 1e-6).astype(np.float32)
    return FrozenBackbone(None, None, tuple(bands), mean, std, {})


def encode(
    values: np.ndarray,
    backbone: FrozenBackbone,
    *,
    device: str | torch.device = "cpu",
    batch_rows: int | None = None,
) -> np.ndarray:
    """(N, T, B) reflectance -> (N, T, F) float32 head input (F = 256 features, or B normalised bands).

    ``batch_rows`` defaults to 2Ki rows on the CPU (activations stay in cache: ~3x faster than 64Ki rows on
    the development CPU, see `geocrop.models.batching`) and 1Mi rows on CUDA.
    """
    x = (np.asarray(values, dtype=np.float32) - backbone.mean) / backbone.std
    x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)
    if backbone.module is None:
        return x
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    module = backbone.module.to(dev)
    if batch_rows is None:
        batch_rows = CUDA_BATCH_ROWS if dev.type == "cuda" else CPU_BACKBONE_ROWS
    n, t, b = x.shape
    rows = x.reshape(n * t, b)
    out: np.ndarray | None = None
    with torch.inference_mode():
        for start in range(0, n * t, batch_rows):
            feats = module(torch.from_numpy(rows[start : start + batch_rows]).to(dev)).float().cpu().numpy()
            if out is None:
                out = np.empty((n * t, feats.shape[1]), dtype=np.float32)
            out[start : start + len(feats)] = feats
    if out is None:
        return np.zeros((0, t, backbone.out_features or 0), dtype=np.float32)
    return out.reshape(n, t, -1)
