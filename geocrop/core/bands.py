"""Band names, orders and reflectance scaling shared by every stage.

Sentinel-2 L2A digital numbers become reflectance as ``(DN + offset) / 10000``; from processing baseline
04.00 (products after 2022-01-25) ESA adds ``BOA_ADD_OFFSET = -1000``, which STAC items advertise either
as ``raster:bands`` ``offset: -0.1`` (with ``scale: 0.0001``) or through ``s2:processing_baseline``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

#: The 12 Sentinel-2 L2A spectral bands the encoder sees, in this order (the paper's E_s input).
S2_BANDS: tuple[str, ...] = (
    "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12",
)  # fmt: skip

#: Earth Search v1 (`sentinel-2-l2a`) asset key of each band; the scene classification is `scl`.
S2_ASSET_KEYS: dict[str, str] = {
    "B01": "coastal", "B02": "blue", "B03": "green", "B04": "red", "B05": "rededge1",
    "B06": "rededge2", "B07": "rededge3", "B08": "nir", "B8A": "nir08", "B09": "nir09",
    "B11": "swir16", "B12": "swir22",
}  # fmt: skip
S2_SCL_ASSET = "scl"

#: PlanetScope surface reflectance bands used by E_p (8-band SuperDove input is reduced to these).
PLANET_BANDS: tuple[str, ...] = ("blue", "green", "red", "nir")
#: Planet side of a pair: the 3x3 window under one S2 pixel, flattened row-major as (row, col, band),
#: so feature ``(r * 3 + c) * 4 + b`` is band ``b`` of Planet pixel ``(r, c)``; row 0 is north.
PLANET_WINDOW = 3
PLANET_FEATURES = PLANET_WINDOW * PLANET_WINDOW * len(PLANET_BANDS)

S2_REFLECTANCE_SCALE = 1e-4
#: BOA_ADD_OFFSET in DN for processing baseline >= 04.00.
S2_BOA_ADD_OFFSET_DN = -1000
S2_NODATA_DN = 0


def s2_offset_dn(processing_baseline: str | None) -> int:
    """DN offset to add before scaling, from a processing baseline like ``"04.00"`` (None: assume new)."""
    if processing_baseline is None:
        return S2_BOA_ADD_OFFSET_DN
    try:
        major = float(processing_baseline)
    except ValueError:
        return S2_BOA_ADD_OFFSET_DN
    return S2_BOA_ADD_OFFSET_DN if major >= 4.0 else 0


def s2_dn_to_reflectance(
    dn: npt.NDArray[np.integer] | npt.NDArray[np.floating], *, offset_dn: int = S2_BOA_ADD_OFFSET_DN
) -> npt.NDArray[np.float32]:
    """Scale L2A digital numbers to reflectance in [0, 1]; DN 0 (nodata) becomes NaN."""
    arr = np.asarray(dn, dtype=np.float32)
    out = (arr + np.float32(offset_dn)) * np.float32(S2_REFLECTANCE_SCALE)
    out = np.clip(out, 0.0, 1.0)
    out[arr == S2_NODATA_DN] = np.nan
    return out
