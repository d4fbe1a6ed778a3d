"""Read back a crop map that `geocrop map` wrote: its class table, grid and bands, window by window.

A geocrop map is the pair of COGs `geocrop.io.cog.CogWriter` writes (docs/outputs.md): the paletted class
COG (one uint8 band, 255 nodata, dataset tag ``GEOCROP_CLASSES``) and beside it the confidence COG (band 1
``confidence``, band 2 ``uncertainty``, then ``probability_<class>`` bands with ``--probabilities``, all
uint8 percent, 255 nodata). `open_map` checks a file is such a map and returns its `MapLayers`
(metadata only, nothing read); `MapSource` opens both files once and reads windows from them, so callers
stream over `MapLayers.blocks` with memory bounded by a window, whatever the map's size.

Everything after the map (`geocrop.post`: field results, smoothing, area estimation) reads maps here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt
import rasterio
import rasterio.errors
from affine import Affine
from rasterio.crs import CRS
from rasterio.io import DatasetReader
from rasterio.transform import array_bounds
from rasterio.windows import Window

from geocrop.errors import GeocropError, InputError
from geocrop.io.classes import NODATA, ClassInfo, check_classes
from geocrop.io.cog import confidence_path

__all__ = ["MapLayers", "MapSource", "MapWindow", "open_map", "read_window"]

_FIX = "give the class COG that geocrop map wrote (e.g. crops.tif)"


@dataclass(frozen=True)
class MapLayers:
    """What a geocrop map holds, read from its headers (no pixels).

    ``probability_bands`` maps a class name to its 1-based band in the confidence COG (empty when the map
    was made without ``--probabilities``); ``uncertainty_band`` is that COG's uncertainty band (None without
    a confidence COG). ``tags`` are the class COG's dataset tags (provenance: ``model``, ``start_date``,
    ``end_date``, ``scene_ids``, ``warning``...).
    """

    path: Path
    confidence: Path | None
    classes: tuple[ClassInfo, ...]
    crs: CRS
    transform: Affine
    width: int
    height: int
    probability_bands: dict[str, int] = field(default_factory=dict)
    confidence_band: int | None = None
    uncertainty_band: int | None = None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def has_probabilities(self) -> bool:
        """True when every class has a probability band (the map ran with ``--probabilities``)."""
        return bool(self.probability_bands) and len(self.probability_bands) == len(self.classes)

    @property
    def pixel_area(self) -> float:
        """Area of one pixel in m²; `InputError` unless the CRS is projected in metres."""
        units = (self.crs.linear_units or "").lower() if self.crs.is_projected else ""
        if units not in ("metre", "meter", "m", "metres", "meters"):
            raise InputError(
                f"map {self.path.name}: its CRS ({self.crs.to_string() or 'none'}) is not projected in "
                "metres, so a pixel has no fixed area; map in a UTM or other metric CRS",
                param="map",
            )
        t = self.transform
        return float(abs(t.a * t.e - t.b * t.d))

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(minx, miny, maxx, maxy)`` of the map in its CRS."""
        west, south, east, north = array_bounds(self.height, self.width, self.transform)
        return float(west), float(south), float(east), float(north)

    def class_by_value(self) -> dict[int, ClassInfo]:
        """The classes keyed by their pixel value."""
        return {c.value: c for c in self.classes}

    def blocks(self, size: int = 512) -> Iterator[Window]:
        """Windows of ``size`` x ``size`` pixels (smaller at the right and bottom edges) covering the map,
        row by row."""
        if size < 1:
            raise InputError(f"block size {size}: give a positive number of pixels, e.g. 512")
        for row in range(0, self.height, size):
            for col in range(0, self.width, size):
                yield Window(col, row, min(size, self.width - col), min(size, self.height - row))


@dataclass(frozen=True)
class MapWindow:
    """One window of a map. ``classes`` (h, w) uint8, 255 nodata; ``confidence`` and ``uncertainty`` (h, w)
    uint8 percent, 255 nodata (None without a confidence COG); ``probabilities`` (C, h, w) float32 in
    [0, 1] in the order of `MapLayers.classes`, NaN where missing (None without probability bands or when
    not asked for)."""

    window: Window
    classes: npt.NDArray[np.uint8]
    confidence: npt.NDArray[np.uint8] | None
    uncertainty: npt.NDArray[np.uint8] | None
    probabilities: npt.NDArray[np.float32] | None


def _not_a_map(path: Path, what: str, param: str) -> InputError:
    return InputError(f"`{param}` {path}: {what}; {_FIX}", param=param)


def _parse_classes(raw: str, path: Path, param: str) -> tuple[ClassInfo, ...]:
    try:
        entries = json.loads(raw)
        return check_classes(
            ClassInfo(int(e["value"]), str(e["name"]), str(e.get("color") or e.get("colour")))
            for e in entries
        )
    except (ValueError, TypeError, KeyError, GeocropError) as exc:
        raise _not_a_map(path, f"its GEOCROP_CLASSES tag is not a class table ({exc})", param) from exc


