"""The fixed temporal grid every model sees, and the rule that puts irregular, masked observations on it.

The paper's temporal heads read 144-step series per pixel. Real acquisitions are irregular and clouded, so
both ``geocrop train`` and ``geocrop map`` pass them through :func:`regrid`, which applies one rule:

1. **Bin.** Each clear (non-NaN) observation goes to the grid step nearest in time; several clear
   observations on one step are averaged. Observations more than half a step outside ``[start, end]`` are
   dropped.
2. **Fill.** Steps without a clear observation are linearly interpolated in time between the nearest
   clear steps before and after; before the first clear step the first value is held, after the last the
   last value is held.
3. A series with no clear observation at all stays all-NaN (the caller masks that pixel).

The valid fraction returned beside the values is the share of grid steps that received at least one clear
observation (before filling), per series. Everything is vectorised numpy over whole blocks (no loop over
pixels): it runs per chunk inside the mapper.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import numpy.typing as npt

from geocrop.errors import InputError

if TYPE_CHECKING:
    import xarray as xr

DEFAULT_STEPS = 144

#: A date as callers give it: a `date`, a `datetime` (its day), an ISO string (``"2023-03-01"``, a time
#: part ignored) or a numpy ``datetime64``. Every season date in geocrop becomes a `date` through `as_date`.
DateLike: TypeAlias = "dt.date | dt.datetime | str | np.datetime64"


def as_date(value: Any, param: str = "date") -> dt.date:
    """The one date parser: a `date` from any `DateLike`; `InputError` naming ``param`` otherwise."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, np.datetime64) and not np.isnat(value):
        return dt.date.fromisoformat(str(value.astype("datetime64[D]")))
    if isinstance(value, str):
        text = value.strip()
        try:
            return dt.date.fromisoformat(text[:10] if len(text) > 10 and text[10] in "T " else text)
        except ValueError:
            pass
    raise InputError(
        f"`{param}` {value!r} is not a date; give a date or 'YYYY-MM-DD', e.g. '2023-03-01'", param=param
    )


#: The season rule's one message (the QGIS plugin, which cannot import geocrop, reads it from its table).
SEASON_RULE = "`end` {end} is not after `start` {start}; give start < end"


class SeasonDate(dt.date):
    """The first or last date of a settled `Season`: a plain `date` to every reader, which also carries
    its season, so code that receives both dates of one season (a config's ``start`` and ``end`` handed
    to `TemporalGrid`) takes them as settled instead of parsing and checking them again."""

    season: Season

    def __repr__(self) -> str:
        return repr(dt.date(self.year, self.month, self.day))

    def __reduce__(self) -> tuple[Any, ...]:
        return dt.date, (self.year, self.month, self.day)  # a copy or a pickle is a plain date


@dataclass(frozen=True)
class Season:
    """A season settled once: both dates parsed (`as_date`, any `DateLike`) and held to the one season
    rule, ``end`` after ``start`` (at least two days), else `InputError` (``param="end"``). The rule lives
    here alone: configs settle their dates through it (`geocrop.core.params.settle` with ``season=``),
    and `TemporalGrid` goes through `Season.of`, which checks only dates no season has settled yet."""

    start: dt.date
    end: dt.date

    def __post_init__(self) -> None:
        start, end = as_date(self.start, "start"), as_date(self.end, "end")
        if end <= start:
            raise InputError(SEASON_RULE.format(start=start, end=end), param="end")
        for name, day in (("start", start), ("end", end)):
            settled = SeasonDate(day.year, day.month, day.day)
            settled.season = self
            object.__setattr__(self, name, settled)

    @classmethod
    def of(cls, start: Any, end: Any) -> Season:
        """The season ``start`` and ``end`` were settled as (no parse, no check), or a new one settled
        now (parsed and checked)."""
        season = getattr(start, "season", None)  # a date made from a SeasonDate (``+ timedelta``) has none
        if isinstance(season, Season) and season.start is start and season.end is end:
            return season
        return cls(start, end)


def settle_season(config: Any, first: str = "start", last: str = "end") -> None:
    """Settle a frozen config's ``first`` and ``last`` date fields as one `Season` (`check_season`) and
    keep its dates in their place; fields left None stay None."""
    season = check_season(getattr(config, first), getattr(config, last))
    if season is not None:
        object.__setattr__(config, first, season.start)
        object.__setattr__(config, last, season.end)


def check_season(start: Any, end: Any) -> Season | None:
    """The settled `Season` of ``start`` and ``end`` (`Season.of`), or None where either is None (not
    given: nothing to compare; the other, if given, must still be a date)."""
    if start is not None and end is not None:
        return Season.of(start, end)
    for name, value in (("start", start), ("end", end)):
        if value is not None:
            as_date(value, name)
    return None


