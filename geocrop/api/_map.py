"""`map_aoi` and `plan_map`: the crop map of an area, and what making it would read and compute."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from geocrop.api_types import AoiLike, BundleLike, DateLike, Device, PathLike, Progress
from geocrop.core.params import config_args, same_arguments_as

if TYPE_CHECKING:
    from geocrop.inference.mapping import MapResult
    from geocrop.inference.plan import MapPlan
    from geocrop.inference.priors import ClassPriors

__all__ = ["map_aoi", "plan_map"]


def map_aoi(
    *,
    aoi: AoiLike,
    start: DateLike,
    end: DateLike,
    stac: PathLike = "https://earth-search.aws.element84.com/v1",
    collection: str = "sentinel-2-l2a",
    planet: PathLike | None = None,
    max_cloud: float | None = 60.0,
    model: BundleLike | None = None,
    out: PathLike,
    html: PathLike | None = None,
    colors: PathLike | None = None,
    probabilities: bool = False,
    chunk_size: int = 256,
    scheduler: str | None = None,
    device: Device = "auto",
    yes: bool = False,
    allow_simulated_model: bool = False,
    mask: PathLike | None = None,
    mask_values: Sequence[float] = (),
    class_priors: ClassPriors = None,
    read_threads: int = 48,
    read_ahead: int = 2,
    read_cache_mb: int = 64,
    read_disk_cache_mb: int = 2048,
    read_disk_cache: PathLike | None = None,
    allow_any_asset_href: bool = False,
    tune_process: bool = False,
    progress: Progress | None = None,
) -> MapResult:
    """The crop map of ``aoi`` for the season ``start``..``end``, as a COG at ``out`` (+ style, STAC item,
    confidence COG, optional ``html`` page); see `geocrop.inference.mapping`. ``colors``: a class colour
    table (CSV, JSON or a QGIS ``.qml``; `geocrop.io.colour_table`) for the classes it names, in every output.

    The arguments are `geocrop.inference.map_config.MapConfig`'s fields (their help, units and checks
    are declared there). ``model``: a bundle path or a `TrainResult` (default: the demo bundle, trained on
    simulated data, which maps only simulated scenes unless ``allow_simulated_model``). ``stac``: a STAC
    API URL, a ``catalog.json``, a folder of GeoTIFFs or a NetCDF/Zarr cube (default: the public Earth
    Search API); ``planet`` a PlanetScope source for bundles that read it. ``mask``: a raster in any CRS
    (e.g. a cropland layer) saying where to map: pixels where it holds none of ``mask_values`` (default: any
    non-zero value) are nodata and cost no compute. ``yes`` lifts the size limits (`plan_map`
    shows the estimate first); an interrupted run resumes.

    ``class_priors``: the class shares the map's probabilities are corrected for. None (default): the
    model's training class frequencies (best for areas and overall accuracy); ``"uniform"``: every
    class equally common (the balanced decision, best for finding rare classes); or a CSV/JSON file (or
    a dict) of class name -> expected share in this area. See `geocrop.inference.priors`.

    Reading (`geocrop.io.reading.ReadSettings`): ``read_threads`` scene/band reads of a tile at once,
    ``read_ahead`` tiles read ahead of the engine (memory holds ``read_ahead + 1`` tiles),
    ``read_cache_mb`` of downloaded byte ranges kept in this process for a rerun, and an on-disk cache of
    remote reads that a rerun of the same map reads instead of the network (``read_disk_cache_mb``, 0:
    off; in ``read_disk_cache``, default the user's cache folder; `geocrop.io.read_cache`). The result's
    ``stages`` says where the time went (search, read, regrid, engine, write).
    """
    from geocrop.inference.map_config import MapConfig
    from geocrop.inference.mapping import map_aoi as run_map

    config = MapConfig(**config_args(MapConfig, locals()))
    return run_map(config, progress=progress, tune_process=tune_process)


@same_arguments_as(map_aoi)
def plan_map(**arguments: Any) -> MapPlan:
    """What `map_aoi` with the same arguments would read and compute (scenes, bytes, pixels x timestamps,
    estimated time), after every check it makes; reads no pixels and writes nothing (``tune_process`` is
    not needed: nothing heavy runs). ``plan.describe()`` gives the lines ``geocrop map --dry-run`` prints.
    """
    from geocrop.inference.map_config import MapConfig
    from geocrop.inference.plan import plan_map as run_plan

    config = MapConfig(**config_args(MapConfig, arguments))
    return run_plan(config, progress=arguments.get("progress"))
