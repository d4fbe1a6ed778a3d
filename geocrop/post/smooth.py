"""Spatial smoothing of a crop map: Bayesian smoothing of the class probabilities, or a modal filter.

**Bayesian** (``method="bayes"``, needs the probability bands of ``geocrop map --probabilities``), after the
neighbourhood prior of Camara et al.'s `sits` (R package, ``sits_smooth``). For pixel *i* and class *k* let
``x = logit(p_ik)`` (``p`` clipped to [0.005, 0.995]). The neighbours in a ``window`` x ``window`` square
give a prior ``N(m_ik, s2_i)``: ``m_ik`` is the mean logit of class *k* over the ``neigh_fraction`` of
neighbours where that logit is highest, and ``s2_i`` the variance of those logits averaged over the classes.
The pixel's own logit is a noisy observation of its true value with variance ``smoothness`` (the prior
belief in the classifier's own noise, in logit units squared), so the posterior mean is::

    x'_ik = (s2_i * x_ik + smoothness * m_ik) / (s2_i + smoothness)

Where the neighbourhood agrees (small ``s2``) the pixel moves towards it, removing salt-and-pepper noise;
across field borders the logits vary (large ``s2``) and the pixel keeps its own value, so borders stay.
A larger ``smoothness`` smooths more. The class is the largest posterior (the pixel's own class wins
ties), and the probabilities are ``sigmoid(x')`` renormalised to sum to 1. `sits` takes the variance per
class; here one variance per pixel (the classes' mean) weighs every class alike, which guarantees that a
pixel whose whole neighbourhood (itself included) has one class keeps it: each neighbour's logit of that
class exceeds every other class's, so its top-fraction mean does too, and one weight preserves the order.

**Modal** (``method="modal"``, any map): each pixel takes the most frequent class of its ``window`` x
``window`` neighbourhood (its own class wins ties); nodata pixels stay nodata and do not vote. Probability
bands, when present, are carried over; the confidence is that of the new class, or 255 (unknown) where the
class changed on a map without probabilities.

**Sieve** (``sieve=N``, both methods, after the filter): patches of fewer than N pixels (8-connected) join
their largest neighbouring patch (GDAL's sieve filter).

Streaming: the map is processed in 256 px blocks, each read with a halo of ``window // 2 + sieve`` pixels,
so every kept pixel sees its whole neighbourhood; memory depends on the block and window, not on the map.
The output is written like ``geocrop map`` writes (`geocrop.io.cog.CogWriter`: class COG, confidence COG,
``.aux.xml``, plus ``.qml`` and a STAC item), with the map's tags and a ``smoothing`` tag.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view
from rasterio.features import sieve as gdal_sieve
from rasterio.windows import Window

from geocrop.core.progress import Progress, emit
from geocrop.errors import InputError
from geocrop.io.classes import NODATA
from geocrop.io.cog import CogWriter, confidence_path, sidecar_path
from geocrop.io.colour_table import recoloured
from geocrop.io.map_reader import MapLayers, MapSource, open_map

__all__ = ["METHODS", "SmoothResult", "bayes_smooth", "modal_filter", "smooth_map"]

Method = Literal["bayes", "modal"]
METHODS: tuple[str, ...] = ("bayes", "modal")
_BLOCK = 256
_EPS = 0.005
#: Tags the writer sets itself (carried-over copies would clash).
_OWN_TAGS = {"GEOCROP_CLASSES", "GEOCROP_NODATA", "GEOCROP_CONFIDENCE", "GEOCROP_CLASS_MAP", "smoothing"}


@dataclass(frozen=True)
class SmoothResult:
    """Where the smoothed map went and how many of its clear pixels changed class."""

    cog: Path
    confidence: Path
    qml: Path
    stac_item: Path | None
    method: str
    changed_pixels: int
    clear_pixels: int
    #: The web page (``html`` of `geocrop.api.smooth_map`), None when none was asked for.
    html: Path | None = None


def _windows(arr: npt.NDArray[Any], size: int) -> npt.NDArray[Any]:
    """(..., h, w) -> (..., h', w', size * size): each pixel's neighbourhood, edges padded with NaN/255."""
    r = size // 2
    fill = np.nan if np.issubdtype(arr.dtype, np.floating) else NODATA
    pad = [(0, 0)] * (arr.ndim - 2) + [(r, r), (r, r)]
    view = sliding_window_view(np.pad(arr, pad, constant_values=fill), (size, size), axis=(-2, -1))
    return view.reshape(*view.shape[:-2], size * size)


