"""`geocrop predict`: classify the series of a samples table with any bundle, one row out per sample.

The table (any layout `geocrop.data.samples` reads: wide, long, WorldCereal extractions) is put on the
bundle's own temporal grid by the same rule as training and mapping, then run through the same engine
as `geocrop map` (`Predictor`), so a bundle classifies a table exactly as it would the pixels of a map.
The output (CSV or Parquet, by suffix) has the sample id, the true label when ``class_column`` is given,
the predicted class, its probability (``confidence``, 0..1) and one ``p_<class>`` column per class; a
sample without any clear observation gets an empty prediction (a warning says how many; when none has one
it is an error, and when the table's dates lie outside the season it gives the `start`/`end` that align
them, `season_hint`). The probabilities are the engine's:
temperature-scaled and corrected for ``class_priors`` (by default the training class frequencies;
`geocrop.inference.priors`).
"""

from __future__ import annotations

import datetime as dt
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from geocrop.core.bands import S2_BANDS
from geocrop.core.temporal import TemporalGrid, regrid
from geocrop.data.samples import read_samples
from geocrop.errors import BundleError, GeocropWarning, InputError
from geocrop.inference.priors import PriorChoice, check_priors
from geocrop.inference.schema import parse_bundle_metadata
from geocrop.io.atomic import atomic_path
from geocrop.io.bundle import read_bundle_metadata
from geocrop.io.extent import table_area, warn_outside
from geocrop.io.provenance import read_provenance

SUFFIXES = (".csv", ".parquet")


@dataclass(frozen=True)
class PredictResult:
    """Where the predictions went, how many samples, how many had no clear observation."""

    out: Path
    n_samples: int
    n_empty: int
    class_names: tuple[str, ...]


def check_predict_output(out: Path, samples: Path) -> Path:
    """The output must be a .csv/.parquet file that is not the input table."""
    if out.suffix.lower() not in SUFFIXES:
        raise InputError(f"`out` {out} must end in .csv or .parquet (e.g. predictions.csv)", param="out")
    if out.exists() and out.is_dir():
        raise InputError(f"`out` {out} is a folder; give a file name ending in .csv or .parquet", param="out")
    if out.resolve() == samples.resolve():
        raise InputError(f"`out` {out} is the samples table itself; give another file name", param="out")
    if not out.parent.is_dir():
        raise InputError(f"`out` {out}: folder {out.parent} does not exist; create it first", param="out")
    return out


def aligned_season(
    season: tuple[dt.date, dt.date], dates: tuple[dt.date, dt.date]
) -> tuple[dt.date, dt.date]:
    """The season moved by whole years to the table's ``dates``: the same days of the year, the year the
    table's dates are centred on (a season across New Year keeps its span)."""

    def middle(span: tuple[dt.date, dt.date]) -> dt.date:
        return span[0] + (span[1] - span[0]) / 2

    years = round((middle(dates) - middle(season)).days / 365.25)

    def shift(day: dt.date) -> dt.date:
        try:
            return day.replace(year=day.year + years)
        except ValueError:  # 29 February in a year without it
            return day.replace(year=day.year + years, day=28)

    return shift(season[0]), shift(season[1])


def season_hint(season: tuple[dt.date, dt.date], dates: tuple[dt.date, dt.date]) -> str:
    """When most of the table's dates ``first..last`` lie outside ``season``, the `start`/`end` that would
    align them (same days of the table's year); else ''."""
    first, last = dates
    inside = (min(last, season[1]) - max(first, season[0])).days
    if (season[0] <= first and last <= season[1]) or inside >= 0.5 * (last - first).days:
        return ""
    start, end = aligned_season(season, dates)
    return (
        f"the table's dates {first}..{last} lie outside it: give `start` {start} and `end` {end} (the "
        "same days of the year, moved to the table's dates)"
    )


def check_empty_rows(
    n_empty: int, n: int, *, season: tuple[dt.date, dt.date], dates: tuple[dt.date, dt.date]
) -> None:
    """All ``n`` samples without a clear observation in ``season``: an error naming the fix; some: a
    warning saying how many (their predictions stay empty)."""
    if n_empty == 0:
        return
    hint = season_hint(season, dates)
    where = f"in the season {season[0]}..{season[1]}"  # the bundle's, or the `start`..`end` given
    if n_empty == n:
        fix = hint or (
            "check `nodata` and `scale` (every value may read as no observation) or that the table holds "
            "Sentinel-2 bands"
        )
        raise InputError(
            f"`samples`: none of the {n} samples has a clear observation {where}; " + fix,
            param="start" if hint else "samples",
        )
    warnings.warn(
        f"{n_empty} of {n} samples have no clear observation {where} and get an empty prediction"
        + (f"; {hint}" if hint else ""),
        GeocropWarning,
        stacklevel=3,
    )


