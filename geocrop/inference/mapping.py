"""`map_aoi`: AOI -> STAC search -> lazy cube -> temporal grid -> engine per tile -> COG + style + STAC item.

The pipeline (DESIGN.md's "map" flow), with `geocrop.inference.plan` doing every check that needs no
pixels first. The cube is opened lazily with tiles of ``chunk_size`` pixels (all dates and bands per tile),
each tile is regridded onto the bundle's temporal grid (`geocrop.core.temporal.regrid`, the same rule as
training) and classified by the engine; finished tiles stream into the `CogWriter` and into the resume
journal beside the output. The COG appears only when complete (the writer renames a temporary file); the
journal is removed after that. Then the QGIS style, the STAC item of the output and, optionally, the web
page are written beside it.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from geocrop._version import __version__
from geocrop.core.progress import Progress, emit, within
from geocrop.core.temporal import TemporalGrid, regrid
from geocrop.errors import GeocropWarning, NoDataError
from geocrop.inference.journal import TileJournal, journal_dir, output_lock, remove_leftovers
from geocrop.inference.plan import MapConfig, MapPlan, output_paths, plan_map
from geocrop.inference.stages import StageClock, StageTimes
from geocrop.inference.tiles import PredictorRef, Tile, plan_tiles, run_tiles
from geocrop.io.dataset_pool import DatasetPool

__all__ = ["MapConfig", "MapPlan", "MapResult", "map_aoi", "plan_map", "regrid_block"]

log = logging.getLogger(__name__)

# Share of the progress bar before and after the tiles (search/plan, then overviews + sidecars).
_TILES_START, _TILES_END = 0.05, 0.95
#: GDAL block cache for a map run, in MB.
_GDAL_CACHE_MB = 64


@dataclass(frozen=True)
class MapResult:
    """Where the outputs went and what the run did."""

    cog: Path
    qml: Path
    stac_item: Path
    html: Path | None
    tiles: int
    tiles_resumed: int
    valid_pixels: int
    scene_ids: tuple[str, ...]
    seconds: float
    #: The confidence / uncertainty / probability COG beside the class COG.
    confidence: Path | None = None
    #: A warning the outputs carry (e.g. "model trained on simulated data"), or None.
    notice: str | None = None
    #: Where the time went: search, read (bytes, requests), regrid, engine, write (`inference.stages`).
    stages: StageTimes | None = None

    @property
    def outputs(self) -> dict[str, str]:
        out = {"cog": str(self.cog), "qml": str(self.qml), "stac_item": str(self.stac_item)}
        if self.confidence is not None:
            out["confidence"] = str(self.confidence)
        if self.html is not None:
            out["html"] = str(self.html)
        return out


def regrid_block(
    values: npt.NDArray[np.float32], *, times: npt.NDArray[np.datetime64], grid: TemporalGrid
) -> npt.NDArray[np.float32]:
    """(T_obs, B, h, w) observations -> (steps, B, h, w) on ``grid`` (picklable for Dask workers)."""
    return regrid(values, times, grid, axis=0)[0]


def _grid(plan: MapPlan) -> TemporalGrid:
    cfg, spec = plan.config, plan.spec
    grid = TemporalGrid(cfg.start, cfg.end, spec.steps)
    if spec.grid_start is not None and spec.grid_end is not None:
        trained = (spec.grid_end - spec.grid_start).days
        asked = (cfg.end - cfg.start).days
        if trained > 0 and abs(asked - trained) > 0.1 * trained:
            warnings.warn(
                f"the model was trained on a {trained}-day season ({spec.grid_start}..{spec.grid_end}) but "
                f"the map spans {asked} days; its {spec.steps} steps are stretched to fit, so accuracy may "
                "drop: map a season of similar length",
                GeocropWarning,
                stacklevel=3,
            )
    return grid


def _mask_key(path: Path, values: tuple[float, ...]) -> list[Any]:
    """What identifies a mask layer for resuming (its content by size and time, not by hashing it)."""
    stat = path.stat()
    return [str(path.resolve()), stat.st_size, stat.st_mtime_ns, list(values)]


def _fingerprint(plan: MapPlan, scene_ids: list[str], shape: tuple[int, int]) -> dict[str, Any]:
    cfg = plan.config
    stat = plan.model_path.stat()
    aoi_hash = hashlib.sha256(plan.aoi.geometry.wkb).hexdigest()[:16]
    return {
        "geocrop": __version__,
        "model": str(plan.model_path.resolve()),
        "model_size": stat.st_size,
        "model_mtime": stat.st_mtime_ns,
        "aoi": aoi_hash,
        "start": cfg.start.isoformat(),
        "end": cfg.end.isoformat(),
        "scenes": hashlib.sha256("\n".join(scene_ids).encode()).hexdigest()[:16],
        "chunk_size": cfg.chunk_size,
        "probabilities": cfg.probabilities,
        "mask": None if plan.mask is None else _mask_key(plan.mask.path, plan.mask.values),
        "class_priors": repr(cfg.class_priors),
        "shape": list(shape),
    }


def _priors_note(ref: PredictorRef) -> str:
    """What the map's probabilities were corrected for, in words (a COG tag beside the model's name)."""
    predictor = ref.get()
    shares = predictor.class_shares
    asked = ref.class_priors.describe() if ref.class_priors is not None else "training class frequencies"
    done = "logits corrected" if shares is not None else "the head's raw decision"
    if predictor.spec.class_frequencies is None:
        done = "not applied: the model records no training frequencies"
    return f"{asked} ({done}); temperature {predictor.temperature:.3f}"


def _cap_gdal_cache() -> None:
    """Keep GDAL's raster block cache small (unless the user set ``GDAL_CACHEMAX``): by default it may grow
    to 5% of RAM as more COG blocks are read, so peak memory would grow with the AOI. Tiles are read once,
    so a large cache buys nothing here."""
    if "GDAL_CACHEMAX" not in os.environ:
        from rasterio.env import set_gdal_config

        set_gdal_config("GDAL_CACHEMAX", _GDAL_CACHE_MB)


def map_aoi(
    config: MapConfig,
    *,
    progress: Progress | None = None,
    after_tile: Callable[[Tile], None] | None = None,
    tune_process: bool = True,
) -> MapResult:
    """Make the crop map of ``config``; see the module docstring. Resumes a previous interrupted run.

    ``progress`` gets a `ProgressEvent` as work advances; ``after_tile`` runs after each newly
    computed tile is saved (a test hook for interruptions); ``tune_process`` lets the predictor set
    torch's threads and tune malloc for the whole process (see `geocrop.inference.engine.Predictor`).
    The run holds a lock on ``config.out`` and first removes the hidden temporaries an interrupted run
    left beside its outputs.
    """
    # Remote files stay open for the whole map (each tile reads every file) and are closed at its end.
    with output_lock(config.out), DatasetPool() as datasets:
        remove_leftovers(output_paths(config.out, config.html).values())
        return _map_aoi(
            config, progress=progress, after_tile=after_tile, tune_process=tune_process, datasets=datasets
        )


def _map_aoi(
    config: MapConfig,
    *,
    progress: Progress | None,
    after_tile: Callable[[Tile], None] | None,
    tune_process: bool = True,
    datasets: DatasetPool | None = None,
) -> MapResult:
    from geocrop.io.cog import CogWriter, confidence_path, sidecar_path
    from geocrop.io.colour_table import recoloured
    from geocrop.io.cube import load_s2
    from geocrop.io.provenance import file_sha256, public_source, read_provenance
    from geocrop.io.read_cache import cache_counts
    from geocrop.io.reading import NetworkCounter
    from geocrop.io.stac_item import write_output_item
    from geocrop.io.style import qml_path_for, write_qml

    clock = StageClock()
    network = NetworkCounter()
    read_before, cached_before = network.totals(), cache_counts()
    _cap_gdal_cache()
    plan = plan_map(config, progress=progress, exact_flops=False, clock=clock)
    spec = dataclasses.replace(plan.spec, classes=recoloured(plan.spec.classes, config.colors))
    if plan.notice:
        warnings.warn(plan.notice, GeocropWarning, stacklevel=2)
    provenance = read_provenance(spec.metadata)
    if config.planet is not None:
        log.info("`planet` %s is not used: model %s reads Sentinel-2 only", config.planet, spec.name)
    emit(progress, "map", 0.03, f"opening {len(plan.items)} scenes")
    cube = load_s2(
        list(plan.items),
        aoi=plan.aoi,
        chunks={"x": config.chunk_size, "y": config.chunk_size},
        bands=spec.bands,
        read=config.read,
        datasets=datasets,
    )
    geobox = cube.odc.geobox
    height, width = int(geobox.height), int(geobox.width)
    scene_ids = [str(s) for s in cube.attrs.get("scene_ids", [it.id for it in plan.items])]
    ref = PredictorRef(
        str(plan.model_path.resolve()),
        config.device,
        tune_process=tune_process,
        class_priors=config.class_priors,
    )
    ref.get()  # load and check the weights here, before any pixel is read
    prepare = functools.partial(regrid_block, times=np.asarray(cube.time.values), grid=_grid(plan))
    tiles = plan_tiles(height, width, config.chunk_size)
    journal = TileJournal(journal_dir(config.out), fingerprint=_fingerprint(plan, scene_ids, (height, width)))
    model_name = str(spec.metadata.get("name") or plan.model_path.stem)
    metadata = {
        "model": model_name,
        "model_file": plan.model_path.name,
        "training_data": provenance["data"],
        "start_date": config.start.isoformat(),
        "end_date": config.end.isoformat(),
        "temporal_steps": spec.steps,
        "bands": list(spec.bands),
        "missing_bands": list(cube.attrs.get("missing_bands", [])),
        "scene_ids": scene_ids,
        "source": public_source(config.stac),
        "software": f"geocrop {__version__}",
        "class_priors": _priors_note(ref),
        **({"warning": plan.notice} if plan.notice else {}),
    }
    span = _TILES_END - _TILES_START
    n_prob = len(spec.classes) if config.probabilities else 0
    with CogWriter(
        config.out, geobox=geobox, classes=spec.classes, n_prob_bands=n_prob, metadata=metadata
    ) as cog:

        def sink(tile: Tile, arrays: dict[str, Any]) -> None:
            cog.write_block(tile.window, arrays["classes"], arrays["confidence"], arrays.get("probs"))

        keep = None
        if plan.mask is not None:
            mask, crs, transform = plan.mask, geobox.crs, geobox.transform

            def keep(tile: Tile) -> np.ndarray:
                return mask.keep(crs=crs, transform=transform, window=tile.window)

        run = run_tiles(
            cube.data,
            tiles=tiles,
            ref=ref,
            sink=sink,
            keep=keep,
            prepare=prepare,
            journal=journal,
            scheduler=config.scheduler,
            probabilities=True,  # the uncertainty band needs them, written as bands or not
            progress=within(progress, _TILES_START, _TILES_START + span),
            after_tile=after_tile,
            read=config.read,
            clock=clock,
        )
        if run.valid_pixels == 0:
            journal.remove()
            raise NoDataError(
                f"every pixel of AOI {plan.aoi.name} is clouded or without data in all {len(scene_ids)} "
                f"scenes from {config.start} to {config.end}; widen the dates or raise `max_cloud`",
                param="max_cloud",
            )
        emit(progress, "map", _TILES_END, "writing the COG (overviews)")
        closing = time.perf_counter()
    clock.add("write", closing, time.perf_counter())  # the COGs' overviews, written as the writer closes
    read, cached = network.totals() - read_before, cache_counts() - cached_before
    journal.remove()
    with clock.span("write"):
        qml = write_qml(qml_path_for(config.out), spec.classes)
        html = None
        if config.html is not None:
            emit(progress, "map", 0.97, "writing the web page")
            html = _write_webmap(config, plan, provenance, spec.classes)
    confidence = confidence_path(config.out)
    extra: dict[str, Path] = {"confidence": confidence, "style": qml, "sidecar": sidecar_path(config.out)}
    if html is not None:
        extra["webmap"] = html
    stages = clock.summary(
        read_bytes=read.bytes,
        read_requests=read.requests,
        tiles=len(run.computed),
        pixels=height * width,
        extra={"disk_cache_reads": cached.hits, "disk_cache_bytes": cached.hit_bytes},
    )
    log.info("%s: %s", config.out.name, stages.describe())
    if cached.hits or cached.misses:
        log.info(
            "%s: %d of %d remote reads from the disk cache (%.1f MB), %s",
            config.out.name,
            cached.hits,
            cached.hits + cached.misses,
            cached.hit_bytes / 1e6,
            config.read.disk_cache_dir or "in the user's cache folder",
        )
    item = write_output_item(
        config.out.with_suffix(".json"),
        cog=config.out,
        classes=spec.classes,
        bbox=plan.aoi.bbox,
        geometry=plan.aoi.__geo_interface__,
        datetime_range=(config.start, config.end),
        model={
            "name": model_name,
            "architecture": f"{(spec.backbone or {}).get('name', 'none')} + {spec.head.get('name')}",
            "file": plan.model_path.name,
            "sha256": file_sha256(plan.model_path),
            "steps": spec.steps,
        },
        sources=scene_ids,
        source_items=plan.items,
        provenance=provenance,
        notice=plan.notice,
        extra_assets=extra,
        processing=stages.as_properties(),
    )
    emit(progress, "map", 1.0, "done")
    return MapResult(
        cog=config.out,
        qml=qml,
        stac_item=item,
        html=html,
        tiles=len(tiles),
        tiles_resumed=len(run.reused),
        valid_pixels=run.valid_pixels,
        scene_ids=tuple(scene_ids),
        seconds=time.perf_counter() - clock.started,
        confidence=confidence,
        notice=plan.notice,
        stages=stages,
    )


def _write_webmap(config: MapConfig, plan: MapPlan, provenance: dict[str, Any], classes: Any) -> Path:
    from geocrop.io.cog import confidence_path
    from geocrop.io.provenance import describe_provenance
    from geocrop.viz.webmap import write_webmap

    assert config.html is not None
    aoi_geojson = {
        "type": "Feature",
        "properties": {"name": plan.aoi.name},
        "geometry": plan.aoi.__geo_interface__,
    }
    return write_webmap(
        config.html,
        cog=config.out,
        aoi_geojson=aoi_geojson,
        classes=classes,
        confidence_cog=confidence_path(config.out),
        notice=plan.notice,
        provenance=describe_provenance(provenance),
    )
