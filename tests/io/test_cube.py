"""load_s2 / load_planet: values, offsets, masks, grids, laziness, missing bands, real items and data."""

from __future__ import annotations

import datetime as dt
import json
import warnings
from pathlib import Path

import numpy as np
import pystac
import pytest
from affine import Affine
from shapely.geometry import box

from geocrop.core.bands import S2_BANDS
from geocrop.errors import NoDataError, SourceError
from geocrop.io.aoi import read_aoi
from geocrop.io.bandmap import fill_plan, s2_band_assets, scl_asset_key
from geocrop.io.cube import load_planet, load_s2, planet_geobox, s2_geobox
from geocrop.io.stac import search
from tests.io.stac_fixtures import (
    EPSG,
    ORIGIN,
    S2_COLLECTION,
    planet_item,
    rustac_executable,
    rustac_server,
    s2_item,
    synthetic_s2,
    write_api_inputs,
    write_cog,
    write_worldcereal_catalog,
)

SIZE = 8
DATES = [dt.date(2021, 5, 1), dt.date(2021, 5, 6)]
TILE_AOI = read_aoi(
    box(ORIGIN[0], ORIGIN[1] - SIZE * 10, ORIGIN[0] + SIZE * 10, ORIGIN[1]), crs=f"EPSG:{EPSG}"
)


def _expected(t: int, band: str, offset_dn: int = -1000) -> np.ndarray:
    ii, jj = np.mgrid[0:SIZE, 0:SIZE]
    return (1000 + 100 * S2_BANDS.index(band) + 10 * t + ii + jj + offset_dn) / 1e4


@pytest.fixture(scope="module")
def items(tmp_path_factory: pytest.TempPathFactory) -> list[pystac.Item]:
    return synthetic_s2(tmp_path_factory.mktemp("s2"), DATES, size=SIZE)


def test_geobox_snapped_utm_10m() -> None:
    aoi = read_aoi((13.5, 52.5, 13.51, 52.51))
    gb = s2_geobox(aoi)
    assert gb.crs.epsg == 32633
    a = gb.affine
    assert (a.a, a.e) == (10.0, -10.0) and a.c % 10 == 0 and a.f % 10 == 0
    x0, _, _, y1 = aoi.to_crs("EPSG:32633").bounds
    assert gb.extent.boundingbox.left <= x0 and gb.extent.boundingbox.top >= y1


def test_values_offset_scl_mask_and_attrs(items: list[pystac.Item]) -> None:
    cube = load_s2(items, aoi=TILE_AOI)
    assert cube.dims == ("time", "band", "y", "x") and cube.dtype == np.float32
    assert list(cube.band.values) == list(S2_BANDS) and cube.shape == (2, 12, SIZE, SIZE)
    assert cube.odc.geobox.affine == Affine(10, 0, ORIGIN[0], 0, -10, ORIGIN[1])
    np.testing.assert_allclose(cube.isel(time=0).sel(band="B04").values, _expected(0, "B04"), atol=1e-6)
    second = cube.isel(time=1).sel(band="B11").values
    assert np.isnan(second[:3, :3]).all()  # SCL 9 (cloud) there
    np.testing.assert_allclose(second[3:, 3:], _expected(1, "B11")[3:, 3:], atol=1e-6)
    assert cube.attrs["missing_bands"] == []
    assert cube.attrs["scene_ids"] == [it.id for it in items]


def test_old_baseline_band_id_keys_no_raster_scale(tmp_path: Path) -> None:
    old = synthetic_s2(tmp_path, DATES[:1], size=SIZE, keys="band-id", offset=None, baseline="02.12")
    cube = load_s2(old, aoi=TILE_AOI)
    np.testing.assert_allclose(cube.isel(time=0).sel(band="B08").values, _expected(0, "B08", 0), atol=1e-6)


def test_outside_aoi_is_nan(items: list[pystac.Item]) -> None:
    half = read_aoi(box(ORIGIN[0], ORIGIN[1] - 80, ORIGIN[0] + 40, ORIGIN[1]), crs=f"EPSG:{EPSG}")
    cube = load_s2(items, aoi=half, geobox=s2_geobox(TILE_AOI))
    v = cube.isel(time=0, band=2).values
    assert np.isnan(v[:, 4:]).all() and not np.isnan(v[:, :4]).any()


def test_lazy_equals_eager(items: list[pystac.Item]) -> None:
    lazy = load_s2(items, aoi=TILE_AOI, chunks={"x": 4, "y": 4})
    assert lazy.chunks is not None
    eager = load_s2(items, aoi=TILE_AOI)
    np.testing.assert_array_equal(lazy.values, eager.values)


