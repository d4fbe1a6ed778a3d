"""Samples tables: labelled per-sample band time series a user already extracted (Parquet or CSV).

Two layouts, detected from the columns:

- **wide**: one row per sample; a label column, an optional group column (parcel id, used for splitting)
  and one column per band and date named ``<band>_<date>``, e.g. ``B02_2021-03-01`` (``B2`` and
  ``2021-03-01``/``20210301`` spellings are accepted). Dates may differ per band and be irregular.
- **long**: one row per sample and date; a sample id column (``sample_id`` by default), a date column
  (``date``, ``timestamp`` or ``time``, the first found), the label (and optional group) column, and one
  column per band (``B01`` ... ``B12``). This is the layout of ESA WorldCereal's point extractions, whose
  band columns are named ``S2-L2A-B02`` and so on: the ``S2-L2A-`` (or ``S2_``) prefix is accepted.

Values are surface reflectance in [0, 1]; a table whose median value exceeds 2 is taken as L2A digital
numbers and multiplied by 1e-4, with a warning. Empty cells and **nodata values** (65535, WorldCereal's
"no clear observation", plus any ``nodata`` the caller names) are NaN (masked), which the temporal grid
fills (see `geocrop.core.temporal`); they are never read as reflectance. A band whose every value is
nodata counts as absent. Irregular dates are regridded there too; this module keeps the table's own dates.
A band missing from the table is **filled and flagged** by the same rule the cube loader uses
(`geocrop.io.bandmap.fill_plan`: B01 copies B02, B09 copies B8A, others are interpolated in wavelength
between their nearest present neighbours) and listed in `SamplesTable.missing_bands`; it is never shifted
into another band's slot. B02, B03, B04 and B08 are required.

Refused with one `InputError` each: a non-numeric band cell, two rows of one sample and date with
different values (identical repeats are merged), a sample with several labels, a label column that is
empty.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from geocrop.core.bands import S2_BANDS
from geocrop.data.class_map import code_text
from geocrop.errors import GeocropWarning, InputError, NoDataError, SourceError

_BAND = r"(?:S2[-_]?(?:L2A[-_])?)?[Bb](?:8[Aa]|\d{1,2})"
_WIDE = re.compile(rf"^(?P<band>{_BAND})_(?P<date>\d{{4}}-?\d{{2}}-?\d{{2}})$")
#: Date columns of the long layout, in the order they are looked for.
DATE_COLUMNS: tuple[str, ...] = ("date", "timestamp", "time")
#: Values that mean "no observation" in every table (WorldCereal writes 65535 into uint16 columns).
NODATA: tuple[float, ...] = (65535.0,)


class MissingBandWarning(GeocropWarning):
    """A band was absent from the input and filled by the documented rule."""


@dataclass(frozen=True)
class SamplesTable:
    """Labelled band series on the table's own dates.

    values: (N, T_obs, 12) float32 reflectance in `S2_BANDS` order, NaN where missing/masked.
    dates: (T_obs,) datetime64[D], sorted. labels: (N,) str. groups: (N,) str or None.
    missing_bands: bands absent from the table and filled (see module docstring).
    cadence_days: the typical number of days between a sample's consecutive rows (its own dates, clear
    or not): 10 for dekadal composites, ~30 for monthly ones, ~5 for raw Sentinel-2 acquisitions.
    ids: (N,) sample ids (the id column of a long table, the row number of a wide one).
    """

    values: np.ndarray
    dates: np.ndarray
    labels: np.ndarray
    groups: np.ndarray | None
    missing_bands: tuple[str, ...]
    cadence_days: float = float("nan")
    ids: np.ndarray | None = None


def normalise_band(name: str) -> str | None:
    """``"b2"``/``"B02"``/``"S2-L2A-B02"`` -> ``"B02"``, ``"b8a"`` -> ``"B8A"``; None when not an S2 band."""
    m = re.fullmatch(r"(?:S2[-_]?(?:L2A[-_])?)?[Bb](8[Aa]|\d{1,2})", name.strip())
    if not m:
        return None
    code = m.group(1).upper()
    band = "B8A" if code == "8A" else f"B{int(code):02d}"
    return band if band in S2_BANDS else None


def fill_missing_bands(values: np.ndarray, present: tuple[str, ...], *, axis: int = -1) -> np.ndarray:
    """Fill the bands of `S2_BANDS` not in ``present`` along ``axis`` by the cube loader's rule.

    The rule is `geocrop.io.bandmap.fill_plan` (the same one `load_s2` applies, so a table and a cube
    with the same gaps give the same series): B01 copies B02, B09 copies B8A, other bands are linearly
    interpolated in wavelength between the nearest present bands. ``values`` holds all 12 bands along
    ``axis`` (absent ones arbitrary); returns a filled copy. The 10 m bands B02, B03, B04 and B08 cannot
    be filled: a table without them is refused (`InputError`).
    """
    from geocrop.io.bandmap import S2_REQUIRED_BANDS, fill_plan

    lacking = [b for b in S2_REQUIRED_BANDS if b not in present]
    if lacking:
        raise InputError(
            f"band(s) {', '.join(lacking)} are missing and cannot be filled from other bands; "
            "add them (name the columns like B02_2021-03-01 or B02)"
        )
    out = np.moveaxis(np.array(values, dtype=np.float32, copy=True), axis, -1)
    for band, (lo, hi, w) in fill_plan(frozenset(present)).items():
        k, i, j = S2_BANDS.index(band), S2_BANDS.index(lo), S2_BANDS.index(hi)
        out[..., k] = (1.0 - w) * out[..., i] + w * out[..., j]
    return np.moveaxis(out, -1, axis)


def read_frame(path: Path) -> pd.DataFrame:
    """The table at ``path`` (Parquet or CSV) as a DataFrame; `SourceError`/`InputError` when it is none."""
    if not path.exists():
        raise SourceError(f"samples table {path} does not exist; check the path")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq", ".geoparquet"):
            return pd.read_parquet(path)
        if suffix in (".csv", ".txt"):
            return pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise SourceError(
            f"samples table {path} could not be read ({exc}); give a valid Parquet or CSV"
        ) from exc
    raise InputError(f"samples table {path} has suffix {suffix!r}; give a .parquet or .csv file")


#: Time-series columns (S2 bands, wide band_date, S1, meteo, DEM): never a class or group column, so a
#: message listing the choices names them last, as a count.
_SERIES = re.compile(
    rf"^(?:{_BAND}(?:_\d{{4}}-?\d{{2}}-?\d{{2}})?|(?:S1|S2|AGERA5|COP)[-_].*)$", re.IGNORECASE
)


def _check_columns(df: pd.DataFrame, path: Path, label_column: str, group_column: str | None) -> None:
    for what, col in (("class", label_column), ("group", group_column)):
        if col is not None and col not in df.columns:
            names = [str(c) for c in df.columns]
            other = [c for c in names if not _SERIES.match(c)]  # every one: the class column is among them
            series = len(names) - len(other)
            raise InputError(
                f"samples table {path} has no {what} column {col!r}; choose one of: {', '.join(other)}"
                + (f" (besides {series} band column(s))" if series else "")
            )
    if len(df) and df[label_column].isna().all():
        raise InputError(
            f"samples table {path}: class column {label_column!r} is empty (every value is null); "
            "choose the column that holds the crop type"
        )


def _check_crs(df: pd.DataFrame, path: Path) -> None:
    """Mixed CRS: a table whose ``crs``/``epsg`` column names several CRSs cannot be placed consistently."""
    for col in ("crs", "epsg"):
        if col in df.columns:
            found = sorted({str(v) for v in df[col].dropna().unique()})
            if len(found) > 1:
                raise InputError(
                    f"samples table {path} mixes {len(found)} CRSs in column {col!r} "
                    f"({', '.join(found[:4])}); "
                    "reproject the samples to one CRS or split the table by CRS"
                )


def _parse_date(text: str) -> np.datetime64:
    return np.datetime64(pd.Timestamp(text).date(), "D")


def numeric_column(df: pd.DataFrame, column: object, path: Path, nodata: Sequence[float]) -> np.ndarray:
    """Column ``column`` as float32 with empty cells and ``nodata`` values as NaN.

    A cell that is neither empty nor a number is an `InputError` naming the column, the row and the value.
    """
    raw = df[column]
    # ints, floats, nullable and Arrow numbers (decimals too) as they are; text, objects and categoricals
    # parsed, naming the first cell that is not a number
    numbers = raw if pd.api.types.is_numeric_dtype(raw.dtype) else pd.to_numeric(raw, errors="coerce")
    bad = numbers.isna() & raw.notna()
    if bad.any():
        row = bad.to_numpy().nonzero()[0][0]
        raise InputError(
            f"samples table {path}: column {column!r} holds a non-numeric value {raw.iloc[row]!r} "
            f"(row {row + 1}); fix that cell or leave it empty for a missing observation"
        )
    # A fresh, writable float32 copy: pyarrow hands float32 columns over as read-only views, and nullable
    # or categorical dtypes as objects; the nodata cells are overwritten below.
    out = np.array(numbers.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float32, copy=True)
    if nodata:
        out[np.isin(out, np.asarray(nodata, dtype=np.float32))] = np.nan
    return out


def column_text(column: pd.Series) -> np.ndarray:
    """(N,) str: each value of ``column`` as text, integral floats without ``.0`` (`code_text`).

    Ids, groups and coded labels then read the same whatever dtype pandas hands over: int64, nullable
    Int64, float64 (a CSV column with a gap), categorical, Arrow-backed strings. Missing values read
    ``"nan"``/``"<NA>"`` as `str` would write them.
    """
    codes, uniques = pd.factorize(column, use_na_sentinel=False)
    text = np.array([code_text(v) for v in uniques], dtype=object)
    return text[codes].astype(str)


def date_column_of(df: pd.DataFrame, date_column: str | None) -> str | None:
    """The long layout's date column: ``date_column`` when given, else the first of `DATE_COLUMNS` present."""
    if date_column is not None:
        return date_column if date_column in df.columns else None
    return next((c for c in DATE_COLUMNS if c in df.columns), None)


