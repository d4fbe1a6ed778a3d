"""Tables as they come: every column dtype pandas or pyarrow hands over reads to the same series.

A property test draws one small labelled table (values, labels, groups, sample ids), gives its columns
dtypes (float16/32/64, signed and unsigned ints, nullable Int/Float with ``pd.NA``, categoricals,
Arrow-backed strings, integer label codes; dates as text, datetime64, UTC timestamps, date objects or
Arrow dates), writes it in one layout (wide or long) and one format (CSV, Parquet, GeoParquet) as pandas
writes them, and checks that `load_labelled` reads the same series, labels, class names and groups as
from the plain version of the same table (float64 values, ``str`` columns, CSV). Values are chosen to be
exact in every dtype drawn (whole numbers 3..127 read as digital numbers, or multiples of 1/256 as
reflectance), so "the same" is exact equality (but for float16 in CSV: see the test).
"""

from __future__ import annotations

import datetime as dt
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geocrop.data.labelled import LabelledSeries, LabelSource, load_labelled
from geocrop.data.samples import numeric_column

BANDS = ("B02", "B03", "B04", "B08")
DATES = tuple(dt.date(2021, 4, 1) + dt.timedelta(days=30 * i) for i in range(3))
NAMES = ("maize", "sunflower", "wheat")
CODES = (1101060000, 1103000000, 1106000000)  # WorldCereal ewoc_code-like integers

INT_DTYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
FLOAT_DTYPES = ("float16", "float32", "float64")
NULLABLE_DTYPES = ("Int8", "Int16", "Int32", "Int64", "UInt16", "UInt64", "Float32", "Float64")
ARROW_NUMBER_DTYPES = ("float32[pyarrow]", "int64[pyarrow]", "uint16[pyarrow]")
VALUE_DTYPES = INT_DTYPES + FLOAT_DTYPES + NULLABLE_DTYPES + ARROW_NUMBER_DTYPES
TEXT_DTYPES = ("str", "object", "category", "string[pyarrow]", "string")
CODE_DTYPES = ("int64", "Int64", "category", "str", "float64")
GROUP_DTYPES = ("str", "category", "string[pyarrow]", "int64", "Int64", "int32")
DATE_DTYPES = (
    "str",
    "datetime64[ns]",
    "datetime64[ms]",
    "utc",
    "date",
    "date32[pyarrow]",
    "timestamp[ms][pyarrow]",
)


@dataclass(frozen=True)
class Table:
    """One logical table: ``values`` (N, dates, bands), a class index and a group number per sample."""

    values: np.ndarray  # float64; NaN = missing cell
    classes: np.ndarray  # (N,) int in 0..2
    groups: np.ndarray  # (N,) int parcel numbers
    reflectance: bool  # values are reflectance (k/256), else digital numbers 3..127
    coded: bool  # labels are integer codes (CODES), else names (NAMES)


@st.composite
def tables(draw: st.DrawFn) -> Table:
    n = draw(st.integers(6, 10))
    reflectance = draw(st.booleans())
    if reflectance:
        ints = draw(st.lists(st.integers(1, 255), min_size=n * 12, max_size=n * 12))
        values = np.array(ints, dtype=np.float64).reshape(n, 3, 4) / 256.0
    else:
        ints = draw(st.lists(st.integers(3, 127), min_size=n * 12, max_size=n * 12))
        values = np.array(ints, dtype=np.float64).reshape(n, 3, 4)
    classes = np.arange(n) % 3  # every class present, at least twice
    groups = np.arange(n) // 2
    return Table(values, classes, groups, reflectance, draw(st.booleans()))


def _label_values(table: Table) -> list[object]:
    pool = CODES if table.coded else NAMES
    return [pool[c] for c in table.classes]


def _typed(values: list[object] | np.ndarray, dtype: str) -> pd.Series:
    if dtype == "str":
        return pd.Series([str(v) for v in values], dtype=str)
    if dtype == "object":
        return pd.Series([str(v) for v in values], dtype=object)
    return pd.Series(list(values)).astype(dtype)


def _value_column(column: np.ndarray, dtype: str) -> pd.Series:
    """``column`` (float64 with NaN gaps) in ``dtype``; gaps become pd.NA in nullable dtypes."""
    if dtype in NULLABLE_DTYPES or dtype in ARROW_NUMBER_DTYPES:
        return pd.Series(pd.array([None if np.isnan(v) else v for v in column], dtype=dtype))
    return pd.Series(column.astype(dtype))


