"""Field-level results: a crop map summarised per parcel (majority class, its share, mean probabilities).

For every parcel the pixels of the map whose **centre** lies inside the parcel are its pixels (GDAL's
rasterisation rule), and the parcel gets (shares and probabilities in 0..1):

* ``pixels``: its map pixels; ``clear_share``: the share of them with a class (not 255);
  ``map_cover``: the share of the parcel's pixels on the map's grid that lie on the map at all;
* ``class_value``/``class_name``: the majority class of its clear pixels (ties: the lower value), and
  ``class_share``: that class's share of the clear pixels; ``confidence``: their mean confidence;
* with probability bands (`geocrop map --probabilities`): ``prob_<class>``, the mean probability of each
  class over the clear pixels, and ``prob_class_value``/``prob_class_name``, the class of highest mean.

A parcel without any clear map pixel gets ``pixels`` (maybe 0) and nulls. The parcel's own attributes and
geometry (in its own CRS) are kept; geometries are reprojected to the map's CRS only to find the pixels.

Streaming: parcels are read in Arrow batches (`pyogrio.open_arrow`, or the row groups of a GeoParquet
file), each parcel reads only its own window of the map, and each batch is appended to the output, so
memory depends on the batch size and the largest parcel, not on the number of parcels. The output
(GeoPackage or GeoParquet, by suffix) is written beside its path and moved into place at the end.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import shapely
from pyproj import CRS as ProjCRS
from pyproj import Transformer
from rasterio.features import geometry_mask
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from geocrop.core.progress import Progress, emit
from geocrop.errors import InputError
from geocrop.io.atomic import atomic_path
from geocrop.io.classes import NODATA
from geocrop.io.map_reader import MapLayers, MapSource, open_map
from geocrop.io.stac_item import class_slug
from geocrop.post.parcels import (
    ParcelBatches,
    check_overlap,
    check_polygons,
    empty_message,
    no_overlap_message,
    open_parcels,
)

__all__ = ["OUTPUT_SUFFIXES", "FieldsResult", "field_results"]

#: Output suffix -> format.
OUTPUT_SUFFIXES = {".gpkg": "GPKG", ".parquet": "Parquet", ".geoparquet": "Parquet"}


@dataclass(frozen=True)
class FieldsResult:
    """Where the per-parcel table went: ``parcels`` rows, ``with_pixels`` of them with a clear map pixel;
    ``probabilities``: whether mean probability columns were written."""

    out: Path
    parcels: int
    with_pixels: int
    probabilities: bool
    #: The web page (``html`` of `geocrop.api.field_results`), None when none was asked for.
    html: Path | None = None


def _window_of(geom: Any, layers: MapLayers) -> Window:
    """The pixel window (unclipped) that holds ``geom`` on the map's grid."""
    minx, miny, maxx, maxy = shapely.bounds(geom)
    inv = ~layers.transform
    cols, rows = zip(*(inv * (x, y) for x in (minx, maxx) for y in (miny, maxy)), strict=True)
    c0, r0 = math.floor(min(cols)), math.floor(min(rows))
    return Window(c0, r0, max(1, math.ceil(max(cols)) - c0), max(1, math.ceil(max(rows)) - r0))


def _centres_inside(geom: Any, full: Window, layers: MapLayers) -> npt.NDArray[np.bool_]:
    """(h, w) mask of the window's pixels whose centre lies inside ``geom``: shapely's vectorised test for
    small windows (most parcels; ~20x faster than a rasterisation call), GDAL's rasteriser for large ones."""
    h, w = int(full.height), int(full.width)
    affine = window_transform(full, layers.transform)
    if h * w > 65_536:
        return geometry_mask([geom], out_shape=(h, w), transform=affine, invert=True)
    cols, rows = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    xs = affine.c + affine.a * cols + affine.b * rows
    ys = affine.f + affine.d * cols + affine.e * rows
    shapely.prepare(geom)
    return np.asarray(shapely.contains_xy(geom, xs, ys), dtype=bool)


