"""SCL and UDM2 clear masks."""

from __future__ import annotations

import numpy as np

from geocrop.core.masks import SCL_CLEAR_CLASSES, scl_clear_mask, udm2_clear_from_band, udm2_clear_mask


def test_scl_clear_classes_decision() -> None:
    scl = np.arange(12, dtype=np.uint8)
    clear = scl_clear_mask(scl)
    assert set(np.flatnonzero(clear).tolist()) == {4, 5, 6, 7, 11} == set(SCL_CLEAR_CLASSES)
    # nodata, saturated, dark, shadow, clouds and cirrus are masked
    assert not clear[[0, 1, 2, 3, 8, 9, 10]].any()


def test_scl_float_nan_and_custom_classes() -> None:
    scl = np.array([[4.0, np.nan], [9.0, 2.0]])
    np.testing.assert_array_equal(scl_clear_mask(scl), [[True, False], [False, False]])
    np.testing.assert_array_equal(scl_clear_mask(scl, clear_classes=(2, 4)), [[True, False], [False, True]])


def test_udm2_clear_band() -> None:
    udm2 = np.zeros((8, 2, 3), np.uint8)
    udm2[0] = [[1, 1, 0], [0, 1, 1]]
    udm2[5] = [[0, 0, 1], [1, 0, 0]]  # cloud where band 1 is 0
    np.testing.assert_array_equal(udm2_clear_mask(udm2), udm2[0] == 1)
    moved = np.moveaxis(udm2, 0, -1)
    np.testing.assert_array_equal(udm2_clear_mask(moved, band_axis=-1), udm2[0] == 1)
    np.testing.assert_array_equal(udm2_clear_from_band(np.array([1.0, np.nan, 0.0])), [True, False, False])
