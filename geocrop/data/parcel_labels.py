"""Parcels read as labels for training: a vector file -> one row per parcel with its id and class.

Checked before any imagery is searched, each with its fix: an empty file, a missing class or id column,
no CRS, a class column empty in every parcel, no geometry, and an id shared by parcels of different
classes (they would all take one class). Several polygons that share an id and a class are one parcel.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from geocrop.data.samples import column_text
from geocrop.errors import InputError, SourceError

__all__ = ["read_parcels"]


def read_parcels(path: Path, *, class_column: str, id_column: str | None = None) -> Any:
    """Parcels as a GeoDataFrame with columns ``class`` and ``parcel`` (str); checks columns and CRS."""
    import geopandas as gpd

    try:
        gdf = (
            gpd.read_parquet(path)
            if path.suffix.lower() in (".parquet", ".geoparquet")
            else gpd.read_file(path)
        )
    except Exception as exc:  # fiona/pyogrio raise many types for unreadable files
        raise SourceError(f"labels file {path} could not be read as vector data ({exc})") from exc
    for what, col in (("class", class_column), ("id", id_column)):
        if col is not None and col not in gdf.columns:
            shown = ", ".join(str(c) for c in gdf.columns if c != "geometry")
            raise InputError(f"labels {path} have no {what} column {col!r}; choose one of: {shown}")
    if gdf.empty:
        raise InputError(f"labels {path} hold no parcel (the file is empty); give a file of labelled parcels")
    if gdf.crs is None:
        raise InputError(f"labels {path} declare no CRS, so they cannot be placed on the imagery; set one")
    if gdf[class_column].isna().all():
        shown = ", ".join(str(c) for c in gdf.columns if c not in ("geometry", class_column))
        raise InputError(
            f"labels {path}: class column {class_column!r} is empty in all {len(gdf)} parcels; "
            f"choose the column that holds the crop type (others: {shown or 'none'})"
        )
    has_shape = gdf.geometry.notna() & ~gdf.geometry.is_empty
    if not has_shape.any():
        raise InputError(
            f"labels {path}: none of the {len(gdf)} parcels has a geometry; give parcel polygons"
        )
    gdf = gdf[gdf[class_column].notna() & has_shape]
    if gdf.empty:
        raise InputError(
            f"labels {path}: no parcel has both a {class_column!r} value and a geometry; "
            "label the parcels that have shapes"
        )
    ids = column_text(gdf[id_column]) if id_column else gdf.index.astype(str).to_numpy()
    classes = column_text(gdf[class_column])
    if id_column:
        _check_parcel_ids(path, id_column, ids, classes)
    # .tolist(): Python str, so names print plainly in messages (a numpy str prints as np.str_('...'))
    return gdf.assign(parcel=ids.tolist(), **{"class": classes.tolist()})[["parcel", "class", "geometry"]]


def _check_parcel_ids(path: Path, id_column: str, ids: np.ndarray, classes: np.ndarray) -> None:
    """One id may name several polygons of one parcel (they are burnt as one), but not several classes:
    those parcels would all take the last one's class (often ending as "a single class")."""
    frame = pd.DataFrame({"id": ids, "cls": classes})
    per_id = frame.groupby("id", sort=True)["cls"].unique()
    mixed = per_id[per_id.map(len) > 1]
    if mixed.empty:
        return
    first, names = str(mixed.index[0]), ", ".join(repr(str(c)) for c in mixed.iloc[0][:3])
    rows = int((ids == first).sum())
    others = f" ({len(mixed) - 1} more ids do too)" if len(mixed) > 1 else ""
    raise InputError(
        f"labels {path}: parcel id {first!r} in column {id_column!r} is shared by {rows} parcels of "
        f"different classes ({names}){others}; give every parcel its own id, or leave `id_column` out to "
        "number the parcels",
        param="id_column",
    )
