"""One source loader: every kind detected, local cubes and saved ItemCollections read, bad sources refused."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from geocrop.errors import InputError, SourceError
from geocrop.io.cube import load_s1, load_s2
from geocrop.io.cube_file import backscatter_db, cube_items
from geocrop.io.sources import detect_source
from geocrop.io.stac import search
from tests.io.cube_fixtures import write_cube, write_long_table

ANY = {"bbox": (-180.0, -90.0, 180.0, 90.0), "start": "1970-01-01", "end": "2100-01-01"}


def _aoi_of(items: list) -> object:
    from shapely.geometry import box

    from geocrop.io.aoi import Aoi

    return Aoi(box(*items[0].bbox), "cube")


def test_every_kind_is_detected(tmp_path: Path) -> None:
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "catalog.json").write_text(json.dumps({"type": "Catalog", "id": "c"}))
    (tmp_path / "items.json").write_text(json.dumps({"type": "FeatureCollection", "features": []}))
    (tmp_path / "tifs" / "x").mkdir(parents=True)
    (tmp_path / "tifs" / "x" / "B02.tif").write_bytes(b"II*\x00")
    zarr = tmp_path / "cube.zarr"  # detected by its markers; reading it needs the zarr package
    zarr.mkdir()
    (zarr / ".zgroup").write_text('{"zarr_format": 2}')
    assert detect_source("https://earth-search.aws.element84.com/v1") == "stac-api"
    assert detect_source(tmp_path / "cat") == "static-catalog"
    assert detect_source(tmp_path / "cat" / "catalog.json") == "static-catalog"
    assert detect_source(tmp_path / "items.json") == "item-collection"
    assert detect_source(tmp_path / "tifs") == "geotiff-folder"
    assert detect_source(write_cube(tmp_path / "c.nc")) == "cube"
    assert detect_source(zarr) == "cube"
    table = write_long_table(tmp_path / "t.parquet")
    assert detect_source(table, tables=True) == "table"
    with pytest.raises(SourceError, match="tables go to pretraining's `s2`"):
        detect_source(table)


def test_one_error_lists_the_accepted_kinds(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    for bad, fragment in (
        (tmp_path / "notes.txt", "could not be read"),
        (tmp_path / "nope", "neither a URL"),
    ):
        with pytest.raises(SourceError, match=fragment) as info:
            detect_source(bad)
        message = str(info.value)
        assert "\n" not in message
        for kind in ("STAC API URL", "catalog.json", "ItemCollection", "GeoTIFFs", "NetCDF", "Zarr"):
            assert kind in message
    with pytest.raises(SourceError, match="samples table"):
        detect_source(tmp_path / "nope", tables=True)


def test_generated_cube_loads_exactly_with_nodata_and_filled_bands(tmp_path: Path) -> None:
    path = write_cube(tmp_path / "cube.nc", size=12, months=4)
    items = search(path, collection="sentinel-2-l2a", **ANY)
    assert [it.datetime.date().isoformat() for it in items] == [
        "2021-03-01",
        "2021-04-01",
        "2021-05-01",
        "2021-06-01",
    ]
    with pytest.warns(UserWarning, match="lacks bands"):
        cube = load_s2(items, aoi=_aoi_of(items))
    raw = xr.open_dataset(path)
    assert cube.dims == ("time", "band", "y", "x")
    assert cube.attrs["missing_bands"] == ["B01", "B06", "B07", "B8A", "B09"]
    # the grid is snapped outwards around the cube: find the cube's pixels in it and compare exactly
    inside = cube.sel(x=raw.x, y=raw.y)
    expect = raw["S2-L2A-B04"].values.astype(np.float32) * np.float32(1e-4)
    got = inside.sel(band="B04").values
    assert np.isnan(got[0, 0, 0])  # -1 is nodata
    assert np.array_equal(got.ravel()[1:], expect.ravel()[1:])
    assert np.allclose(inside.sel(band="B01").values[:, 1:, 1:], inside.sel(band="B02").values[:, 1:, 1:])


def test_cube_s1_is_decoded_to_db() -> None:
    dn = np.array([10 ** ((-10.0 + 83.0) / 20.0), 0, 65535], dtype=np.float64)
    db = backscatter_db(dn, integer=True)
    assert db[0] == pytest.approx(-10.0, abs=1e-4) and np.isnan(db[1:]).all()
    assert backscatter_db(np.array([0.1, 0.01]), integer=False) == pytest.approx([-10.0, -20.0])
    assert backscatter_db(np.array([-12.0, -8.0]), integer=False) == pytest.approx([-12.0, -8.0])


def test_cube_s1_loads_on_the_s2_grid(tmp_path: Path) -> None:
    path = write_cube(tmp_path / "cube.nc")
    items = cube_items(path, collection="sentinel-1", sensor="s1")
    s2 = load_s2(cube_items(path, collection="sentinel-2-l2a"), aoi=_aoi_of(items))
    s1 = load_s1(items, geobox=s2.odc.geobox)
    assert list(s1.band.values) == ["VV", "VH"] and s1.shape[-2:] == s2.shape[-2:]
    assert float(np.nanmedian(s1.sel(band="VV"))) == pytest.approx(-10.0, abs=0.5)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"time_dim": None}, "has no time dimension"),
        ({"bands": ("B02", "B03", "B04")}, "lacks the required Sentinel-2 band(s) B08"),
    ],
)
def test_bad_cubes_are_one_line_errors(tmp_path: Path, kwargs: dict, fragment: str) -> None:
    path = tmp_path / "bad.nc"
    if kwargs.get("time_dim", "t") is None:
        write_cube(path, months=1)
        ds = xr.load_dataset(path).isel(t=0, drop=True)
        path.unlink()
        ds.to_netcdf(path, engine="h5netcdf")
    else:
        write_cube(path, **kwargs)
    with pytest.raises(InputError) as info:
        search(path, collection="sentinel-2-l2a", **ANY)
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_item_collection_without_s2_items_is_one_line(tmp_path: Path) -> None:
    feature = {"type": "Feature", "stac_version": "1.0.0", "id": "ls", "collection": "landsat-c2-l2",
               "geometry": {"type": "Point", "coordinates": [1, 2]}, "bbox": [1, 2, 1, 2],
               "properties": {"datetime": "2021-01-01T00:00:00Z"}, "links": [], "assets": {}}  # fmt: skip
    path = tmp_path / "landsat.json"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    with pytest.raises(SourceError, match="none of sentinel-2-l2a") as info:
        search(path, collection="sentinel-2-l2a", **ANY)
    assert "\n" not in str(info.value)


def test_real_item_collection_is_searched(realdata: Path) -> None:
    path = realdata / "stac" / "earth-search_sentinel-2-l2a.json"
    items = search(path, collection="sentinel-2-l2a", bbox=(-40.1, -4.7, -40.0, -4.6), start="2025-07-01",
                   end="2025-08-31")  # fmt: skip
    assert [it.id for it in items] == ["S2B_24MUA_20250731_0_L2A", "S2B_24MUV_20250731_0_L2A"]
    c1 = realdata / "stac" / "earth-search_sentinel-2-c1-l2a.json"
    assert search(c1, collection="sentinel-2-l2a", **ANY)  # another S2 L2A collection id is accepted


def test_real_worldcereal_cube_loads_pixel_for_pixel(realdata: Path) -> None:
    path = realdata / "worldcereal" / "worldcereal_preprocessed_inputs.nc"
    items = search(path, collection="sentinel-2-l2a", **ANY)
    assert len(items) == 12
    with pytest.warns(UserWarning, match=r"lacks bands \['B01', 'B8A', 'B09'\]"):
        cube = load_s2(items, aoi=_aoi_of(items))
    raw = xr.open_dataset(path)
    got = cube.sel(band="B08").sel(x=raw.x, y=raw.y).values
    dn = raw["S2-L2A-B08"].values.astype(np.float32)
    expect = np.where(
        dn == 65535, np.nan, np.clip(dn * np.float32(1e-4), 0.0, 1.0)
    )  # clipped as load_s2 does
    assert np.array_equal(got, expect, equal_nan=True)
    s1 = load_s1(search(path, collection="sentinel-1", **ANY), geobox=cube.odc.geobox)
    assert -14 < float(np.nanmedian(s1.sel(band="VV"))) < -6  # plausible cropland VV backscatter (dB)


def test_a_zarr_cube_loads_like_the_same_netcdf(tmp_path: Path) -> None:
    """The same cube as NetCDF and as Zarr: the same items, the same pixels."""
    nc = write_cube(tmp_path / "cube.nc", size=8, months=3)
    store = tmp_path / "cube.zarr"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr's notes on its v3 format are not ours
        xr.open_dataset(nc).load().to_zarr(store, zarr_format=2)
    assert detect_source(store) == "cube"
    cubes = []
    for path in (nc, store):
        items = search(path, collection="sentinel-2-l2a", **ANY)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cubes.append(load_s2(items, aoi=_aoi_of(items)).values)
    assert cubes[0].shape == cubes[1].shape
    assert np.array_equal(np.nan_to_num(cubes[0], nan=-9), np.nan_to_num(cubes[1], nan=-9))
