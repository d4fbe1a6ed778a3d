"""The array side of pair building (`geocrop.data.pairs`): which S2 date goes with which second-view date
(`match_dates`), the Planet 3x3 windows and Sentinel-1 neighbourhoods under each S2 pixel
(`planet_windows`, `neighbourhoods`), fields and pseudo-fields split into training and held-out pixels
(`pseudo_fields`, `split_field_raster`), and one date's pairs drawn from them (`sample_pairs`). No file is
read or written here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from geocrop.core.bands import PLANET_BANDS, PLANET_WINDOW, S2_BANDS
from geocrop.data.splits import split_fields
from geocrop.errors import NoDataError

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
#: Side of the square pseudo-fields (S2 pixels) used when no parcels are given.
PSEUDO_FIELD_PIXELS = 8
SPLIT_FRACTIONS = (0.7, 0.21, 0.09)


class TimeIndexed(Protocol):
    """A (time, band, y, x) stack read one date at a time: a numpy array or a lazy xarray DataArray."""

    def __getitem__(self, index: int) -> Any: ...

    def __len__(self) -> int: ...


#: The second views a pair may hold: name -> (band names, window side). The Planet window is the paper's.
SECOND_MODALITIES: dict[str, tuple[tuple[str, ...], int]] = {
    "planetscope": (tuple(PLANET_BANDS), PLANET_WINDOW),
    "sentinel-1": (("VV", "VH"), 1),
}


def second_features(modality: str, window: int | None = None) -> int:
    """Width of the second view's input: 36 for the Planet 3x3 window, 2 for Sentinel-1 VV/VH (2 x k x k
    for a k x k Sentinel-1 neighbourhood, ``window``)."""
    bands, default = SECOND_MODALITIES[modality]
    side = default if window is None else window
    return len(bands) * side * side


def feature_names(
    *, bimodal: bool = True, modality: str = "planetscope", window: int | None = None
) -> list[str]:
    """Column names of a pair row: ``s2.B01`` ... ``s2.B12`` then ``planet.r{row}c{col}.{band}`` (or
    ``s1.VV``, ``s1.VH``; ``s1.r{row}c{col}.VV``... for a neighbourhood)."""
    names = [f"s2.{b}" for b in S2_BANDS]
    if not bimodal:
        return names
    bands, default = SECOND_MODALITIES[modality]
    side = default if window is None else window
    prefix = "planet" if modality == "planetscope" else "s1"
    if side == 1:
        return names + [f"{prefix}.{b}" for b in bands]
    return names + [f"{prefix}.r{r}c{c}.{b}" for r in range(side) for c in range(side) for b in bands]


def neighbourhoods(image: npt.ArrayLike, size: int) -> FloatArray:
    """(C, H, W) -> (C, size*H, size*W): each pixel's ``size`` x ``size`` neighbourhood (edges repeated)
    laid out as the block of a grid ``size`` times finer, so `sample_pairs` gathers it as it gathers the
    Planet window under an S2 pixel (a Sentinel-1 neighbourhood as the second view)."""
    arr = np.asarray(image, np.float32)
    channels, height, width = arr.shape
    r = size // 2
    padded = np.pad(arr, ((0, 0), (r, r), (r, r)), mode="edge")
    grid = np.empty((channels, height, size, width, size), np.float32)
    for a in range(size):
        for b in range(size):
            grid[:, :, a, :, b] = padded[:, a : a + height, b : b + width]
    return grid.reshape(channels, height * size, width * size)


def match_dates(
    s2_dates: Sequence[np.datetime64] | npt.NDArray[np.datetime64],
    planet_dates: Sequence[np.datetime64] | npt.NDArray[np.datetime64],
    *,
    tolerance_days: int = 0,
) -> list[tuple[int, int]]:
    """Pair each S2 date with the nearest Planet date no more than ``tolerance_days`` away.

    Returns ``(s2_index, planet_index)`` tuples in S2 order; S2 dates without a match are left out. Ties go
    to the earlier Planet date. Dates are compared at day precision.
    """
    if tolerance_days < 0:
        raise ValueError("tolerance_days must be >= 0")
    s2 = np.asarray(s2_dates, dtype="datetime64[D]").astype(np.int64)
    pl = np.asarray(planet_dates, dtype="datetime64[D]").astype(np.int64)
    out: list[tuple[int, int]] = []
    if len(pl) == 0:
        return out
    for i, day in enumerate(s2):
        gaps = np.abs(pl - day)
        best = int(np.min(gaps))
        if best <= tolerance_days:
            # argmin over (gap, date) so that ties pick the earlier acquisition deterministically.
            candidates = np.flatnonzero(gaps == best)
            out.append((i, int(candidates[np.argmin(pl[candidates])])))
    return out


def planet_windows(planet: FloatArray) -> FloatArray:
    """(4, 3H, 3W) Planet reflectance -> (H, W, 36): the 3x3 window under each S2 pixel, (row, col, band)."""
    bands, hh, ww = planet.shape
    if hh % PLANET_WINDOW or ww % PLANET_WINDOW:
        raise ValueError(f"Planet grid {hh}x{ww} is not a 3x refinement of an S2 grid")
    h, w = hh // PLANET_WINDOW, ww // PLANET_WINDOW
    win = planet.reshape(bands, h, PLANET_WINDOW, w, PLANET_WINDOW).transpose(1, 3, 2, 4, 0)
    return np.ascontiguousarray(win.reshape(h, w, PLANET_WINDOW * PLANET_WINDOW * bands), dtype=np.float32)


def pseudo_fields(height: int, width: int, *, block: int = PSEUDO_FIELD_PIXELS) -> IntArray:
    """(H, W) ids 1..n of square ``block`` x ``block`` tiles of the S2 grid, the stand-in for parcels."""
    rows = np.arange(height) // block
    cols = np.arange(width) // block
    return (rows[:, None] * (-(-width // block)) + cols[None, :] + 1).astype(np.int64)


def split_field_raster(fields: IntArray, *, seed: int) -> tuple[IntArray, IntArray]:
    """Field ids of the 70 % (pretraining) and 21 % (held-out) splits; id 0 means no field and is unused."""
    ids = np.unique(fields[fields > 0])
    if len(ids) < len(SPLIT_FRACTIONS):
        raise NoDataError(
            f"only {len(ids)} field(s) in the area: the 70-21-9 split needs at least {len(SPLIT_FRACTIONS)}; "
            "give a larger AOI or a parcels file with more fields (`fields`)",
            param="fields",
        )
    parts = split_fields(ids, fractions=SPLIT_FRACTIONS, seed=seed)
    return np.asarray(parts[0], np.int64), np.asarray(parts[1], np.int64)


def sample_pairs(
    s2: FloatArray,
    planet: FloatArray | None,
    *,
    mask: npt.NDArray[np.bool_],
    n: int | None,
    rng: np.random.Generator,
    window: int = PLANET_WINDOW,
) -> FloatArray:
    """Rows of up to ``n`` random valid pixels of one date inside ``mask``.

    Args:
        s2: (12, H, W) reflectance, NaN where masked.
        planet: (4, 3H, 3W) reflectance on the 3x grid, NaN where masked; None for S2-only rows. Any
            second view: (C, wH, wW) on the S2 grid refined ``window`` times (Sentinel-1: (2, H, W), 1).
        mask: (H, W) pixels eligible (in the split's fields).
        n: pixels wanted; None takes every valid pixel.
        rng: the date's generator.

    Returns:
        (m, 48) or (m, 12) float32, m = min(n, valid pixels), in random order.
    """
    s2 = np.asarray(s2, np.float32)
    _, height, width = s2.shape
    valid = mask & np.isfinite(s2).all(axis=0)
    if planet is not None:
        # (4, H, 3, W, 3) view: Planet pixel (3i + r, 3j + c) is [:, i, r, j, c]; no copy of the image.
        grid = np.asarray(planet, np.float32).reshape(planet.shape[0], height, window, width, window)
        valid &= np.isfinite(grid).all(axis=(0, 2, 4))
    flat = np.flatnonzero(valid)
    take = len(flat) if n is None else min(n, len(flat))
    chosen = np.sort(rng.choice(flat, size=take, replace=False)) if take < len(flat) else flat
    ii, jj = np.divmod(chosen, width)
    rows = s2[:, ii, jj].T  # (m, 12): only the chosen pixels are gathered
    if planet is not None:
        win = grid[:, ii, :, jj, :]  # advanced indices first: (m, 4, 3, 3) = (m, band, row, col)
        n_second = planet.shape[0] * window * window
        rows = np.concatenate([rows, win.transpose(0, 2, 3, 1).reshape(len(chosen), n_second)], axis=1)
    rows = np.ascontiguousarray(rows, dtype=np.float32)
    return rows[rng.permutation(len(rows))]
