"""The shared pixel grids: the AOI's UTM 10 m GeoBox, the Planet grid refined 3x, and AOI masks on them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr
from affine import Affine
from odc.geo.geobox import GeoBox
from odc.geo.geom import Geometry

from geocrop.io.aoi import Aoi

S2_RESOLUTION = 10.0
PLANET_REFINE = 3


def s2_geobox(aoi: Aoi, *, resolution: float = S2_RESOLUTION, crs: Any = None) -> GeoBox:
    """GeoBox covering ``aoi`` in ``crs`` (default its UTM zone); pixel edges on multiples of ``resolution``.

    Snapping to the multiples keeps the grid aligned with Sentinel-2's own 10/20/60 m tile grids, so native
    10 m bands are copied without resampling.
    """
    target = crs if crs is not None else f"EPSG:{aoi.utm_epsg()}"
    minx, miny, maxx, maxy = aoi.to_crs(target).bounds
    r = float(resolution)
    eps = 1e-6  # reprojection round-off (millimetres) must not add a row or column of pixels
    x0, y0 = np.floor(minx / r + eps) * r, np.floor(miny / r + eps) * r
    x1, y1 = np.ceil(maxx / r - eps) * r, np.ceil(maxy / r - eps) * r
    width, height = max(round((x1 - x0) / r), 1), max(round((y1 - y0) / r), 1)
    return GeoBox((height, width), Affine(r, 0.0, x0, 0.0, -r, y0 + height * r), target)


def planet_geobox(s2: GeoBox, *, factor: int = PLANET_REFINE) -> GeoBox:
    """``s2`` refined ``factor`` times: same origin and CRS, pixel size / factor, shape * factor."""
    a = s2.affine
    fine = a * Affine.scale(1.0 / factor)
    return GeoBox((s2.shape[0] * factor, s2.shape[1] * factor), fine, s2.crs)


def aoi_mask(geobox: GeoBox, aoi: Aoi | None, chunks: Mapping[str, int] | None) -> xr.DataArray | None:
    """(y, x) bool, True inside the AOI (pixel centres); a dask array when ``chunks`` is given."""
    if aoi is None:
        return None
    from odc.geo.xr import xr_coords

    geom = Geometry(aoi.geometry, "EPSG:4326")
    coords = xr_coords(geobox)
    if chunks is None:
        data: Any = _rasterize_block(geom, geobox)
    else:
        import dask.array as da

        cy, cx = int(chunks.get("y", 2048)), int(chunks.get("x", 2048))
        template = da.zeros(tuple(geobox.shape), dtype=bool, chunks=(cy, cx))
        data = template.map_blocks(_rasterize_chunk, geom, geobox, dtype=bool)
    return xr.DataArray(data, coords={"y": coords["y"], "x": coords["x"]}, dims=("y", "x"))


def _rasterize_block(geom: Geometry, geobox: GeoBox) -> np.ndarray:
    from rasterio.features import geometry_mask

    assert geobox.crs is not None
    g = geom.to_crs(geobox.crs)
    if g.is_empty:
        return np.zeros(geobox.shape, dtype=bool)
    return ~geometry_mask([g.json], out_shape=geobox.shape, transform=geobox.affine)


def _rasterize_chunk(block: np.ndarray, geom: Geometry, geobox: GeoBox, block_info: Any = None) -> np.ndarray:
    if block_info is None:  # dask's meta probe
        return np.zeros(block.shape, dtype=bool)
    (ys, ye), (xs, xe) = block_info[0]["array-location"]
    return _rasterize_block(geom, geobox[ys:ye, xs:xe])
