"""A tiny local Sentinel-2 catalog and a matching tiny bundle for `map_aoi` / `geocrop map` tests.

Built on [LOAD]'s `tests/io/stac_fixtures.py` (synthetic 10 m COGs with known DNs + a static catalog).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geocrop.core.bands import S2_BANDS
from tests.inference.inference_helpers import write_tiny_bundle
from tests.io.stac_fixtures import ORIGIN, s2_item, synthetic_s2, tile_bbox, write_catalog

SIZE = 20
DATES = tuple(dt.date(2021, 4, 1) + dt.timedelta(days=20 * i) for i in range(6))
START, END = DATES[0], DATES[-1]


@dataclass(frozen=True)
class TinyArea:
    root: Path
    catalog: Path
    bundle: Path
    items: list

    @property
    def bbox(self) -> str:
        """An AOI 2 pixels inside the tile, as the --bbox string."""
        return ",".join(f"{v:.7f}" for v in tile_bbox(SIZE, 2))


def tiny_area(root: Path) -> TinyArea:
    items = synthetic_s2(root / "data", DATES, size=SIZE)
    catalog = write_catalog(root / "catalog", items)
    bundle = write_tiny_bundle(root / "model.safetensors", steps=len(DATES))
    return TinyArea(root, catalog, bundle, items)


def clouded_catalog(root: Path) -> Path:
    """Three scenes whose SCL says cloud (9) on every pixel."""
    from affine import Affine

    tf = Affine(10.0, 0, ORIGIN[0], 0, -10.0, ORIGIN[1])
    items = []
    for t, day in enumerate(DATES[:3]):
        dn = {b: np.full((SIZE, SIZE), 1500 + t, np.uint16) for b in S2_BANDS}
        when = dt.datetime.combine(day, dt.time(10, 30), tzinfo=dt.timezone.utc)
        scl = np.full((SIZE, SIZE), 9, np.uint8)
        items.append(s2_item(root / "data", f"S2A_CLOUD_{day:%Y%m%d}", when, dn=dn, scl=scl, transform=tf))
    return write_catalog(root / "catalog", items)


def bandless_catalog(root: Path) -> Path:
    """A collection whose items lack the 10 m visible and NIR bands (B02, B03, B04, B08)."""
    bands = tuple(b for b in S2_BANDS if b not in ("B02", "B03", "B04", "B08"))
    return write_catalog(root / "catalog", synthetic_s2(root / "data", DATES, size=SIZE, bands=bands))
