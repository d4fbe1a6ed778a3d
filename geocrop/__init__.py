"""geocrop: crop-type maps from satellite image time series.

Bi-modal (Sentinel-2 + PlanetScope) contrastive pretraining of per-pixel encoders, temporal heads over the
144-step series of frozen features, and a streaming, STAC-backed mapper that writes Cloud-Optimized GeoTIFFs.
Method: Patnala et al. (2024), Front. Remote Sens. 5:1480101.

The Python API is one keyword-only verb per stage (`geocrop.api`)::

    import geocrop
    result = geocrop.map_aoi(aoi="field.geojson", start="2023-03-01", end="2023-10-31", out="map.tif")

The verbs are loaded on first use (PEP 562), so ``import geocrop`` stays fast and imports no torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from geocrop._version import __version__
from geocrop.errors import GeocropError, GeocropWarning

if TYPE_CHECKING:
    from geocrop.api import (
        assess,
        evaluate,
        field_results,
        inspect_labels,
        map_aoi,
        plan_map,
        predict,
        pretrain,
        smooth_map,
        stratified_sample,
        train,
        uncertain_sample,
    )
    from geocrop.api_types import Progress, ProgressEvent

__all__ = [
    "GeocropError",
    "GeocropWarning",
    "Progress",
    "ProgressEvent",
    "__version__",
    "assess",
    "evaluate",
    "field_results",
    "inspect_labels",
    "map_aoi",
    "plan_map",
    "predict",
    "pretrain",
    "smooth_map",
    "stratified_sample",
    "train",
    "uncertain_sample",
]

#: Public name -> the module that defines it, imported when the name is first used.
_LAZY = {
    "assess": "geocrop.api",
    "evaluate": "geocrop.api",
    "field_results": "geocrop.api",
    "inspect_labels": "geocrop.api",
    "smooth_map": "geocrop.api",
    "stratified_sample": "geocrop.api",
    "uncertain_sample": "geocrop.api",
    "map_aoi": "geocrop.api",
    "plan_map": "geocrop.api",
    "predict": "geocrop.api",
    "pretrain": "geocrop.api",
    "train": "geocrop.api",
    "Progress": "geocrop.api_types",
    "ProgressEvent": "geocrop.api_types",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'geocrop' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