def read_samples(
    path: str | Path,
    *,
    label_column: str | None,
    group_column: str | None = None,
    id_column: str = "sample_id",
    date_column: str | None = None,
    scale: float | None = None,
    nodata: Sequence[float] = (),
) -> SamplesTable:
    """Read a wide or long samples table (see module docstring) into a `SamplesTable`.

    ``label_column`` None reads unlabelled series (labels are ``""``, as for `geocrop predict`).
    ``scale`` multiplies the values (None: auto, DN tables are detected). ``nodata``: values masked besides
    `NODATA`. Raises `InputError` for an unknown column, an empty table, no band column, mixed CRSs, a
    non-numeric cell or conflicting duplicate rows; `SourceError` for an unreadable file.
    """
    path = Path(path)
    df = read_frame(path)
    if label_column is None:
        label_column = "__label__"
        df = df.assign(**{label_column: ""})
    _check_columns(df, path, label_column, group_column)
    df = df[df[label_column].notna()]
    if df.empty:
        raise InputError(
            f"samples table {path} has no labelled rows; add samples with a {label_column!r} value"
        )
    _check_crs(df, path)
    masked = (*NODATA, *nodata)
    wide_cols: dict[object, re.Match[str]] = {}
    for col in df.columns:
        m = _WIDE.match(str(col))
        if m and normalise_band(m.group("band")):
            wide_cols[col] = m
    when = date_column_of(df, date_column)
    if wide_cols:
        table = _from_wide(df, path, wide_cols, label_column, group_column, masked)
    elif when is not None:
        table = _from_long(df, path, label_column, group_column, id_column, when, masked)
    else:
        raise InputError(
            f"samples table {path} has neither <band>_<date> columns (wide, e.g. B02_2021-03-01) nor a "
            f"date column ({date_column or ' or '.join(DATE_COLUMNS)}, long); "
            "see geocrop.data.samples for the layouts"
        )
    values, present = table.values, _present_bands(table.values)
    values = _apply_scale(values, path, scale)
    missing = tuple(b for b in S2_BANDS if b not in present)
    if not np.isfinite(values).any():
        raise NoDataError(f"samples table {path} holds no finite band value; check its band columns")
    if missing:
        values = fill_missing_bands(values, present, axis=2)  # refuses unfillable bands before warning
        warnings.warn(
            f"samples table {path} lacks band(s) {', '.join(missing)}; filled from neighbouring bands "
            "(geocrop.io.bandmap rule) and flagged in the model metadata",
            MissingBandWarning,
            stacklevel=2,
        )
    return SamplesTable(
        values=values,
        dates=table.dates,
        labels=table.labels,
        groups=table.groups,
        missing_bands=missing,
        cadence_days=table.cadence_days,
        ids=table.ids,
    )