def predict_table(
    *,
    model: str | os.PathLike[str],
    samples: str | os.PathLike[str],
    out: str | os.PathLike[str],
    id_column: str = "sample_id",
    class_column: str | None = None,
    nodata: Sequence[float] = (),
    scale: float | None = None,
    device: str = "auto",
    tune_process: bool = True,
    start: dt.date | None = None,
    end: dt.date | None = None,
    class_priors: PriorChoice | None = None,
) -> PredictResult:
    """Classify every sample of ``samples`` with bundle ``model`` and write ``out`` (see module docstring).

    ``tune_process``: let the predictor set torch's threads and tune malloc (see `Predictor`).
    ``start``/``end``: the table's season when it is not the bundle's (another year): the bundle's steps
    are spread over it, as `geocrop map` does with its ``--start``/``--end``. Both or neither.
    ``class_priors``: the class shares to correct for (None: the bundle's training frequencies).
    """
    from geocrop.inference.engine import Predictor

    samples_path, out_path = Path(samples), Path(out)
    check_predict_output(out_path, samples_path)
    spec = parse_bundle_metadata(read_bundle_metadata(model), source=str(model))
    if tuple(spec.bands) != S2_BANDS:
        raise BundleError(
            f"bundle {model} reads bands {list(spec.bands)}, not Sentinel-2's; give an S2 bundle"
        )
    if spec.grid_start is None or spec.grid_end is None:
        raise BundleError(f"bundle {model} records no temporal grid; retrain it with this geocrop")
    if class_priors is not None:
        check_priors(class_priors, spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # band filling is reported by training, not here
        table = read_samples(
            samples_path, label_column=class_column, id_column=id_column, nodata=nodata, scale=scale
        )
    if (start is None) != (end is None):
        raise InputError("give both start and end (the table's season) or neither (the bundle's season)")
    grid = TemporalGrid(start or spec.grid_start, end or spec.grid_end, spec.steps)
    values, _ = regrid(table.values, table.dates, grid, axis=1)  # (N, T, 12)
    block = np.ascontiguousarray(values.transpose(1, 2, 0))[..., None]  # (T, 12, N, 1)
    predictor = Predictor(model, device=device, tune_process=tune_process, class_priors=class_priors)
    prediction = predictor.predict_block(block)
    first, last = (dt.date.fromisoformat(str(d)[:10]) for d in (table.dates.min(), table.dates.max()))
    warn_outside(  # after every check: the samples' places and dates beside where and when it learned
        read_provenance(spec.metadata),
        area=table_area(samples_path, id_column=id_column),
        start=first,
        end=last,
        steps=spec.steps,
        what="the samples",
    )
    probs = prediction.probs[:, :, 0].T  # (N, C)
    names = tuple(c.name for c in spec.classes)
    empty = ~np.isfinite(probs).all(axis=1)
    check_empty_rows(int(empty.sum()), probs.shape[0], season=(grid.start, grid.end), dates=(first, last))
    best = np.nan_to_num(probs, nan=-1.0).argmax(axis=1)
    ids = table.ids if table.ids is not None else np.arange(len(probs)).astype(str)
    predicted = np.array(names, dtype=object)[best]
    predicted[empty] = None
    # built in one go: a column added at a time fragments the frame and pandas warns on every run
    frame = pd.DataFrame(
        {
            id_column: ids,
            **({class_column: table.labels} if class_column is not None else {}),
            "predicted": predicted,
            "confidence": np.where(empty, np.nan, np.nanmax(np.nan_to_num(probs, nan=0.0), axis=1)),
            **{f"p_{name}": probs[:, k] for k, name in enumerate(names)},
        }
    )
    with atomic_path(out_path, what="predictions") as tmp:
        if out_path.suffix.lower() == ".csv":
            frame.to_csv(tmp, index=False, float_format="%.5f")
        else:
            frame.to_parquet(tmp, index=False)
    return PredictResult(out_path, len(frame), int(empty.sum()), names)
