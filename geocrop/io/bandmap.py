"""Which asset of a STAC item holds which band, and how its digital numbers become reflectance.

Providers name the same Sentinel-2 bands differently: Earth Search v1 and its collection-1
(``sentinel-2-c1-l2a``) use common names (``blue``, ``nir08``, ``scl``), Planetary Computer and older
catalogs use band ids (``B02``, ``SCL``). This module finds each of the 12 bands and SCL by key, then by
``eo:bands`` name, and works out reflectance = DN * scale + offset:

- ``raster:bands`` ``scale``/``offset`` when the asset declares them (Earth Search does);
- else scale 1e-4 and the processing baseline's offset: ``s2:processing_baseline``, else the ``N0xyy``
  baseline inside the product/granule id, else the acquisition date (ESA switched to baseline 04.00,
  with ``BOA_ADD_OFFSET`` = -1000 DN, on 2022-01-25). Baseline >= 04.00 gives offset -0.1, older 0.

**Missing bands** (:func:`fill_plan`): a band no item provides is filled from its spectral neighbours and
listed in the cube's ``attrs["missing_bands"]`` with a warning. B01 copies B02 (the nearest band; aerosol
band, little crop signal); B09 copies B8A, else B08 (the NIR plateau; linear interpolation towards SWIR
would be wrong); any other band is linearly interpolated in wavelength between the nearest present bands
below and above it, and copies the one neighbour it has at either end. The 10 m bands B02, B03, B04 and
B08 cannot be filled: a source without them is refused.
"""

from __future__ import annotations

import datetime as dt
import re
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pystac
import xarray as xr

from geocrop.core.bands import PLANET_BANDS, S2_ASSET_KEYS, S2_BANDS, S2_REFLECTANCE_SCALE, s2_offset_dn
from geocrop.errors import GeocropWarning

#: Centre wavelength (nm) of each S2 band (Sentinel-2A MSI), used by the missing-band rule.
S2_WAVELENGTHS_NM: dict[str, float] = {
    "B01": 443, "B02": 490, "B03": 560, "B04": 665, "B05": 705, "B06": 740,
    "B07": 783, "B08": 842, "B8A": 865, "B09": 945, "B11": 1610, "B12": 2190,
}  # fmt: skip
#: Bands filled by copying the first present band of the list rather than by interpolation.
S2_COPY_RULES: dict[str, tuple[str, ...]] = {"B01": ("B02", "B03"), "B09": ("B8A", "B08", "B07")}
#: Bands a source must provide (the 10 m bands every other band is derived from).
S2_REQUIRED_BANDS: tuple[str, ...] = ("B02", "B03", "B04", "B08")

SCL_KEYS: tuple[str, ...] = ("scl", "SCL")
#: ESA's switch to processing baseline 04.00 (BOA_ADD_OFFSET introduced).
BASELINE_04_DATE = dt.date(2022, 1, 25)
_BASELINE_RE = re.compile(r"_N(\d{2})(\d{2})[_.]")
_TIFF = ("tiff", "geotiff")

#: Planet asset keys (Planet's own STAC names first) and the 1-based band of B, G, R, NIR in each layout.
PLANET_ANALYTIC_KEYS: tuple[tuple[str, tuple[int, int, int, int]], ...] = (
    ("ortho_analytic_4b_sr", (1, 2, 3, 4)),
    ("ortho_analytic_8b_sr", (2, 4, 6, 8)),
    ("analytic_sr", (1, 2, 3, 4)),
)
PLANET_UDM2_KEYS: tuple[str, ...] = ("ortho_udm2", "udm2")
PLANET_SCALE = 1e-4


@dataclass(frozen=True)
class BandAsset:
    """Where one band lives and how to scale it: reflectance = DN * scale + offset (DN == nodata masked)."""

    band: str
    asset: str
    scale: float
    offset: float
    nodata: float | None
    band_index: int = 1


def _first_raster_band(asset: pystac.Asset) -> dict[str, Any]:
    rb = asset.extra_fields.get("raster:bands")
    return dict(rb[0]) if isinstance(rb, list) and rb and isinstance(rb[0], dict) else {}


def _eo_names(asset: pystac.Asset) -> list[str]:
    eo = asset.extra_fields.get("eo:bands")
    return [str(b.get("name")) for b in eo if isinstance(b, dict)] if isinstance(eo, list) else []


def _is_tiff(asset: pystac.Asset) -> bool:
    media = (asset.media_type or "").lower()
    return any(t in media for t in _TIFF) or asset.href.lower().endswith((".tif", ".tiff"))


def processing_baseline(item: pystac.Item) -> str | None:
    """The item's processing baseline like ``"05.09"``, from its properties or product ids; else None."""
    props = item.properties
    pb = props.get("s2:processing_baseline")
    if pb:
        return str(pb)
    for key in ("s2:product_uri", "sentinel:product_id", "s2:granule_id", "s2:datatake_id"):
        m = _BASELINE_RE.search(str(props.get(key, "")) + "_")
        if m:
            return f"{m.group(1)}.{m.group(2)}"
    return None


def s2_offset(item: pystac.Item) -> float:
    """Reflectance offset (0 or -0.1) of an item without ``raster:bands`` offsets (see module doc)."""
    pb = processing_baseline(item)
    if pb is not None:
        return s2_offset_dn(pb) * S2_REFLECTANCE_SCALE
    when = item.datetime or item.common_metadata.start_datetime
    if when is not None and when.date() < BASELINE_04_DATE:
        return 0.0
    return s2_offset_dn(None) * S2_REFLECTANCE_SCALE


