"""Parcels that cannot serve, each refused with one line that names the cause and the fix: point parcels
given to `geocrop fields` (polygons are needed; they do overlap the map), an empty parcels file, a class
column that is empty in every parcel, and parcel ids shared by parcels of different classes (the cause,
not "a single class")."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import geopandas as gpd
import pytest
from click.testing import CliRunner, Result
from shapely.geometry import box

from geocrop.cli.main import cli
from geocrop.data.labelled import LabelSource, load_labelled
from tests.cli.test_bad_inputs import _snapshot
from tests.data.test_labelled import make_area
from tests.io.stac_fixtures import EPSG, ORIGIN
from tests.post.test_fields import UTM, X0, Y0, write_map

START, END = dt.date(2021, 5, 1), dt.date(2021, 6, 1)


def _one_error(result: Result, *fragments: str) -> str:
    assert result.exit_code == 2, (result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("geocrop: error: "), result.stderr
    assert "Traceback" not in result.output and "np.str_" not in lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def _fields(tmp_path: Path, parcels: Path, out: Path) -> Result:
    crops = tmp_path / "crops.tif"
    if not crops.exists():
        write_map(crops)
    args = ["fields", "--map", str(crops), "--parcels", str(parcels), "--out", str(out), "--progress", "none"]
    return CliRunner().invoke(cli, args)


@pytest.mark.parametrize("suffix", [".gpkg", ".parquet"])
@pytest.mark.parametrize("existing", [False, True], ids=["no-output", "existing-output"])
def test_point_parcels_are_told_polygons_are_needed(tmp_path: Path, suffix: str, existing: bool) -> None:
    """Points inside the map: the answer is "give polygons", never "they do not overlap"."""
    from shapely.geometry import Point

    points = [Point(X0 + 10 * c + 5, Y0 - 10 * r - 5) for c, r in ((1, 1), (5, 8), (15, 12))]
    parcels = tmp_path / f"points{suffix}"
    frame = gpd.GeoDataFrame({"parcel_id": [1, 2, 3]}, geometry=points, crs=UTM)
    frame.to_file(parcels) if suffix == ".gpkg" else frame.to_parquet(parcels)
    write_map(tmp_path / "crops.tif")
    out = tmp_path / "fields.gpkg"
    if existing:
        out.write_text("an earlier result")
    before = _snapshot(tmp_path)
    line = _one_error(
        _fields(tmp_path, parcels, out), "--parcels points", "hold 3 Point geometries", "polygons are needed",
        "give the parcel polygons",
    )  # fmt: skip
    assert "overlap" not in line
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize("suffix", [".gpkg", ".geojson", ".parquet"])
def test_an_empty_parcels_file_for_fields(tmp_path: Path, suffix: str) -> None:
    parcels = tmp_path / f"empty{suffix}"
    empty = gpd.GeoDataFrame({"parcel_id": []}, geometry=[], crs=UTM)
    empty.to_parquet(parcels) if suffix == ".parquet" else empty.to_file(parcels)
    write_map(tmp_path / "crops.tif")
    before = _snapshot(tmp_path)
    _one_error(
        _fields(tmp_path, parcels, tmp_path / "fields.gpkg"),
        "holds no parcel (the file is empty); give a file of parcel polygons",
    )
    assert _snapshot(tmp_path) == before


def _train(parcels: Path, catalog: Path, out: Path, *extra: str) -> Result:
    args = ["train", "--labels", str(parcels), "--class-column", "crop", "--s2", str(catalog),
            "--start", str(START), "--end", str(END), "--head", "rf", "--out", str(out), *extra]  # fmt: skip
    return CliRunner().invoke(cli, args)


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    return make_area(tmp_path)[0]


def _parcels(path: Path, crops: list[object], ids: list[object]) -> Path:
    x0, y1 = ORIGIN
    geoms = [box(x0 + 40 * k + 4, y1 - 36, x0 + 40 * k + 36, y1 - 4) for k in range(len(crops))]
    gpd.GeoDataFrame({"crop": crops, "pid": ids}, geometry=geoms, crs=f"EPSG:{EPSG}").to_file(path)
    return path


def test_an_empty_parcels_file_for_training(tmp_path: Path, catalog: Path) -> None:
    parcels = tmp_path / "empty.gpkg"
    gpd.GeoDataFrame({"crop": []}, geometry=[], crs=f"EPSG:{EPSG}").to_file(parcels)
    out = tmp_path / "m.safetensors"
    _one_error(
        _train(parcels, catalog, out), "hold no parcel (the file is empty); give a file of labelled parcels"
    )
    assert not out.exists()


def test_a_class_column_empty_in_every_parcel(tmp_path: Path, catalog: Path) -> None:
    parcels = _parcels(tmp_path / "p.gpkg", [None, None, None], ["a", "b", "c"])
    out = tmp_path / "m.safetensors"
    _one_error(
        _train(parcels, catalog, out),
        "class column 'crop' is empty in all 3 parcels; "
        "choose the column that holds the crop type (others: pid)",
    )
    assert not out.exists()


def test_parcel_ids_shared_across_classes_are_the_named_cause(tmp_path: Path, catalog: Path) -> None:
    """Every parcel carries id 1: the cause is the shared id, not "a single class ('sunflower')"."""
    parcels = _parcels(tmp_path / "p.gpkg", ["maize", "wheat", "sunflower"], [1, 1, 1])
    out = tmp_path / "m.safetensors"
    line = _one_error(
        _train(parcels, catalog, out, "--id-column", "pid"),
        "parcel id '1' in column 'pid' is shared by 3 parcels of different classes ('maize', 'wheat', "
        "'sunflower'); give every parcel its own id, or leave --id-column out to number the parcels",
    )
    assert "single class" not in line and not out.exists()


def test_one_parcel_in_several_polygons_keeps_its_one_id(tmp_path: Path) -> None:
    """Polygons sharing an id and a class are one parcel (burnt as one): read, not refused."""
    catalog, parcels = make_area(tmp_path)
    frame = gpd.read_file(parcels)
    frame.loc[frame["crop"] == frame.loc[0, "crop"], "fid_"] = "same"  # 3 polygons of one crop, one id
    frame.to_file(tmp_path / "split.gpkg")
    series = load_labelled(
        LabelSource(tmp_path / "split.gpkg", "crop", id_column="fid_", s2=str(catalog), start=START, end=END,
                    steps=8, min_parcels=0)
    )  # fmt: skip
    assert (series.groups == "same").sum() == 3 * 16


@pytest.mark.parametrize("fid", [[1, 1, 2], ["a", "b", "c"]], ids=["repeated", "text"])
def test_parcels_whose_fid_repeats_are_summarised_into_a_geopackage(
    tmp_path: Path, fid: list[object]
) -> None:
    """A GeoPackage takes a `fid` column as its unique integer feature id: a parcels table whose fid
    repeats (two polygons of one parcel) or is text crashed the write; it is kept as an attribute."""
    from tests.post.test_fields import cells

    parcels = tmp_path / "p.parquet"
    geoms = [cells(0, 0, 4, 4), cells(5, 5, 8, 8), cells(10, 10, 14, 14)]
    gpd.GeoDataFrame({"fid": fid, "crop": ["a", "b", "c"]}, geometry=geoms, crs=UTM).to_parquet(parcels)
    out = tmp_path / "fields.gpkg"
    result = _fields(tmp_path, parcels, out)
    assert result.exit_code == 0 and result.stderr == "", result.output
    table = gpd.read_file(out)
    assert table["fid"].tolist() == fid and table["crop"].tolist() == ["a", "b", "c"]
    assert table["class_name"].notna().all()
