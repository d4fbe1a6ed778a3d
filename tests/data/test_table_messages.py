"""Messages about samples tables name the true figures and plain names (no ``np.str_('...')``)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from geocrop.data.labelled import LabelSource, load_labelled
from geocrop.data.samples import read_samples
from geocrop.errors import InputError

BANDS = ("B02", "B03", "B04", "B08")


def _long(samples: int, dates: int = 3) -> pd.DataFrame:
    rows = []
    for s in range(samples):
        for t in range(dates):
            day = dt.date(2021, 4, 1) + dt.timedelta(days=30 * t)
            rows.append({"sample_id": f"s{s:02d}", "date": day.isoformat(), "crop": ["maize", "wheat"][s % 2],
                         **{b: 0.1 + 0.01 * s + 0.001 * t for b in BANDS}})  # fmt: skip
    return pd.DataFrame(rows)


def test_a_conflicting_duplicate_names_its_own_row_count(tmp_path: Path) -> None:
    """26 samples each repeat their first date with other values: the message names the first sample's
    2 rows on that date (not 26+), and how many other sample-dates are alike."""
    table = _long(26)
    repeats = table[table["date"] == "2021-04-01"].assign(B02=0.5)
    path = tmp_path / "t.csv"
    pd.concat([table, repeats]).to_csv(path, index=False)
    with pytest.raises(InputError) as info:
        read_samples(path, label_column="crop")
    message = str(info.value)
    assert (
        "sample 's00' has 2 rows for date 2021-04-01 with different values (25 more sample-dates" in message
    )
    assert "np.str_" not in message and "26+" not in message


def test_three_rows_of_one_sample_and_date(tmp_path: Path) -> None:
    table = _long(4)
    extra = table.iloc[[4, 4]].assign(B03=[0.7, 0.8])  # s01 on its second date, twice more
    path = tmp_path / "t.parquet"
    pd.concat([table, extra]).to_parquet(path)
    with pytest.raises(
        InputError, match=r"sample 's01' has 3 rows for date 2021-05-01 with different values;"
    ):
        read_samples(path, label_column="crop")


def test_a_sample_with_several_labels_is_named_plainly(tmp_path: Path) -> None:
    table = _long(4)
    table.loc[1, "crop"] = "barley"  # s00's second row
    path = tmp_path / "t.csv"
    table.to_csv(path, index=False)
    with pytest.raises(InputError) as info:
        read_samples(path, label_column="crop")
    assert "sample 's00' has several labels" in str(info.value) and "np.str_" not in str(info.value)


def test_a_single_class_is_named_plainly(tmp_path: Path) -> None:
    table = _long(4).assign(crop="sunflower")
    path = tmp_path / "t.csv"
    table.to_csv(path, index=False)
    with pytest.raises(InputError) as info:
        load_labelled(LabelSource(path, "crop", min_parcels=0))
    assert "a single class ('sunflower')" in str(info.value) and "np.str_" not in str(info.value)
    assert np.str_("x").__repr__() != "'x'"  # the numpy 2 repr these messages must not show
