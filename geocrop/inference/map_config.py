"""`MapConfig`: the one declaration of every `geocrop map` option (`geocrop.core.params`).

`geocrop.map_aoi`/`plan_map`, ``geocrop map``'s flags and the QGIS "Map crops in area" parameters are
derived from these fields: name, type, default, unit, help and check. Building a `MapConfig` converts the
forms a caller gives (paths, ISO dates, result objects) and runs every check that needs no file.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geocrop.core.params import (
    Device,
    as_aoi,
    as_bundle,
    as_floats,
    as_path,
    as_source,
    at_least,
    device_check,
    param,
    settle,
    within,
)
from geocrop.core.temporal import as_date
from geocrop.errors import InputError
from geocrop.inference.priors import PriorChoice, priors_param
from geocrop.io.colour_table import colours_param
from geocrop.io.reading import ReadSettings

__all__ = ["COG_SUFFIXES", "EARTH_SEARCH", "HTML_SUFFIXES", "MapConfig", "check_output_names", "output_paths"]

#: The public Earth Search v1 STAC API (collection ``sentinel-2-l2a``).
EARTH_SEARCH = "https://earth-search.aws.element84.com/v1"


@dataclass(frozen=True, kw_only=True)
class MapConfig:
    """One `geocrop map` run (field order is ``geocrop map --help``'s)."""

    aoi: Any = param(
        help="Area to map: GeoJSON, GeoPackage, GeoParquet or Shapefile (any CRS)",
        convert=as_aoi,
        kind="vector",
        qgis=False,  # the QGIS algorithm takes a polygon layer or an extent
    )
    start: dt.date = param(help="First date of the season", convert=as_date, label="Start date")
    end: dt.date = param(help="Last date of the season", convert=as_date, label="End date")
    stac: str = param(
        EARTH_SEARCH,
        help="STAC API URL, a static catalog.json, a folder of GeoTIFFs, a NetCDF/Zarr cube, or a raster "
        "stack: a GeoTIFF with its band-date CSV, or a folder of GeoTIFFs named by date",
        convert=as_source,
        label="Imagery: STAC API URL, catalog.json, folder, cube or raster stack",
    )
    collection: str = param("sentinel-2-l2a", help="Sentinel-2 L2A collection", qgis=False)
    planet: str | None = param(
        None,
        help="Optional PlanetScope source, used when the model needs it",
        convert=as_source,
        label="Planet source (API URL or catalog.json)",
    )
    max_cloud: float | None = param(
        60.0,
        help="Skip scenes cloudier than this",
        unit="%",
        check=within(0, 100, "is not a percentage; give 0..100 (e.g. 60)"),
        label="Maximum scene cloud cover (%)",
    )
    model: Path | None = param(
        None,
        help="Model bundle (.safetensors); default: the demo bundle from `geocrop demo`",
        convert=as_bundle,
        kind="bundle",
        label="Model bundle (empty: geocrop's demo bundle)",
    )
    out: Path = param(
        help="Output crop-map COG (.tif)", convert=as_path, kind="raster_out", label="Crop map", qgis="OUTPUT"
    )
    html: Path | None = param(
        None, help="Also write an offline web map", convert=as_path, kind="page_out", label="Web page"
    )
    colors: Path | None = colours_param(label="Class colours (CSV, JSON or QGIS .qml)", advanced=True)
    probabilities: bool = param(
        False, help="Add one probability band per class", label="Add class probability bands"
    )
    chunk_size: int = param(
        256,
        help="Tile size",
        unit="px",
        check=within(16, 4096, "is outside 16..4096; 256 or 512 work well"),
        label="Tile size (pixels)",
        advanced=True,
    )
    scheduler: str | None = param(
        None, help="dask.distributed scheduler address (default: local threads)", qgis=False
    )
    device: Device = param(
        "auto", help="Where the model runs", check=device_check, label="Device", advanced=True
    )
    yes: bool = param(False, help="Run even when the AOI exceeds the size limits", qgis=False)
    allow_simulated_model: bool = param(
        False,
        help="Map real scenes with a model trained on simulated data (a demo: its map means nothing)",
        label="Allow a model trained on simulated data over real scenes",
        qgis="ALLOW_SIMULATED",
    )
    mask: Path | None = param(
        None,
        help="Map only where this raster (any CRS, e.g. a cropland layer) holds `mask_values`; elsewhere "
        "nodata",
        convert=as_path,
        kind="file",
        label="Mask raster (map only where it holds the mask values)",
        advanced=True,
    )
    mask_values: tuple[float, ...] = param(
        (), help="Value of `mask` that means 'map here' (repeatable; default: any non-zero value)",
        convert=as_floats,
        label="Mask values (space-separated; empty: any non-zero value)",
        advanced=True,
    )  # fmt: skip
    class_priors: PriorChoice = priors_param(
        label="Class priors: train, uniform or a CSV/JSON file of shares", advanced=True
    )
    read_threads: int = param(
        ReadSettings.threads,
        help="Scene/band reads of one tile at once (range requests in flight, for remote COGs)",
        label="Reads of one tile at once",
        advanced=True,
    )
    read_ahead: int = param(
        ReadSettings.read_ahead,
        help="Tiles read ahead of the engine (memory holds this many tiles plus one)",
        label="Tiles read ahead",
        advanced=True,
    )
    read_cache_mb: int = param(
        ReadSettings.cache_mb,
        help="Downloaded COG byte ranges GDAL keeps in memory (reused by later tiles)",
        unit="MB",
        label="Download cache (MB)",
        advanced=True,
    )
    read_disk_cache_mb: int = param(
        ReadSettings.disk_cache_mb,
        help="On-disk cache of remote reads that a rerun of the same map reads instead of the network; "
        "least recently used removed past this size; 0 turns it off",
        unit="MB",
        qgis=False,  # the plugin maps with the defaults: the cache is on, in the user's cache folder
    )
    read_disk_cache: Path | None = param(
        None,
        help="Folder of the on-disk read cache (default: geocrop/reads in the user's cache folder)",
        convert=as_path,
        kind="folder",
        qgis=False,
    )
    allow_any_asset_href: bool = param(
        False,
        help="Trust the catalog: read assets it points at anywhere (local files outside its folder, "
        "file://, /vsi..., loopback hosts). Off by default",
        qgis=False,
    )
    # Size limits: without `yes` a larger run is refused (tests and benches lower them).
    max_pixels: float = param(1e8, help="Pixels a run may map without `yes`", check=at_least(1), api=False)
    max_hours: float = param(
        12.0,
        help="Estimated compute a run may take without `yes`",
        unit="h",
        check=at_least(0.001),
        api=False,
    )
    max_read_gb: float = param(
        200.0, help="Estimated read a run may take without `yes`", unit="GB", check=at_least(0.001), api=False
    )

    def __post_init__(self) -> None:
        settle(self, season=("start", "end"))
        check_output_names(self.out, self.html)
        self.read  # noqa: B018 - its checks, before anything runs

    @property
    def read(self) -> ReadSettings:
        """Reader threads, tiles read ahead, download and disk caches (`geocrop.io.reading`)."""
        return ReadSettings(
            threads=self.read_threads,
            read_ahead=self.read_ahead,
            cache_mb=self.read_cache_mb,
            disk_cache_mb=self.read_disk_cache_mb,
            disk_cache_dir=str(self.read_disk_cache) if self.read_disk_cache is not None else None,
        )


#: Suffixes of the crop-map COG and of the optional web page.
COG_SUFFIXES = (".tif", ".tiff")
HTML_SUFFIXES = (".html", ".htm")


def output_paths(out: Path, html: Path | None = None) -> dict[str, Path]:
    """Every file a map run writes, by role: the COGs, sidecar, style, STAC item (and web page)."""
    from geocrop.io.cog import confidence_path
    from geocrop.io.style import qml_path_for

    paths = {
        "cog": out,
        "sidecar": Path(f"{out}.aux.xml"),
        "style": qml_path_for(out),
        "stac_item": out.with_suffix(".json"),
    }
    paths["confidence"] = confidence_path(out)  # confidence, uncertainty, probabilities
    if html is not None:
        paths["html"] = html
    return paths


def check_output_names(out: Path, html: Path | None = None) -> None:
    """Refuse output names under which a file would be written as the wrong type or overwrite another.

    The COG must end in .tif/.tiff (its style and STAC item take the same name with .qml/.json); the web
    page must end in .html/.htm; no two outputs may share a path.
    """
    if out.suffix.lower() not in COG_SUFFIXES:
        fixed = out.with_suffix(".tif") if out.suffix else Path(f"{out}.tif")
        raise InputError(
            f"`out` {out}: a crop map is a GeoTIFF, so its name must end in .tif or .tiff; give e.g. {fixed}",
            param="out",
        )
    if html is not None and html.suffix.lower() not in HTML_SUFFIXES:
        fixed = html.with_suffix(".html") if html.suffix else Path(f"{html}.html")
        raise InputError(
            f"`html` {html}: a web page's name must end in .html; give e.g. {fixed}", param="html"
        )
    seen: dict[str, str] = {}
    for role, path in output_paths(out, html).items():
        key = os.path.normcase(os.path.abspath(path))
        if key in seen:
            option = "html" if role == "html" else "out"
            raise InputError(
                f"`{option}` {path}: the {role.replace('_', ' ')} would overwrite the "
                f"{seen[key].replace('_', ' ')} at the same path; give the outputs different names",
                param=option,
            )
        seen[key] = role