def _confidence_layout(
    path: Path, classes: tuple[ClassInfo, ...], grid: tuple[Any, ...], param: str
) -> tuple[dict[str, int], int | None, int | None]:
    """Probability bands by class name, the confidence and the uncertainty band of ``path``."""
    try:
        with rasterio.open(path) as ds:
            descriptions = list(ds.descriptions)
            same = (ds.crs, ds.transform, ds.width, ds.height) == grid
    except rasterio.errors.RasterioError as exc:
        raise InputError(
            f"`{param}`: its confidence COG {path} cannot be read ({exc}); rerun `geocrop map`", param=param
        ) from exc
    if not same:
        raise InputError(
            f"`{param}`: its confidence COG {path} is on another grid than the class COG; keep the two "
            "files `geocrop map` wrote together (rerun it)",
            param=param,
        )
    band_of = {str(d): i for i, d in enumerate(descriptions, 1) if d}
    names = {c.name for c in classes}
    probs = {
        d.removeprefix("probability_"): b
        for d, b in band_of.items()
        if d.startswith("probability_") and d.removeprefix("probability_") in names
    }
    return probs, band_of.get("confidence"), band_of.get("uncertainty")


def open_map(path: str | os.PathLike[str], *, param: str = "map") -> MapLayers:
    """Check ``path`` is a geocrop class COG and describe it with its confidence COG (`MapLayers`).

    Raises `InputError` (``param=param``, one line naming the file and the fix) for a missing file, a file
    GDAL cannot read, a raster that is not a geocrop class map, or the confidence COG given instead.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise InputError(f"`{param}` {p} does not exist; {_FIX}", param=param)
    if p.is_dir():
        raise _not_a_map(p, "is a folder", param)
    try:
        with rasterio.open(p) as ds:
            tags = {str(k): str(v) for k, v in ds.tags().items()}
            count, dtypes = ds.count, ds.dtypes
            crs, transform, width, height = ds.crs, ds.transform, ds.width, ds.height
    except rasterio.errors.RasterioError as exc:
        raise _not_a_map(p, "is not a raster GDAL can read", param) from exc
    if "GEOCROP_CLASS_MAP" in tags and "GEOCROP_CLASSES" in tags:
        other = p.with_name(tags["GEOCROP_CLASS_MAP"])
        raise InputError(
            f"`{param}` {p} is the confidence COG of a map; give its class COG {other}", param=param
        )
    if "GEOCROP_CLASSES" not in tags or count != 1 or dtypes[0] != "uint8":
        raise _not_a_map(p, "is not a geocrop crop map (no GEOCROP_CLASSES tag on one uint8 band)", param)
    if crs is None:
        raise _not_a_map(p, "has no CRS", param)
    classes = _parse_classes(tags["GEOCROP_CLASSES"], p, param)
    conf = p.with_name(tags["GEOCROP_CONFIDENCE"]) if "GEOCROP_CONFIDENCE" in tags else confidence_path(p)
    probs: dict[str, int] = {}
    conf_band = unc_band = None
    if conf.is_file():
        probs, conf_band, unc_band = _confidence_layout(conf, classes, (crs, transform, width, height), param)
    return MapLayers(
        path=p,
        confidence=conf if conf.is_file() else None,
        classes=classes,
        crs=crs,
        transform=transform,
        width=int(width),
        height=int(height),
        probability_bands=probs,
        confidence_band=conf_band,
        uncertainty_band=unc_band,
        tags=tags,
    )


class MapSource:
    """Both COGs of a map opened once, for reading many windows (use as a context manager)::

    with MapSource(layers) as src:
        for window in layers.blocks():
            part = src.read(window)
    """

    def __init__(self, layers: MapLayers) -> None:
        self.layers = layers
        self._class_ds: DatasetReader | None = None
        self._value_ds: DatasetReader | None = None

    def __enter__(self) -> MapSource:
        try:
            self._class_ds = rasterio.open(self.layers.path)
            if self.layers.confidence is not None:
                self._value_ds = rasterio.open(self.layers.confidence)
        except rasterio.errors.RasterioError as exc:
            self.close()
            raise InputError(
                f"`map` {self.layers.path}: cannot be read ({exc}); rerun `geocrop map`", param="map"
            ) from exc
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        for ds in (self._class_ds, self._value_ds):
            if ds is not None:
                ds.close()
        self._class_ds = self._value_ds = None

    def read(self, window: Window, *, probabilities: bool = True) -> MapWindow:
        """Read ``window`` (inside the map): classes, confidence, uncertainty and, when asked for and
        present, the probabilities as float32 in [0, 1] (NaN where 255)."""
        if self._class_ds is None:
            raise RuntimeError("MapSource.read called outside its `with` block")
        layers = self.layers
        classes = self._class_ds.read(1, window=window)
        confidence = uncertainty = probs = None
        if self._value_ds is not None:
            if layers.confidence_band is not None:
                confidence = self._value_ds.read(layers.confidence_band, window=window)
            if layers.uncertainty_band is not None:
                uncertainty = self._value_ds.read(layers.uncertainty_band, window=window)
            if probabilities and layers.has_probabilities:
                bands = [layers.probability_bands[c.name] for c in layers.classes]
                raw = self._value_ds.read(bands, window=window)
                probs = np.where(raw == NODATA, np.nan, raw.astype(np.float32) / 100.0).astype(np.float32)
        return MapWindow(window, classes, confidence, uncertainty, probs)


def read_window(layers: MapLayers, window: Window, *, probabilities: bool = True) -> MapWindow:
    """Read one window of the map (opens and closes the files; use `MapSource` for many windows)."""
    with MapSource(layers) as src:
        return src.read(window, probabilities=probabilities)
