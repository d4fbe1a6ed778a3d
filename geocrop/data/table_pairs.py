"""Pretraining pairs from a samples table: each sample a one-pixel field, each of its dates a candidate pair.

A table read by `geocrop.data.samples.read_samples` (labels are not read) becomes an S2 "image" of shape
``(T, 12, 1, N)``: one row of N samples per table date, so `geocrop.data.pairs.build_pairs_from_arrays`
splits the samples 70-21-9 (each sample its own field) and draws pairs date by date, resumably, exactly as
for a raster. The second view, when asked, is Sentinel-1 from the same rows: columns ``S1-SIGMA0-VV`` and
``S1-SIGMA0-VH`` (also ``VV``/``VH``, ``sigma0_vv``...), WorldCereal's compressed uint16 (1..65534,
65535 nodata) decoded to dB as ``20 log10(DN) - 83`` (`geocrop.io.cube_file.backscatter_db`), or float dB
/ linear power. PlanetScope cannot come from a table.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from geocrop.errors import InputError


@dataclass(frozen=True)
class TablePairs:
    """Arrays for `build_pairs_from_arrays`: s2 (T, 12, 1, N), second (T, 2, 1, N) or None, fields (1, N)."""

    s2: npt.NDArray[np.float32]
    second: npt.NDArray[np.float32] | None
    dates: npt.NDArray[np.datetime64]
    fields: npt.NDArray[np.int64]
    provenance: dict[str, Any]


def _s1_columns(df: pd.DataFrame) -> dict[str, str]:
    from geocrop.io.cube_file import s1_band_name

    found: dict[str, str] = {}
    for col in df.columns:
        band = s1_band_name(str(col))
        if band is not None and band not in found:
            found[band] = str(col)
    return found


def read_s1_columns(
    path: Path, *, ids: npt.NDArray[Any], dates: npt.NDArray[np.datetime64], id_column: str = "sample_id"
) -> npt.NDArray[np.float32]:
    """(N, T, 2) VV/VH dB of a long table, rows and dates in the order of `read_samples` (NaN: no data)."""
    from geocrop.data.samples import date_column_of, read_frame
    from geocrop.io.cube_file import backscatter_db

    df = read_frame(path)
    cols = _s1_columns(df)
    when = date_column_of(df, None)
    if "VV" not in cols or "VH" not in cols or when is None or id_column not in df.columns:
        raise InputError(
            f"samples table {path} has no Sentinel-1 columns for the second view (found "
            f"{sorted(cols.values()) or 'none'}); add S1-SIGMA0-VV and S1-SIGMA0-VH columns (long layout: "
            "one row per sample and date), give an `s1` source or `planet`, or use `mode` unimodal",
            param="s1",
        )
    sample_pos = {str(s): i for i, s in enumerate(ids)}
    date_pos = {d: i for i, d in enumerate(np.asarray(dates, "datetime64[D]"))}
    rows = np.array([sample_pos.get(str(s), -1) for s in df[id_column].astype(str)])
    days = pd.to_datetime(df[when]).dt.floor("D").to_numpy().astype("datetime64[D]")
    cols_t = np.array([date_pos.get(d, -1) for d in days])
    keep = (rows >= 0) & (cols_t >= 0)
    out = np.full((len(ids), len(dates), 2), np.nan, np.float32)
    for k, band in enumerate(("VV", "VH")):
        raw = pd.to_numeric(df[cols[band]], errors="coerce").to_numpy(dtype=np.float64)
        integer = pd.api.types.is_integer_dtype(df[cols[band]].dtype) or (
            np.nanmedian(raw) > 1.0 if np.isfinite(raw).any() else False
        )
        value = np.asarray(backscatter_db(raw, integer=integer), np.float32)
        out[rows[keep], cols_t[keep], k] = value[keep]
    return out


def open_table_pairs(path: str | Path, *, second: str | None, s1: str | Path | None = None) -> TablePairs:
    """The table at ``path`` as pairing arrays; ``second`` None (S2 only) or ``"sentinel-1"``.

    Raises `InputError` for a second view a table cannot give (PlanetScope, an S1 source other than the
    table) or a table without S1 columns when ``second="sentinel-1"``.
    """
    from geocrop.data.samples import MissingBandWarning, read_samples

    path = Path(path)
    if second == "planetscope":
        raise InputError(
            f"`s2` {path} is a samples table, which cannot be paired with PlanetScope scenes; use "
            "`second_modality` s1 (the table's S1 columns) or `mode` unimodal",
            param="second_modality",
        )
    if second is not None and s1 is not None and Path(s1) != path:
        raise InputError(
            f"`s1` {s1}: with a samples table as `s2` the S1 view comes from the same table's rows; "
            "leave `s1` out",
            param="s1",
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MissingBandWarning)  # listed in the provenance and the bundle
        table = read_samples(path, label_column=None)
    ids = table.ids if table.ids is not None else np.arange(len(table.values)).astype(str)
    s2 = np.ascontiguousarray(table.values.transpose(1, 2, 0)[:, :, None, :], dtype=np.float32)
    second_arr = None
    if second == "sentinel-1":
        vv_vh = read_s1_columns(path, ids=ids, dates=table.dates)
        second_arr = np.ascontiguousarray(vv_vh.transpose(1, 2, 0)[:, :, None, :], dtype=np.float32)
    provenance: dict[str, Any] = {
        "s2_source": str(path),
        "source_kind": "samples table",
        "samples": len(ids),
        "fields": "one field per sample",
        "start": str(table.dates.min()) if len(table.dates) else None,
        "end": str(table.dates.max()) if len(table.dates) else None,
        "filled_bands": list(table.missing_bands),
    }
    if second == "sentinel-1":
        provenance |= {"second_modality": "sentinel-1", "s1_source": str(path)}
    fields = np.arange(1, len(ids) + 1, dtype=np.int64)[None, :]
    return TablePairs(s2, second_arr, np.asarray(table.dates, "datetime64[D]"), fields, provenance)
