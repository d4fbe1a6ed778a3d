"""odc-stac's load with geocrop's reader: read errors named, the on-disk read cache, the dataset pool.

`odc_load` is how `geocrop.io.cube` loads STAC items: odc-stac's `load` with `CheckedRioDriver`, whose
readers turn a failed read into a `SourceError` naming the file, keep remote reads in the on-disk cache
(`geocrop.io.read_cache`) and read remote files through a `DatasetPool` (`geocrop.io.dataset_pool`: each
file opened once per map), and with a lazy cube's reads split a few scenes per task (`SCENES_PER_READ`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import pystac
import rasterio
import xarray as xr
from odc.geo.geobox import GeoBox
from odc.loader import RioDriver, RioReader

from geocrop.errors import SourceError
from geocrop.io.dataset_pool import DatasetPool, PooledRead
from geocrop.io.read_cache import DiskCache, is_remote
from geocrop.io.reading import ReadSettings

__all__ = ["SCENES_PER_READ", "CheckedRioDriver", "odc_load"]

#: Scenes per read task of a lazy cube. odc-stac reads the sources of one task one after another, so a
#: task of every scene of a band opened its files one round trip after another: a tile read at most 13
#: files at once whatever `ReadSettings.threads` (docs/performance.md, "Remote reads"). The tasks' blocks
#: are joined into one time chunk before anything else runs on them.
SCENES_PER_READ = 4


class CheckedReader(RioReader):
    """odc-loader's rasterio reader, with read failures turned into a SourceError naming the file, reads
    of remote assets kept in (and taken from) the on-disk read cache when there is one, and remote files
    kept open across tiles by a `DatasetPool` when there is one."""

    def __init__(
        self, src: Any, ctx: Any, cache: DiskCache | None = None, pooled: PooledRead | None = None
    ) -> None:
        super().__init__(src, ctx)
        self._cache = cache
        self._pooled = pooled if pooled is not None and is_remote(str(src.uri)) else None

    def read(self, cfg: Any, dst_geobox: GeoBox, **kw: Any) -> Any:
        cache = self._cache if kw.get("dst") is None else None  # odc-stac's loads pass no dst
        key = cache.key(self._src, cfg, dst_geobox, kw.get("selection")) if cache is not None else None
        if cache is not None and key is not None:
            hit = cache.get(key)
            if hit is not None:
                return hit
        roi, pixels = self._read(cfg, dst_geobox, **kw)
        if cache is not None and key is not None:
            cache.put(key, roi, pixels)
        return roi, pixels

    def _read(self, cfg: Any, dst_geobox: GeoBox, **kw: Any) -> Any:
        try:
            if self._pooled is not None and kw.get("dst") is None:
                got = self._pooled(self._src, cfg, dst_geobox, kw.get("selection"))
                if got is not None:
                    return got
            return super().read(cfg, dst_geobox, **kw)
        except rasterio.errors.RasterioError as exc:
            first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            raise SourceError(
                f"raster {self._src.uri} could not be read ({first}); it is corrupt or truncated: "
                "download it again or remove its item"
            ) from exc
        except AssertionError as exc:  # odc-geo asserts a CRS: a truncated COG can open without its geokeys
            raise SourceError(
                f"raster {self._src.uri} has no CRS or georeferencing; it is corrupt or truncated: "
                "download it again or remove its item"
            ) from exc


class CheckedRioDriver(RioDriver):
    """RioDriver whose readers raise :class:`SourceError` (picklable: used inside dask tasks).

    ``gdal_options`` (`geocrop.io.reading.ReadSettings.gdal_options`) join the GDAL environment odc-stac
    captures when the cube is built and restores around every read, in whichever thread or worker reads.
    ``cache``: the on-disk cache of remote reads (`geocrop.io.read_cache`), None for none. ``datasets``:
    remote files kept open across reads (`geocrop.io.dataset_pool`), None: each read opens its file.
    """

    def __init__(
        self,
        gdal_options: Mapping[str, Any] | None = None,
        cache: DiskCache | None = None,
        datasets: DatasetPool | None = None,
    ) -> None:
        super().__init__()
        self.gdal_options = dict(gdal_options or {})
        self.cache = cache
        self._pooled = PooledRead(datasets) if datasets is not None else None

    def capture_env(self) -> dict[str, Any]:
        return {**super().capture_env(), **self.gdal_options}

    def open(self, src: Any, ctx: Any) -> RioReader:
        return CheckedReader(src, ctx, self.cache, self._pooled)


def odc_load(
    items: Sequence[pystac.Item],
    read: ReadSettings | None = None,
    datasets: DatasetPool | None = None,
    *,
    chunks: Mapping[str, int] | None = None,
    **kw: Any,
) -> xr.Dataset:
    """odc-stac's load of ``items`` (lazy with ``chunks``; time is then one chunk, as each pixel's whole
    series is needed at once, unless ``chunks`` sets it: see `_odc_chunks`)."""
    import odc.stac

    driver = CheckedRioDriver(
        read.gdal_options() if read is not None else None,
        read.disk_cache() if read is not None else None,
        datasets,
    )
    try:
        ds = odc.stac.load(items, driver=driver, fail_on_error=True, chunks=_odc_chunks(chunks), **kw)
    except SourceError:
        raise
    except rasterio.errors.RasterioError as exc:
        raise SourceError(f"raster data could not be read: {exc}; check the COGs of these items") from exc
    # Read a few scenes per task, computed as one time chunk: each task reads its files one after another.
    return ds.chunk({"time": -1}) if chunks is not None and "time" not in chunks else ds


def _odc_chunks(chunks: Mapping[str, int] | None) -> dict[str, int | Literal["auto"]] | None:
    """odc-stac's chunks for reading: ``SCENES_PER_READ`` scenes per read task unless time is asked."""
    if chunks is None:
        return None
    return {"time": SCENES_PER_READ, **{k: int(v) for k, v in chunks.items()}}
