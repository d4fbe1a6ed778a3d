"""`map_aoi` and `plan_map`: the crop map of an area, and what making it would read and compute."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from geocrop.api_types import (
    AoiLike,
    BundleLike,
    DateLike,
    Device,
    PathLike,
    Progress,
    as_aoi,
    as_bundle,
    as_date,
    as_optional_path,
    as_path,
    as_source,
    check_season,
    library_terms,
)
from geocrop.io.reading import ReadSettings

if TYPE_CHECKING:
    from geocrop.inference.mapping import MapResult
    from geocrop.inference.plan import MapConfig, MapPlan
    from geocrop.inference.priors import ClassPriors

__all__ = ["map_aoi", "plan_map"]


def _map_config(
    *,
    aoi: AoiLike,
    start: DateLike,
    end: DateLike,
    out: PathLike,
    model: BundleLike | None,
    stac: PathLike | None,
    collection: str,
    planet: PathLike | None,
    max_cloud: float | None,
    html: PathLike | None,
    probabilities: bool,
    chunk_size: int,
    scheduler: str | None,
    device: Device,
    yes: bool,
    allow_simulated_model: bool,
    allow_any_asset_href: bool,
    mask: PathLike | None,
    mask_values: Sequence[float],
    class_priors: ClassPriors,
    read_threads: int,
    read_ahead: int,
    read_cache_mb: int,
) -> MapConfig:
    from geocrop.inference.plan import MapConfig
    from geocrop.inference.priors import read_class_priors

    first, last = as_date(start, "start"), as_date(end, "end")
    check_season(first, last)
    source: dict[str, Any] = {} if stac is None else {"stac": as_source(stac, "stac")}
    return MapConfig(
        aoi=as_aoi(aoi),
        start=first,
        end=last,
        out=as_path(out, "out"),
        model=None if model is None else as_bundle(model, "model"),
        **source,
        collection=collection,
        planet=None if planet is None else as_source(planet, "planet"),
        max_cloud=max_cloud,
        html=as_optional_path(html, "html"),
        probabilities=probabilities,
        chunk_size=chunk_size,
        scheduler=scheduler,
        device=device,
        yes=yes,
        allow_simulated_model=allow_simulated_model,
        allow_any_asset_href=allow_any_asset_href,
        mask=as_optional_path(mask, "mask"),
        mask_values=tuple(mask_values),
        class_priors=read_class_priors(class_priors),
        read=ReadSettings(threads=read_threads, read_ahead=read_ahead, cache_mb=read_cache_mb),
    )


def map_aoi(
    *,
    aoi: AoiLike,
    start: DateLike,
    end: DateLike,
    out: PathLike,
    model: BundleLike | None = None,
    stac: PathLike | None = None,
    collection: str = "sentinel-2-l2a",
    planet: PathLike | None = None,
    max_cloud: float | None = 60.0,
    html: PathLike | None = None,
    probabilities: bool = False,
    chunk_size: int = 256,
    scheduler: str | None = None,
    device: Device = "auto",
    yes: bool = False,
    allow_simulated_model: bool = False,
    allow_any_asset_href: bool = False,
    mask: PathLike | None = None,
    mask_values: Sequence[float] = (),
    class_priors: ClassPriors = None,
    read_threads: int = ReadSettings.threads,
    read_ahead: int = ReadSettings.read_ahead,
    read_cache_mb: int = ReadSettings.cache_mb,
    tune_process: bool = False,
    progress: Progress | None = None,
) -> MapResult:
    """The crop map of ``aoi`` for the season ``start``..``end``, as a COG at ``out`` (+ style, STAC item,
    confidence COG, optional ``html`` page); see `geocrop.inference.mapping`.

    ``model``: a bundle path or a `TrainResult` (default: the demo bundle, trained on simulated data, which
    maps only simulated scenes unless ``allow_simulated_model``). ``stac``: a STAC API URL, a
    ``catalog.json``, a folder of GeoTIFFs or a NetCDF/Zarr cube (default: the public Earth Search API);
    ``planet`` a PlanetScope source for bundles that read it. ``mask``: a raster in any CRS (e.g. a
    cropland layer) saying where to map: pixels where it holds none of ``mask_values`` (default: any
    non-zero value) are nodata and cost no compute. ``yes`` lifts the size limits (`plan_map`
    shows the estimate first); an interrupted run resumes.

    ``class_priors``: the class shares the map's probabilities are corrected for. None (default): the
    model's training class frequencies (best for areas and overall accuracy); ``"uniform"``: every
    class equally common (the balanced decision, best for finding rare classes); or a CSV/JSON file (or
    a dict) of class name -> expected share in this area. See `geocrop.inference.priors`.

    Reading (`geocrop.io.reading.ReadSettings`): ``read_threads`` scene/band reads of a tile at once,
    ``read_ahead`` tiles read ahead of the engine (memory holds ``read_ahead + 1`` tiles),
    ``read_cache_mb`` of downloaded byte ranges kept in this process for a rerun. The result's
    ``stages`` says where the time went (search, read, regrid, engine, write).
    """
    options = _options(locals())  # first: locals() is the arguments only
    from geocrop.inference.mapping import map_aoi as run_map

    with _map_terms(allow_any_asset_href):
        return run_map(_map_config(**options), progress=progress, tune_process=tune_process)


def plan_map(
    *,
    aoi: AoiLike,
    start: DateLike,
    end: DateLike,
    out: PathLike,
    model: BundleLike | None = None,
    stac: PathLike | None = None,
    collection: str = "sentinel-2-l2a",
    planet: PathLike | None = None,
    max_cloud: float | None = 60.0,
    html: PathLike | None = None,
    probabilities: bool = False,
    chunk_size: int = 256,
    scheduler: str | None = None,
    device: Device = "auto",
    yes: bool = False,
    allow_simulated_model: bool = False,
    allow_any_asset_href: bool = False,
    mask: PathLike | None = None,
    mask_values: Sequence[float] = (),
    class_priors: ClassPriors = None,
    read_threads: int = ReadSettings.threads,
    read_ahead: int = ReadSettings.read_ahead,
    read_cache_mb: int = ReadSettings.cache_mb,
) -> MapPlan:
    """What `map_aoi` with the same arguments would read and compute (scenes, bytes, pixels x timestamps,
    estimated time), after every check it makes; reads no pixels and writes nothing.
    ``plan.describe()`` gives the lines ``geocrop map --dry-run`` prints."""
    options = _options(locals())  # first: locals() is the arguments only
    from geocrop.inference.plan import plan_map as run_plan

    with _map_terms(allow_any_asset_href):
        return run_plan(_map_config(**options))


#: Arguments whose CLI flags older messages on the mapping path still name (re-worded by `library_terms`).
_MAP_ARGS = "aoi start end out model stac collection planet max_cloud html chunk_size device mask"
_MAP_ARGS += " allow_any_asset_href class_priors read_threads read_ahead read_cache_mb"


@contextlib.contextmanager
def _map_terms(allow_any_asset_href: bool) -> Iterator[None]:
    """Errors in this API's argument names, and asset hrefs trusted as asked, for one map verb."""
    from geocrop.io.stac import trust_any_asset_href

    with library_terms(*_MAP_ARGS.split()), trust_any_asset_href(allow_any_asset_href):
        yield


def _options(arguments: dict[str, Any]) -> dict[str, Any]:
    """The `MapConfig` arguments among a verb's ``locals()``."""
    return {k: v for k, v in arguments.items() if k not in ("tune_process", "progress")}