def _parcel_stats(geom: Any, layers: MapLayers, src: MapSource, n_classes: int) -> dict[str, Any] | None:
    """Pixel statistics of one parcel (in map CRS), or None when it covers no pixel of the map's grid."""
    if geom is None or shapely.is_empty(geom):
        return None
    full = _window_of(geom, layers)
    inside = _centres_inside(geom, full, layers)
    on_grid = int(inside.sum())
    r0, c0 = max(0, int(full.row_off)), max(0, int(full.col_off))
    r1 = min(layers.height, int(full.row_off + full.height))
    c1 = min(layers.width, int(full.col_off + full.width))
    if on_grid == 0:
        return None
    stats: dict[str, Any] = {"pixels": 0, "map_cover": 0.0}
    if r1 <= r0 or c1 <= c0:
        return stats
    sub = inside[
        r0 - int(full.row_off) : r1 - int(full.row_off), c0 - int(full.col_off) : c1 - int(full.col_off)
    ]
    pixels = int(sub.sum())
    stats.update(pixels=pixels, map_cover=pixels / on_grid)
    if pixels == 0:
        return stats
    part = src.read(Window(c0, r0, c1 - c0, r1 - r0))
    cls = part.classes[sub]
    clear = cls != NODATA
    n_clear = int(clear.sum())
    stats["clear_share"] = n_clear / pixels
    if n_clear == 0:
        return stats
    counts = np.bincount(cls[clear], minlength=256)
    stats["class_value"] = int(np.argmax(counts))
    stats["class_share"] = float(counts.max()) / n_clear
    if part.confidence is not None:
        conf = part.confidence[sub][clear]
        conf = conf[conf != NODATA]
        stats["confidence"] = float(conf.mean()) / 100.0 if conf.size else None
    if part.probabilities is not None:
        probs = part.probabilities[:, sub][:, clear]
        ok = np.isfinite(probs).all(axis=0)
        if ok.any():
            stats["probs"] = probs[:, ok].mean(axis=1, dtype=np.float64)
    return stats


def _result_columns(rows: list[dict[str, Any] | None], layers: MapLayers) -> dict[str, pa.Array]:
    """The computed columns of one batch, with fixed Arrow types (every batch has the same schema)."""
    names = {c.value: c.name for c in layers.classes}

    def col(key: str, kind: pa.DataType, fn: Callable[[dict[str, Any]], Any] | None = None) -> pa.Array:
        values = [None if r is None else (fn(r) if fn else r.get(key)) for r in rows]
        return pa.array(values, type=kind)

    cols = {
        "class_value": col("class_value", pa.int16()),
        "class_name": col(
            "", pa.string(), lambda r: names.get(r["class_value"]) if "class_value" in r else None
        ),
        "class_share": col("class_share", pa.float64()),
        "confidence": col("confidence", pa.float64()),
        "pixels": pa.array([0 if r is None else r["pixels"] for r in rows], type=pa.int64()),
        "clear_share": col("clear_share", pa.float64()),
        "map_cover": col("map_cover", pa.float64()),
    }
    if layers.has_probabilities:
        for i, c in enumerate(layers.classes):
            means = [None if r is None or "probs" not in r else float(r["probs"][i]) for r in rows]
            cols[f"prob_{class_slug(c.name)}"] = pa.array(means, type=pa.float64())
        best = [
            None if r is None or "probs" not in r else layers.classes[int(np.argmax(r["probs"]))]
            for r in rows
        ]
        cols["prob_class_value"] = pa.array([None if b is None else b.value for b in best], type=pa.int16())
        cols["prob_class_name"] = pa.array([None if b is None else b.name for b in best], type=pa.string())
    return cols


def _out_path(out: str | os.PathLike[str], parcels: Path, layers: MapLayers) -> Path:
    path = Path(out).expanduser()
    if path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise InputError(
            f"`out` {path}: give a GeoPackage (.gpkg) or GeoParquet (.parquet) name, e.g. "
            f"{path.with_suffix('.gpkg').name}",
            param="out",
        )
    if path.is_dir():
        raise InputError(
            f"`out` {path} is a folder; give a file name such as {path / 'fields.gpkg'}", param="out"
        )
    if not path.parent.is_dir():
        raise InputError(f"`out` {path}: folder {path.parent} does not exist; create it", param="out")
    same = {
        os.path.realpath(p)
        for p in (parcels, layers.path, *(() if layers.confidence is None else (layers.confidence,)))
    }
    if os.path.realpath(path) in same:
        raise InputError(f"`out` {path} is one of the inputs; give the results another name", param="out")
    return path


def field_results(
    *,
    map: str | os.PathLike[str],
    parcels: str | os.PathLike[str],
    out: str | os.PathLike[str],
    columns: Sequence[str] | None = None,
    batch_size: int = 10_000,
    progress: Progress | None = None,
) -> FieldsResult:
    """Summarise the crop map ``map`` over every parcel of ``parcels`` into ``out`` (module docstring).

    ``columns``: the parcel attributes to keep (default all); ``batch_size``: parcels per batch (memory).
    Raises `InputError` for a file that is not a geocrop map, unreadable parcels, parcels that do not
    overlap the map, or a bad output name; nothing is written then, and an existing ``out`` stays.
    """
    layers = open_map(map)
    parcels_path = Path(parcels).expanduser()
    path = _out_path(out, parcels_path, layers)
    if batch_size < 1:
        raise InputError(f"`batch_size` {batch_size}: give a positive number of parcels", param="batch_size")
    with open_parcels(parcels_path, batch_size) as source:
        return _summarise(layers, source, parcels_path, path, columns, progress)


