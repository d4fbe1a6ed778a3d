"""Write a simulated sample area to disk: COGs, a static STAC catalog, parcel labels and an AOI.

The folder looks like real provider data (see `geocrop.io.catalog_writer`), but every pixel is made by
`geocrop.sim.scene`: it is a **test instrument**, and `geocrop-sample.json` in it says so.

Writing is atomic: everything goes into a hidden sibling folder that is renamed into place only when
complete, with the marker file ``geocrop-sample.json`` (config and counts) written last. A rerun with the
same config reuses a complete folder; an interrupted run left only its hidden partial folder, which the
next run removes before it rebuilds.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry import Polygon, mapping

from geocrop.core.progress import Progress, emit
from geocrop.errors import OutputError
from geocrop.io.catalog_writer import PLANET_COLLECTION, S2_COLLECTION, StaticCatalogWriter
from geocrop.sim.scene import SceneSimulator, SimulationConfig

__all__ = ["MARKER_NAME", "SampleArea", "aoi_document", "aoi_geometry", "write_sample_area"]

log = logging.getLogger(__name__)

MARKER_NAME = "geocrop-sample.json"
_FORMAT = 1
#: The AOI polygon as fractions (across, down) of the area from its upper-left corner.
_AOI_FRACTIONS = ((0.12, 0.14), (0.84, 0.10), (0.90, 0.78), (0.58, 0.90), (0.10, 0.85))


@dataclass(frozen=True)
class SampleArea:
    """Paths of a written sample area; ``reused`` is True when an existing complete one was kept."""

    root: Path
    catalog: Path
    labels: Path
    field: Path
    config: SimulationConfig
    n_s2_items: int
    n_planet_items: int
    reused: bool
    seconds: float
    s2_collection: str = S2_COLLECTION
    planet_collection: str = PLANET_COLLECTION

    @property
    def s2_collection_path(self) -> Path:
        return self.root / S2_COLLECTION / "collection.json"

    @property
    def planet_collection_path(self) -> Path:
        return self.root / PLANET_COLLECTION / "collection.json"


def aoi_geometry(config: SimulationConfig) -> Polygon:
    """The sample AOI (EPSG:4326, coordinates rounded to 1e-7 degrees): a pentagon well inside the area."""
    x0, y0 = config.origin
    xs = [x0 + u * 10.0 * config.width for u, _ in _AOI_FRACTIONS]
    ys = [y0 - v * 10.0 * config.height for _, v in _AOI_FRACTIONS]
    lon, lat = Transformer.from_crs(config.epsg, 4326, always_xy=True).transform(xs, ys)
    ring = [(round(float(a), 7), round(float(b), 7)) for a, b in zip(lon, lat, strict=True)]
    return shapely.geometry.polygon.orient(Polygon(ring), sign=1.0)  # counter-clockwise, as RFC 7946


def aoi_document(config: SimulationConfig) -> dict[str, Any]:
    """``field.geojson`` of ``config``: a FeatureCollection holding the `aoi_geometry` polygon."""
    feature = {
        "type": "Feature",
        "properties": {"name": "geocrop sample field area", "simulated": True},
        "geometry": mapping(aoi_geometry(config)),
    }
    return {"type": "FeatureCollection", "name": "field", "features": [feature]}


def write_sample_area(
    out_dir: str | os.PathLike[str],
    config: SimulationConfig | None = None,
    *,
    progress: Progress | None = None,
) -> SampleArea:
    """Simulate ``config`` (default `SimulationConfig()`) and write it under ``out_dir``.

    Writes ``catalog.json`` with collections ``sentinel-2-l2a`` and ``planetscope`` (one COG per asset),
    ``labels.geojson`` (parcels: ``parcel_id``, ``crop``; EPSG:4326) and ``field.geojson`` (the AOI).
    Reuses a complete folder made with the same config; replaces one made with another config; refuses
    (`OutputError`) to overwrite a non-empty folder that is not a sample area.
    """
    config = config or SimulationConfig()
    started = time.perf_counter()
    root = Path(out_dir).expanduser().absolute()
    marker = _read_marker(root)
    if marker is not None and marker.get("format") == _FORMAT and marker.get("config") == config.to_dict():
        log.info("reusing the simulated sample area in %s", root)
        return _area(root, config, marker, reused=True, started=started)
    if root.exists() and (not root.is_dir() or (marker is None and any(root.iterdir()))):
        raise OutputError(
            f"sample area {root}: exists and is not a geocrop sample area; choose another `out` or remove it",
            param="out",
        )
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_partials(root)
        tmp = root.parent / f".{root.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
    except OSError as exc:
        raise OutputError(
            f"sample area {root}: cannot create it ({exc}); choose a writable `out`", param="out"
        ) from exc
    try:
        counts = _render(tmp, config, progress)
        payload = {
            "format": _FORMAT,
            "config": config.to_dict(),
            "simulated": True,
            "note": "Simulated by geocrop.sim.scene (a test instrument): not real satellite data.",
            **counts,
        }
        (tmp / MARKER_NAME).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        _publish(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return _area(root, config, payload, reused=False, started=started)


def _render(tmp: Path, config: SimulationConfig, progress: Progress | None) -> dict[str, int]:
    sim = SceneSimulator(config)
    writer = StaticCatalogWriter(
        tmp,
        epsg=config.epsg,
        catalog_id="geocrop-sample-area",
        description="SIMULATED Sentinel-2 L2A and PlanetScope scenes over synthetic parcels (test data)",
    )
    # Day by day, so both sensors of one day share the simulator's ground and sky caches.
    events = sorted(
        [(d, 0, i) for i, d in enumerate(sim.s2_days)] + [(d, 1, i) for i, d in enumerate(sim.planet_days)]
    )
    try:
        for k, (_, sensor, i) in enumerate(events):
            if sensor == 0:
                s2 = sim.render_s2(i)
                item_id = f"S2{s2.platform[-1].upper()}_SIM_{s2.time:%Y%m%d}_0_L2A"
                writer.add_s2(
                    item_id=item_id, time=s2.time, dn=s2.dn, scl=s2.scl, transform=config.transform,
                    properties={
                        "platform": s2.platform, "constellation": "sentinel-2", "instruments": ["msi"],
                        "gsd": 10, "eo:cloud_cover": round(s2.cloud_cover, 3),
                        "s2:processing_baseline": "05.00", "s2:product_type": "S2MSI2A",
                        "s2:nodata_pixel_percentage": round(s2.nodata_percentage, 3),
                        "geocrop:simulated": True,
                    },
                )  # fmt: skip
            else:
                pl = sim.render_planet(i)
                item_id = f"{pl.time:%Y%m%d_%H%M%S}_00_{pl.satellite}"
                writer.add_planet(
                    item_id=item_id, time=pl.time, dn=pl.dn, udm2=pl.udm2, transform=config.planet_transform,
                    properties={
                        "platform": pl.satellite, "constellation": "planetscope", "instruments": ["PSB.SD"],
                        "gsd": round(10.0 / 3.0, 3), "pl:item_type": "PSScene",
                        "eo:cloud_cover": round(pl.cloud_cover, 3),
                        "pl:clear_percent": round(pl.clear_percentage, 3), "geocrop:simulated": True,
                    },
                )  # fmt: skip
            if k % 25 == 0 or k == len(events) - 1:
                done, n = k + 1, len(events)
                emit(progress, "simulate", 0.95 * done / n, f"scene {done}/{n}", step=done, total=n)
        _write_geojson(tmp / "labels.geojson", _label_features(sim, config), name="labels")
        (tmp / "field.geojson").write_text(
            json.dumps(aoi_document(config), indent=2) + "\n", encoding="utf-8"
        )
        writer.save(
            collection_descriptions={
                S2_COLLECTION: "SIMULATED Sentinel-2 L2A (12 bands at 10 m, SCL at 10 m); geocrop test data",
                PLANET_COLLECTION: "SIMULATED PlanetScope PSScene 4-band SR with UDM2; geocrop test data",
            }
        )
    except BaseException:
        writer.abort()
        raise
    emit(progress, "simulate", 1.0, "catalog written")
    return {
        "n_s2_items": len(sim.s2_days),
        "n_planet_items": len(sim.planet_days),
        "n_parcels": len(sim.parcels),
    }


def _label_features(sim: SceneSimulator, config: SimulationConfig) -> list[dict[str, Any]]:
    to_wgs84 = Transformer.from_crs(config.epsg, 4326, always_xy=True)

    def project(xy: np.ndarray) -> np.ndarray:
        lon, lat = to_wgs84.transform(xy[:, 0], xy[:, 1])
        return np.round(np.column_stack([lon, lat]), 9)

    features = []
    for p in sim.parcels:
        geom = shapely.geometry.polygon.orient(shapely.transform(p.geometry, project), sign=1.0)
        features.append(
            {
                "type": "Feature",
                "properties": {
                    "parcel_id": p.parcel_id,
                    "crop": p.crop,
                    "crop_index": p.crop_index,
                    "area_ha": round(p.geometry.area / 1e4, 4),
                },
                "geometry": mapping(geom),
            }
        )
    return features


def _write_geojson(path: Path, features: list[dict[str, Any]], *, name: str) -> None:
    # The simulator's mark: `geocrop.io.provenance` records models trained on this file as simulated.
    doc = {"type": "FeatureCollection", "name": name, "geocrop:simulated": True, "features": features}
    path.write_text(json.dumps(doc) + "\n", encoding="utf-8")


def _read_marker(root: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((root / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _remove_stale_partials(root: Path) -> None:
    """Remove hidden partial folders of ``root`` left by runs whose process is gone."""
    for stale in root.parent.glob(f".{root.name}.partial-*"):
        try:
            pid = int(stale.name.rsplit("-", 2)[-2])
        except ValueError:
            continue
        if pid != os.getpid() and not _alive(pid):
            shutil.rmtree(stale, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _publish(tmp: Path, root: Path) -> None:
    """Move the finished ``tmp`` onto ``root``; an older area (other config) or empty folder is replaced."""
    old = None
    if root.exists():
        old = root.parent / f".{root.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        os.rename(root, old)
    try:
        os.rename(tmp, root)
    except OSError:
        # Another run published the same area meanwhile: keep theirs if it is complete.
        if _read_marker(root) is None:
            raise
        shutil.rmtree(tmp, ignore_errors=True)
    if old is not None:
        with contextlib.suppress(OSError):
            shutil.rmtree(old)


def _area(
    root: Path, config: SimulationConfig, marker: dict[str, Any], *, reused: bool, started: float
) -> SampleArea:
    return SampleArea(
        root=root,
        catalog=root / "catalog.json",
        labels=root / "labels.geojson",
        field=root / "field.geojson",
        config=config,
        n_s2_items=int(marker.get("n_s2_items", 0)),
        n_planet_items=int(marker.get("n_planet_items", 0)),
        reused=reused,
        seconds=time.perf_counter() - started,
    )
