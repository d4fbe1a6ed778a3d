"""`predict` says what it did: samples without a clear observation in the season, and a table of
another year, whose `start`/`end` the message gives."""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import pandas as pd
import pytest

from geocrop.errors import GeocropWarning, InputError
from geocrop.inference.predict import aligned_season, check_empty_rows, season_hint
from tests.cli.test_predict_cli import _run, _train

D = dt.date
SEASON = (D(2022, 9, 1), D(2024, 1, 21))  # the France 2023 bundle's season


def test_aligned_season_keeps_the_days_of_the_year() -> None:
    # the Flanders 2021 table against the France 2023 season: two years earlier, same days
    assert aligned_season(SEASON, (D(2020, 8, 1), D(2021, 11, 1))) == (D(2020, 9, 1), D(2022, 1, 21))
    assert aligned_season((D(2022, 3, 1), D(2022, 10, 31)), (D(2025, 3, 5), D(2025, 10, 1))) == (
        D(2025, 3, 1),
        D(2025, 10, 31),
    )
    assert aligned_season((D(2024, 2, 29), D(2024, 9, 1)), (D(2023, 3, 1), D(2023, 9, 1)))[0] == D(
        2023, 2, 28
    )


def test_season_hint_only_when_the_dates_lie_outside() -> None:
    assert season_hint(SEASON, (D(2022, 10, 1), D(2023, 10, 1))) == ""
    assert season_hint(SEASON, (D(2023, 5, 1), D(2023, 5, 1))) == ""  # one date, inside
    assert season_hint(SEASON, (D(2023, 6, 1), D(2024, 6, 1))) == ""  # mostly inside
    hint = season_hint(SEASON, (D(2020, 8, 1), D(2021, 11, 1)))
    assert hint == (
        "the table's dates 2020-08-01..2021-11-01 lie outside it: give `start` 2020-09-01 and `end` "
        "2022-01-21 (the same days of the year, moved to the table's dates)"
    )


def test_all_empty_is_an_error_some_empty_a_warning() -> None:
    dates = (D(2020, 8, 1), D(2021, 11, 1))
    with pytest.raises(InputError, match=r"none of the 100 samples .* give `start` 2020-09-01") as info:
        check_empty_rows(100, 100, season=SEASON, dates=dates)
    assert info.value.param == "start"
    with pytest.raises(InputError, match="check `nodata` and `scale`") as info:
        check_empty_rows(5, 5, season=SEASON, dates=(D(2023, 1, 1), D(2023, 9, 1)))
    assert info.value.param == "samples"
    with pytest.warns(
        GeocropWarning, match=r"^3 of 10 samples have no clear observation .* empty prediction$"
    ):
        check_empty_rows(3, 10, season=SEASON, dates=(D(2023, 1, 1), D(2023, 9, 1)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_empty_rows(0, 10, season=SEASON, dates=dates)


def test_another_year_is_refused_with_the_dates_that_align_it(tmp_path: Path) -> None:
    """The training table three years later: one error line with --start/--end; given them, the same
    predictions as the original table in the bundle's season (1096 days: three calendar years across
    29 February 2024, so the table moves exactly as the suggested season does)."""
    table, _, bundle = _train(tmp_path, "rf")
    later = tmp_path / "later.parquet"
    frame = pd.read_parquet(table)
    frame.assign(timestamp=frame["timestamp"] + pd.Timedelta(days=1096)).to_parquet(later)
    out = tmp_path / "later.csv"
    code, _, stderr = _run(["predict", "--model", str(bundle), "--samples", str(later), "--out", str(out)])
    assert code == 2 and stderr.count("\n") == 1 and not out.exists(), stderr
    assert "none of the 36 samples has a clear observation in the season" in stderr
    words = stderr.split()
    start, end = words[words.index("--start") + 1], words[words.index("--end") + 1]
    code, _, stderr = _run(
        ["predict", "--model", str(bundle), "--samples", str(later), "--out", str(out), "--start", start,
         "--end", end]
    )  # fmt: skip
    assert code == 0, stderr
    code, _, stderr = _run(
        ["predict", "--model", str(bundle), "--samples", str(table), "--out", str(tmp_path / "a.csv")]
    )
    assert code == 0, stderr
    assert pd.read_csv(out)["predicted"].tolist() == pd.read_csv(tmp_path / "a.csv")["predicted"].tolist()


def test_some_empty_samples_are_counted_in_a_warning(tmp_path: Path) -> None:
    table, _, bundle = _train(tmp_path, "rf")
    frame = pd.read_parquet(table)
    blank = frame["sample_id"].isin(["maize_0", "maize_1"])
    for col in [c for c in frame.columns if c.startswith("S2-")]:
        frame.loc[blank, col] = 65535
    holes = tmp_path / "holes.parquet"
    frame.to_parquet(holes)
    out = tmp_path / "p.csv"
    code, stdout, stderr = _run(
        ["predict", "--model", str(bundle), "--samples", str(holes), "--out", str(out)]
    )
    assert code == 0, stderr
    assert "geocrop: warning: 2 of 36 samples have no clear observation in the season" in stderr
    assert "2 without a clear observation" in stdout
    assert pd.read_csv(out)["predicted"].isna().sum() == 2
