"""read_aoi: every accepted input, CRS handling, repair and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from shapely.geometry import Polygon, box

from geocrop.errors import InputError
from geocrop.io.aoi import Aoi, read_aoi

SQUARE = box(13.5, 52.5, 13.6, 52.6)


def _write(path: Path, obj: object) -> Path:
    path.write_text(json.dumps(obj))
    return path


def test_geojson_feature_collection_feature_and_bare_geometry(tmp_path: Path) -> None:
    geom = shapely.geometry.mapping(SQUARE)
    fc = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, "geometry": geom}]}
    for name, obj in [("fc", fc), ("f", fc["features"][0]), ("g", geom)]:
        aoi = read_aoi(_write(tmp_path / f"{name}.geojson", obj))
        assert aoi.geometry.equals(SQUARE)
        assert aoi.bbox == pytest.approx((13.5, 52.5, 13.6, 52.6))
        assert aoi.utm_epsg() == 32633


def test_multipart_union_and_southern_utm(tmp_path: Path) -> None:
    a, b = box(0, 0, 1, 1), box(0.5, 0, 2, 1)
    fc = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {}, "geometry": shapely.geometry.mapping(g)} for g in (a, b)
        ],
    }
    aoi = read_aoi(_write(tmp_path / "two.geojson", fc))
    assert aoi.geometry.area == pytest.approx(2.0)
    assert read_aoi((-47.1, -15.9, -47.0, -15.8)).utm_epsg() == 32723


def test_gpkg_parquet_shapefile_in_projected_crs(tmp_path: Path) -> None:
    frame = gpd.GeoDataFrame({"id": [1]}, geometry=[SQUARE], crs="EPSG:4326").to_crs("EPSG:32633")
    frame.to_file(tmp_path / "a.gpkg")
    frame.to_parquet(tmp_path / "a.parquet")
    frame.to_file(tmp_path / "a.shp")
    for name in ("a.gpkg", "a.parquet", "a.shp"):
        aoi = read_aoi(tmp_path / name)
        assert aoi.bbox == pytest.approx(SQUARE.bounds, abs=1e-6), name


def test_geojson_legacy_crs_member_and_crs_argument(tmp_path: Path) -> None:
    utm = gpd.GeoSeries([SQUARE], crs="EPSG:4326").to_crs("EPSG:32633").iloc[0]
    obj = {
        "type": "Feature",
        "properties": {},
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32633"}},
        "geometry": shapely.geometry.mapping(utm),
    }
    assert read_aoi(_write(tmp_path / "utm.geojson", obj)).bbox == pytest.approx(SQUARE.bounds, abs=1e-6)
    assert read_aoi(utm, crs="EPSG:32633").bbox == pytest.approx(SQUARE.bounds, abs=1e-6)
    with pytest.raises(InputError, match="outside the lon/lat range"):
        read_aoi(utm)  # projected numbers without a CRS


def test_bbox_string_tuple_and_geo_interface() -> None:
    assert read_aoi("13.5,52.5,13.6,52.6").geometry.equals(SQUARE)
    assert read_aoi([13.5, 52.5, 13.6, 52.6]).geometry.equals(SQUARE)
    series = gpd.GeoSeries([SQUARE], crs="EPSG:4326")
    assert read_aoi(series).geometry.equals(SQUARE)
    assert isinstance(read_aoi(SQUARE), Aoi)
    with pytest.raises(InputError, match="min >= max"):
        read_aoi("13.6,52.5,13.5,52.6")


def test_self_intersecting_polygon_is_repaired_with_warning(tmp_path: Path) -> None:
    bowtie = Polygon([(0, 0), (1, 1), (1, 0), (0, 1), (0, 0)])
    path = _write(tmp_path / "bowtie.geojson", shapely.geometry.mapping(bowtie))
    with pytest.warns(UserWarning, match="repaired"):
        aoi = read_aoi(path)
    assert aoi.geometry.is_valid and aoi.geometry.area == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("{not json", "x.geojson is not valid GeoJSON"),
        ('{"type": "FeatureCollection", "features": []}', "holds no geometry"),
        ('{"type": "Point", "coordinates": [1, 2]}', "not an area"),
        ('{"type": "Polygon", "coordinates": [[[0, 0], [1]]]}', "not valid GeoJSON"),
        ('{"hello": 1}', "no 'type' member"),
    ],
)
def test_bad_geojson_is_one_line_input_error(tmp_path: Path, content: str, match: str) -> None:
    path = tmp_path / "x.geojson"
    path.write_text(content)
    with pytest.raises(InputError, match=match) as info:
        read_aoi(path)
    msg = str(info.value)
    assert "\n" not in msg and "or a bbox minx,miny,maxx,maxy" in msg


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        read_aoi(tmp_path / "nope.geojson")
    bad = tmp_path / "bad.gpkg"
    bad.write_bytes(b"not a geopackage")
    with pytest.raises(InputError, match="could not be read as a vector file"):
        read_aoi(bad)
