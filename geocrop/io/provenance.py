"""What trained a model bundle, recorded in the bundle and carried to every map made with it.

A bundle's ``provenance`` record (bundle metadata key ``"provenance"``; JSON, no absolute paths)::

    {"data": "simulated" | "real" | "unknown",   # what the labels and imagery were
     "labels": "labels.geojson",                 # the labels' file NAME only
     "season": ["2021-01-01", "2021-12-31"],     # the training season (temporal grid)
     "region": [west, south, east, north] | None, # lon/lat bbox of the labels file's samples
     "extent": {"hull": [[lon, lat], ...], "samples": n} | None,  # hull of the training samples
     "classes": ["maize", ...],
     "accuracy": {"metric": ..., "value": ..., "protocol": "..."} | None}

``data`` is ``"simulated"`` when the labels or the imagery carry the simulator's marks
(`geocrop.sim.sample_area` writes ``geocrop:simulated`` into its STAC items and labels file and a
``geocrop-sample.json`` beside them), ``"real"`` when the labels file was read and carries none (real here
means "not made by geocrop's simulator"), and ``"unknown"`` for bundles written before provenance existed.

Mapping with a simulated model is a demo: `check_simulated_use` refuses it over anything but simulated
scenes unless the caller says so explicitly, and every output says `SIMULATED_NOTICE`.

``extent`` (`geocrop.io.extent`) is what `geocrop map` and `geocrop predict` compare an area with (and
``season`` its dates) to warn when a model is used outside where and when it learned.

The core is standard library only; reading the region from GeoPackage/Shapefile or Parquet imports
pyogrio/pyproj/pyarrow lazily and gives ``None`` when that fails (the region is informative, not a check).
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from geocrop.errors import InputError

__all__ = [
    "SIMULATED_KEY",
    "SIMULATED_NOTICE",
    "DataKind",
    "check_simulated_use",
    "describe_provenance",
    "file_sha256",
    "is_simulated",
    "items_are_simulated",
    "labels_are_simulated",
    "public_source",
    "read_provenance",
    "training_provenance",
]

DataKind = Literal["simulated", "real", "unknown"]

#: The property the simulator sets on its STAC items and labels file.
SIMULATED_KEY = "geocrop:simulated"
#: What every output of a map made with a simulated model says (terminal, STAC item, web page, QGIS log).
SIMULATED_NOTICE = "model trained on simulated data"
#: The simulator's marker file in the folder it writes (`geocrop.sim.sample_area.MARKER_NAME`).
_SAMPLE_MARKER = "geocrop-sample.json"


def _local_path(source: str | os.PathLike[str] | None) -> Path | None:
    if source is None:
        return None
    text = os.fspath(source)
    if "://" in text and not text.startswith("file://"):
        return None
    return Path(text.removeprefix("file://"))


def _marked_folder(path: Path) -> bool:
    """True when ``path`` (a file or folder) lies in a folder the simulator marked as simulated."""
    folder = path if path.is_dir() else path.parent
    for candidate in (folder, *list(folder.parents)[:2]):
        try:
            marker = json.loads((candidate / _SAMPLE_MARKER).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(marker, dict) and marker.get("simulated") is True:
            return True
    return False


def labels_are_simulated(path: str | os.PathLike[str]) -> bool:
    """True when a labels file carries the simulator's mark (GeoJSON member or the sample-area marker)."""
    labels = Path(path)
    if _marked_folder(labels):
        return True
    if labels.suffix.lower() in (".geojson", ".json"):
        try:
            doc = json.loads(labels.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return isinstance(doc, dict) and doc.get(SIMULATED_KEY) is True
    return False


def _source_is_simulated(source: str | os.PathLike[str] | None) -> bool:
    path = _local_path(source)
    return path is not None and path.exists() and _marked_folder(path)


def _geojson_bbox(path: Path) -> list[float] | None:
    doc = json.loads(path.read_text(encoding="utf-8"))
    xs: list[float] = []
    ys: list[float] = []

    def walk(coords: Any) -> None:
        if isinstance(coords, list | tuple) and coords and isinstance(coords[0], int | float):
            xs.append(float(coords[0]))
            ys.append(float(coords[1]))
        elif isinstance(coords, list | tuple):
            for c in coords:
                walk(c)

    features = doc.get("features", [doc]) if isinstance(doc, dict) else []
    for feature in features:
        geometry = feature.get("geometry", feature) if isinstance(feature, dict) else None
        if isinstance(geometry, dict):
            walk(geometry.get("coordinates"))
    if not xs:
        return None
    named = ((doc.get("crs") or {}).get("properties") or {}) if isinstance(doc, dict) else {}
    crs = str(named.get("name", ""))
    box = [min(xs), min(ys), max(xs), max(ys)]
    if crs and not any(tag in crs.upper() for tag in ("CRS84", "4326")):
        return _to_lonlat(box, crs)
    return box


def _to_lonlat(box: Sequence[float], crs: Any) -> list[float] | None:
    from pyproj import Transformer

    minx, miny, maxx, maxy = box
    transformer = Transformer.from_crs(crs, 4326, always_xy=True)
    west, south, east, north = transformer.transform_bounds(minx, miny, maxx, maxy)
    return [west, south, east, north]


def _table_bbox(path: Path) -> list[float] | None:
    if path.suffix.lower() in (".csv", ".txt"):
        with path.open(newline="", encoding="utf-8") as fh:
            rows = [(r.get("lon"), r.get("lat")) for r in csv.DictReader(fh)]
        pairs = [(float(x), float(y)) for x, y in rows if x not in (None, "") and y not in (None, "")]
    else:
        import pyarrow.parquet as pq

        names = set(pq.read_schema(path).names)
        if not {"lon", "lat"} <= names:
            return None
        table = pq.read_table(path, columns=["lon", "lat"])
        pairs = list(zip(table["lon"].to_pylist(), table["lat"].to_pylist(), strict=True))
        pairs = [(float(x), float(y)) for x, y in pairs if x is not None and y is not None]
    if not pairs:
        return None
    lons, lats = zip(*pairs, strict=True)
    return [min(lons), min(lats), max(lons), max(lats)]


def _vector_bbox(path: Path) -> list[float] | None:
    import pyogrio

    info = pyogrio.read_info(path)
    bounds = info.get("total_bounds")
    if bounds is None or info.get("crs") is None:
        return None
    return _to_lonlat([float(v) for v in bounds], info["crs"])


def labels_region(path: str | os.PathLike[str]) -> list[float] | None:
    """The lon/lat bbox ``[west, south, east, north]`` of a labels file's samples, or None if unreadable."""
    labels = Path(path)
    suffix = labels.suffix.lower()
    try:
        if suffix in (".geojson", ".json"):
            box = _geojson_bbox(labels)
        elif suffix in (".csv", ".txt", ".parquet", ".pq", ".geoparquet"):
            box = _table_bbox(labels)
            if box is None and suffix == ".geoparquet":
                box = _vector_bbox(labels)
        else:
            box = _vector_bbox(labels)
    except Exception:  # the region is informative: an unreadable one is recorded as unknown
        return None
    if box is None or not all(math.isfinite(v) for v in box):
        return None
    return [round(v, 6) for v in box]


def _accuracy(value: float | None, metric: str, protocol: str) -> dict[str, Any] | None:
    if value is None or not math.isfinite(float(value)):
        return None
    return {"metric": metric, "value": round(float(value), 4), "protocol": protocol}


def training_provenance(
    source: Any,
    *,
    class_names: Iterable[str],
    grid: Any = None,
    accuracy: float | None = None,
    metric: str = "overall_accuracy",
    protocol: str = "pixels of held-out validation parcels (split by parcel), after the last epoch",
    data: DataKind | None = None,
    sample_ids: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The provenance record of a bundle trained from ``source`` (a `geocrop.data.labelled.LabelSource`
    or anything with ``.path``, ``.s2``, ``.start``, ``.end``). ``grid`` (a ``TemporalGrid``) gives the
    season when the source has no dates; ``data`` overrides the detection; ``sample_ids``: the series
    the model learned from (a samples table's ids), whose locations make the ``extent`` (default: all)."""
    from geocrop.io.extent import sample_points, training_extent

    labels = Path(source.path)
    s2 = getattr(source, "s2", None)
    if data is None:
        if labels_are_simulated(labels) or _source_is_simulated(s2):
            data = "simulated"
        else:
            data = "real" if labels.exists() else "unknown"
    start, end = getattr(source, "start", None), getattr(source, "end", None)
    if (start is None or end is None) and grid is not None:
        start, end = start or grid.start, end or grid.end
    season = [start.isoformat(), end.isoformat()] if start is not None and end is not None else None
    return {
        "data": data,
        "labels": labels.name,
        "season": season,
        "region": labels_region(labels),
        "extent": training_extent(sample_points(labels, ids=sample_ids)) if labels.exists() else None,
        "classes": [str(c) for c in class_names],
        "accuracy": _accuracy(accuracy, metric, protocol),
    }


def read_provenance(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The provenance record of a bundle's metadata, normalised (``data: "unknown"`` when absent)."""
    raw = metadata.get("provenance")
    prov: dict[str, Any] = dict(raw) if isinstance(raw, Mapping) else {}
    if prov.get("data") not in ("simulated", "real", "unknown"):
        prov["data"] = "unknown"
    labels = prov.get("labels")
    prov["labels"] = Path(str(labels)).name if labels else None  # never an absolute path
    for key in ("season", "region", "extent", "accuracy"):
        prov.setdefault(key, None)
    if not prov.get("classes"):
        classes = metadata.get("classes") or []
        prov["classes"] = [c.get("name") if isinstance(c, Mapping) else str(c) for c in classes]
    return prov


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The hex SHA-256 of a file (read in 1 MiB chunks), e.g. a model bundle for the STAC item."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def public_source(source: str | os.PathLike[str] | None) -> str | None:
    """A source as outputs may show it: URLs unchanged, local paths reduced to their last two parts."""
    path = _local_path(source)
    if path is None:
        return None if source is None else os.fspath(source)
    parts = path.parts[-2:] if path.name in ("catalog.json", "collection.json") else path.parts[-1:]
    return "/".join(parts)


def describe_provenance(provenance: Mapping[str, Any]) -> str:
    """One line for people: what data, which labels, season, region and accuracy."""
    data = provenance.get("data", "unknown")
    if data == "unknown" and not provenance.get("labels"):
        return "unknown data (the bundle records no provenance)"
    parts = [f"{data} data"]
    if provenance.get("labels"):
        parts.append(f"labels {provenance['labels']}")
    season = provenance.get("season")
    if season:
        parts.append(f"season {season[0]}..{season[1]}")
    region = provenance.get("region")
    if region:
        parts.append("region lon {:.3f}..{:.3f}, lat {:.3f}..{:.3f}".format(*region[0::2], *region[1::2]))
    accuracy = provenance.get("accuracy")
    if accuracy:
        parts.append(f"{accuracy['metric']} {accuracy['value']:.3f} ({accuracy['protocol']})")
    return "; ".join(parts)


def is_simulated(provenance: Mapping[str, Any]) -> bool:
    """True for a bundle trained on simulated data."""
    return provenance.get("data") == "simulated"


def items_are_simulated(items: Sequence[Any]) -> bool:
    """True when there is at least one scene and every one carries ``geocrop:simulated: true``."""
    return bool(items) and all(getattr(it, "properties", {}).get(SIMULATED_KEY) is True for it in items)


def check_simulated_use(
    provenance: Mapping[str, Any], items: Sequence[Any], *, allow: bool, model: str = "the model"
) -> str | None:
    """Refuse a simulated model over real scenes unless ``allow``; the notice to show, or None.

    A bundle trained on simulated data maps the simulated sample area (scenes marked
    ``geocrop:simulated``) freely; over any other scenes it would draw a confident map that means nothing,
    so that needs ``allow``. Returns `SIMULATED_NOTICE` whenever the model is simulated.
    """
    if not is_simulated(provenance):
        return None
    if not allow and not items_are_simulated(items):
        raise InputError(
            f"{model} was trained on simulated data and these scenes are not the simulated sample area: "
            f"its map would mean nothing; train a model on real labels (`geocrop train`), or pass "
            "`allow_simulated_model` to map anyway",
            param="allow_simulated_model",
        )
    return SIMULATED_NOTICE
