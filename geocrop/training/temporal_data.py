"""Unlabelled series for temporal pretraining: a samples table or an imagery cube, on the temporal grid.

Temporal pretraining must know which grid steps hold a real, clear observation (the only ones used as
reconstruction targets), so the series are **binned** onto the grid by `bin_to_grid` (the first half of
`geocrop.core.temporal.regrid`: each clear observation to its nearest step, several averaged) and not
filled; gaps stay NaN and the training loop fills what the head sees (`series_augment.fill_gaps`), after
hiding the target dates, with the same linear rule `geocrop train` applies.

The grid follows `geocrop train`'s rule for the same source, so a pretrained head fits the labelled series
of that source: a table's own first and last date with one step per cadence (`auto_steps`), imagery the
paper's 144 steps; ``steps`` overrides both. Labels are never read.

Sentinel-1 (the second sensor): a table's ``S1-SIGMA0-VV``/``VH`` columns or a cube's S1 variables,
decoded to dB as for contrastive pretraining (`geocrop.data.table_pairs`), binned on the same grid.
"""

from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from geocrop.core.bands import S2_BANDS
from geocrop.core.temporal import DEFAULT_STEPS, TemporalGrid
from geocrop.data.labelled import auto_steps, is_samples_table
from geocrop.errors import GeocropError, InputError

__all__ = ["MAX_IMAGE_SERIES", "UnlabelledSeries", "bin_to_grid", "load_series"]

#: Pixels drawn (seeded) from an imagery cube at most.
MAX_IMAGE_SERIES = 100_000
Second = Literal["auto", "s1", "none"]


@dataclass(frozen=True)
class UnlabelledSeries:
    """values (N, T, 12) float32 reflectance on ``grid``, NaN where a step has no clear observation;
    second (N, T, 2) Sentinel-1 VV/VH dB on the same grid (NaN: none) or None."""

    values: np.ndarray
    second: np.ndarray | None
    grid: TemporalGrid
    filled_bands: tuple[str, ...] = ()
    provenance: dict[str, Any] = field(default_factory=dict)
    bands: tuple[str, ...] = S2_BANDS

    @property
    def observed(self) -> np.ndarray:
        """(N, T) steps where every band holds a clear observation."""
        return np.isfinite(self.values).all(axis=2)


def bin_to_grid(values: np.ndarray, dates: np.ndarray, grid: TemporalGrid) -> np.ndarray:
    """(N, T_obs, C) observations (NaN: masked) on ``dates`` -> (N, steps, C): per step the mean of the
    clear observations binned to it (nearest step), NaN where none. Observations off the grid are dropped."""
    step = grid.step_index(np.asarray(dates))
    n, _, c = values.shape
    sums = np.zeros((n, grid.steps, c), dtype=np.float64)
    counts = np.zeros((n, grid.steps, c), dtype=np.int32)
    for j in np.flatnonzero(step >= 0):
        clear = np.isfinite(values[:, j])
        sums[:, step[j]] += np.where(clear, values[:, j], 0.0)
        counts[:, step[j]] += clear
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan).astype(np.float32)


def _single_date(source: str) -> InputError:
    return InputError(
        f"`s2` {source} holds a single date, so there is no series to pretrain on along time; give a "
        "table or cube with two or more dates per sample, or use `mode` bimodal or unimodal",
        param="s2",
    )


def _grid(
    dates: np.ndarray, cadence: float, steps: int | Literal["auto"], source: str, *, table: bool
) -> TemporalGrid:
    if len(np.unique(np.asarray(dates, "datetime64[D]"))) < 2:
        raise _single_date(source)
    start = dt.date.fromisoformat(str(np.min(dates))[:10])
    end = dt.date.fromisoformat(str(np.max(dates))[:10])
    if steps == "auto":
        steps = auto_steps(cadence, start, end, what=f"samples table {source}") if table else DEFAULT_STEPS
    return TemporalGrid(start, end, int(steps))


def _table(path: Path, *, steps: int | Literal["auto"], second: Second) -> UnlabelledSeries:
    from geocrop.data.samples import MissingBandWarning, read_samples
    from geocrop.data.table_pairs import read_s1_columns

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MissingBandWarning)  # listed in the bundle's filled_bands
        table = read_samples(path, label_column=None)
    grid = _grid(table.dates, table.cadence_days, steps, str(path), table=True)
    values = bin_to_grid(table.values, table.dates, grid)
    ids = table.ids if table.ids is not None else np.arange(len(values)).astype(str)
    s1 = None
    if second != "none":
        try:
            s1 = bin_to_grid(read_s1_columns(path, ids=ids, dates=table.dates), table.dates, grid)
        except InputError:
            if second == "s1":
                raise
    provenance = {"source": str(path), "source_kind": "samples table", "samples": len(values)}
    return UnlabelledSeries(values, s1, grid, tuple(table.missing_bands), provenance)


