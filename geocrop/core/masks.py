"""Clear-sky masks: Sentinel-2 L2A scene classification (SCL) and PlanetScope UDM2.

SCL classes (Sen2Cor): 0 no data, 1 saturated/defective, 2 dark area / topographic shadow, 3 cloud shadow,
4 vegetation, 5 not vegetated, 6 water, 7 unclassified, 8 cloud medium probability, 9 cloud high
probability, 10 thin cirrus, 11 snow/ice.

**Decision:** a pixel is clear when its class is in :data:`SCL_CLEAR_CLASSES` = {4, 5, 6, 7, 11}: the
surface was seen. Snow (11) is kept because a snow-covered field is a real state of the ground in a
winter season, not an artefact. Excluded: 0 (no data), 1 (saturated), 2 (Sen2Cor's dark-area class is
mostly terrain/cloud-edge shadow and mislabels few crop pixels), 3 (cloud shadow), 8/9 (cloud) and 10
(cirrus, which biases reflectance). Pass ``clear_classes=`` to change it.

UDM2 (Planet usable data mask v2) has 8 bands: 1 clear, 2 snow, 3 shadow, 4 light haze, 5 heavy haze,
6 cloud, 7 confidence (0-100), 8 unusable-data bit field. A pixel is clear when band 1 == 1 (Planet sets it
to 0 wherever any of the other conditions or no data holds).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

SCL_NODATA = 0
SCL_SATURATED = 1
SCL_DARK = 2
SCL_CLOUD_SHADOW = 3
SCL_VEGETATION = 4
SCL_NOT_VEGETATED = 5
SCL_WATER = 6
SCL_UNCLASSIFIED = 7
SCL_CLOUD_MEDIUM = 8
SCL_CLOUD_HIGH = 9
SCL_CIRRUS = 10
SCL_SNOW = 11

#: SCL classes treated as a clear view of the surface (see the module docstring for the reasons).
SCL_CLEAR_CLASSES: tuple[int, ...] = (
    SCL_VEGETATION,
    SCL_NOT_VEGETATED,
    SCL_WATER,
    SCL_UNCLASSIFIED,
    SCL_SNOW,
)

#: UDM2 band count and the 0-based index of its "clear" band (band 1).
UDM2_BANDS = 8
UDM2_CLEAR_INDEX = 0


def scl_clear_mask(
    scl: npt.ArrayLike, *, clear_classes: Iterable[int] = SCL_CLEAR_CLASSES
) -> npt.NDArray[np.bool_]:
    """True where the SCL class is clear; any shape. NaN (a float SCL from a fused load) is not clear."""
    arr = np.asarray(scl)
    if np.issubdtype(arr.dtype, np.floating):
        arr = np.where(np.isnan(arr), SCL_NODATA, arr).astype(np.int16)
    return np.isin(arr, np.asarray(tuple(clear_classes), dtype=arr.dtype))


def udm2_clear_mask(udm2: npt.ArrayLike, *, band_axis: int = 0) -> npt.NDArray[np.bool_]:
    """True where UDM2 band 1 (clear) is 1; ``udm2`` has its 8 bands on ``band_axis``.

    For band 1 alone (as the cube loader reads it) use :func:`udm2_clear_from_band`.
    """
    arr = np.asarray(udm2)
    clear = np.take(arr, UDM2_CLEAR_INDEX, axis=band_axis)
    return udm2_clear_from_band(clear)


def udm2_clear_from_band(clear_band: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """True where UDM2's clear band equals 1 (NaN and any other value are not clear)."""
    arr = np.asarray(clear_band)
    if np.issubdtype(arr.dtype, np.floating):
        return np.asarray(arr == 1.0)
    return np.asarray(arr == 1)
