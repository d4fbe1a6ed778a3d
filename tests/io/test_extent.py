"""A bundle knows where and when it learned: the samples' hull, and warnings outside it and its season."""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import box

from geocrop.io.extent import (
    NEAR_KM,
    OutsideTrainingWarning,
    area_outside,
    dates_outside,
    outside_warnings,
    sample_points,
    training_extent,
    warn_outside,
)
from geocrop.io.provenance import read_provenance, training_provenance

#: Sample places in a small square of south-west France (lon 0..0.5, lat 44..44.5).
FRANCE = np.array([[0.0, 44.0], [0.5, 44.0], [0.5, 44.5], [0.0, 44.5], [0.25, 44.25]])
SEASON = ["2023-01-01", "2023-12-27"]  # a 52-step weekly grid: one step is 7 days


def _provenance() -> dict[str, object]:
    return {"extent": training_extent(FRANCE), "season": SEASON}


def test_the_extent_is_the_hull_of_the_distinct_places() -> None:
    repeated = np.repeat(FRANCE, 3, axis=0)  # a long table: one row per sample and date
    extent = training_extent(repeated)
    assert extent is not None and extent["samples"] == 5
    hull = shapely.Polygon(extent["hull"])
    assert hull.equals(box(0.0, 44.0, 0.5, 44.5))
    assert training_extent(None) is None
    one = training_extent(FRANCE[:1])
    assert one is not None and one["samples"] == 1


def test_distances_are_kilometres_on_the_ground() -> None:
    extent = training_extent(FRANCE)
    assert extent is not None
    # one degree of longitude east of the square, at 44.25 N: 111.32 km * cos(44.25) = 79.7 km away
    near, far = area_outside(extent, box(1.5, 44.2, 1.6, 44.3))  # type: ignore[misc]
    assert near == pytest.approx(79.7, rel=0.01) and far == pytest.approx(87.7, rel=0.01)
    assert area_outside(extent, box(0.1, 44.1, 0.2, 44.2)) == (0.0, 0.0)
    assert area_outside({"hull": []}, box(0, 0, 1, 1)) is None


def test_a_model_from_france_mapping_belgium_is_flagged() -> None:
    ghent = box(3.6, 51.0, 3.8, 51.1)
    (area,) = outside_warnings(_provenance(), area=ghent)
    assert area.startswith("the area lies ") and "km outside the model's training extent" in area
    km = float(area.split("lies ")[1].split(" km")[0].replace(",", ""))
    assert 700 < km < 800  # Toulouse's neighbourhood to Ghent
    assert "5 sample places in lon 0.00..0.50, lat 44.00..44.50" in area


def test_inside_or_near_the_extent_and_the_season_says_nothing() -> None:
    near = box(0.6, 44.1, 0.7, 44.2)  # ~8-16 km east of the square: within NEAR_KM
    assert NEAR_KM > 16
    assert outside_warnings(_provenance(), area=near) == []
    # dates a few days beyond the season: within one grid step
    assert (
        outside_warnings(_provenance(), start=dt.date(2022, 12, 28), end=dt.date(2023, 12, 31), steps=52)
        == []
    )
    assert (
        outside_warnings({}, area=box(50, 10, 51, 11), start=dt.date(1990, 1, 1), end=dt.date(1990, 2, 1))
        == []
    )


def test_an_area_partly_outside_says_how_far_it_reaches() -> None:
    (message,) = outside_warnings(_provenance(), area=box(0.2, 44.2, 2.0, 44.3), what="the AOI")
    assert message.startswith("part of the AOI lies outside the model's training extent, up to 1")


def test_dates_outside_the_season_say_how_many_days() -> None:
    assert dates_outside(SEASON, dt.date(2022, 12, 1), dt.date(2024, 1, 6)) == (31, 10)
    (message,) = outside_warnings(
        _provenance(), start=dt.date(2025, 3, 1), end=dt.date(2025, 10, 31), steps=52
    )
    assert "lie 430 to 674 days after the model's training season 2023-01-01..2023-12-27" in message
    (late,) = outside_warnings(_provenance(), start=dt.date(2023, 6, 1), end=dt.date(2024, 3, 1), steps=52)
    assert "2023-06-01..2024-03-01 end 65 days after the model's" in late
    (both,) = outside_warnings(_provenance(), start=dt.date(2022, 11, 1), end=dt.date(2024, 2, 1), steps=52)
    assert "begin 61 days before and end 36 days after" in both


def test_warn_outside_issues_one_warning_per_problem() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        texts = warn_outside(
            _provenance(),
            area=box(3.6, 51.0, 3.8, 51.1),
            start=dt.date(2021, 1, 1),
            end=dt.date(2021, 12, 31),
        )
    assert len(texts) == 2 and [w.category for w in caught] == [OutsideTrainingWarning] * 2


def test_sample_points_of_a_table_keep_the_training_samples(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "sample_id": ["a", "a", "b", "c"],
            "lon": [0.0, 0.0, 1.0, 9.0],
            "lat": [44.0, 44.0, 45.0, 50.0],
            "B02": [0.1, 0.2, 0.3, 0.4],
        }
    )
    csv, parquet = tmp_path / "t.csv", tmp_path / "t.parquet"
    frame.to_csv(csv, index=False)
    frame.to_parquet(parquet)
    for path in (csv, parquet):
        assert sample_points(path).tolist() == frame[["lon", "lat"]].to_numpy().tolist()  # type: ignore[union-attr]
        assert sample_points(path, ids=["a", "b"]).tolist() == [[0.0, 44.0], [0.0, 44.0], [1.0, 45.0]]  # type: ignore[union-attr]
    # WKB points when there are no lon/lat columns
    wkb = frame.drop(columns=["lon", "lat"]).assign(
        geometry=shapely.to_wkb(shapely.points(frame[["lon", "lat"]].to_numpy()))
    )
    wkb.to_parquet(tmp_path / "w.parquet")
    assert sample_points(tmp_path / "w.parquet").shape == (4, 2)  # type: ignore[union-attr]
    # projected metres are not lon/lat: no extent rather than a wrong one
    frame.assign(lon=frame["lon"] * 1e5, lat=frame["lat"] * 1e5).to_csv(tmp_path / "m.csv", index=False)
    assert sample_points(tmp_path / "m.csv") is None
    (tmp_path / "bad.parquet").write_text("not parquet")
    assert sample_points(tmp_path / "bad.parquet") is None


def test_the_provenance_records_the_extent_of_the_training_samples(tmp_path: Path) -> None:
    table = tmp_path / "t.csv"
    pd.DataFrame({"sample_id": ["a", "b", "c"], "lon": [0.0, 0.5, 9.0], "lat": [44.0, 44.5, 50.0]}).to_csv(
        table, index=False
    )

    class Source:
        path, s2, start, end = table, None, dt.date(2023, 1, 1), dt.date(2023, 12, 31)

    prov = training_provenance(Source(), class_names=["maize"], sample_ids=["a", "b"])
    assert prov["extent"] == {"hull": [[0.0, 44.0], [0.5, 44.5]], "samples": 2}
    assert prov["season"] == ["2023-01-01", "2023-12-31"]
    assert read_provenance({"provenance": {"data": "real"}})["extent"] is None  # older bundles: unknown