def _frame(
    table: Table,
    layout: str,
    value_dtype: str,
    label_dtype: str,
    group_dtype: str,
    id_dtype: str,
    date_dtype: str = "str",
) -> pd.DataFrame:
    labels = _typed(_label_values(table), label_dtype)
    groups = _typed(list(table.groups), group_dtype)
    if group_dtype in ("str", "object", "category", "string[pyarrow]"):
        groups = _typed([f"p{g}" for g in table.groups], group_dtype)
    n = len(table.classes)
    if layout == "wide":
        columns: dict[str, pd.Series] = {"crop": labels, "field": groups}
        for t, day in enumerate(DATES):
            for b, band in enumerate(BANDS):
                columns[f"{band}_{day.isoformat()}"] = _value_column(table.values[:, t, b], value_dtype)
        return pd.DataFrame(columns)
    rows = np.repeat(np.arange(n), len(DATES))
    steps = np.tile(np.arange(len(DATES)), n)
    columns = {
        "sample_id": _typed([f"s{i:02d}" for i in rows], id_dtype),
        "date": _dates([DATES[t] for t in steps], date_dtype),
        "crop": labels.iloc[rows].reset_index(drop=True),
        "field": groups.iloc[rows].reset_index(drop=True),
    }
    for b, band in enumerate(BANDS):
        columns[band] = _value_column(table.values[rows, steps, b], value_dtype)
    return pd.DataFrame(columns)


def _dates(days: list[dt.date], dtype: str) -> pd.Series:
    """The long layout's date column as text, datetime64, UTC timestamps, date objects or Arrow dates."""
    if dtype == "str":
        return pd.Series([d.isoformat() for d in days])
    if dtype == "date":
        return pd.Series(days, dtype=object)
    stamps = pd.Series(pd.to_datetime(days))
    return stamps.dt.tz_localize("UTC") if dtype == "utc" else stamps.astype(dtype)


def _write(frame: pd.DataFrame, folder: Path, fmt: str) -> Path:
    if fmt == "csv":
        path = folder / "samples.csv"
        frame.to_csv(path, index=False)
    elif fmt == "parquet":
        path = folder / "samples.parquet"
        frame.to_parquet(path)
    else:  # GeoParquet: points and the `geo` metadata, as WorldCereal's extractions come
        import geopandas as gpd

        path = folder / "samples.geoparquet"
        points = gpd.points_from_xy(np.linspace(4.0, 4.1, len(frame)), np.full(len(frame), 50.8))
        gpd.GeoDataFrame(frame, geometry=points, crs="EPSG:4326").to_parquet(path)
    return path


def _load(path: Path) -> LabelledSeries:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # digital numbers scaled: the same warning for every dtype
        return load_labelled(LabelSource(path, "crop", group_column="field", min_parcels=0))


def _same(got: LabelledSeries, want: LabelledSeries, *, rtol: float = 0.0) -> None:
    assert got.class_names == want.class_names
    np.testing.assert_array_equal(got.labels, want.labels)
    np.testing.assert_array_equal(got.groups, want.groups)
    # exact: every value is exact in every dtype (rtol only where the file itself holds rounded text)
    np.testing.assert_allclose(got.values, want.values, rtol=rtol, atol=0)
    assert got.grid == want.grid


def _reference(table: Table, layout: str, folder: Path, group_dtype: str) -> LabelledSeries:
    plain_groups = "str" if group_dtype in ("str", "object", "category", "string[pyarrow]") else "int64"
    frame = _frame(table, layout, "float64", "str", plain_groups, "str")
    return _load(_write(frame, folder, "csv"))


def _value_dtypes(table: Table) -> st.SearchStrategy[str]:
    """Reflectance needs a float dtype; digital numbers 3..127 fit every numeric dtype."""
    if table.reflectance:
        return st.sampled_from(
            tuple(d for d in VALUE_DTYPES if "float" in d.lower() or d.startswith("Float"))
        )
    return st.sampled_from(VALUE_DTYPES)


@settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(data=st.data())
def test_every_dtype_reads_to_the_same_series(data: st.DataObject) -> None:
    table = data.draw(tables())
    layout = data.draw(st.sampled_from(("wide", "long")))
    fmt = data.draw(st.sampled_from(("csv", "parquet", "geoparquet")))
    value_dtype = data.draw(_value_dtypes(table))
    label_dtype = data.draw(st.sampled_from(CODE_DTYPES if table.coded else TEXT_DTYPES))
    group_dtype = data.draw(st.sampled_from(GROUP_DTYPES))
    id_dtype = data.draw(st.sampled_from(TEXT_DTYPES))
    date_dtype = data.draw(st.sampled_from(DATE_DTYPES))
    gap = data.draw(st.booleans()) and (value_dtype in NULLABLE_DTYPES or value_dtype in FLOAT_DTYPES)
    if gap:  # one missing observation: NaN in a float column, pd.NA in a nullable one
        values = table.values.copy()
        values[data.draw(st.integers(0, len(values) - 1)), 1, 2] = np.nan
        table = Table(values, table.classes, table.groups, table.reflectance, table.coded)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        want = _reference(table, layout, folder, group_dtype)
        frame = _frame(table, layout, value_dtype, label_dtype, group_dtype, id_dtype, date_dtype)
        got = _load(_write(frame, folder, fmt))
    # pandas writes float16 to CSV as its shortest float16 text (1/256 -> "0.003906"): the file holds
    # values rounded to float16's 11 bits, which is all a reader can get back
    _same(got, want, rtol=2e-3 if fmt == "csv" and value_dtype == "float16" else 0.0)
    expected_names = tuple(sorted(str(c) for c in (CODES if table.coded else NAMES)))
    assert want.class_names == expected_names