@dataclass(frozen=True)
class TemporalGrid:
    """``steps`` evenly spaced dates from ``start`` to ``end`` (both included).

    Step ``k`` sits at ``start + k * (end - start) / (steps - 1)`` (fractional days); :attr:`dates` rounds
    those to whole days for display and metadata. The dates are settled as a `Season`: the ``start`` and
    ``end`` of a settled config are taken as they are, any other dates are parsed and checked here.
    """

    start: dt.date
    end: dt.date
    steps: int = DEFAULT_STEPS

    def __post_init__(self) -> None:
        if self.steps < 2:
            raise InputError(f"temporal grid steps={self.steps} is too small; give at least 2 steps")
        season = Season.of(self.start, self.end)
        object.__setattr__(self, "start", season.start)
        object.__setattr__(self, "end", season.end)

    @property
    def season(self) -> Season:
        """The grid's first and last dates as a settled `Season`."""
        return Season.of(self.start, self.end)

    @property
    def spacing_days(self) -> float:
        """Days between consecutive steps."""
        return (self.end - self.start).days / (self.steps - 1)

    @property
    def offsets_days(self) -> npt.NDArray[np.float64]:
        """(steps,) position of each step in days after ``start``."""
        return np.arange(self.steps, dtype=np.float64) * self.spacing_days

    @property
    def dates(self) -> npt.NDArray[np.datetime64]:
        """(steps,) datetime64[D] date of each step (rounded to the nearest day)."""
        start = np.datetime64(self.start.isoformat(), "D")
        return start + np.rint(self.offsets_days).astype("timedelta64[D]")

    def step_index(self, times: Any) -> npt.NDArray[np.int64]:
        """(T,) nearest grid step of each time; -1 where it falls more than half a step outside the grid."""
        t = np.asarray(times).astype("datetime64[s]")
        start = np.datetime64(self.start.isoformat(), "s")
        days = (t - start).astype(np.float64) / 86400.0
        idx = np.rint(days / self.spacing_days).astype(np.int64)
        inside = (idx >= 0) & (idx < self.steps)
        return np.where(inside, idx, -1)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (stored in model bundles)."""
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "steps": self.steps}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TemporalGrid:
        """Inverse of :meth:`to_dict`."""
        return cls(data["start"], data["end"], int(data.get("steps", DEFAULT_STEPS)))


#: Pixel columns regridded at once (144 steps x 4Ki columns x 4 B = 2.3 MiB per temporary).
_COLUMNS = 4096


def _bin(
    values: npt.NDArray[np.floating], steps_of_obs: npt.NDArray[np.int64], n_steps: int
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
    """Mean of clear observations per step: (T_obs, P) -> (steps, P) with NaN where none, and the mask."""
    keep = steps_of_obs >= 0
    vals = values[keep]
    st = steps_of_obs[keep]
    out = np.full((n_steps, values.shape[1]), np.nan, dtype=np.float32)
    if vals.shape[0] == 0:
        return out, np.zeros(out.shape, dtype=bool)
    order = np.argsort(st, kind="stable")
    vals, st = vals[order], st[order]
    clear = ~np.isnan(vals)
    starts = np.flatnonzero(np.r_[True, st[1:] != st[:-1]])
    # reduceat sums each run of observations that share a step in one pass (no per-pixel loop).
    sums = np.add.reduceat(np.where(clear, vals, 0.0).astype(np.float64), starts, axis=0)
    counts = np.add.reduceat(clear.astype(np.int32), starts, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = (sums / counts).astype(np.float32)
    out[st[starts]] = np.where(counts > 0, means, np.nan)
    return out, ~np.isnan(out)


def _fill(binned: npt.NDArray[np.float32], valid: npt.NDArray[np.bool_]) -> npt.NDArray[np.float32]:
    """Linear interpolation between clear steps, held constant at both ends: (steps, P) -> (steps, P).

    For every step the nearest clear step at or before it (``lo``) and at or after it (``hi``) come from
    running max/min accumulations; a missing side falls back to the other one (holding the end value),
    and a clear step is its own ``lo`` and ``hi`` (weight 0). A series without any clear step indexes
    only NaNs, so it stays NaN with no special case.
    """
    n = binned.shape[0]
    k = np.arange(n, dtype=np.int32)[:, None]  # int32 halves the memory traffic of the index arrays
    lo = np.maximum.accumulate(np.where(valid, k, np.int32(-1)), axis=0)
    hi = np.minimum.accumulate(np.where(valid, k, np.int32(n))[::-1], axis=0)[::-1]
    lo = np.where(lo < 0, hi, lo)
    hi = np.where(hi >= n, lo, hi)
    np.clip(lo, 0, n - 1, out=lo)
    np.clip(hi, 0, n - 1, out=hi)
    v_lo = np.take_along_axis(binned, lo, axis=0)
    v_hi = np.take_along_axis(binned, hi, axis=0)
    span = hi - lo
    w = (k - lo).astype(np.float32) / np.maximum(span, 1).astype(np.float32)
    return (v_lo + w * (v_hi - v_lo)).astype(np.float32, copy=False)


def regrid(
    values: npt.ArrayLike, times: Any, grid: TemporalGrid, *, axis: int = 0
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Put irregular, masked observations on ``grid`` by the module's bin-then-interpolate rule.

    Args:
        values: (..., T_obs, ...) observations with time on ``axis``; NaN = masked (cloud, nodata). Works
            on (T, B, y, x) chunks and on (T, ...) pixel arrays alike.
        times: (T_obs,) acquisition times (datetime64, dates or ISO strings); repeats are allowed.
        grid: the target grid.
        axis: the time axis of ``values``.

    Returns:
        ``(regridded, valid_fraction)``: float32 values with ``axis`` resized to ``grid.steps``, and the
        float32 share of steps that had a clear observation, shaped like ``values`` without ``axis``.
    """
    arr = np.asarray(values, dtype=np.float32)
    t = np.asarray(times)
    if arr.ndim == 0 or arr.shape[axis] != t.shape[0]:
        raise InputError(
            f"regrid got {t.shape[0]} times for {arr.shape[axis] if arr.ndim else 0} observations on "
            f"axis {axis}; pass one time per observation"
        )
    moved = np.moveaxis(arr, axis, 0)
    rest = moved.shape[1:]
    flat = moved.reshape(moved.shape[0], -1)
    steps = grid.step_index(t) if t.size else np.empty(0, np.int64)
    filled = np.empty((grid.steps, flat.shape[1]), dtype=np.float32)
    frac = np.empty(flat.shape[1], dtype=np.float32)
    # Column blocks bound the dozen (steps, P) temporaries of binning and filling (~300 MB for a
    # 64 x 64 px, 12-band tile in one go) and keep them in cache.
    for c in range(0, flat.shape[1], _COLUMNS):
        binned, valid = _bin(flat[:, c : c + _COLUMNS], steps, grid.steps)
        filled[:, c : c + _COLUMNS] = _fill(binned, valid)
        frac[c : c + _COLUMNS] = valid.mean(axis=0)
    out = np.moveaxis(filled.reshape((grid.steps, *rest)), 0, axis)
    return np.ascontiguousarray(out), frac.reshape(rest)


