"""Real sample tables as they come: WorldCereal's layout, nodata, class maps, strict cell checks, cadence."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from geocrop.core.bands import S2_BANDS
from geocrop.data.class_map import apply_class_map, read_class_map
from geocrop.data.labelled import LabelSource, auto_steps, is_samples_table, load_labelled
from geocrop.data.samples import read_samples
from geocrop.errors import InputError
from tests.data.worldcereal_synth import CODES, write_class_map, write_extraction


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def test_worldcereal_extraction_is_read_as_it_comes(tmp_path: Path) -> None:
    path = write_extraction(tmp_path / "x.geoparquet")
    assert is_samples_table(path)
    table = read_samples(path, label_column="ewoc_code")
    assert table.values.shape == (36, 24, 12)
    raw = pd.read_parquet(path)
    cloudy = raw["S2-L2A-B02"] == 65535
    assert 0.2 < cloudy.mean() < 0.4
    b02 = table.values[:, :, S2_BANDS.index("B02")]
    assert np.isnan(b02).mean() == pytest.approx(cloudy.mean())  # 65535 masked, never reflectance
    assert np.nanmax(table.values) < 1.0  # digital numbers scaled to reflectance
    # B8A is 65535 throughout: absent, filled and flagged like B01 and B09
    assert table.missing_bands == ("B01", "B8A", "B09")
    assert table.cadence_days == 10.0
    assert sorted(set(table.labels.tolist())) == sorted(CODES.values())


def test_class_map_names_the_codes_and_steps_follow_the_cadence(tmp_path: Path) -> None:
    path = write_extraction(tmp_path / "x.parquet")
    classes = write_class_map(tmp_path / "classes.json")
    series = load_labelled(LabelSource(path, "ewoc_code", class_map=f"{classes}:CROPTYPE"))
    assert series.class_names == ("maize", "sunflower", "wheat")
    assert series.grid.steps == 24  # 230 days of dekads: one step per 10 days
    assert series.ids is not None and series.ids[0].startswith("maize_")
    assert np.isfinite(series.values).all()
    with pytest.raises(InputError, match="single class"):  # every code is a temporary crop there
        load_labelled(LabelSource(path, "ewoc_code", class_map=f"{classes}:LANDCOVER", min_parcels=0))


def test_a_monthly_wide_table_gets_twelve_steps() -> None:
    assert (
        auto_steps(30.4, pd.Timestamp("2021-01-15").date(), pd.Timestamp("2021-12-15").date(), what="t") == 12
    )


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda f: f.astype({"S2-L2A-B03": object}).assign(**{"S2-L2A-B03": "cloud"}),
            "non-numeric value 'cloud'",
        ),
        (lambda f: pd.concat([f, f.iloc[[3]].assign(**{"S2-L2A-B04": 1234})]), "with different values"),
        (lambda f: f.assign(ewoc_code=np.nan), "is empty"),
        (lambda f: f.drop(columns=[c for c in f.columns if c.startswith("S2-")]), "no band column"),
        (lambda f: f[f["timestamp"] == f["timestamp"].min()], "single date"),
        (lambda f: f.assign(ewoc_code=CODES["maize"]), "single class"),
    ],
)
def test_bad_tables_are_one_clear_error(tmp_path: Path, edit: object, message: str) -> None:
    path = write_extraction(tmp_path / "x.parquet")
    frame = edit(pd.read_parquet(path))  # type: ignore[operator]
    frame.to_parquet(path)
    with pytest.raises(InputError, match=message):
        load_labelled(LabelSource(path, "ewoc_code", min_parcels=0))


def test_identical_duplicate_rows_are_merged(tmp_path: Path) -> None:
    path = write_extraction(tmp_path / "x.parquet")
    frame = pd.read_parquet(path)
    pd.concat([frame, frame.iloc[:5]]).to_parquet(path)
    assert read_samples(path, label_column="ewoc_code").values.shape == (36, 24, 12)


def test_class_map_errors(tmp_path: Path) -> None:
    classes = write_class_map(tmp_path / "classes.json")
    with pytest.raises(InputError, match=r"holds 2 tables .*CROPTYPE"):
        read_class_map(classes)
    with pytest.raises(InputError, match=r"no table 'CROPS'"):
        read_class_map(f"{classes}:CROPS")
    mapping = read_class_map(f"{classes}:CROPTYPE")
    labels = np.array([CODES["maize"], 999.0])
    with pytest.raises(InputError, match=r"not in the class map \(999\).*`drop_unmapped`"):
        apply_class_map(labels, mapping, what="t")
    assert apply_class_map(labels, mapping, what="t", drop_unmapped=True).tolist() == ["maize", ""]
    csv = tmp_path / "map.csv"
    pd.DataFrame({"code": [1, 2], "name": ["a", "b"]}).to_csv(csv, index=False)
    assert read_class_map(csv) == {"1": "a", "2": "b"}
    (tmp_path / "single.json").write_text(json.dumps({"1": "a"}))
    assert read_class_map(tmp_path / "single.json") == {"1": "a"}


def test_crowded_steps_are_warned(tmp_path: Path) -> None:
    path = write_extraction(tmp_path / "x.parquet")
    with pytest.warns(UserWarning, match="two or more clear observations on one step"):
        load_labelled(LabelSource(path, "ewoc_code", steps=6))


def test_the_real_france_extraction(realdata: Path) -> None:
    path = realdata / "worldcereal" / "extractions_2023_FRA_LPIS_dekad.geoparquet"
    classes = path.parent / "class_mappings.json"
    with pytest.raises(InputError, match="not in the class map"):
        load_labelled(LabelSource(path, "ewoc_code", class_map=f"{classes}:CROPTYPE28"))
    series = load_labelled(
        LabelSource(path, "ewoc_code", class_map=f"{classes}:CROPTYPE28", drop_unmapped=True)
    )
    assert series.grid.steps == 52 and series.values.shape == (422, 52, 12)
    assert series.missing_bands == ("B01", "B8A", "B09")
    assert len(series.class_names) == 9 and "maize" in series.class_names  # classes with >= 10 samples


def test_the_real_flanders_extraction_is_a_table(realdata: Path) -> None:
    path = realdata / "worldcereal" / "extractions_2021_BEL_LPIS-Flanders_monthly.parquet"
    assert is_samples_table(path)
    series = load_labelled(LabelSource(path, "ewoc_code", min_parcels=0))
    assert series.grid.steps in (12, 13, 16, 17) and len(series) > 50