def test_wide_and_long_layouts_read_to_the_same_series(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    table = Table(rng.integers(1, 256, (6, 3, 4)) / 256.0, np.arange(6) % 3, np.arange(6) // 2, True, False)
    wide = _load(_write(_frame(table, "wide", "float32", "str", "str", "str"), tmp_path, "parquet"))
    long = _load(_write(_frame(table, "long", "float32", "str", "str", "str"), tmp_path, "csv"))
    # wide ids are row numbers, long ids the sample ids s00.. (sorted): both follow the table's order
    _same(long, wide)


def test_float32_parquet_columns_are_read_only_views_and_still_read(tmp_path: Path) -> None:
    """The reported crash: pyarrow hands a float32 column over as a read-only view; nodata is written
    into a copy, never into it."""
    frame = pd.DataFrame({"B02_2021-04-01": np.array([0.1, 65535.0, 0.3], dtype=np.float32)})
    frame.to_parquet(tmp_path / "t.parquet")
    read = pd.read_parquet(tmp_path / "t.parquet")
    assert not read["B02_2021-04-01"].to_numpy().flags.writeable  # the condition that crashed
    out = numeric_column(read, "B02_2021-04-01", tmp_path / "t.parquet", (65535.0,))
    np.testing.assert_array_equal(out, np.array([0.1, np.nan, 0.3], dtype=np.float32))
    assert out.flags.writeable and out.dtype == np.float32


@pytest.mark.parametrize("dtype", ["float32", "float64", "uint16", "int64"])
def test_read_only_and_strided_columns(tmp_path: Path, dtype: str) -> None:
    """A column backed by a read-only, non-contiguous slice of a 2-D block is read, not written into."""
    block = np.arange(12, dtype=dtype).reshape(3, 4) * 100
    block.flags.writeable = False
    strided = block[:, 1]  # stride of 4 items: not contiguous
    assert not strided.flags.c_contiguous and not strided.flags.writeable
    frame = pd.DataFrame({"B02_2021-04-01": pd.Series(strided, copy=False)})
    out = numeric_column(frame, "B02_2021-04-01", tmp_path / "t.csv", (500.0,))
    np.testing.assert_array_equal(out, np.array([100.0, np.nan, 900.0], dtype=np.float32))
    np.testing.assert_array_equal(block[:, 1], np.array([100, 500, 900], dtype=dtype))  # untouched


def test_integer_label_codes_and_nullable_groups(tmp_path: Path) -> None:
    """WorldCereal's ewoc_code arrives as int64; with a gap in a CSV it is float64: the same classes."""
    rng = np.random.default_rng(1)
    table = Table(
        rng.integers(3, 128, (6, 3, 4)).astype(float), np.arange(6) % 3, np.arange(6) // 2, False, True
    )
    as_int = _load(_write(_frame(table, "wide", "uint16", "int64", "Int64", "str"), tmp_path, "parquet"))
    frame = _frame(table, "wide", "uint16", "float64", "int64", "str")
    frame.loc[len(frame)] = [np.nan, np.nan] + [5] * (len(frame.columns) - 2)  # a row without label, group
    path = _write(frame, tmp_path, "csv")
    assert pd.read_csv(path)["crop"].dtype == np.float64 and pd.read_csv(path)["field"].dtype == np.float64
    as_float = _load(path)
    _same(as_float, as_int)
    assert as_int.class_names == tuple(str(c) for c in CODES)
    assert list(as_float.groups[:3]) == ["0", "0", "1"]  # not "0.0"


def test_train_reads_a_float32_wide_table_end_to_end(tmp_path: Path) -> None:
    """`geocrop train` on the dtype that crashed: a float32 wide Parquet table of a few dozen rows."""
    from geocrop.cli.main import cli
    from geocrop.io.bundle import read_bundle_metadata

    rng = np.random.default_rng(2)
    n = 36
    classes = np.arange(n) % 3
    # each class its own seasonal level, so the forest has something to learn
    values = 0.05 + 0.1 * classes[:, None, None] + rng.uniform(0.0, 0.04, (n, 3, 4))
    table = Table(values, classes, np.arange(n), True, False)
    path = _write(_frame(table, "wide", "float32", "category", "string[pyarrow]", "str"), tmp_path, "parquet")
    out = tmp_path / "model.safetensors"
    args = ["train", "--labels", str(path), "--class-column", "crop", "--group-column", "field"]
    result = CliRunner().invoke(cli, [*args, "--head", "rf", "--out", str(out), "--progress", "none"])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output and "read-only" not in result.output
    meta = read_bundle_metadata(out)
    assert [c["name"] for c in meta["classes"]] == list(NAMES)


def test_the_france_table_reads_the_same_in_other_dtypes(realdata: Path, tmp_path: Path) -> None:
    """The real WorldCereal France table (uint16 digital numbers, int64 ewoc_code, long GeoParquet) and
    the same table as float32 reflectance (Parquet and CSV) or nullable Int32 with pd.NA, a categorical
    code and Arrow-string ids: the same 422 series, labels and groups (values within float32 rounding)."""
    source = realdata / "worldcereal" / "extractions_2023_FRA_LPIS_dekad.geoparquet"
    mapping = f"{realdata / 'worldcereal' / 'class_mappings.json'}:CROPTYPE28"

    def load(path: Path) -> LabelledSeries:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return load_labelled(LabelSource(path, "ewoc_code", class_map=mapping, drop_unmapped=True))

    want = load(source)
    frame = pd.read_parquet(source).drop(columns=["geometry"])
    bands = [c for c in frame.columns if c.startswith("S2-L2A-")]
    as_float = frame.assign(
        **{c: np.where(frame[c] == 65535, np.nan, frame[c] * 1e-4).astype(np.float32) for c in bands}
    )
    nullable = frame.assign(
        **{c: pd.array(frame[c].where(frame[c] != 65535).tolist(), dtype="Int32") for c in bands},
        ewoc_code=frame["ewoc_code"].astype("category"),
        sample_id=frame["sample_id"].astype("string[pyarrow]"),
    )
    as_float.to_parquet(tmp_path / "float32.parquet")
    as_float.to_csv(tmp_path / "float32.csv", index=False)
    nullable.to_parquet(tmp_path / "nullable.parquet")
    assert len(want) == 422 and len(want.class_names) == 9
    for name in ("float32.parquet", "float32.csv", "nullable.parquet"):
        got = load(tmp_path / name)
        assert got.class_names == want.class_names, name
        np.testing.assert_array_equal(got.labels, want.labels)
        np.testing.assert_array_equal(got.groups, want.groups)
        np.testing.assert_allclose(got.values, want.values, rtol=0, atol=2e-7)  # float32 rounding of DN*1e-4


@pytest.mark.parametrize(
    "column",
    [
        pd.Series([0.125, 0.25, None]).astype(pd.ArrowDtype(pa.decimal128(6, 3))),
        pd.Series([0.125, 0.25, None]).astype("category"),
        pd.Series([0.125, 0.25, None]).astype("double[pyarrow]"),
        pd.Series(["0.125", "0.25", None], dtype="string[pyarrow]"),
    ],
    ids=["arrow-decimal", "categorical-float", "arrow-double", "arrow-string"],
)
def test_numbers_in_arrow_decimal_categorical_and_text_columns(tmp_path: Path, column: pd.Series) -> None:
    """Arrow decimals (a crash in pandas' to_numeric), numbers as categories or as Arrow strings."""
    out = numeric_column(pd.DataFrame({"B02_2021-04-01": column}), "B02_2021-04-01", tmp_path / "t.csv", ())
    np.testing.assert_array_equal(out, np.array([0.125, 0.25, np.nan], dtype=np.float32))


def test_a_decimal_parquet_column_reads_as_numbers(tmp_path: Path) -> None:
    import decimal

    import pyarrow.parquet as pq

    cells = [decimal.Decimal("0.125"), decimal.Decimal("0.250"), None]
    pq.write_table(pa.table({"B02_2021-04-01": pa.array(cells, pa.decimal128(6, 3))}), tmp_path / "t.parquet")
    frame = pd.read_parquet(tmp_path / "t.parquet")
    out = numeric_column(frame, "B02_2021-04-01", tmp_path / "t.parquet", ())
    np.testing.assert_array_equal(out, np.array([0.125, 0.25, np.nan], dtype=np.float32))