def _summarise(
    layers: MapLayers,
    source: ParcelBatches,
    parcels_path: Path,
    path: Path,
    columns: Sequence[str] | None,
    progress: Progress | None,
) -> FieldsResult:
    check_overlap(source, layers, parcels_path)
    to_map = Transformer.from_crs(ProjCRS.from_user_input(source.crs), layers.crs.to_wkt(), always_xy=True)
    n_classes = len(layers.classes)
    written = with_pixels = 0
    fmt = OUTPUT_SUFFIXES[path.suffix.lower()]
    emit(progress, "fields", 0.0, f"reading {source.count if source.count is not None else 'the'} parcels")
    with atomic_path(path, what="`out`") as tmp, MapSource(layers) as src:
        writer: Any = None
        try:
            for batch in source.batches:
                keep = [
                    n
                    for n in batch.schema.names
                    if n != source.geometry and (columns is None or n in columns)
                ]
                if columns is not None and written == 0:
                    missing = sorted(set(columns) - set(batch.schema.names))
                    if missing:
                        raise InputError(
                            f"`columns` {missing} are not attributes of {parcels_path.name}; "
                            f"choose from {[n for n in batch.schema.names if n != source.geometry]}",
                            param="columns",
                        )
                geoms = shapely.from_wkb(batch.column(source.geometry).to_numpy(zero_copy_only=False))
                check_polygons(geoms, parcels_path)
                geoms = shapely.transform(
                    geoms, lambda xy: np.column_stack(to_map.transform(xy[:, 0], xy[:, 1]))
                )
                rows = [_parcel_stats(g, layers, src, n_classes) for g in geoms]
                with_pixels += sum(1 for r in rows if r is not None and "class_value" in r)
                computed = _result_columns(rows, layers)
                clash = sorted(set(computed) & set(keep))
                if clash:
                    raise InputError(
                        f"`parcels` already have columns {clash}; rename them or keep others with `columns`",
                        param="parcels",
                    )
                table = pa.table(
                    {
                        **{n: batch.column(n) for n in keep},
                        **computed,
                        "geometry": batch.column(source.geometry),
                    }
                )
                writer = _write(table, tmp, fmt, writer, source.crs, layer=path.stem)
                written += len(rows)
                if source.count:
                    done = min(written / source.count, 1.0)
                    emit(
                        progress,
                        "fields",
                        done,
                        f"{written} of {source.count} parcels",
                        step=written,
                        total=source.count,
                    )
            if written and with_pixels == 0 and writer is not None:
                raise InputError(no_overlap_message(parcels_path, layers), param="parcels")
            if written == 0:
                raise InputError(empty_message(parcels_path), param="parcels")
        finally:
            if writer is not None and fmt == "Parquet":
                writer.close()
    emit(progress, "fields", 1.0, "done")
    return FieldsResult(
        out=path, parcels=written, with_pixels=with_pixels, probabilities=layers.has_probabilities
    )


def _fid_option(columns: Sequence[str]) -> dict[str, str] | None:
    """A GeoPackage takes a column named ``fid`` as its unique integer feature id, so parcels whose ``fid``
    repeats (or is text) could not be written; their ``fid`` is kept as an attribute and the feature id
    gets a name of its own."""
    names = {c.lower() for c in columns}
    if "fid" not in names:
        return None
    own = "geocrop_fid"
    while own in names:
        own = "_" + own
    return {"FID": own}


def _write(table: pa.Table, tmp: Path, fmt: str, writer: Any, crs: str, *, layer: str) -> Any:
    """Append ``table`` to the temporary output; returns the open Parquet writer (or True for GPKG)."""
    if fmt == "GPKG":
        import pyogrio

        with warnings.catch_warnings():  # the temporary's name ends in .partial, not .gpkg
            warnings.filterwarnings("ignore", message=".*(extension should be|non conformant file extension)")
            pyogrio.write_arrow(
                table,
                tmp,
                driver="GPKG",
                layer=layer,
                geometry_name="geometry",
                geometry_type="Unknown",
                crs=crs,
                append=writer is not None,
                layer_options=_fid_option(table.column_names),
            )
        return True
    import pyarrow.parquet as pq

    if writer is None:
        proj = ProjCRS.from_user_input(crs).to_json_dict()
        geo = {
            "version": "1.0.0",
            "primary_column": "geometry",
            "columns": {"geometry": {"encoding": "WKB", "geometry_types": [], "crs": proj}},
        }
        schema = table.schema.with_metadata({b"geo": json.dumps(geo).encode()})
        writer = pq.ParquetWriter(tmp, schema)
    writer.write_table(table.cast(writer.schema))
    return writer