def bayes_smooth(
    probs: npt.NDArray[np.float32],
    classes: npt.NDArray[np.int64],
    *,
    window: int,
    smoothness: float,
    neigh_fraction: float,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Bayesian smoothing of one block (module docstring's formula).

    ``probs`` (C, h, w) float probabilities, NaN where missing; ``classes`` (h, w) the map's class as an
    index 0..C-1 into ``probs`` (-1 nodata), which wins ties. Returns the posterior probabilities
    (C, h, w), NaN where missing, and the posterior class index (h, w), -1 where missing.
    """
    valid = np.isfinite(probs).all(axis=0)
    x = np.log(np.clip(probs, _EPS, 1 - _EPS) / (1 - np.clip(probs, _EPS, 1 - _EPS)))
    x = np.where(valid, x, np.nan).astype(np.float32)
    n_valid = (~np.isnan(_windows(x[0], window))).sum(axis=-1)
    k = np.maximum(1, np.ceil(neigh_fraction * n_valid)).astype(np.int64)[..., None]
    means = np.empty_like(x)
    var_sum = np.zeros(x.shape[1:], np.float64)
    for c in range(x.shape[0]):
        neigh = -np.sort(-np.nan_to_num(_windows(x[c], window), nan=-np.inf), axis=-1)  # descending
        top = np.where(np.isfinite(neigh), neigh, 0.0).astype(np.float64)
        s1 = np.take_along_axis(np.cumsum(top, axis=-1), k - 1, axis=-1)[..., 0]
        s2 = np.take_along_axis(np.cumsum(top * top, axis=-1), k - 1, axis=-1)[..., 0]
        kk = k[..., 0]
        mean = s1 / kk
        var_sum += np.where(kk > 1, (s2 - kk * mean * mean) / np.maximum(kk - 1, 1), 0.0).clip(min=0)
        means[c] = mean
    s2_pix = (var_sum / x.shape[0]).astype(np.float32)
    post = (s2_pix * x + smoothness * means) / (s2_pix + smoothness)
    p = 1.0 / (1.0 + np.exp(-post))
    p = p / p.sum(axis=0)
    best = np.argmax(post, axis=0)
    own = np.clip(classes, 0, x.shape[0] - 1)
    keep = np.take_along_axis(post, own[None], axis=0)[0] >= post.max(axis=0)
    best = np.where(keep & (classes >= 0), own, best)
    p[:, ~valid] = np.nan
    return p.astype(np.float32), np.where(valid, best, -1)


def modal_filter(classes: npt.NDArray[np.uint8], *, window: int) -> npt.NDArray[np.uint8]:
    """(h, w) class values (255 nodata) -> the most frequent class of each pixel's window (own class on
    ties; nodata stays and does not vote)."""
    neigh = _windows(classes, window)
    values = np.unique(classes[classes != NODATA])
    best = classes.copy()
    if values.size == 0:
        return best
    counts = np.stack([(neigh == v).sum(axis=-1) for v in values])
    top = counts.max(axis=0)
    own = np.searchsorted(values, classes).clip(0, values.size - 1)
    own_count = np.take_along_axis(counts, own[None], axis=0)[0]
    winner = values[np.argmax(counts, axis=0)]
    best = np.where(own_count >= top, classes, winner).astype(np.uint8)
    best[classes == NODATA] = NODATA
    return best


def _sieve(classes: npt.NDArray[np.uint8], size: int) -> npt.NDArray[np.uint8]:
    if size < 2:
        return classes
    valid = classes != NODATA
    out = gdal_sieve(classes, size=size, connectivity=8, mask=valid)
    return np.where(valid, out, NODATA).astype(np.uint8)


def _check(layers: MapLayers, method: str, window: int, smoothness: float, frac: float, sieve: int) -> None:
    if method not in METHODS:
        raise InputError(f"`method` {method!r}: choose one of {', '.join(METHODS)}", param="method")
    if window < 3 or window % 2 == 0 or window > 21:
        raise InputError(
            f"`window` {window}: give an odd number of pixels from 3 to 21, e.g. 7", param="window"
        )
    if not smoothness > 0:
        raise InputError(f"`smoothness` {smoothness}: give a positive variance, e.g. 10", param="smoothness")
    if not 0 < frac <= 1:
        raise InputError(
            f"`neigh_fraction` {frac}: give a fraction in (0, 1], e.g. 0.5", param="neigh_fraction"
        )
    if not 0 <= sieve <= 10_000:
        raise InputError(f"`sieve` {sieve}: give 0 (off) or a patch size in pixels, e.g. 10", param="sieve")
    if method == "bayes" and not layers.has_probabilities:
        raise InputError(
            f"`map` {layers.path.name} has no probability bands, which Bayesian smoothing needs; rerun "
            "geocrop map with probabilities on, or use the modal method (`method` modal)",
            param="map",
        )


def _out_path(out: str | os.PathLike[str], layers: MapLayers) -> Path:
    path = Path(out).expanduser()
    if path.suffix.lower() not in (".tif", ".tiff"):
        raise InputError(
            f"`out` {path}: a smoothed map is a GeoTIFF; give e.g. {path.with_suffix('.tif').name}",
            param="out",
        )
    outputs = {os.path.realpath(p) for p in (path, confidence_path(path), sidecar_path(path))}
    inputs = {
        os.path.realpath(p) for p in (layers.path, confidence_path(layers.path), sidecar_path(layers.path))
    }
    if outputs & inputs:
        raise InputError(
            f"`out` {path} would overwrite the input map; give the smoothed map another name", param="out"
        )
    return path


def smooth_map(
    *,
    map: str | os.PathLike[str],
    out: str | os.PathLike[str],
    method: Method = "bayes",
    window: int = 7,
    smoothness: float = 10.0,
    neigh_fraction: float = 0.5,
    sieve: int = 0,
    colors: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
) -> SmoothResult:
    """Smooth the crop map ``map`` into ``out`` (a new class COG with its confidence COG, style and STAC
    item); see the module docstring for the methods and their parameters. ``colors``: a class colour
    table (`geocrop.io.colour_table`) for the classes it names; the others keep the map's colours.
    Nothing is written when an input is refused; an existing ``out`` is replaced only once the new map
    is complete."""
    layers = open_map(map)
    layers = dataclasses.replace(layers, classes=recoloured(layers.classes, colors))
    _check(layers, method, window, smoothness, neigh_fraction, sieve)
    path = _out_path(out, layers)
    halo = window // 2 + sieve
    params: dict[str, Any] = {"method": method, "window": window, "sieve": sieve, "source": layers.path.name}
    if method == "bayes":
        params |= {"smoothness": smoothness, "neigh_fraction": neigh_fraction}
    tags = {k: v for k, v in layers.tags.items() if k not in _OWN_TAGS} | {"smoothing": json.dumps(params)}
    n_prob = len(layers.classes) if layers.has_probabilities else 0
    blocks = list(layers.blocks(_BLOCK))
    changed = clear = 0
    with (
        CogWriter(
            path,
            classes=layers.classes,
            crs=layers.crs,
            transform=layers.transform,
            width=layers.width,
            height=layers.height,
            n_prob_bands=n_prob,
            metadata=tags,
        ) as cog,
        MapSource(layers) as src,
    ):
        for i, core in enumerate(blocks):
            row0, col0 = max(0, int(core.row_off) - halo), max(0, int(core.col_off) - halo)
            row1 = min(layers.height, int(core.row_off + core.height) + halo)
            col1 = min(layers.width, int(core.col_off + core.width) + halo)
            part = src.read(Window(col0, row0, col1 - col0, row1 - row0))
            cls, conf, probs = _smooth_block(
                part.classes, part.confidence, part.probabilities, layers, params
            )
            if sieve:
                cls = _sieve(cls, sieve)
                conf = _confidence(cls, part.classes, part.confidence, probs, layers)
            inner = (
                slice(int(core.row_off) - row0, int(core.row_off) - row0 + int(core.height)),
                slice(int(core.col_off) - col0, int(core.col_off) - col0 + int(core.width)),
            )
            before = part.classes[inner]
            clear += int((before != NODATA).sum())
            changed += int(((cls[inner] != before) & (before != NODATA)).sum())
            cog.write_block(
                core, cls[inner], conf[inner], None if probs is None else probs[(slice(None), *inner)]
            )
            message = f"smoothed block {i + 1} of {len(blocks)}"
            emit(progress, "smooth", 0.95 * (i + 1) / len(blocks), message, step=i + 1, total=len(blocks))
        emit(progress, "smooth", 0.95, "writing the COGs (overviews)")
    qml, item = _sidecars(path, layers, params)
    emit(progress, "smooth", 1.0, "done")
    return SmoothResult(path, confidence_path(path), qml, item, method, changed, clear)


def _smooth_block(
    classes: npt.NDArray[np.uint8],
    confidence: npt.NDArray[np.uint8] | None,
    probs: npt.NDArray[np.float32] | None,
    layers: MapLayers,
    params: dict[str, Any],
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8], npt.NDArray[np.float32] | None]:
    """One block with its halo -> (classes, confidence percent, probabilities or None)."""
    values = np.array([c.value for c in layers.classes], dtype=np.uint8)
    if params["method"] == "bayes" and probs is not None:
        index = np.full(256, -1, np.int64)
        index[values] = np.arange(values.size)
        posterior, best = bayes_smooth(
            probs,
            index[classes],
            window=params["window"],
            smoothness=params["smoothness"],
            neigh_fraction=params["neigh_fraction"],
        )
        out = np.where(best >= 0, values[best.clip(0)], NODATA).astype(np.uint8)
        out[classes == NODATA] = NODATA
        return out, _confidence(out, classes, confidence, posterior, layers), posterior
    out = modal_filter(classes, window=params["window"])
    return out, _confidence(out, classes, confidence, probs, layers), probs


def _confidence(
    new: npt.NDArray[np.uint8],
    old: npt.NDArray[np.uint8],
    confidence: npt.NDArray[np.uint8] | None,
    probs: npt.NDArray[np.float32] | None,
    layers: MapLayers,
) -> npt.NDArray[np.uint8]:
    """Confidence % of the (new) class: its probability, else the old confidence where the class stayed."""
    if probs is not None:
        index = np.zeros(256, np.int64)
        index[[c.value for c in layers.classes]] = np.arange(len(layers.classes))
        p = np.take_along_axis(probs, index[new][None], axis=0)[0]
        ok = np.isfinite(p) & (new != NODATA)
        return np.where(ok, np.rint(np.nan_to_num(p) * 100), NODATA).astype(np.uint8)
    if confidence is None:
        return np.full(new.shape, NODATA, np.uint8)
    return np.where(new == old, confidence, NODATA).astype(np.uint8)


def _sidecars(path: Path, layers: MapLayers, params: dict[str, Any]) -> tuple[Path, Path | None]:
    """The QGIS style, and a STAC item when the map's tags give its dates (maps by `geocrop map` do)."""
    from geocrop.io.atomic import write_text_atomic
    from geocrop.io.stac_item import build_output_item
    from geocrop.io.style import qml_path_for, write_qml

    qml = write_qml(qml_path_for(path), layers.classes)
    tags = layers.tags
    if not tags.get("start_date") or not tags.get("end_date"):
        return qml, None
    source_item = layers.path.with_suffix(".json")
    provenance = None
    if source_item.is_file():
        try:
            provenance = json.loads(source_item.read_text(encoding="utf-8"))["properties"].get(
                "geocrop:training"
            )
        except (ValueError, KeyError, OSError):
            provenance = None
    try:
        scenes = [str(s) for s in json.loads(tags.get("scene_ids", "[]"))]
    except ValueError:
        scenes = []
    item_path = path.with_suffix(".json")
    item = build_output_item(
        item_path,
        cog=path,
        classes=layers.classes,
        model={
            "name": tags.get("model", "unknown"),
            **({"file": tags["model_file"]} if tags.get("model_file") else {}),
        },
        datetime_range=(dt.date.fromisoformat(tags["start_date"]), dt.date.fromisoformat(tags["end_date"])),
        sources=scenes,
        provenance=provenance,
        notice=tags.get("warning"),
        extra_assets={"confidence": confidence_path(path), "style": qml, "sidecar": sidecar_path(path)},
    )
    item.properties["geocrop:smoothing"] = params
    if source_item.is_file():
        import pystac

        href = os.path.relpath(source_item, item_path.parent)
        item.add_link(
            pystac.Link("derived_from", href, media_type=pystac.MediaType.JSON, title="unsmoothed map")
        )
    payload = item.to_dict(include_self_link=False, transform_hrefs=False)
    return qml, write_text_atomic(item_path, json.dumps(payload, indent=2) + "\n", what="STAC item")
