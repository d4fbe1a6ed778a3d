"""geocrop.post.fields on a hand-made 20 x 20 map and parcels whose answers are counted by hand."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from affine import Affine
from rasterio.windows import Window
from shapely.geometry import box

from geocrop.errors import InputError
from geocrop.io.classes import ClassInfo
from geocrop.io.cog import CogWriter
from geocrop.post.fields import field_results

CLASSES = (ClassInfo(0, "winter wheat", "#e6ab02"), ClassInfo(2, "maize", "#ff7f00"))
X0, Y0 = 500_000.0, 5_600_000.0
TRANSFORM = Affine(10.0, 0.0, X0, 0.0, -10.0, Y0)
UTM = "EPSG:32631"


def write_map(path: Path, *, probabilities: bool = True, size: int = 20) -> Path:
    """Wheat in columns 0..9 (p 0.8/0.2, confidence 80 %), maize in 10.. (p 0.3/0.7, 70 %); rows 0..4 of
    the maize half are nodata."""
    cls = np.zeros((size, size), np.uint8)
    cls[:, 10:] = 2
    cls[:5, 10:] = 255
    p_wheat = np.where(cls == 0, 0.8, 0.3).astype(np.float32)
    probs = np.stack([p_wheat, 1 - p_wheat])
    with CogWriter(
        path, crs=UTM, transform=TRANSFORM, width=size, height=size, classes=CLASSES,
        n_prob_bands=2 if probabilities else 0, metadata={"model": "hand-made"},
    ) as cog:  # fmt: skip
        cog.write_block(Window(0, 0, size, size), cls, probs.max(axis=0), probs)
    return path


def cells(c0: int, r0: int, c1: int, r1: int) -> object:
    """The polygon of pixel columns c0..c1-1 and rows r0..r1-1 (in UTM)."""
    return box(X0 + 10 * c0, Y0 - 10 * r1, X0 + 10 * c1, Y0 - 10 * r0)


def write_parcels(path: Path, crs: str = "EPSG:4326") -> Path:
    geoms = [
        cells(0, 0, 4, 4),  # 16 wheat
        cells(7, 10, 12, 12),  # 6 wheat, 4 maize
        cells(12, 2, 16, 7),  # 12 nodata, 8 maize
        cells(40, 40, 44, 44),  # off the map
        cells(18, 15, 22, 17),  # half off the map: 4 maize on it
        None,  # no geometry
    ]
    gdf = gpd.GeoDataFrame(
        {"parcel_id": [1, 2, 3, 4, 5, 6], "crop": ["w", "m", "m", "x", "m", "?"]}, geometry=geoms, crs=UTM
    )
    gdf.to_crs(crs).to_file(path) if path.suffix == ".gpkg" else gdf.to_crs(crs).to_parquet(path)
    return path


def check_answers(table: pd.DataFrame, *, probabilities: bool = True) -> None:
    t = table.set_index("parcel_id")
    assert list(t["crop"]) == ["w", "m", "m", "x", "m", "?"]
    assert list(t["pixels"]) == [16, 10, 20, 0, 4, 0]
    assert t.loc[1, "class_name"] == "winter wheat" and t.loc[1, "class_value"] == 0
    assert t.loc[1, "class_share"] == 1.0 and t.loc[1, "clear_share"] == 1.0
    assert t.loc[1, "confidence"] == pytest.approx(0.8)
    assert t.loc[2, "class_name"] == "winter wheat" and t.loc[2, "class_share"] == pytest.approx(0.6)
    assert t.loc[2, "confidence"] == pytest.approx(0.76)
    assert t.loc[3, "class_name"] == "maize" and t.loc[3, "class_value"] == 2
    assert t.loc[3, "clear_share"] == pytest.approx(0.4) and t.loc[3, "class_share"] == 1.0
    assert t.loc[5, "class_name"] == "maize" and t.loc[5, "map_cover"] == pytest.approx(0.5)
    for empty in (4, 6):
        assert pd.isna(t.loc[empty, "class_name"]) and pd.isna(t.loc[empty, "class_value"])
        assert pd.isna(t.loc[empty, "class_share"])
    if probabilities:
        assert t.loc[2, "prob_winter_wheat"] == pytest.approx(0.6)
        assert t.loc[2, "prob_maize"] == pytest.approx(0.4)
        assert t.loc[2, "prob_class_name"] == "winter wheat"
        assert t.loc[3, "prob_maize"] == pytest.approx(0.7) and t.loc[3, "prob_class_value"] == 2
        assert pd.isna(t.loc[4, "prob_maize"])
    else:
        assert not [c for c in t.columns if c.startswith("prob_")]


def test_gpkg_parcels_in_lonlat_give_the_counted_answers(tmp_path: Path) -> None:
    m = write_map(tmp_path / "crops.tif")
    parcels = write_parcels(tmp_path / "fields.gpkg")
    seen: list[float | None] = []
    result = field_results(
        map=str(m), parcels=parcels, out=tmp_path / "out.gpkg", progress=lambda e: seen.append(e.fraction)
    )
    assert (result.parcels, result.with_pixels, result.probabilities) == (6, 4, True)
    assert seen[0] == 0.0 and seen[-1] == 1.0
    table = gpd.read_file(result.out)
    assert table.crs.to_epsg() == 4326  # the parcels' own CRS and geometry
    check_answers(table)


def test_geoparquet_in_and_out_in_small_batches(tmp_path: Path) -> None:
    m = write_map(tmp_path / "crops.tif")
    parcels = write_parcels(tmp_path / "fields.parquet", crs="EPSG:3857")
    result = field_results(map=m, parcels=parcels, out=tmp_path / "out.parquet", batch_size=2)
    table = gpd.read_parquet(result.out)
    assert table.crs.to_epsg() == 3857
    check_answers(table)
    gpkg = field_results(
        map=m, parcels=parcels, out=tmp_path / "out.gpkg", batch_size=4, columns=["parcel_id"]
    )
    assert list(gpd.read_file(gpkg.out).columns[:2]) == ["parcel_id", "class_value"]


def test_map_without_probabilities(tmp_path: Path) -> None:
    m = write_map(tmp_path / "crops.tif", probabilities=False)
    parcels = write_parcels(tmp_path / "fields.gpkg", crs=UTM)
    result = field_results(map=m, parcels=parcels, out=tmp_path / "out.gpkg")
    assert not result.probabilities
    check_answers(gpd.read_file(result.out), probabilities=False)


def test_bad_inputs_write_nothing_and_keep_an_existing_output(tmp_path: Path) -> None:
    m = write_map(tmp_path / "crops.tif")
    out = tmp_path / "out.gpkg"
    out.write_text("keep me")
    far = gpd.GeoDataFrame({"id": [1]}, geometry=[box(10, 10, 11, 11)], crs="EPSG:4326")
    far.to_file(tmp_path / "far.gpkg")
    near = gpd.GeoDataFrame({"id": [1]}, geometry=[cells(25, 0, 30, 5)], crs=UTM)  # box overlaps, no pixel
    near.to_file(tmp_path / "near.gpkg")
    write_parcels(tmp_path / "fields.gpkg")
    (tmp_path / "notes.gpkg").write_text("not a geopackage")
    cases = [
        (dict(parcels=tmp_path / "far.gpkg"), "parcels", "do not overlap"),
        (dict(parcels=tmp_path / "near.gpkg", batch_size=1), "parcels", "do not overlap"),
        (dict(parcels=tmp_path / "notes.gpkg"), "parcels", "not a vector file"),
        (dict(parcels=tmp_path / "missing.gpkg"), "parcels", "does not exist"),
        (dict(parcels=tmp_path / "fields.gpkg", columns=["nope"]), "columns", "not attributes"),
    ]
    for kwargs, param, message in cases:
        with pytest.raises(InputError, match=message) as info:
            field_results(map=m, out=out, **kwargs)  # type: ignore[arg-type]
        assert info.value.param == param and f"`{param}`" in str(info.value)
        assert out.read_text() == "keep me"
    for bad_out, message in ((tmp_path / "out.csv", "GeoPackage"), (tmp_path / "fields.gpkg", "inputs")):
        with pytest.raises(InputError, match=message) as info:
            field_results(map=m, parcels=tmp_path / "fields.gpkg", out=bad_out)
        assert info.value.param == "out"
    with pytest.raises(InputError, match=r"not a geocrop crop map|not a raster") as info:
        field_results(map=tmp_path / "notes.gpkg", parcels=tmp_path / "fields.gpkg", out=tmp_path / "o.gpkg")
    assert info.value.param == "map"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_memory_stays_flat_as_parcels_grow(tmp_path: Path) -> None:
    m = write_map(tmp_path / "crops.tif", size=200)
    rng = np.random.default_rng(0)
    peaks = []
    # 4x the parcels at a fixed batch: flat peaks (ratio ~0.8) here; all parcels in one batch gives 2.4
    for n in (500, 2_000):
        c = rng.integers(0, 195, n)
        r = rng.integers(5, 195, n)  # rows 0..4 of the maize half are nodata
        geoms = [cells(int(a), int(b), int(a) + 5, int(b) + 5) for a, b in zip(c, r, strict=True)]
        gdf = gpd.GeoDataFrame({"pid": np.arange(n), "note": ["x" * 40] * n}, geometry=geoms, crs=UTM)
        parcels = tmp_path / f"p{n}.gpkg"
        gdf.to_file(parcels)
        del gdf, geoms
        tracemalloc.start()
        result = field_results(map=m, parcels=parcels, out=tmp_path / f"o{n}.gpkg", batch_size=250)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert result.parcels == n and result.with_pixels == n
    assert peaks[1] < 1.3 * peaks[0], peaks
