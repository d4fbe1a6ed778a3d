"""A tiny table in ESA WorldCereal's extraction layout, with the class map that names its codes.

Long format, one row per sample and dekad: ``sample_id``, ``timestamp``, ``S2-L2A-B02`` ... ``S2-L2A-B12``
as uint16 reflectance x 1e4 with 65535 for "no clear observation" (B8A is 65535 throughout, as in the real
files), S1 columns, ``ewoc_code`` labels. Each crop peaks at its own time of year; ~30 % of cells are
cloudy. Built in milliseconds for tests; the real files live in ``shared/realdata/worldcereal``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

BANDS = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12")
CODES = {"maize": 1101060000, "wheat": 1101010001, "sunflower": 1106000020}


def write_extraction(
    path: Path, *, per_class: int = 12, dekads: int = 24, seed: int = 0, codes: dict[str, int] = CODES
) -> Path:
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2022-03-01", periods=dekads, freq="10D")
    rows = []
    for c, (name, code) in enumerate(codes.items()):
        peak = 4 + 14 * c / max(len(codes) - 1, 1)
        for s in range(per_class):
            for t, when in enumerate(dates):
                bump = np.exp(-(((t - peak) / 4.0) ** 2))
                row: dict[str, object] = {"sample_id": f"{name}_{s}", "timestamp": when, "ewoc_code": code}
                cloudy = rng.random() < 0.3
                for k, band in enumerate(BANDS):
                    value = 500 + 300 * k * bump + rng.normal(0, 40)
                    row[f"S2-L2A-{band}"] = (
                        65535 if cloudy or band == "B8A" else int(np.clip(value, 1, 10000))
                    )
                row["S1-SIGMA0-VV"] = int(rng.integers(1, 65534))
                row["S1-SIGMA0-VH"] = int(rng.integers(1, 65534))
                rows.append(row)
    frame = pd.DataFrame(rows)
    for col in frame.columns:
        if col.startswith("S2-") or col.startswith("S1-"):
            frame[col] = frame[col].astype("uint16")
    frame.to_parquet(path)
    return path


def write_class_map(path: Path, codes: dict[str, int] = CODES) -> Path:
    """WorldCereal-style JSON with two tables: the crop types and a coarser land cover one."""
    crop = {str(code): name for name, code in codes.items()}
    cover = {str(code): "temporary_crops" for code in codes.values()}
    path.write_text(json.dumps({"CROPTYPE": crop, "LANDCOVER": cover}))
    return path
