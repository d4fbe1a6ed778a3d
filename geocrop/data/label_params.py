"""Declarations shared by the stages that read labelled data (`train`, `evaluate`, `inspect`): one
`labels` option, declared here once (`geocrop.core.params`), each config taking it by calling
`labels_param`. Torch-free and numpy-free: the configs and the CLI import it."""

from __future__ import annotations

from typing import Any

from geocrop.core.params import as_path, param

__all__ = ["labels_param"]


def labels_param() -> Any:
    """The required ``labels`` field: parcels (any vector file, any CRS) or a samples table."""
    return param(
        help="Parcels (GeoJSON/GPKG/GeoParquet/Shapefile, any CRS) or a samples table (Parquet/CSV)",
        convert=as_path,
        kind="file",
    )