def _image(
    source: str, *, steps: int | Literal["auto"], second: Second, seed: int, s1: str | None, trust: bool
) -> UnlabelledSeries:
    from geocrop.data.pair_sources import open_pair_sources

    try:
        cubes = open_pair_sources(
            s2=source,
            planet=None,
            aoi=None,
            start=None,
            end=None,
            second_modality="sentinel-1" if second != "none" else None,
            s1=s1,
            allow_any_asset_href=trust,
        )
    except GeocropError:
        if second != "auto":  # auto: imagery without Sentinel-1 is pretrained on S2 alone
            raise
        cubes = open_pair_sources(
            s2=source, planet=None, aoi=None, start=None, end=None, allow_any_asset_href=trust
        )
    dates = cubes.s2_dates
    cadence = float(np.median(np.diff(np.unique(dates)).astype(float))) if len(np.unique(dates)) > 1 else 0.0
    grid = _grid(dates, cadence, steps, source, table=False)
    s2 = np.asarray(cubes.s2.transpose("time", "band", "y", "x").values, dtype=np.float32)
    t, c = s2.shape[:2]
    series = s2.reshape(t, c, -1).transpose(2, 0, 1)  # (pixels, T_obs, 12)
    rng = np.random.default_rng([seed, 0x5E])
    pick = rng.permutation(len(series))[:MAX_IMAGE_SERIES]
    values = bin_to_grid(np.ascontiguousarray(series[pick]), dates, grid)
    s1_values = None
    if cubes.planet is not None and cubes.planet_dates is not None:
        s1_cube = np.asarray(cubes.planet.transpose("time", "band", "y", "x").values, dtype=np.float32)
        s1_series = s1_cube.reshape(s1_cube.shape[0], s1_cube.shape[1], -1).transpose(2, 0, 1)
        s1_values = bin_to_grid(np.ascontiguousarray(s1_series[pick]), cubes.planet_dates, grid)
    provenance = {"source": source, "source_kind": "imagery", "pixels": len(series)}
    filled = tuple(cubes.provenance.get("filled_bands", []))
    return UnlabelledSeries(values, s1_values, grid, filled, provenance)


def load_series(
    source: str,
    *,
    steps: int | Literal["auto"] = "auto",
    second: Second = "auto",
    s1: str | None = None,
    seed: int = 0,
    allow_any_asset_href: bool = False,
) -> UnlabelledSeries:
    """The unlabelled series of ``source`` (samples table or imagery), binned on the grid (see module).

    ``second``: ``auto`` takes Sentinel-1 where the source has it, ``s1`` requires it, ``none`` skips it.
    Series with fewer than two observed steps are left out (nothing to reconstruct from). Raises
    `InputError` for a source with a single date, no series with two clear dates, or Sentinel-1 that
    shares no grid step with Sentinel-2.
    """
    path = Path(source)
    if path.exists() and is_samples_table(path):
        data = _table(path, steps=steps, second=second)
    else:
        data = _image(source, steps=steps, second=second, seed=seed, s1=s1, trust=allow_any_asset_href)
    usable = data.observed.sum(axis=1) >= 2
    if not usable.any():
        raise InputError(
            f"`s2` {source}: no series has two or more clear dates on the {data.grid.steps}-step grid; "
            "give a source with clear observations on several dates",
            param="s2",
        )
    second_values = data.second[usable] if data.second is not None else None
    if second_values is not None:
        both = data.observed[usable] & np.isfinite(second_values).all(axis=2)
        if not both.any():
            raise InputError(
                f"the Sentinel-1 series of {s1 or source} share no date with Sentinel-2 on the "
                f"{data.grid.steps}-step grid; give `s1` data of the same season, or `second_modality` none",
                param="second_modality",
            )
    provenance = {**data.provenance, "series": int(usable.sum()), "left_out": int((~usable).sum())}
    return UnlabelledSeries(
        data.values[usable], second_values, data.grid, data.filled_bands, provenance, data.bands
    )