def _present_bands(values: np.ndarray) -> tuple[str, ...]:
    """Bands with at least one finite value (a column of nodata only counts as absent)."""
    observed = np.isfinite(values).any(axis=(0, 1))
    return tuple(b for k, b in enumerate(S2_BANDS) if observed[k])


def _median_gap(dates: np.ndarray) -> float:
    days = np.unique(np.asarray(dates, dtype="datetime64[D]")).astype(np.int64)
    return float(np.median(np.diff(days))) if days.size > 1 else float("nan")


def _from_wide(
    df: pd.DataFrame,
    path: Path,
    cols: dict[object, re.Match[str]],
    label_column: str,
    group_column: str | None,
    nodata: Sequence[float],
) -> SamplesTable:
    entries = [(c, normalise_band(m.group("band")), _parse_date(m.group("date"))) for c, m in cols.items()]
    dates = np.array(sorted({d for _, _, d in entries}), dtype="datetime64[D]")
    values = np.full((len(df), len(dates), len(S2_BANDS)), np.nan, dtype=np.float32)
    date_index = {d: i for i, d in enumerate(dates)}
    for col, band, date in entries:
        assert band is not None
        values[:, date_index[date], S2_BANDS.index(band)] = numeric_column(df, col, path, nodata)
    labels = df[label_column].to_numpy()
    groups = column_text(df[group_column]) if group_column else None
    ids = np.array([str(i) for i in df.index])
    return SamplesTable(values, dates, labels, groups, (), _median_gap(dates), ids)


