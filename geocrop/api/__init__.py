"""geocrop's Python API: one keyword-only verb per stage, importable as ``geocrop.<verb>``.

::

    import geocrop

    model = geocrop.train(labels="fields.gpkg", class_column="crop", s2="catalog.json",
                          start="2023-03-01", end="2023-10-31", head="transformer", out="crops.safetensors")
    result = geocrop.map_aoi(aoi="field.geojson", start="2023-03-01", end="2023-10-31",
                             model=model, out="map.tif", progress=print)
    result.cog, result.stac_item   # where the outputs went

One module per group of stages (`_map`, `_train`, `_pretrain`, `_post`); this package is the public face.
Each verb normalises "like" inputs at the edge (`geocrop.api_types`: dates as `date`/`datetime`/ISO
strings, paths as ``str``/`os.PathLike`, AOIs as files, bboxes or ``__geo_interface__`` objects, a bundle
as a path or the result that wrote it), builds the library's typed config (`MapConfig`, `TrainJob`,
`PretrainConfig`, `EvaluateJob`) and calls the stage's function; the result is that stage's frozen result
object, which says where the outputs went. Every verb takes one progress callback type, `Progress`
(`geocrop.api_types.ProgressEvent`), adapted onto the stage's own callbacks. Nothing process-wide changes
unless asked: no torch thread count or malloc tuning (``tune_process=True`` asks), no progress bars.

Errors are `GeocropError` subclasses whose message names the argument as written here (`` `end` ``) and
whose ``param`` says which one; the CLI translates them to its flags. Heavy modules (torch, GDAL) are
imported only when a verb runs.
"""

from geocrop.api._inspect import inspect_labels
from geocrop.api._map import map_aoi, plan_map
from geocrop.api._post import (
    SmoothMethod,
    assess,
    field_results,
    smooth_map,
    stratified_sample,
    uncertain_sample,
)
from geocrop.api._predict import predict
from geocrop.api._pretrain import PretrainMode, SecondModality, pretrain
from geocrop.api._train import DeepFamily, HeadFamily, SplitScheme, TreeFamily, evaluate, train
from geocrop.api_types import Device, Progress, ProgressEvent

__all__ = [
    "DeepFamily",
    "Device",
    "HeadFamily",
    "PretrainMode",
    "Progress",
    "ProgressEvent",
    "SecondModality",
    "SmoothMethod",
    "SplitScheme",
    "TreeFamily",
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