def test_a_lazy_cube_reads_a_few_scenes_per_task_as_one_time_chunk(tmp_path: Path) -> None:
    """odc-stac reads a task's scenes one after another: a few per task let a tile's reads overlap."""
    from odc.loader._builder import _dask_loader_tyx

    from geocrop.io.odc_read import SCENES_PER_READ

    dates = [dt.date(2021, 4, 1) + dt.timedelta(days=10 * i) for i in range(2 * SCENES_PER_READ + 1)]
    many = synthetic_s2(tmp_path, dates, size=SIZE)
    lazy = load_s2(many, aoi=TILE_AOI, chunks={"x": 4, "y": 4})
    assert lazy.chunks is not None and lazy.chunks[0] == (len(dates),)  # one time chunk for the engine
    graph = dict(lazy.data.__dask_graph__())
    reads = [task for task in graph.values() if getattr(task, "func", None) is _dask_loader_tyx]
    assert len(reads) == (len(S2_BANDS) + 1) * 3 * 4  # bands and SCL x 3 groups of scenes x 4 windows
    np.testing.assert_array_equal(lazy.values, load_s2(many, aoi=TILE_AOI).values)


def test_missing_bands_rule(tmp_path: Path) -> None:
    present = [b for b in S2_BANDS if b not in ("B01", "B09", "B8A", "B06")]
    few = synthetic_s2(tmp_path, DATES[:1], size=SIZE, bands=present)
    with pytest.warns(UserWarning, match="lacks bands"):
        cube = load_s2(few, aoi=TILE_AOI)
    assert cube.attrs["missing_bands"] == ["B01", "B06", "B8A", "B09"]
    c = cube.isel(time=0)
    np.testing.assert_allclose(c.sel(band="B01"), c.sel(band="B02"))
    np.testing.assert_allclose(c.sel(band="B09"), c.sel(band="B08"))
    w = (740 - 705) / (783 - 705)
    np.testing.assert_allclose(
        c.sel(band="B06"), (1 - w) * c.sel(band="B05") + w * c.sel(band="B07"), atol=1e-6
    )
    assert fill_plan(frozenset(present))["B8A"][:2] == ("B08", "B11")
    with pytest.raises(SourceError, match=r"no asset for bands \['B08'\]"):
        load_s2(
            synthetic_s2(tmp_path / "nonir", DATES[:1], size=SIZE, bands=["B02", "B03", "B04"]), aoi=TILE_AOI
        )


def test_aoi_in_no_scene(items: list[pystac.Item]) -> None:
    with pytest.raises(NoDataError, match="lies in none"):
        load_s2(items, aoi=read_aoi((0.0, 0.0, 0.01, 0.01)))


def test_corrupt_cog_names_the_file(tmp_path: Path) -> None:
    bad = synthetic_s2(tmp_path, DATES[:1], size=64)
    path = Path(bad[0].assets["red"].href)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # truncated
    aoi = read_aoi(box(ORIGIN[0], ORIGIN[1] - 640, ORIGIN[0] + 640, ORIGIN[1]), crs=f"EPSG:{EPSG}")
    with pytest.raises(SourceError, match=r"red\.tif"):
        load_s2(bad, aoi=aoi)
    lazy = load_s2(bad, aoi=aoi, chunks={"x": 32, "y": 32})
    with pytest.raises(SourceError, match=r"red\.tif"):
        lazy.compute()


