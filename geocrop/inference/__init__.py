"""The chunked inference engine and the `map_aoi` pipeline.

Public API (imported lazily, so ``import geocrop.inference.plan`` does not pull in torch):

* `Predictor` (`engine`): a model bundle on a device; ``predict_block((T, B, h, w)) -> BlockPrediction``.
* `MapConfig`, `plan_map`, `MapPlan` (`plan`): a run's configuration, checks and ``--dry-run`` estimate.
* `map_aoi`, `MapResult` (`mapping`): the whole pipeline, AOI to COG + style + STAC item (+ web page).
* `run_tiles`, `plan_tiles`, `PredictorRef` (`tiles`) and `TileJournal` (`journal`): the Dask tile driver
  and its resume journal.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BlockPrediction": "engine",
    "Predictor": "engine",
    "MapConfig": "plan",
    "MapPlan": "plan",
    "plan_map": "plan",
    "MapResult": "mapping",
    "map_aoi": "mapping",
    "PredictorRef": "tiles",
    "plan_tiles": "tiles",
    "run_tiles": "tiles",
    "TileJournal": "journal",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'geocrop.inference' has no attribute {name!r}")
    return getattr(importlib.import_module(f"geocrop.inference.{module}"), name)
