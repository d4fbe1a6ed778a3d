"""The raster layers of the web page (`geocrop.viz.webmap`): a map's bands read at a capped size and warped to
Web Mercator (`read_mercator`), class values and percentages coloured as RGBA (`render_classes_rgba`,
`render_ramp_rgba` along `RAMPS`), and an RGBA image as a PNG data URI (`png_data_uri`)."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import rasterio
from affine import Affine
from PIL import Image
from rasterio.enums import Resampling
from rasterio.warp import calculate_default_transform, reproject, transform_bounds

from geocrop.errors import SourceError
from geocrop.io.classes import NODATA, ClassInfo, hex_rgb

__all__ = [
    "RAMPS",
    "MercatorGrid",
    "band_count",
    "png_data_uri",
    "read_mercator",
    "render_classes_rgba",
    "render_ramp_rgba",
]


def render_classes_rgba(
    classes_block: npt.NDArray[np.uint8], classes: Sequence[ClassInfo], *, opacity: float = 1.0
) -> npt.NDArray[np.uint8]:
    """(h, w) class values -> (h, w, 4) RGBA: class colours, unknown values and 255 fully transparent."""
    lut = np.zeros((256, 4), dtype=np.uint8)
    alpha = round(255 * min(max(opacity, 0.0), 1.0))
    for c in classes:
        lut[c.value] = (*c.rgb, alpha)
    lut[NODATA] = 0
    return lut[classes_block]


@dataclass(frozen=True)
class MercatorGrid:
    """Bands warped onto one Web Mercator grid: ``data`` (bands, h, w), its ``transform``, 4326 bounds."""

    data: npt.NDArray[np.uint8]
    transform: Affine
    bounds: list[list[float]]


def read_mercator(cog: Path, *, max_size: int, bands: Sequence[int] = (1,)) -> MercatorGrid:
    """``bands`` of ``cog`` at most ``max_size`` px a side, warped to EPSG:3857 (nearest), on one grid."""
    try:
        src = rasterio.open(cog)
    except rasterio.errors.RasterioIOError as exc:
        raise SourceError(f"crop map {cog}: cannot be read ({exc}); write the COG first") from exc
    with src:
        if src.crs is None:
            raise SourceError(f"crop map {cog} has no CRS; it cannot be placed on a map")
        scale = max(src.width / max_size, src.height / max_size, 1.0)
        h, w = max(1, round(src.height / scale)), max(1, round(src.width / scale))
        # Reading at a reduced shape uses the COG's overviews (mode-resampled classes).
        data = src.read(list(bands), out_shape=(len(bands), h, w), resampling=Resampling.nearest)
        src_transform = src.transform @ src.transform.scale(src.width / w, src.height / h)
        # Square Web Mercator pixels at about the read resolution.
        dst_transform, dst_w, dst_h = calculate_default_transform(src.crs, "EPSG:3857", w, h, *src.bounds)
        merc = np.full((len(bands), int(dst_h), int(dst_w)), NODATA, dtype=np.uint8)
        reproject(
            data,
            merc,
            src_transform=src_transform,
            src_crs=src.crs,
            src_nodata=NODATA,
            dst_transform=dst_transform,
            dst_crs="EPSG:3857",
            dst_nodata=NODATA,
            resampling=Resampling.nearest,
        )
    left, top = dst_transform @ (0, 0)
    right, bottom = dst_transform @ (int(dst_w), int(dst_h))
    west, south, east, north = transform_bounds("EPSG:3857", "EPSG:4326", left, bottom, right, top)
    return MercatorGrid(merc, dst_transform, [[south, west], [north, east]])


def band_count(cog: Path) -> int:
    try:
        with rasterio.open(cog) as src:
            return int(src.count)
    except rasterio.errors.RasterioIOError as exc:
        raise SourceError(f"confidence map {cog}: cannot be read ({exc}); write the map first") from exc


#: Colour ramps (5 stops, low to high) for the confidence (viridis) and uncertainty (inferno) layers.
RAMPS = {
    "confidence": ("#440154", "#3b528b", "#21918c", "#5ec962", "#fde725"),
    "uncertainty": ("#000004", "#57106e", "#bc3754", "#f98e09", "#fcffa4"),
}


def render_ramp_rgba(values: npt.NDArray[np.uint8], ramp: Sequence[str]) -> npt.NDArray[np.uint8]:
    """(h, w) percent 0..100 -> (h, w, 4) RGBA along ``ramp`` (linear between stops); 255 transparent."""
    stops = np.array([hex_rgb(c) for c in ramp], dtype=np.float64)
    x = np.linspace(0.0, 100.0, len(stops))
    lut = np.zeros((256, 4), dtype=np.uint8)
    levels = np.arange(101, dtype=np.float64)
    for channel in range(3):
        lut[:101, channel] = np.rint(np.interp(levels, x, stops[:, channel])).astype(np.uint8)
    lut[:101, 3] = 255
    return lut[values]


def png_data_uri(rgba: npt.NDArray[np.uint8]) -> str:
    buffer = io.BytesIO()
    Image.fromarray(rgba, mode="RGBA").save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
