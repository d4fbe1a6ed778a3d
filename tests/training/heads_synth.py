"""Tiny synthetic labelled tables and random-init backbone bundles for the head/evaluate tests.

Each class has a greenness bump at its own time of year; pixels of one parcel share a small offset. The
dates are irregular. Not the scene simulator: a few hundred values, built in milliseconds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from geocrop.core.bands import S2_BANDS
from geocrop.io.bundle import save_bundle
from geocrop.models.registry import build_backbone, state_to_numpy


def write_table(
    path: Path,
    *,
    classes: Sequence[str] = ("maize", "wheat", "rapeseed"),
    parcels: int = 6,
    pixels: int = 5,
    seed: int = 0,
) -> Path:
    """Wide CSV/Parquet: columns crop, parcel and B01..B12 on ~20 irregular dates in 2021."""
    rng = np.random.default_rng(seed)
    days = np.sort(rng.choice(np.arange(0, 240), size=20, replace=False))
    rows = []
    for c, name in enumerate(classes):
        peak = 40 + 150 * c / max(len(classes) - 1, 1)
        for p in range(parcels):
            offset = rng.normal(0, 0.01)
            for _ in range(pixels):
                row: dict[str, object] = {"crop": name, "parcel": f"{name}-{p}"}
                for d in days:
                    bump = np.exp(-(((d - peak) / 35.0) ** 2))
                    date = (dt.date(2021, 3, 1) + dt.timedelta(days=int(d))).isoformat()
                    for k, band in enumerate(S2_BANDS):
                        value = 0.05 + 0.03 * k * bump + offset + rng.normal(0, 0.005)
                        row[f"{band}_{date}"] = value
                rows.append(row)
    frame = pd.DataFrame(rows)
    if path.suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)
    return path


def write_backbone(
    path: Path,
    *,
    seed: int = 0,
    bands: Sequence[str] = S2_BANDS,
    width: int = 8,
    mode: str = "bimodal",
    old_spelling: bool = False,
) -> Path:
    """A random-init ResMLP bundle in `geocrop pretrain`'s layout (backbone spec, bands, normalisation);
    ``old_spelling``: as bundles were written before (``normalisation``, ``corruption`` 0.3)."""
    torch.manual_seed(seed)
    spec = {"name": "resmlp", "in_features": len(bands), "width": width, "depth": 1}
    module = build_backbone(spec)
    meta = {
        "kind": "backbone",
        "mode": mode,
        "backbone": spec,
        "bands": list(bands),
        "normalization": {"mean": [0.1] * len(bands), "std": [0.1] * len(bands)},
    }
    if old_spelling:
        meta["normalisation"] = meta.pop("normalization")
        meta["corruption"] = 0.3
    return save_bundle(path, state_to_numpy(module, "backbone"), meta)