def _from_long(
    df: pd.DataFrame,
    path: Path,
    label_column: str,
    group_column: str | None,
    id_column: str,
    date_column: str,
    nodata: Sequence[float],
) -> SamplesTable:
    if id_column not in df.columns:
        raise InputError(f"samples table {path} (long layout) has no sample id column {id_column!r}; add one")
    band_cols = {c: normalise_band(str(c)) for c in df.columns}
    band_cols = {c: b for c, b in band_cols.items() if b is not None}
    if not band_cols:
        raise InputError(
            f"samples table {path} (long layout) has no band column; "
            "name them B01 ... B12 (or S2-L2A-B02 ...)"
        )
    try:
        when = pd.to_datetime(df[date_column]).dt.floor("D").to_numpy().astype("datetime64[D]")
    except (ValueError, TypeError) as exc:
        raise InputError(
            f"samples table {path}: column {date_column!r} holds unreadable dates ({exc}); give ISO dates"
        ) from exc
    sample_ids, row_sample = np.unique(column_text(df[id_column]), return_inverse=True)
    dates, row_date = np.unique(when, return_inverse=True)
    numbers = {col: numeric_column(df, col, path, nodata) for col in band_cols}
    _check_duplicates(path, sample_ids, dates, row_sample, row_date, np.column_stack(list(numbers.values())))
    values = np.full((len(sample_ids), len(dates), len(S2_BANDS)), np.nan, dtype=np.float32)
    for col, band in band_cols.items():
        values[row_sample, row_date, S2_BANDS.index(band)] = numbers[col]
    per_sample = df.assign(_s=row_sample).groupby("_s")[label_column].nunique()
    if (per_sample > 1).any():
        bad = str(sample_ids[int(per_sample[per_sample > 1].index[0])])
        raise InputError(
            f"samples table {path}: sample {bad!r} has several labels; give one label per sample"
        )
    first = np.unique(row_sample, return_index=True)[1]
    labels = df[label_column].to_numpy()[first]
    groups = column_text(df[group_column])[first] if group_column else None
    # each sample's own row dates (clear or not) give the cadence the table was made at
    order = np.lexsort((row_date, row_sample))
    gaps = np.diff(dates.astype(np.int64)[row_date[order]])
    same = np.diff(row_sample[order]) == 0
    cadence = float(np.median(gaps[same])) if same.any() else float("nan")
    return SamplesTable(values, dates.astype("datetime64[D]"), labels, groups, (), cadence, sample_ids)


def _check_duplicates(
    path: Path,
    sample_ids: np.ndarray,
    dates: np.ndarray,
    row_sample: np.ndarray,
    row_date: np.ndarray,
    numbers: np.ndarray,
) -> None:
    """Two rows of one (sample, date) must agree (identical repeats are harmless and merged)."""
    key = row_sample.astype(np.int64) * len(dates) + row_date
    order = np.argsort(key, kind="stable")
    repeat = np.flatnonzero(np.diff(key[order]) == 0)
    if not repeat.size:
        return
    a, b = numbers[order[repeat]], numbers[order[repeat + 1]]
    differ = ~((a == b) | (np.isnan(a) & np.isnan(b))).all(axis=1)
    if differ.any():
        row = order[repeat[np.argmax(differ)]]
        rows = int((key == key[row]).sum())  # this sample's rows on this date, not repeats table-wide
        conflicts = len(np.unique(key[order[repeat[differ]]]))
        more = f" ({conflicts - 1} more sample-dates like it)" if conflicts > 1 else ""
        raise InputError(
            f"samples table {path}: sample {str(sample_ids[row_sample[row]])!r} has {rows} rows for date "
            f"{dates[row_date[row]]} with different values{more}; keep one row per sample and date"
        )


def _apply_scale(values: np.ndarray, path: Path, scale: float | None) -> np.ndarray:
    if scale is not None:
        return (values * np.float32(scale)).astype(np.float32)
    finite = values[np.isfinite(values)]
    if finite.size and float(np.median(finite)) > 2.0:
        warnings.warn(
            f"samples table {path} looks like digital numbers (median {float(np.median(finite)):.0f}); "
            "multiplying by 1e-4 to get reflectance (give `scale` to override)",
            GeocropWarning,
            stacklevel=3,
        )
        return (values * np.float32(1e-4)).astype(np.float32)
    return values
