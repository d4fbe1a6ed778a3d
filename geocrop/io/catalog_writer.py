"""Write scenes as one Cloud-Optimized GeoTIFF per asset and list them in a static STAC catalog.

The layout mirrors what real providers publish, so a reader cannot tell it from a real catalog:

- ``sentinel-2-l2a``: Earth Search v1 asset keys (``coastal`` .. ``swir22`` and ``scl``), uint16 DN with
  ``raster:bands`` ``scale`` 0.0001 and ``offset`` -0.1 (processing baseline >= 04.00), nodata 0.
- ``planetscope``: PSScene assets ``ortho_analytic_4b_sr`` (blue, green, red, nir; SR x 10000, nodata 0)
  and ``ortho_udm2`` (8-band usable data mask), files named ``<id>_3B_AnalyticMS_SR.tif`` /
  ``<id>_3B_udm2.tif`` as Planet names them.

Items carry ``proj:epsg`` (projection extension v1.1.0), per-asset ``proj:shape``/``proj:transform``,
``eo:bands``, ``raster:bands``, ``datetime`` and ``eo:cloud_cover``. The catalog is self-contained (all
links and asset hrefs relative), so the folder can be moved. COG writes run in a small thread pool (GDAL
compresses outside the GIL) while the caller renders the next scene.
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pystac
import rasterio
import rasterio.errors
from affine import Affine
from pyproj import Transformer
from rasterio.crs import CRS

from geocrop.core.bands import S2_ASSET_KEYS, S2_BANDS, S2_SCL_ASSET
from geocrop.errors import OutputError

__all__ = [
    "PLANET_COLLECTION",
    "PLANET_SR_ASSET",
    "PLANET_UDM2_ASSET",
    "S2_COLLECTION",
    "StaticCatalogWriter",
    "write_cog",
]

S2_COLLECTION = "sentinel-2-l2a"
PLANET_COLLECTION = "planetscope"
PLANET_SR_ASSET = "ortho_analytic_4b_sr"
PLANET_UDM2_ASSET = "ortho_udm2"
COG_MEDIA_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
_EXTENSIONS = [
    "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
    "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
]
#: (common name, centre wavelength um, FWHM um) of each S2 band (MSI).
_S2_EO: dict[str, tuple[str, float, float]] = {
    "B01": ("coastal", 0.443, 0.027), "B02": ("blue", 0.490, 0.098), "B03": ("green", 0.560, 0.045),
    "B04": ("red", 0.665, 0.038), "B05": ("rededge", 0.704, 0.019), "B06": ("rededge", 0.740, 0.018),
    "B07": ("rededge", 0.783, 0.028), "B08": ("nir", 0.842, 0.145), "B8A": ("nir08", 0.865, 0.033),
    "B09": ("nir09", 0.945, 0.026), "B11": ("swir16", 1.610, 0.143), "B12": ("swir22", 2.190, 0.242),
}  # fmt: skip
#: PlanetScope SuperDove bands harmonised to the 4-band product: (name, centre um, FWHM um).
_PLANET_EO = (("blue", 0.490, 0.050), ("green", 0.565, 0.036), ("red", 0.665, 0.031), ("nir", 0.865, 0.040))
UDM2_BAND_NAMES = (
    "clear", "snow", "shadow", "light_haze", "heavy_haze", "cloud", "confidence", "udm1",
)  # fmt: skip
_PENDING_LIMIT = 48  # COG writes queued at most; bounds memory while rendering runs ahead


def write_cog(
    path: str | Path,
    data: npt.NDArray[Any],
    *,
    epsg: int,
    transform: Affine,
    nodata: float | None = 0,
    band_names: Sequence[str] | None = None,
    categorical: bool = False,
) -> Path:
    """Write ``data`` (bands, rows, cols) as a deflate-compressed (level 1) COG.

    Up to 512 px a side no overviews are needed, and a GeoTIFF of one tile written directly already has
    the COG layout (header and tile index first, tiles in order) at a third of the cost of GDAL's COG
    driver, which copies through a temporary file and pads 256 px tiles; larger rasters go through the COG
    driver with 256 px tiles and overviews, resampled
    by ``mode`` for ``categorical`` rasters (class codes, masks) and ``average`` otherwise.
    """
    out = Path(path)
    if data.ndim != 3:
        raise ValueError(f"write_cog: data must be (bands, rows, cols), got shape {data.shape}")
    options: dict[str, Any]
    side = max(data.shape[1:])
    if side <= 512:
        block = -(-side // 16) * 16  # one tile (TIFF tiles are multiples of 16): no padded tiles to deflate
        options = {"driver": "GTiff", "tiled": True, "blockxsize": block, "blockysize": block, "zlevel": 1}
    else:
        options = {"driver": "COG", "blocksize": 256, "level": 1}
        options["overview_resampling"] = "mode" if categorical else "average"
    try:
        with rasterio.open(
            out,
            "w",
            width=data.shape[2],
            height=data.shape[1],
            count=data.shape[0],
            dtype=data.dtype,
            crs=_crs(epsg),
            transform=transform,
            nodata=nodata,
            compress="deflate",
            predictor=2,
            **options,
        ) as dst:
            # Descriptions before pixels: set afterwards, GDAL rewrites the header at the end of the file,
            # and the file is no longer a COG.
            for i, name in enumerate(band_names or (), start=1):
                dst.set_band_description(i, name)
            dst.write(data)
    except rasterio.errors.RasterioIOError as exc:
        raise OutputError(f"COG {out}: cannot be written ({exc}); check the folder is writable") from exc
    return out


@functools.lru_cache(maxsize=8)
def _crs(epsg: int) -> CRS:
    return CRS.from_epsg(epsg)  # parsed once: it costs a millisecond per file otherwise


class StaticCatalogWriter:
    """Collects S2 and Planet scenes under ``root`` and saves ``root/catalog.json`` on `save`.

    All scenes share one grid footprint per sensor (``epsg`` UTM). Call `add_s2` / `add_planet` per
    acquisition, then `save` once; on error call `abort` so that queued writes stop.
    """

    def __init__(
        self, root: str | Path, *, epsg: int, catalog_id: str, description: str, workers: int = 2
    ) -> None:
        self.root = Path(root)
        self.epsg = epsg
        self.catalog = pystac.Catalog(id=catalog_id, description=description)
        self._items: dict[str, list[pystac.Item]] = {S2_COLLECTION: [], PLANET_COLLECTION: []}
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cog")
        self._pending: deque[Future[Path]] = deque()
        self._to_wgs84 = Transformer.from_crs(epsg, 4326, always_xy=True)
        self._bbox: list[float] | None = None
        self._footprints: dict[tuple[float, ...], tuple[dict[str, Any], list[float]]] = {}

    # -- items --------------------------------------------------------------------------------------
    def add_s2(
        self,
        *,
        item_id: str,
        time: datetime,
        dn: npt.NDArray[np.uint16],
        scl: npt.NDArray[np.uint8],
        transform: Affine,
        properties: Mapping[str, Any],
    ) -> None:
        """Queue the 12 band COGs and the SCL COG of one L2A scene and record its item.

        ``dn`` is (12, H, W) in `S2_BANDS` order, ``scl`` (H, W) on the same 10 m grid.
        """
        folder = self._folder(S2_COLLECTION, item_id)
        assets: dict[str, pystac.Asset] = {}
        shape = [int(dn.shape[1]), int(dn.shape[2])]
        for i, band in enumerate(S2_BANDS):
            common, centre, fwhm = _S2_EO[band]
            self._queue(folder / f"{band}.tif", dn[i : i + 1], transform, 0, [band], categorical=False)
            eo = {"name": band, "common_name": common, "center_wavelength": centre}
            eo["full_width_half_max"] = fwhm
            raster = {"nodata": 0, "data_type": "uint16", "spatial_resolution": abs(transform.a)}
            raster.update(scale=0.0001, offset=-0.1)
            assets[S2_ASSET_KEYS[band]] = self._asset(
                f"./{band}.tif", f"{band} ({common}) - 10 m", shape, transform, ["data", "reflectance"],
                {"eo:bands": [eo], "raster:bands": [raster], "gsd": abs(transform.a)},
            )  # fmt: skip
        self._queue(folder / "SCL.tif", scl[None], transform, 0, ["SCL"], categorical=True)
        assets[S2_SCL_ASSET] = self._asset(
            "./SCL.tif",
            "Scene classification map (SCL), written at 10 m (Sen2Cor's native grid is 20 m)",
            shape, transform, ["data"],
            {"raster:bands": [{"nodata": 0, "data_type": "uint8", "spatial_resolution": abs(transform.a)}]},
        )  # fmt: skip
        self._item(S2_COLLECTION, item_id, time, transform, shape, assets, properties)

    def add_planet(
        self,
        *,
        item_id: str,
        time: datetime,
        dn: npt.NDArray[np.uint16],
        udm2: npt.NDArray[np.uint8],
        transform: Affine,
        properties: Mapping[str, Any],
    ) -> None:
        """Queue the 4-band SR COG and the UDM2 COG of one PSScene and record its item.

        ``dn`` is (4, h, w) blue, green, red, nir (SR x 10000); ``udm2`` (8, h, w).
        """
        folder = self._folder(PLANET_COLLECTION, item_id)
        shape = [int(dn.shape[1]), int(dn.shape[2])]
        sr_name, udm_name = f"{item_id}_3B_AnalyticMS_SR.tif", f"{item_id}_3B_udm2.tif"
        names = [b[0] for b in _PLANET_EO]
        self._queue(folder / sr_name, dn, transform, 0, names, categorical=False)
        self._queue(folder / udm_name, udm2, transform, None, UDM2_BAND_NAMES, categorical=True)
        eo = [
            {"name": n, "common_name": n, "center_wavelength": c, "full_width_half_max": f}
            for n, c, f in _PLANET_EO
        ]
        res = abs(transform.a)
        sr_raster = [
            {"nodata": 0, "data_type": "uint16", "spatial_resolution": res, "scale": 0.0001, "offset": 0.0}
        ] * 4
        udm_raster = [{"data_type": "uint8", "spatial_resolution": res}] * 8
        assets = {
            PLANET_SR_ASSET: self._asset(
                f"./{sr_name}", "Surface reflectance, 4 bands (blue, green, red, nir) x 10000", shape,
                transform, ["data", "reflectance"], {"eo:bands": eo, "raster:bands": sr_raster},
            ),
            PLANET_UDM2_ASSET: self._asset(
                f"./{udm_name}", "Usable data mask UDM2 (bands: " + ", ".join(UDM2_BAND_NAMES) + ")",
                shape, transform, ["data", "cloud"], {"raster:bands": udm_raster},
            ),
        }  # fmt: skip
        self._item(PLANET_COLLECTION, item_id, time, transform, shape, assets, properties)

    # -- finishing ------------------------------------------------------------------------------------
    def save(self, *, collection_descriptions: Mapping[str, str]) -> Path:
        """Wait for every COG, build the collections and write the self-contained catalog."""
        self._drain(0)
        self._pool.shutdown(wait=True)
        for cid, items in self._items.items():
            if not items:
                continue
            times = sorted(i.datetime for i in items if i.datetime is not None)
            collection = pystac.Collection(
                id=cid,
                description=collection_descriptions.get(cid, cid),
                extent=pystac.Extent(
                    pystac.SpatialExtent([self._bbox or [0.0, 0.0, 0.0, 0.0]]),
                    pystac.TemporalExtent([[times[0], times[-1]]]),
                ),
                license="other",
                stac_extensions=list(_EXTENSIONS),
            )
            collection.add_items(items)
            self.catalog.add_child(collection)
        # A file href: pystac would take a folder name with a dot in it for a file and use its parent.
        self.catalog.normalize_hrefs(str(self.root / "catalog.json"))
        self.catalog.save(pystac.CatalogType.SELF_CONTAINED)
        return self.root / "catalog.json"

    def abort(self) -> None:
        """Drop queued writes (after an error); files already written stay for the caller to remove."""
        for fut in self._pending:
            fut.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)

    # -- helpers ------------------------------------------------------------------------------------
    def _folder(self, collection: str, item_id: str) -> Path:
        # pystac's default layout puts each item at <root>/<collection>/<item id>/<item id>.json, so the
        # COGs go beside it and their hrefs stay "./<file>".
        folder = self.root / collection / item_id
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _queue(
        self,
        path: Path,
        data: npt.NDArray[Any],
        transform: Affine,
        nodata: float | None,
        names: Sequence[str],
        *,
        categorical: bool,
    ) -> None:
        self._drain(_PENDING_LIMIT)
        fut = self._pool.submit(
            write_cog, path, data, epsg=self.epsg, transform=transform, nodata=nodata,
            band_names=names, categorical=categorical,
        )  # fmt: skip
        self._pending.append(fut)

    def _drain(self, limit: int) -> None:
        while len(self._pending) > limit:
            self._pending.popleft().result()  # re-raises a failed write here, in the caller's thread

    def _asset(
        self,
        href: str,
        title: str,
        shape: list[int],
        transform: Affine,
        roles: list[str],
        extra: dict[str, Any],
    ) -> pystac.Asset:
        fields = {"proj:shape": shape, "proj:transform": list(transform)[:6], **extra}
        return pystac.Asset(
            href=href, media_type=COG_MEDIA_TYPE, title=title, roles=roles, extra_fields=fields
        )

    def _item(
        self,
        collection: str,
        item_id: str,
        time: datetime,
        transform: Affine,
        shape: list[int],
        assets: dict[str, pystac.Asset],
        properties: Mapping[str, Any],
    ) -> None:
        geometry, bbox = self._footprint(transform, shape)
        if self._bbox is None:
            self._bbox = bbox
        props = {"proj:epsg": self.epsg, **properties}
        item = pystac.Item(
            id=item_id,
            geometry=geometry,
            bbox=bbox,
            datetime=time,
            properties=props,
            stac_extensions=list(_EXTENSIONS),
            collection=collection,
        )
        for key, asset in assets.items():
            item.add_asset(key, asset)
        self._items[collection].append(item)

    def _footprint(self, transform: Affine, shape: list[int]) -> tuple[dict[str, Any], list[float]]:
        """Lon/lat polygon (corners and edge midpoints, counter-clockwise) and bbox of the grid."""
        key = (*transform[:6], *shape)
        if key not in self._footprints:
            self._footprints[key] = self._project_footprint(transform, shape)
        return self._footprints[key]

    def _project_footprint(self, transform: Affine, shape: list[int]) -> tuple[dict[str, Any], list[float]]:
        h, w = shape
        cols = np.array([0, w / 2, w, w, w, w / 2, 0, 0, 0])
        rows = np.array([h, h, h, h / 2, 0, 0, 0, h / 2, h])
        xs = transform.c + cols * transform.a
        ys = transform.f + rows * transform.e
        lon, lat = self._to_wgs84.transform(xs, ys)
        ring = [[round(float(x), 9), round(float(y), 9)] for x, y in zip(lon, lat, strict=True)]
        bbox = [
            min(p[0] for p in ring),
            min(p[1] for p in ring),
            max(p[0] for p in ring),
            max(p[1] for p in ring),
        ]
        return {"type": "Polygon", "coordinates": [ring]}, bbox
