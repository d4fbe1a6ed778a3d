"""Reference points to label: a stratified random sample of a crop map, or its most uncertain pixels.

Both stream over the map window by window (`geocrop.io.map_reader`), so memory follows the sample size,
not the map size, and both write a GeoPackage a QGIS user labels in place: one point at the centre of
each drawn pixel, columns ``id``, ``map_value``, ``map_class`` and an empty ``reference`` column (the
column `geocrop assess` reads by default); the uncertain sample adds ``uncertainty`` and ``confidence``.

**Stratified sample** (`stratified_sample`; strata = map classes, as Olofsson et al. 2014 recommend):
a first pass counts each class's pixels ``N_k``; `allocate` shares the ``n`` points out; a second pass
picks, for each class, ``n_k`` of its ``N_k`` pixels uniformly at random without replacement (the ranks
are drawn first, then found in the same window order). Reproducible: the same map, ``n`` and ``seed``
give the same points. The points come out in random order, so interpreters do not meet them class by
class.

**Allocation** (`allocate`): "a minimum for rare classes, the rest proportional" (Olofsson et al. 2014,
Section 5.1.2): every mapped class gets at least ``min_per_class`` points (all its pixels when it has fewer)
and the remaining points are shared in proportion to the classes' mapped areas among the classes whose
proportional share is above the minimum, repeated until no class falls below it; shares are rounded by
largest remainder so they sum to ``n``.

**Uncertain sample** (`uncertain_sample`): the points most worth labelling next, the pixels whose class
probabilities are closest to uniform (band 2 of the confidence COG, normalised entropy in %). To spread
them out, the map is cut into square cells of side ``min_distance``; each cell keeps its most uncertain
pixel (ties broken at random by ``seed``); cells' winners are taken greedily from the most uncertain down,
skipping any closer than ``min_distance`` to one already taken. Only pixels with a class (inside the
map's data area) count.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from geocrop.core.progress import Progress, emit, within
from geocrop.errors import InputError, OutputError
from geocrop.io.atomic import atomic_path
from geocrop.io.classes import NODATA
from geocrop.io.map_reader import MapLayers, MapSource, MapWindow, open_map

__all__ = [
    "REFERENCE_COLUMN",
    "SampleResult",
    "allocate",
    "class_pixel_counts",
    "stratified_sample",
    "uncertain_sample",
]

#: The empty column the interpreter fills; `geocrop assess --class-column` defaults to it.
REFERENCE_COLUMN = "reference"
#: Most cells the uncertain sample keeps a candidate for (about 240 MB of candidate arrays).
_MAX_CELLS = 20_000_000


@dataclass(frozen=True)
class SampleResult:
    """Where the points went: ``out`` (GeoPackage), ``n`` points, ``per_class`` (class name -> points)."""

    out: Path
    n: int
    per_class: dict[str, int] = field(default_factory=dict)
    min_distance: float | None = None


def _check_out(out: str | os.PathLike[str]) -> Path:
    path = Path(out).expanduser()
    if path.suffix.lower() != ".gpkg":
        raise InputError(f"`out` {path}: give a GeoPackage file name ending in .gpkg", param="out")
    if path.is_dir():
        raise OutputError(f"`out` {path} is a folder; give a file name such as points.gpkg", param="out")
    if not path.parent.is_dir():
        raise OutputError(
            f"`out` {path}: folder {path.parent} does not exist; create it or choose another", param="out"
        )
    return path


def _windows(layers: MapLayers, src: MapSource, label: str, progress: Progress | None) -> Iterator[MapWindow]:
    windows = list(layers.blocks())
    for i, window in enumerate(windows):
        yield src.read(window, probabilities=False)
        emit(progress, "sample", (i + 1) / len(windows), label, step=i + 1, total=len(windows))


def class_pixel_counts(layers: MapLayers, *, progress: Progress | None = None) -> npt.NDArray[np.int64]:
    """Pixels of each class value (256 counts; index 255 is nodata), counted window by window."""
    counts = np.zeros(256, dtype=np.int64)
    with MapSource(layers) as src:
        for part in _windows(layers, src, "counting classes", progress):
            counts += np.bincount(part.classes.ravel(), minlength=256)
    return counts


def allocate(mapped: npt.ArrayLike, n: int, *, min_per_class: int) -> npt.NDArray[np.int64]:
    """Points per class for ``n`` points over classes of ``mapped`` pixels (module docstring: the rule).

    Classes with no pixel get none. Raises `InputError` when ``n`` exceeds the pixels there are or is too
    small to give every mapped class its minimum.
    """
    big_n = np.asarray(mapped, dtype=np.int64)
    present = big_n > 0
    total = int(big_n.sum())
    if n < 1:
        raise InputError(f"`n` {n}: give a positive number of points", param="n")
    if n > total:
        raise InputError(
            f"`n` {n} is more than the {total} mapped pixels there are; ask for at most {total}", param="n"
        )
    floor = np.minimum(big_n, min_per_class)
    if n < int(floor.sum()):
        raise InputError(
            f"`n` {n} is too few to give each of the {int(present.sum())} mapped classes "
            f"`min_per_class` {min_per_class} points ({int(floor.sum())} needed); raise `n` or lower "
            "`min_per_class`",
            param="n",
        )
    fixed = np.zeros(big_n.shape, dtype=bool)
    fixed[~present] = True
    alloc = np.zeros(big_n.shape, dtype=float)
    while True:
        free = ~fixed
        rest = n - alloc[fixed].sum()
        share = np.where(free, rest * big_n / max(int(big_n[free].sum()), 1), 0.0)
        low = free & (share < floor)
        high = free & (share > big_n)
        if not (low.any() or high.any()):
            alloc[free] = share[free]
            break
        alloc[low] = floor[low]
        alloc[high] = big_n[high]
        fixed |= low | high
        if fixed.all():
            break
    out = np.floor(alloc + 1e-9).astype(np.int64)
    short = n - int(out.sum())
    if short > 0:  # largest remainder, first class first on ties
        room = np.where(out < big_n, alloc - out, -1.0)
        order = np.argsort(-room, kind="stable")
        out[order[:short]] += 1
    return out


def stratified_sample(
    *,
    map: str | os.PathLike[str],
    n: int,
    out: str | os.PathLike[str],
    min_per_class: int = 50,
    seed: int = 0,
    progress: Progress | None = None,
) -> SampleResult:
    """Draw ``n`` stratified random points over the map classes and write them to ``out`` (.gpkg).

    ``min_per_class``: the least every mapped class gets (module docstring: the allocation rule); at least
    2, since the variance estimators of `geocrop.post.assess` divide by ``n_i - 1``.
    """
    target = _check_out(out)
    if min_per_class < 2:
        raise InputError(
            f"`min_per_class` {min_per_class}: give at least 2 (the area estimator's variance divides by "
            "n_i - 1)",
            param="min_per_class",
        )
    layers = open_map(map)
    counts = class_pixel_counts(layers, progress=within(progress, 0.0, 0.5))
    counts[NODATA] = 0
    per_value = allocate(counts, n, min_per_class=min_per_class)
    rng = np.random.default_rng(seed)
    ranks = {
        v: np.sort(rng.choice(int(counts[v]), size=int(per_value[v]), replace=False))
        for v in np.flatnonzero(per_value)
    }
    seen = dict.fromkeys(ranks, 0)
    rows: list[npt.NDArray[np.int64]] = []
    cols: list[npt.NDArray[np.int64]] = []
    values: list[npt.NDArray[np.int64]] = []
    with MapSource(layers) as src:
        for part in _windows(layers, src, "drawing points", within(progress, 0.5, 1.0)):
            flat = part.classes.ravel()
            in_block = np.bincount(flat, minlength=256)
            for v, r in ranks.items():
                lo, hi = seen[v], seen[v] + int(in_block[v])
                seen[v] = hi
                pick = r[(r >= lo) & (r < hi)] - lo
                if pick.size:
                    pos = np.flatnonzero(flat == v)[pick]
                    rows.append(pos // part.window.width + int(part.window.row_off))
                    cols.append(pos % part.window.width + int(part.window.col_off))
                    values.append(np.full(pos.size, v, dtype=np.int64))
    order = rng.permutation(int(per_value.sum()))
    row, col, value = (np.concatenate(a)[order] for a in (rows, cols, values))
    names = _write_points(target, layers, row, col, value, extra={})
    return SampleResult(out=target, n=int(row.size), per_class=names)


def uncertain_sample(
    *,
    map: str | os.PathLike[str],
    n: int,
    out: str | os.PathLike[str],
    min_distance: float | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> SampleResult:
    """Write the ``n`` most uncertain pixels of the map, at least ``min_distance`` apart, to ``out``.

    ``min_distance`` is in the map CRS's units (metres for a UTM map); None picks one that leaves about ten
    cells per point over the map's data area.
    """
    target = _check_out(out)
    layers = open_map(map)
    if layers.uncertainty_band is None:
        raise InputError(
            f"`map` {layers.path}: no confidence COG with an uncertainty band beside it; keep "
            f"{layers.path.stem}_confidence.tif (written by `geocrop map`) next to the map",
            param="map",
        )
    valid = int(class_pixel_counts(layers, progress=within(progress, 0.0, 0.4))[:NODATA].sum())
    if n < 1 or n > valid:
        raise InputError(f"`n` {n}: give 1 to {valid} (the map's pixels with a class)", param="n")
    size = math.hypot(layers.transform.a, layers.transform.d)  # pixel width in CRS units
    if min_distance is None:
        cell = max(1, math.floor(math.sqrt(valid / (10 * n))))
        min_distance = cell * size
    elif min_distance < 0 or not math.isfinite(min_distance):
        raise InputError(f"`min_distance` {min_distance}: give a distance >= 0", param="min_distance")
    gap = min_distance / size  # in pixels
    cell = max(1, math.ceil(gap))
    grid_h, grid_w = -(-layers.height // cell), -(-layers.width // cell)
    if grid_h * grid_w > _MAX_CELLS:
        raise InputError(
            f"`min_distance` {min_distance:g} cuts the map into {grid_h * grid_w} cells; raise it",
            param="min_distance",
        )
    best = np.full(grid_h * grid_w, -np.inf)
    where = np.zeros(grid_h * grid_w, dtype=np.int64)  # flat pixel index of each cell's winner
    at = np.zeros((3, grid_h * grid_w), dtype=np.uint8)  # its class, uncertainty and confidence
    rng = np.random.default_rng(seed)
    with MapSource(layers) as src:
        for part in _windows(layers, src, "finding uncertain pixels", within(progress, 0.4, 0.9)):
            assert part.uncertainty is not None
            ok = (part.classes != NODATA) & (part.uncertainty != NODATA)
            key = np.where(ok, part.uncertainty + 0.5 * rng.random(ok.shape), -np.inf).ravel()
            rr, cc = np.divmod(np.arange(key.size), part.window.width)
            rr, cc = rr + int(part.window.row_off), cc + int(part.window.col_off)
            cells = (rr // cell) * grid_w + cc // cell
            order = np.lexsort((-key, cells))  # by cell, most uncertain first
            first = order[np.unique(cells[order], return_index=True)[1]]
            win = first[key[first] > best[cells[first]]]
            best[cells[win]] = key[win]
            where[cells[win]] = rr[win] * layers.width + cc[win]
            conf = part.confidence if part.confidence is not None else np.full(ok.shape, NODATA, np.uint8)
            for band, layer in enumerate((part.classes, part.uncertainty, conf)):
                at[band, cells[win]] = layer.ravel()[win]
    taken = np.asarray(_spread(best, where, layers.width, grid_w, gap, n), dtype=np.int64)
    if taken.size < n:
        raise InputError(
            f"`n` {n}: only {taken.size} pixels with an uncertainty lie `min_distance` {min_distance:g} "
            "apart; lower `min_distance` or `n`",
            param="n",
        )
    row, col = np.divmod(where[taken], layers.width)
    value, uncertainty, confidence = (at[band, taken].astype(np.int64) for band in range(3))
    extra = {"uncertainty": uncertainty, "confidence": confidence}
    emit(progress, "sample", 1.0, "writing points")
    names = _write_points(target, layers, row, col, value, extra=extra)
    return SampleResult(out=target, n=int(taken.size), per_class=names, min_distance=float(min_distance))


def _spread(
    best: npt.NDArray[np.float64],
    where: npt.NDArray[np.int64],
    width: int,
    grid_w: int,
    gap: float,
    n: int,
) -> list[int]:
    """Greedy: the cells whose winner is most uncertain first, each winner at least ``gap`` pixels from
    those taken (they can only lie in the 3 x 3 cells around, a cell being >= ``gap`` wide)."""
    taken: list[int] = []
    by_cell: dict[int, tuple[int, int]] = {}
    for c in np.argsort(-best, kind="stable").tolist():
        if len(taken) == n or not np.isfinite(best[c]):
            break
        r, q = divmod(int(where[c]), width)
        gr, gc = divmod(c, grid_w)
        near = (
            by_cell.get((gr + dr) * grid_w + gc + dc)
            for dr in (-1, 0, 1)
            for dc in (-1, 0, 1)
            if 0 <= gc + dc < grid_w
        )
        if any(p is not None and math.hypot(p[0] - r, p[1] - q) < gap for p in near):
            continue
        by_cell[c] = (r, q)
        taken.append(c)
    return taken


def _write_points(
    target: Path,
    layers: MapLayers,
    row: npt.NDArray[np.int64],
    col: npt.NDArray[np.int64],
    value: npt.NDArray[np.int64],
    *,
    extra: dict[str, Any],
) -> dict[str, int]:
    """Write pixel-centre points as a GeoPackage atomically; return points per class name."""
    import geopandas as gpd
    import pandas as pd

    t = layers.transform
    xs = t.c + t.a * (col + 0.5) + t.b * (row + 0.5)
    ys = t.f + t.d * (col + 0.5) + t.e * (row + 0.5)
    name_of = {c.value: c.name for c in layers.classes}
    names = [name_of.get(int(v), str(int(v))) for v in value]
    frame = gpd.GeoDataFrame(
        {
            "id": np.arange(1, row.size + 1, dtype=np.int64),
            "map_value": value.astype(np.int64),
            "map_class": names,
            **extra,
            REFERENCE_COLUMN: pd.Series([None] * row.size, dtype=object),
        },
        geometry=gpd.points_from_xy(xs, ys),
        crs=layers.crs.to_wkt(),
    )
    with atomic_path(target, what="`out`") as tmp, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*extension.*", category=RuntimeWarning)
        tmp.unlink()
        frame.to_file(tmp, driver="GPKG", layer=target.stem, engine="pyogrio")
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    return {c.name: counts[c.name] for c in layers.classes if c.name in counts}
