"""Samples tables (wide and long layouts), the missing-band rule, and their path to the temporal grid."""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from geocrop.core.bands import S2_BANDS
from geocrop.data.labelled import LabelSource, is_samples_table, load_labelled
from geocrop.data.samples import MissingBandWarning, normalise_band, read_samples
from geocrop.errors import InputError, NoDataError

PRESENT = [b for b in S2_BANDS if b != "B05"]  # B05 is left out: filled from B04 and B06


def _value(sample: int, band: str, day: int) -> float:
    return round(0.01 * (S2_BANDS.index(band) + 1) + 0.001 * sample + 0.0001 * day, 6)


def _wide(n: int = 4) -> pd.DataFrame:
    """B02 observed on 3 irregular dates, the other bands on 2 of them; no B05; one cloudy (empty) cell."""
    rows = []
    for s in range(n):
        row: dict[str, object] = {"crop": "wheat" if s % 2 else "maize", "field": f"P{s // 2}"}
        for band in PRESENT:
            days = (0, 7, 31) if band == "B02" else (0, 31)
            for day in days:
                date = dt.date(2021, 4, 1) + dt.timedelta(days=day)
                row[f"{band}_{date.isoformat()}"] = _value(s, band, day)
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame.loc[0, "B03_2021-05-02"] = np.nan
    return frame


def _long(n: int = 4) -> pd.DataFrame:
    rows = []
    for s in range(n):
        for day in (0, 31):
            date = dt.date(2021, 4, 1) + dt.timedelta(days=day)
            row: dict[str, object] = {
                "sample_id": f"s{s}",
                "date": date.isoformat(),
                "crop": "wheat" if s % 2 else "maize",
            }
            row["field"] = f"P{s // 2}"
            row.update({band: _value(s, band, day) for band in PRESENT})
            rows.append(row)
    return pd.DataFrame(rows)


def test_wide_csv_with_irregular_dates_and_a_missing_band(tmp_path: Path) -> None:
    path = tmp_path / "samples.csv"
    _wide().to_csv(path, index=False)
    with pytest.warns(MissingBandWarning, match="B05"):
        table = read_samples(path, label_column="crop", group_column="field")
    assert table.values.shape == (4, 3, 12)
    assert table.dates.tolist() == [dt.date(2021, 4, 1), dt.date(2021, 4, 8), dt.date(2021, 5, 2)]
    assert table.missing_bands == ("B05",)
    b02, b03, b04, b05, b06 = (S2_BANDS.index(b) for b in ("B02", "B03", "B04", "B05", "B06"))
    assert table.values[1, 1, b02] == pytest.approx(_value(1, "B02", 7))
    assert np.isnan(table.values[1, 1, b03])  # B03 was not observed on 8 April: masked, not shifted
    assert np.isnan(table.values[0, 2, b03])  # the empty (cloudy) cell
    # B05 (705 nm) lies between B04 (665 nm) and B06 (740 nm): 40/75 of the way
    w = 40 / 75
    expected = (1 - w) * table.values[2, 0, b04] + w * table.values[2, 0, b06]
    assert table.values[2, 0, b05] == pytest.approx(expected, rel=1e-6)
    assert table.labels.tolist() == ["maize", "wheat", "maize", "wheat"]
    assert table.groups is not None and table.groups.tolist() == ["P0", "P0", "P1", "P1"]


def test_long_parquet_matches_the_wide_layout(tmp_path: Path) -> None:
    path = tmp_path / "samples.parquet"
    _long().sample(frac=1.0, random_state=0).to_parquet(path)  # row order must not matter
    with pytest.warns(MissingBandWarning):
        table = read_samples(path, label_column="crop", group_column="field")
    assert table.values.shape == (4, 2, 12)
    assert table.labels.tolist() == ["maize", "wheat", "maize", "wheat"]
    assert table.values[3, 1, S2_BANDS.index("B11")] == pytest.approx(_value(3, "B11", 31))
    assert np.isfinite(table.values[:, :, S2_BANDS.index("B05")]).all()


def test_samples_reach_the_temporal_grid(tmp_path: Path) -> None:
    path = tmp_path / "samples.csv"
    _wide().to_csv(path, index=False)
    assert is_samples_table(path)
    with pytest.warns(MissingBandWarning):
        series = load_labelled(LabelSource(path, "crop", group_column="field", steps=32, min_parcels=0))
    assert series.values.shape == (4, 32, 12)
    assert series.class_names == ("maize", "wheat")
    assert series.labels.tolist() == [0, 1, 0, 1]
    assert series.grid.start == dt.date(2021, 4, 1) and series.grid.end == dt.date(2021, 5, 2)
    assert np.isfinite(series.values).all()  # gaps filled by the grid's rule
    assert series.missing_bands == ("B05",)


def test_digital_numbers_are_scaled_with_a_warning(tmp_path: Path) -> None:
    frame = _long()
    frame[PRESENT] = frame[PRESENT] * 10000
    frame["B05"] = frame["B04"]
    path = tmp_path / "dn.csv"
    frame.to_csv(path, index=False)
    with pytest.warns(UserWarning, match="digital numbers"):
        table = read_samples(path, label_column="crop")
    assert float(np.nanmax(table.values)) < 1.0
    assert table.groups is None


@pytest.mark.parametrize(
    ("frame", "kwargs", "message"),
    [
        (_wide().iloc[0:0], {}, "no labelled rows"),
        (_wide().assign(crop=np.nan), {}, "class column 'crop' is empty"),
        (_wide(), {"label_column": "croptype"}, "no class column 'croptype'.*crop"),
        (_wide(), {"group_column": "parcel"}, "no group column 'parcel'"),
        (_wide().assign(crs=["EPSG:32633", "EPSG:32632", "EPSG:32633", "EPSG:32633"]), {}, "mixes 2 CRSs"),
        (pd.DataFrame({"crop": ["a"], "x": [1.0]}), {}, "neither <band>_<date> columns"),
        (
            _wide().drop(columns=[c for c in _wide().columns if c.startswith("B04")]),
            {},
            "B04.*cannot be filled",
        ),
    ],
)
def test_bad_tables_are_refused(
    tmp_path: Path, frame: pd.DataFrame, kwargs: dict[str, str], message: str
) -> None:
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    args = {"label_column": "crop", **kwargs}
    with pytest.raises(InputError, match=message):
        read_samples(path, **args)


def test_a_table_without_any_value_is_no_data(tmp_path: Path) -> None:
    frame = _wide()
    for col in frame.columns:
        if col.startswith("B"):
            frame[col] = np.nan
    path = tmp_path / "empty.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(NoDataError):
        read_samples(path, label_column="crop")


def test_class_without_a_clear_observation_is_refused(tmp_path: Path) -> None:
    frame = _wide()
    for col in frame.columns:
        if col.startswith("B"):
            frame.loc[frame["crop"] == "wheat", col] = np.nan
    path = tmp_path / "cloudy.csv"
    frame.to_csv(path, index=False)
    with (
        warnings.catch_warnings(record=True) as caught,
        pytest.raises(InputError, match="'wheat' have no pixel"),
    ):
        warnings.simplefilter("always")
        load_labelled(LabelSource(path, "crop", steps=8, min_parcels=0))
    assert not caught  # the error comes alone: no warning about filled bands before it


def test_band_names_are_normalised() -> None:
    assert normalise_band("b2") == "B02"
    assert normalise_band("B8a") == "B8A"
    assert normalise_band("B10") is None  # the cirrus band is not an L2A band
    assert normalise_band("NDVI") is None
