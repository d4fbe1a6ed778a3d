"""Clouds, cirrus and cloud shadows of the scene simulator, and how each sensor's mask reports them.

One sky is drawn per day on the Planet grid with a margin (`SKY_PAD`), so each sensor can look at it
through its own window (clouds drift between the S2 and the Planet pass) and shadows can fall from clouds
just outside the area. Opacity ``a`` mixes a cloud spectrum over the ground: ``(1 - a) * ground + a *
cloud``; a shadow removes 65% of the direct light.

Masks are exact on purpose (the simulator is a test instrument): a pixel of total opacity >= 0.1 is
flagged in SCL (8 medium / 9 high probability / 10 thin cirrus) and in UDM2 (4 light haze / 5 heavy haze
/ 6 cloud); shadow >= 0.25 is SCL 3 / UDM2 band 3.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from geocrop.sim.parcels import smooth_noise

__all__ = ["CLOUDY_OPACITY", "SKY_PAD", "Sky", "draw_sky", "scl_classes", "through_sky", "udm2_layers"]

F32 = npt.NDArray[np.float32]

#: Margin of the daily sky around the area, in Planet pixels (drift <= 12, shadow offset <= 36).
SKY_PAD = 48
#: Opacity from which a pixel counts as cloudy in both masks.
CLOUDY_OPACITY = 0.1
SHADOW_LEVEL = 0.25
#: Top-of-cloud reflectance in the 12 S2 bands (bright, flat, darker in SWIR where ice/water absorb).
CLOUD_SPECTRUM = np.array(
    [0.45, 0.46, 0.47, 0.48, 0.49, 0.50, 0.51, 0.52, 0.52, 0.45, 0.38, 0.26], dtype=np.float32
)


@dataclass(frozen=True)
class Sky:
    """One day's sky on the padded Planet grid: opacity of thick clouds and of cirrus, shadow offset."""

    cloud: F32  # (3H + 2 pad, 3W + 2 pad)
    cirrus: F32
    clear: bool  # no cloud and no cirrus anywhere (then no shadow either)
    shadow_offset: tuple[int, int]  # rows, cols from a ground pixel towards the cloud that shades it
    spectrum: F32  # (12,)
    shape: tuple[int, int]  # the unpadded Planet grid

    def window(self, row: int, col: int) -> tuple[F32, F32, F32]:
        """Cloud opacity, cirrus opacity and shadow strength over the area seen from ``(row, col)``."""
        h, w = self.shape
        oy, ox = self.shadow_offset
        cloud = self.cloud[row : row + h, col : col + w]
        cirrus = self.cirrus[row : row + h, col : col + w]
        shadow = self.cloud[row + oy : row + oy + h, col + ox : col + ox + w]
        return cloud, cirrus, shadow


def draw_sky(rng: np.random.Generator, shape: tuple[int, int], *, day: int, cloud_fraction: float) -> Sky:
    """A day's sky: clear, partly cloudy or overcast, with the mean cover ``cloud_fraction``.

    Cover is seasonal (about 1.5x the mean in January, 0.5x in July). Overcast days take 45% of the
    cloud budget, partly cloudy days (5-60% cover) the rest; thin cirrus comes on some days too.
    """
    h, w = shape
    big = (h + 2 * SKY_PAD, w + 2 * SKY_PAD)
    cf = min(max(cloud_fraction * (1.0 + 0.5 * math.cos(2 * math.pi * (day - 15) / 365.25)), 0.0), 0.95)
    u = float(rng.random())
    p_overcast = 0.45 * cf
    p_partial = min(1.0 - p_overcast, 1.6 * cf)
    coverage = float(rng.uniform(0.05, 0.6))
    with_cirrus = rng.random() < 0.5 * cf
    cloud: F32 | None = None
    if u < p_overcast + p_partial:  # noise only on cloudy days: most days are clear and cheap
        field = 0.75 * smooth_noise(rng, big, 60.0) + 0.25 * smooth_noise(rng, big, 15.0)
        if u < p_overcast:
            cloud = np.clip(0.85 + 0.1 * field, 0.6, 1.0)
        else:
            threshold = float(np.quantile(field, 1.0 - coverage))
            cloud = (np.clip((field - threshold) / 0.35, 0.0, 1.0) ** 0.8).astype(np.float32)
    cirrus: F32 | None = None
    if with_cirrus:
        cirrus = 0.25 * np.clip(0.6 * smooth_noise(rng, big, 80.0) + 0.4, 0.0, 1.0)
    # Shadows fall away from a south-south-easterly morning sun: the shading cloud is to the south.
    offset = (int(rng.integers(8, 31)), int(rng.integers(-6, 11)))
    zeros = np.zeros(big, dtype=np.float32)
    return Sky(
        cloud=zeros if cloud is None else cloud.astype(np.float32),
        cirrus=zeros if cirrus is None else cirrus.astype(np.float32),
        clear=cloud is None and cirrus is None,
        shadow_offset=offset,
        spectrum=(CLOUD_SPECTRUM * rng.uniform(0.8, 1.1)).astype(np.float32),
        shape=shape,
    )


