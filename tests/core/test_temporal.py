"""TemporalGrid and regrid: the bin-then-interpolate rule and shapes."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from geocrop.core.temporal import TemporalGrid, regrid, regrid_cube
from geocrop.errors import InputError


def _grid(steps: int = 11) -> TemporalGrid:
    return TemporalGrid(dt.date(2021, 1, 1), dt.date(2021, 1, 21), steps)  # 2-day spacing


def test_grid_dates_evenly_spaced_and_inclusive() -> None:
    grid = TemporalGrid(dt.date(2021, 1, 1), dt.date(2021, 12, 31))
    assert grid.steps == 144
    assert grid.dates[0] == np.datetime64("2021-01-01") and grid.dates[-1] == np.datetime64("2021-12-31")
    gaps = np.diff(grid.dates).astype(int)
    assert set(gaps.tolist()) <= {2, 3}  # 364 days / 143 steps = 2.55 days, rounded to whole days
    assert np.allclose(np.diff(grid.offsets_days), 364 / 143)


def test_grid_validation_and_roundtrip() -> None:
    with pytest.raises(InputError, match="`end` 2021-01-01 is not after `start` 2021-02-01"):
        TemporalGrid(dt.date(2021, 2, 1), dt.date(2021, 1, 1))
    with pytest.raises(InputError, match="at least 2"):
        TemporalGrid(dt.date(2021, 1, 1), dt.date(2021, 2, 1), 1)
    g = TemporalGrid("2021-03-01", "2021-10-31", 50)  # type: ignore[arg-type]
    assert TemporalGrid.from_dict(g.to_dict()) == g


def test_interpolates_between_clear_steps_and_holds_ends() -> None:
    grid = _grid()
    times = np.array(["2021-01-05", "2021-01-13"], dtype="datetime64[D]")  # steps 2 and 6
    out, frac = regrid(np.array([1.0, 5.0], np.float32), times, grid)
    expected = [1, 1, 1, 2, 3, 4, 5, 5, 5, 5, 5]
    np.testing.assert_allclose(out, expected)
    assert out.dtype == np.float32
    assert frac == pytest.approx(2 / 11)


def test_several_observations_on_one_step_are_averaged_and_nan_ignored() -> None:
    grid = _grid()
    times = np.array(["2021-01-03", "2021-01-03T12:00", "2021-01-03", "2021-01-09"], dtype="datetime64[s]")
    vals = np.array([1.0, 3.0, np.nan, 7.0], np.float32)
    out, frac = regrid(vals, times, grid)
    assert out[1] == pytest.approx(2.0)  # mean of 1 and 3 (NaN is masked, not a zero)
    assert out[4] == pytest.approx(7.0)
    assert out[2] == pytest.approx(2.0 + (7.0 - 2.0) / 3)
    assert frac == pytest.approx(2 / 11)


def test_all_masked_series_stays_nan_and_outside_times_dropped() -> None:
    grid = _grid()
    vals = np.array([[np.nan, 4.0], [np.nan, 100.0]], np.float32)  # (T=2, P=2)
    times = np.array(["2021-01-07", "2022-06-01"], dtype="datetime64[D]")  # 2nd far outside the grid
    out, frac = regrid(vals, times, grid)
    assert np.isnan(out[:, 0]).all()
    np.testing.assert_allclose(out[:, 1], 4.0)  # the out-of-range 100 never lands on the grid
    np.testing.assert_allclose(frac, [0.0, 1 / 11])


def _reference(series: np.ndarray, times: np.ndarray, grid: TemporalGrid) -> np.ndarray:
    """Plain per-series implementation of the documented rule, for comparison."""
    idx = grid.step_index(times)
    sums = np.zeros(grid.steps)
    counts = np.zeros(grid.steps)
    for v, k in zip(series, idx, strict=True):
        if k >= 0 and not np.isnan(v):
            sums[k] += v
            counts[k] += 1
    ok = counts > 0
    if not ok.any():
        return np.full(grid.steps, np.nan)
    steps = np.arange(grid.steps)
    return np.interp(steps, steps[ok], sums[ok] / counts[ok])


def test_vectorised_matches_reference_on_4d_blocks() -> None:
    rng = np.random.default_rng(0)
    grid = TemporalGrid(dt.date(2021, 1, 1), dt.date(2021, 12, 31), 144)
    days = np.sort(rng.choice(365, size=30, replace=False))
    times = np.datetime64("2021-01-01") + days.astype("timedelta64[D]")
    vals = rng.random((30, 3, 4, 5)).astype(np.float32)
    vals[rng.random(vals.shape) < 0.4] = np.nan
    vals[:, 0, 0, 0] = np.nan  # one fully masked series
    out, frac = regrid(vals, times, grid)
    assert out.shape == (144, 3, 4, 5) and frac.shape == (3, 4, 5)
    for b, y, x in np.ndindex(3, 4, 5):
        np.testing.assert_allclose(out[:, b, y, x], _reference(vals[:, b, y, x], times, grid), rtol=1e-5)
    assert np.isnan(out[:, 0, 0, 0]).all() and frac[0, 0, 0] == 0


def test_column_blocks_give_the_same_result(monkeypatch: pytest.MonkeyPatch) -> None:
    """Regridding in pixel-column blocks (memory bound) matches one pass over every column."""
    import geocrop.core.temporal as temporal

    rng = np.random.default_rng(1)
    grid = TemporalGrid(dt.date(2021, 1, 1), dt.date(2021, 12, 31), 144)
    times = np.datetime64("2021-01-01") + np.sort(rng.choice(365, 25, replace=False)).astype("timedelta64[D]")
    vals = rng.random((25, 2, 7, 9)).astype(np.float32)
    vals[rng.random(vals.shape) < 0.5] = np.nan
    monkeypatch.setattr(temporal, "_COLUMNS", 10**9)
    whole, whole_frac = regrid(vals, times, grid)
    monkeypatch.setattr(temporal, "_COLUMNS", 10)  # 126 columns -> 13 blocks, the last one short
    blocks, blocks_frac = regrid(vals, times, grid)
    np.testing.assert_array_equal(blocks, whole)
    np.testing.assert_array_equal(blocks_frac, whole_frac)


def test_axis_argument() -> None:
    rng = np.random.default_rng(1)
    grid = _grid()
    times = np.array(["2021-01-02", "2021-01-10", "2021-01-17"], dtype="datetime64[D]")
    vals = rng.random((4, 3, 2)).astype(np.float32)  # (B, T, P)
    out, frac = regrid(vals, times, grid, axis=1)
    ref, ref_frac = regrid(np.moveaxis(vals, 1, 0), times, grid)
    assert out.shape == (4, 11, 2)
    np.testing.assert_allclose(np.moveaxis(out, 1, 0), ref)
    np.testing.assert_allclose(frac, ref_frac)
    with pytest.raises(InputError, match="one time per observation"):
        regrid(vals, times[:2], grid, axis=1)


def test_a_mapper_chunk_with_half_its_observations_masked_is_fully_filled() -> None:
    # Speed is measured in bench/, not asserted here; this checks the full-size chunk shape and fill.
    rng = np.random.default_rng(2)
    grid = TemporalGrid(dt.date(2021, 1, 1), dt.date(2021, 12, 31), 144)
    times = np.datetime64("2021-01-01") + np.arange(0, 365, 5).astype("timedelta64[D]")
    vals = rng.random((times.size, 12, 32, 32)).astype(np.float32)
    vals[rng.random(vals.shape) < 0.5] = np.nan
    out, _ = regrid(vals, times, grid)
    assert out.shape == (144, 12, 32, 32)
    assert not np.isnan(out).any()


def test_regrid_cube_eager_and_lazy_match_numpy() -> None:
    import xarray as xr

    rng = np.random.default_rng(3)
    grid = _grid()
    times = np.array(["2021-01-02", "2021-01-08", "2021-01-08", "2021-01-19"], dtype="datetime64[ns]")
    vals = rng.random((4, 2, 6, 5)).astype(np.float32)
    vals[rng.random(vals.shape) < 0.3] = np.nan
    cube = xr.DataArray(vals, dims=("time", "band", "y", "x"), coords={"time": times, "band": ["a", "b"]})
    ref, ref_frac = regrid(vals, times, grid)
    eager, frac = regrid_cube(cube, grid)
    lazy, lazy_frac = regrid_cube(cube.chunk({"time": 2, "y": 3, "x": 5}), grid)
    assert lazy.chunks is not None and eager.sizes["time"] == 11
    np.testing.assert_array_equal(eager["time"].values, grid.dates.astype("datetime64[ns]"))
    assert list(eager["band"].values) == ["a", "b"] and eager.attrs["temporal_grid"]["steps"] == 11
    np.testing.assert_allclose(eager.values, ref)
    np.testing.assert_allclose(lazy.values, ref)
    np.testing.assert_allclose(frac.values, ref_frac)
    np.testing.assert_allclose(lazy_frac.values, ref_frac)