def test_planet_grid_is_s2_grid_refined_3x(tmp_path: Path) -> None:
    """S2 pixel (i, j) must sit exactly on Planet pixels (3i..3i+2, 3j..3j+2)."""
    gb = s2_geobox(TILE_AOI)
    pg = planet_geobox(gb)
    assert pg.shape == (3 * SIZE, 3 * SIZE) and pg.crs == gb.crs
    assert pg.affine.c == gb.affine.c and pg.affine.f == gb.affine.f
    assert pg.affine.a == pytest.approx(10 / 3) and pg.affine.e == pytest.approx(-10 / 3)
    # A Planet raster whose value says which S2 pixel it lies in: 1000 + 100*(row // 3) + col // 3.
    rr, cc = np.mgrid[0 : 3 * SIZE, 0 : 3 * SIZE]
    cell = 1000 + 100 * (rr // 3) + cc // 3
    sr = np.stack([cell + 1000 * b for b in range(4)]).astype(np.uint16)
    udm2 = np.zeros((8, 3 * SIZE, 3 * SIZE), np.uint8)
    udm2[0] = 1
    udm2[0, 3:6, 6:9] = 0  # S2 pixel (1, 2) clouded in Planet
    when = dt.datetime(2021, 5, 1, 10, tzinfo=dt.timezone.utc)
    tf = Affine(10 / 3, 0, ORIGIN[0], 0, -10 / 3, ORIGIN[1])
    it = planet_item(tmp_path, "20210501_100000_1_2403", when, sr=sr, udm2=udm2, transform=tf)
    cube = load_planet([it], geobox=gb)
    assert cube.dims == ("time", "band", "y", "x") and list(cube.band.values) == [
        "blue",
        "green",
        "red",
        "nir",
    ]
    assert cube.odc.geobox.affine == pg.affine
    dn = np.rint(cube.isel(time=0).values * 1e4)
    for i in range(SIZE):
        for j in range(SIZE):
            window = dn[0, 3 * i : 3 * i + 3, 3 * j : 3 * j + 3]
            if (i, j) == (1, 2):
                assert np.isnan(window).all()
            else:
                assert (window == 1000 + 100 * i + j).all(), (i, j)
    np.testing.assert_array_equal(dn[3], dn[0] + 3000)  # nir is the 4th band
    lazy = load_planet([it], geobox=gb, chunks={"x": 12, "y": 12})
    np.testing.assert_array_equal(np.rint(lazy.values * 1e4), np.rint(cube.values * 1e4))


def _real_items(realdata: Path) -> list[tuple[str, pystac.Item]]:
    out = []
    for name in ("earth-search_sentinel-2-l2a.json", "earth-search_sentinel-2-c1-l2a.json",
                 "planetarycomputer_sentinel-2-l2a.json", "S2A_28QCH_20200714_0_L2A.json"):  # fmt: skip
        data = json.loads((realdata / "stac" / name).read_text())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pystac's storage-extension migration notes
            out += [(name, pystac.Item.from_dict(f)) for f in data.get("features", [data])]
    return out


def test_real_item_json_band_mapping_and_offsets(realdata: Path) -> None:
    checked = 0
    for name, item in _real_items(realdata):
        if not item.assets:
            continue  # collection-1 search hits recorded without assets: nothing to map
        mapping = s2_band_assets(item)
        assert set(mapping) == set(S2_BANDS), (name, item.id)
        assert scl_asset_key(item) in ("scl", "SCL")
        assert all(m.asset.lower() != "visual" and not m.asset.endswith("-jp2") for m in mapping.values())
        offsets = {round(m.offset, 6) for m in mapping.values()}
        year = item.datetime.year if item.datetime else 0
        assert offsets == ({-0.1} if year >= 2022 else {0.0}), (name, item.id, offsets)
        assert {m.scale for m in mapping.values()} == {1e-4}
        checked += 1
    assert checked == 7 + 6 + 33 + 1
    # The collection-1 hits recorded without assets are refused with one clear line, before any read.
    stub = next(item for _, item in _real_items(realdata) if not item.assets)
    minx, miny, maxx, maxy = stub.bbox
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    with pytest.raises(SourceError, match="has no asset for bands") as info:
        load_s2([stub], aoi=read_aoi((cx, cy, cx + 0.001, cy + 0.001)))
    assert "\n" not in str(info.value)
    es = dict(_real_items(realdata)[0:1])
    assert s2_band_assets(next(iter(es.values())))["B8A"].asset == "nir08"


needs_rustac = pytest.mark.skipif(rustac_executable() is None, reason="rustac CLI not installed (pip rustac)")


@needs_rustac
def test_search_then_load_from_rustac_api(tmp_path: Path, items: list[pystac.Item]) -> None:
    coll, nd = write_api_inputs(tmp_path, items, collection=S2_COLLECTION)
    with rustac_server(coll, nd) as url:
        found = search(
            url,
            collection=S2_COLLECTION,
            bbox=TILE_AOI,
            start="2021-05-01",
            end="2021-05-31",
            allow_any_asset_href=True,  # the test API serves local files
        )
    cube = load_s2(found, aoi=TILE_AOI)
    assert cube.sizes["time"] == 2
    np.testing.assert_allclose(cube.isel(time=0).sel(band="B02").values, _expected(0, "B02"), atol=1e-6)


def test_worldcereal_real_cube_through_catalog(realdata: Path, tmp_path: Path) -> None:
    nc = realdata / "worldcereal" / "worldcereal_preprocessed_inputs.nc"
    if not nc.exists():
        pytest.skip(f"{nc} is absent")
    pytest.importorskip("h5py", reason="h5netcdf needs h5py to read the WorldCereal file")
    import xarray as xr

    cat = write_worldcereal_catalog(nc, tmp_path)
    aoi = read_aoi(box(664_000, 5_611_120, 665_000, 5_612_120), crs="EPSG:32631")
    found = search(cat, collection=S2_COLLECTION, bbox=aoi, start="2020-11-01", end="2021-10-31")
    assert len(found) == 12
    with pytest.warns(UserWarning, match="lacks bands"):
        cube = load_s2(found, aoi=aoi)
    assert cube.attrs["missing_bands"] == ["B01", "B8A", "B09"]
    assert cube.shape == (12, 12, 100, 100)
    ds = xr.open_dataset(nc, engine="h5netcdf", mask_and_scale=False)
    raw = ds["S2-L2A-B04"].values.view(np.uint16)
    ref = np.where(raw == 65535, np.nan, raw / 1e4)
    np.testing.assert_allclose(cube.sel(band="B04").values, np.clip(ref, 0, 1), atol=1e-6, equal_nan=True)
    empty = np.isnan(ref).all(axis=(1, 2))
    assert empty.sum() == 2 and np.isnan(cube.values[empty]).all()
    valid = cube.values[~empty]
    assert np.nanmin(valid) >= 0 and np.nanmax(valid) <= 1 and not np.isnan(valid).all()
    # Real reflectance looks like vegetation/soil: red below NIR in the summer median.
    july = cube.sel(time="2021-07").isel(time=0)
    assert float(july.sel(band="B04").median()) < float(july.sel(band="B08").median())


def test_planet_folder_names_and_mixed_4_8_band(tmp_path: Path) -> None:
    """Planet-named files found by search(); an 8-band SuperDove scene mixed with a 4-band one."""
    size = 3 * SIZE
    tf = Affine(10 / 3, 0, ORIGIN[0], 0, -10 / 3, ORIGIN[1])
    udm2 = np.zeros((8, size, size), np.uint8)
    udm2[0] = 1
    four = np.stack([np.full((size, size), 1000 * (b + 1), np.uint16) for b in range(4)])
    planet_item(
        tmp_path,
        "20210501_100000_1_2403",
        dt.datetime(2021, 5, 1, 10, tzinfo=dt.timezone.utc),
        sr=four,
        udm2=udm2,
        transform=tf,
        provider_names=True,
    )
    # SuperDove order: coastal_blue, blue, green_i, green, yellow, red, rededge, nir
    eight = np.stack([np.full((size, size), 100 * (b + 1), np.uint16) for b in range(8)])
    write_cog(tmp_path / "20210503_100000_1_24a1_3B_AnalyticMS_SR_8b.tif", eight, transform=tf)
    write_cog(tmp_path / "20210503_100000_1_24a1_3B_udm2.tif", udm2, transform=tf, nodata=None)
    found = search(tmp_path, collection="planetscope", bbox=TILE_AOI, start="2021-05-01", end="2021-05-31")
    assert [it.id for it in found] == ["20210501_100000_1_2403", "20210503_100000_1_24a1"]
    cube = load_planet(found, geobox=s2_geobox(TILE_AOI), aoi=TILE_AOI)
    assert cube.sizes["time"] == 2
    means = np.rint(cube.mean(dim=("y", "x")).values * 1e4)
    np.testing.assert_array_equal(means[0], [1000, 2000, 3000, 4000])
    np.testing.assert_array_equal(means[1], [200, 400, 600, 800])  # bands 2, 4, 6, 8 of the 8-band file


def test_20m_bands_and_scl_land_on_the_10m_grid(tmp_path: Path) -> None:
    """A 20 m band is resampled onto the 10 m grid; a 20 m SCL cloud masks exactly its 2x2 10 m pixels."""
    tf = Affine(10.0, 0, ORIGIN[0], 0, -10.0, ORIGIN[1])
    dn = {b: np.full((SIZE, SIZE), 2000, np.uint16) for b in ("B02", "B03", "B04", "B08")}
    dn["B05"] = np.full((SIZE // 2, SIZE // 2), 3000, np.uint16)
    scl = np.full((SIZE // 2, SIZE // 2), 4, np.uint8)
    scl[1, 2] = 8  # 20 m pixel (1, 2) -> 10 m rows 2..3, cols 4..5
    when = dt.datetime(2021, 5, 1, 10, tzinfo=dt.timezone.utc)
    item = s2_item(
        tmp_path, "S2_20m", when, dn=dn, scl=scl, transform=tf, resolution={"B05": 20.0}, scl_resolution=20.0
    )
    cube = load_s2([item], aoi=TILE_AOI, bands=("B02", "B03", "B04", "B05", "B08"))
    b05 = cube.isel(time=0).sel(band="B05").values
    cloud = np.zeros((SIZE, SIZE), bool)
    cloud[2:4, 4:6] = True
    assert np.isnan(b05[cloud]).all()
    np.testing.assert_allclose(b05[~cloud], 0.2, atol=1e-6)  # (3000 - 1000) / 1e4