def through_sky(
    ground: F32, cloud: F32, cirrus: F32, shadow: F32, spectrum: F32, *, clear: bool
) -> tuple[F32, F32]:
    """Top-of-canopy view (bands, h, w) through the sky and the total opacity (h, w).

    ``(1 - a) * ground * shade + a * cloud spectrum``, with ``a`` cloud and cirrus combined and ``shade``
    taking 65% of the direct light where a cloud's shadow falls.
    """
    if clear:
        return ground, np.zeros(ground.shape[1:], dtype=np.float32)
    opacity = (1.0 - (1.0 - cloud) * (1.0 - cirrus)).astype(np.float32)
    shade = 1.0 - 0.65 * shadow * (1.0 - opacity)
    return ((1.0 - opacity) * ground * shade + opacity * spectrum[:, None, None]).astype(np.float32), opacity


def scl_classes(*, ndvi: F32, cloud: F32, cirrus: F32, opacity: F32, shadow: F32) -> npt.NDArray[np.uint8]:
    """Sen2Cor-style scene classification: 3 shadow, 4 vegetation, 5 bare, 8/9 cloud, 10 cirrus."""
    scl = np.where(ndvi > 0.4, 4, 5).astype(np.uint8)
    scl[shadow >= SHADOW_LEVEL] = 3
    cloudy = opacity >= CLOUDY_OPACITY
    scl[cloudy] = 8
    scl[cloudy & (cloud >= 0.6)] = 9
    scl[cloudy & (cloud < CLOUDY_OPACITY) & (cirrus >= CLOUDY_OPACITY)] = 10
    return scl


def udm2_layers(
    *, cloud: F32, cirrus: F32, opacity: F32, shadow: F32, nodata: npt.NDArray[np.bool_]
) -> npt.NDArray[np.uint8]:
    """UDM2 (8, h, w): 1 clear, 2 snow, 3 shadow, 4 light haze, 5 heavy haze, 6 cloud, 7 confidence
    (0-100), 8 unusable-data bits (bit 0 no data, bit 1 cloud). Bands 1-6 exclude each other."""
    del cirrus  # Planet reports cirrus as haze, by opacity; kept in the signature for symmetry with SCL.
    out = np.zeros((8, *opacity.shape), dtype=np.uint8)
    cloudy = opacity >= 0.6
    heavy = (opacity >= 0.3) & ~cloudy
    light = (opacity >= CLOUDY_OPACITY) & (opacity < 0.3)
    shaded = (shadow >= SHADOW_LEVEL) & (opacity < CLOUDY_OPACITY)
    clear = ~(cloudy | heavy | light | shaded)
    for band, layer in ((0, clear), (2, shaded), (3, light), (4, heavy), (5, cloudy)):
        out[band] = layer & ~nodata
    confidence = 60.0 + 40.0 * np.clip(np.abs(opacity - CLOUDY_OPACITY) / CLOUDY_OPACITY, 0.0, 1.0)
    out[6] = np.where(nodata, 0, np.rint(confidence)).astype(np.uint8)
    out[7] = np.where(nodata, 1, 0).astype(np.uint8) | (np.where(cloudy & ~nodata, 2, 0).astype(np.uint8))
    return out
