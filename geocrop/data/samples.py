"""Samples tables: labelled per-sample band time series a user already extracted (Parquet or CSV).

Two layouts, detected from the columns:

- **wide**: one row per sample; a label column, an optional group column (parcel id, used for splitting)
  and one column per band and date named ``<band>_<date>``, e.g. ``B02_2021-03-01`` (``B2`` and
  ``2021-03-01``/``20210301`` spellings are accepted). Dates may differ per band and be irregular.
- **long**: one row per sample and date; a sample id column (``sample_id`` by default), a ``date`` column,
  the label (and optional group) column, and one column per band (``B01`` ... ``B12``).

Values are surface reflectance in [0, 1]; a table whose median value exceeds 2 is taken as L2A digital
numbers and multiplied by 1e-4, with a warning. Empty cells are NaN (masked), which the temporal grid fills
(see `geocrop.data.temporal`). Irregular dates are regridded there too; this module keeps the table's own
dates. A band missing from the table is **filled and flagged** by the same rule the cube loader uses
(`geocrop.io.bandmap.fill_plan`: B01 copies B02, B09 copies B8A, others are interpolated in wavelength
between their nearest present neighbours) and listed in `SamplesTable.missing_bands`; it is never shifted
into another band's slot. B02, B03, B04 and B08 are required.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from geocrop.data.bands import S2_BANDS
from geocrop.errors import InputError, NoDataError, SourceError

_WIDE = re.compile(r"^(?P<band>[Bb](?:8[Aa]|\d{1,2}))_(?P<date>\d{4}-?\d{2}-?\d{2})$")


class MissingBandWarning(UserWarning):
    """A band was absent from the input and filled by the documented rule."""


@dataclass(frozen=True)
class SamplesTable:
    """Labelled band series on the table's own dates.

    values: (N, T_obs, 12) float32 reflectance in `S2_BANDS` order, NaN where missing/masked.
    dates: (T_obs,) datetime64[D], sorted. labels: (N,) str. groups: (N,) str or None.
    missing_bands: bands absent from the table and filled (see module docstring).
    """

    values: np.ndarray
    dates: np.ndarray
    labels: np.ndarray
    groups: np.ndarray | None
    missing_bands: tuple[str, ...]


def normalise_band(name: str) -> str | None:
    """``"b2"``/``"B02"`` -> ``"B02"``, ``"b8a"`` -> ``"B8A"``; None when not an S2 band."""
    m = re.fullmatch(r"[Bb](8[Aa]|\d{1,2})", name.strip())
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


def _read_frame(path: Path) -> pd.DataFrame:
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


def _check_columns(df: pd.DataFrame, path: Path, label_column: str, group_column: str | None) -> None:
    for what, col in (("class", label_column), ("group", group_column)):
        if col is not None and col not in df.columns:
            shown = ", ".join(map(str, list(df.columns)[:12]))
            raise InputError(
                f"samples table {path} has no {what} column {col!r}; choose one of: {shown}"
                + (" ..." if len(df.columns) > 12 else "")
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


def read_samples(
    path: str | Path,
    *,
    label_column: str,
    group_column: str | None = None,
    id_column: str = "sample_id",
    date_column: str = "date",
    scale: float | None = None,
) -> SamplesTable:
    """Read a wide or long samples table (see module docstring) into a `SamplesTable`.

    ``scale`` multiplies the values (None: auto, DN tables are detected). Raises `InputError` for an
    unknown column, an empty table, no band column or mixed CRSs; `SourceError` for an unreadable file.
    """
    path = Path(path)
    df = _read_frame(path)
    _check_columns(df, path, label_column, group_column)
    df = df[df[label_column].notna()]
    if df.empty:
        raise InputError(
            f"samples table {path} has no labelled rows; add samples with a {label_column!r} value"
        )
    _check_crs(df, path)
    wide = {c: _WIDE.match(str(c)) for c in df.columns}
    wide_cols: dict[object, re.Match[str]] = {
        c: m for c, m in wide.items() if m and normalise_band(m.group("band"))
    }
    if wide_cols:
        values, dates, labels, groups, present = _from_wide(df, wide_cols, label_column, group_column)
    elif date_column in df.columns:
        values, dates, labels, groups, present = _from_long(
            df, path, label_column, group_column, id_column, date_column
        )
    else:
        raise InputError(
            f"samples table {path} has neither <band>_<date> columns (wide, e.g. B02_2021-03-01) nor a "
            f"{date_column!r} column (long); see geocrop.data.samples for the layouts"
        )
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
    return SamplesTable(values=values, dates=dates, labels=labels, groups=groups, missing_bands=missing)


def _from_wide(
    df: pd.DataFrame, cols: dict[object, re.Match[str]], label_column: str, group_column: str | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, tuple[str, ...]]:
    entries = [(c, normalise_band(m.group("band")), _parse_date(m.group("date"))) for c, m in cols.items()]
    dates = np.array(sorted({d for _, _, d in entries}), dtype="datetime64[D]")
    values = np.full((len(df), len(dates), len(S2_BANDS)), np.nan, dtype=np.float32)
    date_index = {d: i for i, d in enumerate(dates)}
    for col, band, date in entries:
        assert band is not None
        numbers = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=np.float32)
        values[:, date_index[date], S2_BANDS.index(band)] = numbers
    present = tuple(b for b in S2_BANDS if any(band == b for _, band, _ in entries))
    labels = df[label_column].astype(str).to_numpy()
    groups = df[group_column].astype(str).to_numpy() if group_column else None
    return values, dates, labels, groups, present


def _from_long(
    df: pd.DataFrame,
    path: Path,
    label_column: str,
    group_column: str | None,
    id_column: str,
    date_column: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, tuple[str, ...]]:
    if id_column not in df.columns:
        raise InputError(f"samples table {path} (long layout) has no sample id column {id_column!r}; add one")
    band_cols = {c: normalise_band(str(c)) for c in df.columns}
    band_cols = {c: b for c, b in band_cols.items() if b is not None}
    if not band_cols:
        raise InputError(f"samples table {path} (long layout) has no band column; name them B01 ... B12")
    try:
        when = pd.to_datetime(df[date_column]).dt.floor("D").to_numpy().astype("datetime64[D]")
    except (ValueError, TypeError) as exc:
        raise InputError(
            f"samples table {path}: column {date_column!r} holds unreadable dates ({exc})"
        ) from exc
    sample_ids, row_sample = np.unique(df[id_column].astype(str).to_numpy(), return_inverse=True)
    dates, row_date = np.unique(when, return_inverse=True)
    values = np.full((len(sample_ids), len(dates), len(S2_BANDS)), np.nan, dtype=np.float32)
    for col, band in band_cols.items():
        values[row_sample, row_date, S2_BANDS.index(band)] = pd.to_numeric(df[col], errors="coerce").to_numpy(
            dtype=np.float32
        )
    per_sample = df.assign(_s=row_sample).groupby("_s")[label_column].nunique()
    if (per_sample > 1).any():
        bad = sample_ids[int(per_sample[per_sample > 1].index[0])]
        raise InputError(
            f"samples table {path}: sample {bad!r} has several labels; give one label per sample"
        )
    first = np.unique(row_sample, return_index=True)[1]
    labels = df[label_column].astype(str).to_numpy()[first]
    groups = df[group_column].astype(str).to_numpy()[first] if group_column else None
    present = tuple(b for b in S2_BANDS if b in band_cols.values())
    return values, dates.astype("datetime64[D]"), labels, groups, present


def _apply_scale(values: np.ndarray, path: Path, scale: float | None) -> np.ndarray:
    if scale is not None:
        return (values * np.float32(scale)).astype(np.float32)
    finite = values[np.isfinite(values)]
    if finite.size and float(np.median(finite)) > 2.0:
        warnings.warn(
            f"samples table {path} looks like digital numbers (median {float(np.median(finite)):.0f}); "
            "multiplying by 1e-4 to get reflectance (pass scale= to override)",
            UserWarning,
            stacklevel=3,
        )
        return (values * np.float32(1e-4)).astype(np.float32)
    return values
