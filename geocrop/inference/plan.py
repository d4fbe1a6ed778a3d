"""Everything `geocrop map` decides before reading a pixel: config, checks, scenes, size and cost.

`plan_map` runs the cheap checks in the order a user benefits from (output writable, model readable and
fit for Sentinel-2, AOI valid, AOI not far too large, scenes found) and returns a `MapPlan` that
``--dry-run`` prints: scenes, dates, bytes, pixels x timestamps and estimated compute. It never reads
imagery: sizes come from the assets' ``file:size``, local file sizes, or an estimate from the grid.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pystac

from geocrop.core.bands import S2_BANDS
from geocrop.core.progress import Progress, emit
from geocrop.errors import BundleError, InputError, NoDataError
from geocrop.inference.map_config import EARTH_SEARCH, MapConfig, check_output_names, output_paths
from geocrop.inference.priors import check_priors
from geocrop.inference.schema import BundleSpec, parse_bundle_metadata
from geocrop.inference.stages import StageClock
from geocrop.io.extent import warn_outside
from geocrop.io.mask_layer import MaskLayer, open_mask
from geocrop.io.provenance import check_simulated_use, describe_provenance, read_provenance

__all__ = [
    "DEMO_BUNDLE",
    "EARTH_SEARCH",
    "MapConfig",
    "MapPlan",
    "check_output_names",
    "default_bundle",
    "output_paths",
    "plan_map",
]

#: The shipped demo bundle (package data, trained on the simulated sample area by `geocrop demo
#: --rebuild-model`); a package path so that any working directory (and the QGIS plugin) finds it.
DEMO_BUNDLE = Path(__file__).resolve().parents[1] / "assets" / "demo.safetensors"
#: Assumed sustained forward throughput for the size check (FLOP/s): conservative, so estimates err long.
_ASSUMED_FLOPS = {"cpu": 1.0e10, "cuda": 2.0e13}
_MB = 1024 * 1024


def default_bundle() -> Path:
    """The demo bundle (``$GEOCROP_DEMO_BUNDLE`` overrides); `BundleError` naming the command if absent."""
    path = Path(os.environ.get("GEOCROP_DEMO_BUNDLE", DEMO_BUNDLE))
    if not path.is_file():
        raise BundleError(
            f"no `model` given and the demo bundle {path} does not exist; rebuild it with "
            "geocrop demo, or give a `model` bundle",
            param="model",
        )
    return path


@dataclass(frozen=True)
class MapPlan:
    """What a run would read and compute (printed by ``--dry-run``)."""

    config: MapConfig
    model_path: Path
    spec: BundleSpec
    aoi: Any
    items: tuple[pystac.Item, ...]
    width: int
    height: int
    epsg: int
    flops_per_pixel: float
    device: str
    asset_bytes: int
    asset_bytes_known: bool
    read_bytes: int
    scene_dates: tuple[dt.date, ...] = field(default=())
    #: A warning every output must carry (e.g. "model trained on simulated data"), or None.
    notice: str | None = None
    #: The checked mask layer (`MapConfig.mask`), or None.
    mask: MaskLayer | None = None

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def total_flops(self) -> float:
        return self.flops_per_pixel * self.pixels

    @property
    def est_seconds(self) -> float:
        return self.total_flops / _throughput(self.device)

    def describe(self) -> list[str]:
        """Human-readable lines for ``--dry-run``."""
        cfg, n = self.config, len(self.items)
        head = self.spec.head.get("name", "?")
        encoder = f"{self.spec.backbone.get('name', '?')} backbone + " if self.spec.backbone else ""
        named = "" if self.spec.name == str(self.model_path) else f"{self.spec.name}: "
        lines = [f"model: {self.model_path} ({named}{encoder}{head} head; {len(self.spec.classes)} classes)"]
        lines.append(f"trained on: {describe_provenance(read_provenance(self.spec.metadata))}")
        if self.notice:
            lines.insert(0, f"WARNING: {self.notice}")
        lines.append(f"scenes: {n} {cfg.collection} items from {cfg.stac}")
        for item, day in zip(self.items, self.scene_dates, strict=True):
            cloud = item.properties.get("eo:cloud_cover")
            cloud_text = f"  cloud {float(cloud):.0f}%" if cloud is not None else ""
            lines.append(f"  {day.isoformat()}  {item.id}{cloud_text}")
        first, last = (self.scene_dates[0], self.scene_dates[-1]) if n else (cfg.start, cfg.end)
        lines.append(
            f"dates: {first} .. {last} ({n} acquisitions) -> temporal grid {cfg.start} .. {cfg.end}, "
            f"{self.spec.steps} steps"
        )
        if self.mask is not None:
            lines.append(self.mask.describe())
        tiles = -(-self.width // cfg.chunk_size) * -(-self.height // cfg.chunk_size)
        lines.append(
            f"grid: {self.width} x {self.height} pixels at 10 m (EPSG:{self.epsg}), {tiles} tiles of "
            f"{cfg.chunk_size} px"
        )
        lines.append(
            f"pixels x timestamps: {self.pixels:,} x {self.spec.steps} = {self.pixels * self.spec.steps:,}"
        )
        how = "file sizes" if self.asset_bytes_known else "estimated"
        lines.append(
            f"bytes: {self.asset_bytes / _MB:,.1f} MB in the scenes' asset files ({how}); about "
            f"{self.read_bytes / _MB:,.1f} MB read for the AOI window"
        )
        lines.append(
            f"compute: {self.flops_per_pixel / 1e6:,.2f} MFLOP per pixel series x {self.pixels:,} pixels = "
            f"{self.total_flops:.3g} FLOP (upper bound: clouded pixels are skipped); about "
            f"{_duration(self.est_seconds)} on {self.device}"
        )
        return lines


def _throughput(device: str) -> float:
    cores = os.cpu_count() or 1
    return _ASSUMED_FLOPS["cuda"] if device == "cuda" else _ASSUMED_FLOPS["cpu"] * cores


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _asset_size(asset: pystac.Asset) -> int | None:
    size = asset.extra_fields.get("file:size")
    if isinstance(size, int | float) and size > 0:
        return int(size)
    href = asset.get_absolute_href() or asset.href
    parsed = urlparse(href)
    if parsed.scheme in ("", "file"):
        try:
            return Path(parsed.path if parsed.scheme else href).stat().st_size
        except OSError:
            return None
    return None


def _bytes(items: tuple[pystac.Item, ...], bands: tuple[str, ...], pixels: int) -> tuple[int, bool, int]:
    """(bytes of the asset files used, whether all sizes were known, estimated bytes read in the window)."""
    from geocrop.io.bandmap import s2_band_assets, scl_asset_key
    from geocrop.io.cube_file import CUBE_KEY, is_cube_item

    total, known, n_assets = 0, True, 0
    cube_files = {str(it.assets[CUBE_KEY].href) for it in items if is_cube_item(it)}
    for path in cube_files:  # a local cube: its file, once
        total += Path(path).stat().st_size if Path(path).is_file() else 0
    for item in (it for it in items if not is_cube_item(it)):
        keys = [a.asset for a in s2_band_assets(item, bands).values()]
        scl = scl_asset_key(item)
        keys += [scl] if scl else []
        for key in keys:
            n_assets += 1
            size = _asset_size(item.assets[key])
            if size is None:
                known = False
                size = 2 * 10980 * 10980  # an uncompressed uint16 10 m S2 tile, a generous upper bound
            total += size
    # uint16 per band and pixel, SCL as one more band, per scene (20/60 m bands are read upsampled).
    window = pixels * 2 * (len(bands) + 1) * len(items)
    return total, known, window


def _check_local_assets(items: tuple[pystac.Item, ...], bands: tuple[str, ...]) -> None:
    """`SourceError` naming the scene and file when an asset the run reads is a local file that is absent."""
    from geocrop.errors import SourceError
    from geocrop.io.bandmap import s2_band_assets, scl_asset_key

    for item in items:
        keys = [a.asset for a in s2_band_assets(item, bands).values()]
        scl = scl_asset_key(item)
        for key in [*keys, *([scl] if scl else [])]:
            href = item.assets[key].get_absolute_href() or item.assets[key].href
            parsed = urlparse(href)
            if parsed.scheme not in ("", "file") or href.startswith("/vsi"):
                continue
            path = Path(parsed.path if parsed.scheme else href)
            if not path.is_file():
                raise SourceError(
                    f"scene {item.id}: its {key!r} file {path} does not exist; restore it (download the "
                    "scene again) or remove the item from the catalog"
                )


def _check_bands(spec: BundleSpec, source: Path) -> None:
    unknown = [b for b in spec.bands if b not in S2_BANDS]
    if unknown:
        raise BundleError(
            f"model bundle {source} expects input bands {list(spec.bands)}, which are not Sentinel-2 L2A "
            f"bands ({unknown} unknown); `geocrop map` feeds {list(S2_BANDS)}: use a bundle trained on those"
        )


def _check_size(cfg: MapConfig, *, pixels: int, seconds: float, read_bytes: int | None, device: str) -> None:
    if cfg.yes:
        return
    problems = []
    if pixels > cfg.max_pixels:
        problems.append(f"{pixels:,} pixels (limit {cfg.max_pixels:,.0f})")
    if seconds > cfg.max_hours * 3600:
        problems.append(f"about {_duration(seconds)} of compute on {device} (limit {cfg.max_hours:g} h)")
    if read_bytes is not None and read_bytes > cfg.max_read_gb * 1024**3:
        problems.append(f"about {read_bytes / 1024**3:,.0f} GB to read (limit {cfg.max_read_gb:g} GB)")
    if problems:
        raise InputError(
            f"AOI is too large for this machine: {'; '.join(problems)}; pass `yes` to run anyway, or map a "
            "smaller area (a dry run shows the estimate)",
            param="yes",
        )


def plan_map(
    config: MapConfig,
    *,
    progress: Progress | None = None,
    exact_flops: bool = True,
    clock: StageClock | None = None,
) -> MapPlan:
    """Check the inputs and work out what `map_aoi` would read and compute; reads no pixels.

    ``exact_flops=False`` estimates FLOPs from the parameter count (fast) instead of counting them;
    ``clock`` records how long the scene search took (`geocrop.inference.stages`).
    """
    import torch

    from geocrop.inference.flops import count_flops_per_pixel, estimate_flops_per_pixel
    from geocrop.io.aoi import read_aoi
    from geocrop.io.bundle import read_bundle_metadata
    from geocrop.io.cog import check_writable
    from geocrop.io.cube import s2_geobox
    from geocrop.io.stac import search
    from geocrop.models.device import resolve_device
    from geocrop.models.registry import build_backbone, build_head

    for path in output_paths(config.out, config.html).values():
        check_writable(path)
    model_path = Path(config.model) if config.model is not None else default_bundle()
    spec = parse_bundle_metadata(read_bundle_metadata(model_path), source=str(model_path))
    _check_bands(spec, model_path)
    check_priors(config.class_priors, spec)
    device = resolve_device(config.device).type
    emit(progress, "map", 0.0, "reading the AOI")
    aoi = read_aoi(config.aoi)
    geobox = s2_geobox(aoi)
    mask = None if config.mask is None else open_mask(config.mask, values=config.mask_values, bounds=aoi.bbox)
    width, height = int(geobox.width), int(geobox.height)
    # Random-init modules of the bundle's architecture: FLOPs depend on layer sizes, not weights.
    with torch.device("cpu"):
        backbone = build_backbone(spec.backbone) if spec.backbone is not None else None
        head = build_head(spec.head)
    if exact_flops:
        flops = count_flops_per_pixel(backbone, head, steps=spec.steps, n_bands=len(spec.bands))
    else:
        flops = estimate_flops_per_pixel(backbone, head, steps=spec.steps)
    seconds = flops * width * height / _throughput(device)
    _check_size(config, pixels=width * height, seconds=seconds, read_bytes=None, device=device)
    emit(progress, "map", 0.01, f"searching {config.collection} in {config.stac}")
    with clock.span("search") if clock is not None else contextlib.nullcontext():
        items = _search_scenes(config, aoi, search)
    _check_local_assets(items, spec.bands)
    asset_bytes, known, read_bytes = _bytes(items, spec.bands, width * height)
    _check_size(config, pixels=width * height, seconds=seconds, read_bytes=read_bytes, device=device)
    notice = check_simulated_use(
        read_provenance(spec.metadata),
        items,
        allow=config.allow_simulated_model,
        model=f"model bundle {model_path.name}",
    )
    dates = tuple(
        (it.datetime or it.common_metadata.start_datetime or dt.datetime.min).date() for it in items
    )
    # every check has passed: say if the model learned elsewhere or in another season
    warn_outside(
        read_provenance(spec.metadata),
        area=aoi.geometry,
        start=config.start,
        end=config.end,
        steps=spec.steps,
    )
    return MapPlan(
        config=config,
        model_path=model_path,
        spec=spec,
        aoi=aoi,
        items=items,
        width=width,
        height=height,
        epsg=int(geobox.crs.epsg or 0) if geobox.crs is not None else 0,
        flops_per_pixel=flops,
        device=device,
        asset_bytes=asset_bytes,
        asset_bytes_known=known,
        read_bytes=read_bytes,
        scene_dates=dates,
        notice=notice,
        mask=mask,
    )


def _search_scenes(config: MapConfig, aoi: Any, search: Any) -> tuple[pystac.Item, ...]:
    try:
        return tuple(
            search(
                config.stac,
                collection=config.collection,
                bbox=aoi,
                start=config.start,
                end=config.end,
                max_cloud=config.max_cloud,
                allow_any_asset_href=config.allow_any_asset_href,
            )
        )
    except NoDataError:
        pass
    # Nothing in range: say whether the AOI lies in any scene at all, the more useful fix.
    try:
        search(
            config.stac,
            collection=config.collection,
            bbox=aoi,
            start="1970-01-01",
            end="2100-01-01",
            limit=1,
            allow_any_asset_href=config.allow_any_asset_href,
        )
    except NoDataError:
        raise NoDataError(
            f"AOI {aoi.name} lies in no {config.collection} scene of {config.stac}; check the AOI's location "
            "(lon/lat order, CRS) or the source and collection"
        ) from None
    cloud = f" with cloud cover <= {config.max_cloud:g}%" if config.max_cloud is not None else ""
    raise NoDataError(
        f"no {config.collection} scenes over AOI {aoi.name} from {config.start} to {config.end}{cloud} in "
        f"{config.stac}; widen the dates or raise `max_cloud`",
        param="max_cloud",
    )