def regrid_cube(cube: xr.DataArray, grid: TemporalGrid) -> tuple[xr.DataArray, xr.DataArray]:
    """:func:`regrid` for a ``(time, ...)`` DataArray such as a loaded cube; stays lazy for dask cubes.

    Returns ``(regridded, valid_fraction)``: the first with ``time`` replaced by ``grid.dates`` and
    ``attrs["temporal_grid"]`` added, the second without ``time``. A dask cube is rechunked to one chunk
    along time (each pixel needs its whole series) and processed block by block.
    """
    import xarray as xr

    if cube.dims[0] != "time":
        cube = cube.transpose("time", ...)
    times = cube["time"].values
    steps = grid.step_index(times)
    keep_coords = {k: v for k, v in cube.coords.items() if "time" not in v.dims}
    if cube.chunks is not None:
        data = cube.chunk({"time": -1}).data
        values = data.map_blocks(
            lambda b: regrid(b, times, grid)[0],
            chunks=((grid.steps,), *data.chunks[1:]),
            dtype=np.float32,
        )
        frac = data.map_blocks(
            lambda b: _valid_fraction(b, steps, grid.steps),
            drop_axis=0,
            chunks=data.chunks[1:],
            dtype=np.float32,
        )
    else:
        values, frac = regrid(np.asarray(cube.values), times, grid)
    coords = {**keep_coords, "time": grid.dates.astype("datetime64[ns]")}
    out = xr.DataArray(
        values, dims=cube.dims, coords=coords, attrs={**cube.attrs, "temporal_grid": grid.to_dict()}
    )
    fraction = xr.DataArray(frac, dims=cube.dims[1:], coords=keep_coords, name="valid_fraction")
    return out, fraction


def _valid_fraction(
    block: npt.NDArray[np.floating], steps: npt.NDArray[np.int64], n: int
) -> npt.NDArray[np.float32]:
    flat = np.asarray(block, dtype=np.float32).reshape(block.shape[0], -1)
    _, valid = _bin(flat, steps, n)
    return valid.mean(axis=0).astype(np.float32).reshape(block.shape[1:])
