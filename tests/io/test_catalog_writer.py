"""COG writing and the simulated sample area on disk: STAC catalog, COGs, labels, AOI, atomic writes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
import shapely
from affine import Affine
from pyproj import Transformer
from rio_cogeo.cogeo import cog_validate
from shapely.geometry import box, shape

from geocrop.core.bands import S2_ASSET_KEYS, S2_BANDS
from geocrop.errors import OutputError
from geocrop.io import catalog_writer
from geocrop.io.catalog_writer import PLANET_SR_ASSET, PLANET_UDM2_ASSET, write_cog
from geocrop.sim.phenology import CROP_TYPES
from geocrop.sim.sample_area import MARKER_NAME, SampleArea, write_sample_area
from geocrop.sim.scene import SimulatedScenes, SimulationConfig, simulate

TINY = SimulationConfig.tiny()
#: A few scenes only, for the atomic-write checks.
MICRO = SimulationConfig(width=8, height=8, s2_revisit_days=200, planet_revisit_days=150, field_size_m=40.0)


@pytest.fixture(scope="module")
def area(tmp_path_factory: pytest.TempPathFactory) -> SampleArea:
    return write_sample_area(tmp_path_factory.mktemp("sample") / "data", TINY)


@pytest.fixture(scope="module")
def scenes() -> SimulatedScenes:
    return simulate(TINY)


def _assert_valid_cog(path: Path) -> None:
    valid, errors, _warnings = cog_validate(str(path))
    assert valid is True and errors == [], (path, errors)


@pytest.mark.parametrize(
    ("shape", "dtype", "categorical"),
    [((1, 24, 24), np.uint16, False), ((8, 72, 72), np.uint8, True), ((2, 600, 520), np.uint16, False)],
)
def test_write_cog_round_trips_and_validates(
    tmp_path: Path, shape: tuple[int, int, int], dtype: type, categorical: bool
) -> None:
    data: np.ndarray = np.random.default_rng(0).integers(1, 250, shape).astype(dtype)
    transform = Affine(10.0, 0.0, 399_960.0, 0.0, -10.0, 5_820_000.0)
    names = [f"b{i}" for i in range(shape[0])]
    path = write_cog(
        tmp_path / "x.tif", data, epsg=32633, transform=transform, band_names=names, categorical=categorical
    )
    _assert_valid_cog(path)
    with rasterio.open(path) as src:
        assert src.crs.to_epsg() == 32633
        assert src.transform == transform
        assert src.nodata == 0 and src.dtypes[0] == np.dtype(dtype).name
        assert src.compression is not None and src.compression.name.lower() == "deflate"
        np.testing.assert_array_equal(src.read(), data)
        assert src.descriptions == tuple(f"b{i}" for i in range(shape[0]))
        if max(shape[1:]) > 512:
            assert src.overviews(1), "large rasters carry internal overviews"


def test_catalog_opens_with_pystac_and_lists_every_item(area: SampleArea, scenes: SimulatedScenes) -> None:
    catalog = pystac.Catalog.from_file(str(area.catalog))
    assert {c.id for c in catalog.get_children()} == {"sentinel-2-l2a", "planetscope"}
    items = list(catalog.get_items(recursive=True))
    by_collection: dict[str, list[pystac.Item]] = {}
    for item in items:
        by_collection.setdefault(item.collection_id or "", []).append(item)
    assert len(by_collection["sentinel-2-l2a"]) == area.n_s2_items == len(scenes.s2_times)
    assert len(by_collection["planetscope"]) == area.n_planet_items == len(scenes.planet_times)
    for item in items:
        assert item.datetime is not None
        # Written as projection v1.1 `proj:epsg`; pystac >= 1.12 migrates it to v2 `proj:code` on read.
        assert item.properties.get("proj:epsg", 0) == 32633 or item.properties["proj:code"] == "EPSG:32633"
        assert 0.0 <= item.properties["eo:cloud_cover"] <= 100.0
        assert item.properties["geocrop:simulated"] is True
        lon0, lat0, lon1, lat1 = item.bbox or []
        assert 13.4 < lon0 < lon1 < 13.7 and 52.4 < lat0 < lat1 < 52.6


def test_s2_items_look_like_earth_search(area: SampleArea, scenes: SimulatedScenes) -> None:
    collection = pystac.Catalog.from_file(str(area.catalog)).get_child("sentinel-2-l2a")
    assert collection is not None
    items = sorted(collection.get_items(), key=lambda i: i.datetime or 0)
    item = items[0]
    raw = json.loads(Path(item.get_self_href() or "").read_text())
    assert raw["properties"]["proj:epsg"] == 32633
    assert set(item.assets) == set(S2_ASSET_KEYS.values()) | {"scl"}
    assert item.properties["s2:processing_baseline"] == "05.00"
    red = item.assets["red"]
    assert red.extra_fields["eo:bands"][0]["name"] == "B04"
    assert red.extra_fields["raster:bands"] == [
        {"nodata": 0, "data_type": "uint16", "spatial_resolution": 10.0, "scale": 0.0001, "offset": -0.1}
    ]
    assert red.extra_fields["proj:shape"] == [TINY.height, TINY.width]
    assert red.extra_fields["proj:transform"] == list(TINY.transform)[:6]
    # The written COGs are the in-memory simulation, date by date.
    with rasterio.open(red.get_absolute_href()) as src:
        assert src.crs.to_epsg() == 32633 and src.transform == TINY.transform
        np.testing.assert_array_equal(src.read(1), scenes.s2_dn[0, S2_BANDS.index("B04")])
    with rasterio.open(item.assets["scl"].get_absolute_href()) as src:
        assert src.dtypes[0] == "uint8"
        np.testing.assert_array_equal(src.read(1), scenes.scl[0])
    assert np.datetime64(item.datetime.replace(tzinfo=None), "s") == scenes.s2_times[0]  # type: ignore[union-attr]
    _assert_valid_cog(Path(red.get_absolute_href() or ""))


def test_planet_items_carry_sr_and_udm2(area: SampleArea, scenes: SimulatedScenes) -> None:
    collection = pystac.Catalog.from_file(str(area.catalog)).get_child("planetscope")
    assert collection is not None
    items = sorted(collection.get_items(), key=lambda i: i.datetime or 0)
    item = items[-1]
    assert set(item.assets) == {PLANET_SR_ASSET, PLANET_UDM2_ASSET}
    sr = item.assets[PLANET_SR_ASSET]
    assert [b["name"] for b in sr.extra_fields["eo:bands"]] == ["blue", "green", "red", "nir"]
    assert all(b["scale"] == 0.0001 and b["nodata"] == 0 for b in sr.extra_fields["raster:bands"])
    assert sr.extra_fields["proj:shape"] == [3 * TINY.height, 3 * TINY.width]
    assert sr.href.endswith("_3B_AnalyticMS_SR.tif")
    with rasterio.open(sr.get_absolute_href()) as src:
        assert src.count == 4 and src.dtypes[0] == "uint16"
        assert src.transform == TINY.planet_transform
        np.testing.assert_array_equal(src.read(), scenes.planet_dn[-1])
    udm = item.assets[PLANET_UDM2_ASSET]
    with rasterio.open(udm.get_absolute_href()) as src:
        assert src.count == 8
        np.testing.assert_array_equal(src.read(), scenes.udm2[-1])
    _assert_valid_cog(Path(sr.get_absolute_href() or ""))
    _assert_valid_cog(Path(udm.get_absolute_href() or ""))


def test_labels_and_field_geojson(area: SampleArea, scenes: SimulatedScenes) -> None:
    labels = json.loads(area.labels.read_text())
    features = labels["features"]
    assert len(features) == len(scenes.parcels)
    assert {f["properties"]["crop"] for f in features} == set(CROP_TYPES)
    assert sorted(f["properties"]["parcel_id"] for f in features) == [p.parcel_id for p in scenes.parcels]
    to_utm = Transformer.from_crs(4326, TINY.epsg, always_xy=True)

    def utm(geojson: dict[str, object]) -> shapely.Geometry:
        geom = shape(geojson)
        return shapely.transform(geom, lambda xy: np.column_stack(to_utm.transform(xy[:, 0], xy[:, 1])))

    extent = box(*TINY.bounds)
    first = next(p for p in scenes.parcels if p.parcel_id == features[0]["properties"]["parcel_id"])
    assert utm(features[0]["geometry"]).symmetric_difference(first.geometry).area < 1.0  # m2
    field = utm(json.loads(area.field.read_text())["features"][0]["geometry"])
    assert extent.contains(field)


def test_complete_area_is_reused(area: SampleArea) -> None:
    before = area.catalog.stat().st_mtime_ns
    again = write_sample_area(area.root, TINY)
    assert again.reused and again.n_s2_items == area.n_s2_items
    assert area.catalog.stat().st_mtime_ns == before


def test_interrupted_write_leaves_nothing_and_reruns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "area"

    def boom(self: object, **_: object) -> Path:
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(catalog_writer.StaticCatalogWriter, "save", boom)
        with pytest.raises(KeyboardInterrupt):
            write_sample_area(out, MICRO)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []
    # A partial folder of a dead process is cleaned up by the next run.
    stale = tmp_path / ".area.partial-999999999-deadbeef"
    stale.mkdir()
    done = write_sample_area(out, MICRO)
    assert not done.reused and (out / MARKER_NAME).exists() and done.catalog.exists()
    assert not stale.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["area"]


def test_other_config_replaces_area_but_foreign_folder_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "area"
    write_sample_area(out, MICRO)
    other = SimulationConfig(**{**MICRO.__dict__, "seed": 5})
    replaced = write_sample_area(out, other)
    assert not replaced.reused
    assert json.loads((out / MARKER_NAME).read_text())["config"]["seed"] == 5
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(OutputError, match="not a geocrop sample area"):
        write_sample_area(foreign, MICRO)
    assert os.listdir(foreign) == ["notes.txt"]


@pytest.mark.slow
def test_default_sample_area_is_written_and_valid(tmp_path: Path) -> None:
    """The area `make sample` writes (96x96 px, a year): counts, a readable catalog, valid COGs."""
    area = write_sample_area(tmp_path / "data")
    print(f"default sample area written in {area.seconds:.1f} s")
    assert (area.n_s2_items, area.n_planet_items) == (73, 311)
    items = list(pystac.Catalog.from_file(str(area.catalog)).get_items(recursive=True))
    assert len(items) == 73 + 311
    for item in items[::50]:
        for asset in item.assets.values():
            _assert_valid_cog(Path(asset.get_absolute_href() or ""))
