"""An existing layer that says where to map (``geocrop map --mask cropland.tif``): a cropland mask.

Any single-band raster GDAL reads, in any CRS: it is reprojected onto the map's grid window by window
(nearest neighbour, so class codes stay codes), and a pixel is kept where the layer holds one of
``values`` (default: any value other than 0 and the layer's nodata). ESA WorldCover, for instance, codes
cropland 40 (``--mask-values 40``). Tiles with no kept pixel are never read nor computed; kept pixels are
mapped as usual, the others are nodata in every output.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import rasterio
from rasterio.errors import RasterioIOError
from rasterio.warp import Resampling, reproject, transform_bounds
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from geocrop.errors import InputError, SourceError

__all__ = ["MaskLayer", "open_mask"]


@dataclass(frozen=True)
class MaskLayer:
    """A checked mask raster: ``path``, the ``values`` it keeps (empty: any non-zero value), its CRS."""

    path: Path
    values: tuple[float, ...]
    crs: str
    nodata: float | None

    def describe(self) -> str:
        keeps = ", ".join(f"{v:g}" for v in self.values) if self.values else "any value but 0"
        return f"mask: {self.path.name} ({self.crs}; keeps {keeps}; reprojected onto the map's grid)"

    def keep(self, *, crs: Any, transform: Any, window: Window) -> npt.NDArray[np.bool_]:
        """(h, w) True where the layer keeps a pixel of ``window`` on the map grid ``crs``, ``transform``."""
        height, width = int(window.height), int(window.width)
        codes = np.zeros((height, width), dtype=np.float64)
        with rasterio.open(self.path) as src:
            reproject(
                source=rasterio.band(src, 1),
                destination=codes,
                dst_transform=window_transform(window, transform),
                dst_crs=crs,
                dst_nodata=np.nan,
                src_nodata=self.nodata,
                resampling=Resampling.nearest,
            )
        if self.values:
            return np.isin(codes, np.asarray(self.values, dtype=np.float64))
        return np.isfinite(codes) & (codes != 0)


def open_mask(
    path: str | os.PathLike[str], *, values: Sequence[float] = (), bounds: Any = None, param: str = "mask"
) -> MaskLayer:
    """Check the mask raster at ``path`` and that it covers ``bounds`` (lon/lat minx, miny, maxx, maxy).

    One-line `InputError`/`SourceError` (``param``) when it is missing, not a raster, has no CRS, or lies
    outside the area.
    """
    where = Path(os.fspath(path)).expanduser()
    if not where.is_file():
        raise SourceError(f"`{param}` {where} does not exist; give a raster file (GeoTIFF)", param=param)
    try:
        src = rasterio.open(where)
    except RasterioIOError:
        raise InputError(
            f"`{param}` {where} is not a raster GDAL can read; give a GeoTIFF of the layer to keep",
            param=param,
        ) from None
    with src:
        if src.crs is None:
            raise InputError(
                f"`{param}` {where} has no CRS, so it cannot be placed on the map; give it one "
                "(gdal_edit.py -a_srs EPSG:...)",
                param=param,
            )
        if bounds is not None:
            west, south, east, north = transform_bounds("EPSG:4326", src.crs, *bounds, densify_pts=21)
            left, bottom, right, top = src.bounds
            if west >= right or east <= left or south >= top or north <= bottom:
                raise InputError(
                    f"`{param}` {where.name} does not overlap the area to map; give a layer that covers it",
                    param=param,
                )
        crs = src.crs.to_string()
        nodata = None if src.nodata is None else float(src.nodata)
    return MaskLayer(path=where, values=tuple(float(v) for v in values), crs=crs, nodata=nodata)