def _find_key(item: pystac.Item, band: str) -> str | None:
    assets = item.assets
    for key in (S2_ASSET_KEYS[band], band, band.lower()):
        if key in assets and _is_tiff(assets[key]):
            return key
    for key, asset in assets.items():
        if _eo_names(asset) == [band] and _is_tiff(asset):
            return key
    return None


def s2_band_assets(item: pystac.Item, bands: tuple[str, ...] = S2_BANDS) -> dict[str, BandAsset]:
    """Band name -> :class:`BandAsset` for each of ``bands`` the item has (absent bands are left out)."""
    default_offset = s2_offset(item)
    out: dict[str, BandAsset] = {}
    for band in bands:
        key = _find_key(item, band)
        if key is None:
            continue
        rb = _first_raster_band(item.assets[key])
        scale = rb.get("scale")
        offset = rb.get("offset")
        nodata = rb.get("nodata", 0)
        out[band] = BandAsset(
            band=band,
            asset=key,
            scale=float(scale) if scale is not None else S2_REFLECTANCE_SCALE,
            offset=float(offset) if scale is not None and offset is not None else default_offset,
            nodata=float(nodata) if nodata is not None else None,
        )
    return out


def scl_asset_key(item: pystac.Item) -> str | None:
    """Asset key of the scene classification layer, or None."""
    for key in SCL_KEYS:
        if key in item.assets and _is_tiff(item.assets[key]):
            return key
    return None


def fill_plan(present: set[str] | frozenset[str]) -> dict[str, tuple[str, str, float]]:
    """For each band of S2_BANDS not in ``present``: ``(lower, upper, w)`` so value = (1-w)*lower + w*upper.

    ``lower == upper`` with ``w = 0`` is a copy. Raises KeyError-free: the caller checks
    :data:`S2_REQUIRED_BANDS` first.
    """
    plan: dict[str, tuple[str, str, float]] = {}
    ordered = sorted((b for b in S2_BANDS if b in present), key=S2_WAVELENGTHS_NM.__getitem__)
    for band in S2_BANDS:
        if band in present:
            continue
        copy_from = next((b for b in S2_COPY_RULES.get(band, ()) if b in present), None)
        if copy_from is not None:
            plan[band] = (copy_from, copy_from, 0.0)
            continue
        lam = S2_WAVELENGTHS_NM[band]
        below = [b for b in ordered if S2_WAVELENGTHS_NM[b] < lam]
        above = [b for b in ordered if S2_WAVELENGTHS_NM[b] > lam]
        if below and above:
            lo, hi = below[-1], above[0]
            w = (lam - S2_WAVELENGTHS_NM[lo]) / (S2_WAVELENGTHS_NM[hi] - S2_WAVELENGTHS_NM[lo])
            plan[band] = (lo, hi, float(w))
        else:
            near = below[-1] if below else above[0]
            plan[band] = (near, near, 0.0)
    return plan


def fill_missing_bands(
    refl: xr.DataArray, *, bands: tuple[str, ...], present: list[str], source: str, stacklevel: int = 2
) -> xr.DataArray:
    """``refl`` ``(time, band, y, x)`` with each band of ``bands`` not in ``present`` filled (`fill_plan`).

    Warns (a `UserWarning` naming ``source`` and the filled bands; ``stacklevel`` counted from the caller).
    """
    missing = [b for b in bands if b not in present]
    warnings.warn(
        f"{source} lacks bands {missing}; filled from spectral neighbours "
        "(geocrop.io.bandmap rule) and listed in attrs['missing_bands']",
        GeocropWarning,
        stacklevel=stacklevel + 1,
    )
    plan = fill_plan(frozenset(present))
    layers = []
    for b in bands:
        if b in present:
            layer = refl.sel(band=b, drop=True)
        else:
            lo, hi, w = plan[b]
            layer = refl.sel(band=lo, drop=True) * (1.0 - w) + refl.sel(band=hi, drop=True) * w
        layers.append(layer.astype(np.float32).expand_dims(band=[b]))
    out = xr.concat(layers, dim="band", coords="minimal", compat="override")
    return out.transpose("time", "band", "y", "x")


@dataclass(frozen=True)
class PlanetAssets:
    """Planet analytic asset (with the 1-based bands of B, G, R, NIR) and the UDM2 asset of one item."""

    analytic: str
    band_indices: tuple[int, int, int, int]
    udm2: str | None
    scale: float


def planet_assets(item: pystac.Item) -> PlanetAssets | None:
    """Locate the SR analytic and UDM2 assets of a PlanetScope item; None when it has no SR asset."""
    for key, default_idx in PLANET_ANALYTIC_KEYS:
        asset = item.assets.get(key)
        if asset is None:
            continue
        names = [n.lower() for n in _eo_names(asset)]
        idx = default_idx
        if len(names) >= 4 and all(b in names for b in PLANET_BANDS):
            # eo:bands common names win over the positional default (8-band SuperDove order varies).
            idx = (
                names.index("blue") + 1,
                names.index("green") + 1,
                names.index("red") + 1,
                names.index("nir") + 1,
            )
        rb = _first_raster_band(asset)
        scale = float(rb["scale"]) if rb.get("scale") is not None else PLANET_SCALE
        udm2 = next((k for k in PLANET_UDM2_KEYS if k in item.assets), None)
        return PlanetAssets(analytic=key, band_indices=idx, udm2=udm2, scale=scale)
    return None
