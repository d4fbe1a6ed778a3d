"""Parcels + a Sentinel-2 catalog -> per-pixel series with parcel ids (rasterised on the cube's grid)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import box

from geocrop.core.bands import S2_BANDS
from geocrop.data.labelled import LabelSource, is_samples_table, load_labelled
from geocrop.errors import InputError, NoDataError
from tests.io.stac_fixtures import EPSG, ORIGIN, synthetic_s2, write_catalog

START, END = dt.date(2021, 5, 1), dt.date(2021, 6, 1)
CROPS = ("wheat", "maize", "rye")


def make_area(
    root: Path, *, extra: list[dict[str, object]] | None = None, shift: float = 0.0
) -> tuple[Path, Path]:
    """A 12x12-pixel S2 catalog (4 dates) and 9 parcels of 3 crops (30 m squares) as a GeoPackage."""
    if not (root / "stac" / "catalog.json").exists():
        items = synthetic_s2(root / "s2", [START + dt.timedelta(days=10 * k) for k in range(4)], size=12)
        write_catalog(root / "stac", items)
    x0, y1 = ORIGIN[0] + shift, ORIGIN[1]
    rows: list[dict[str, object]] = []
    for r in range(3):
        for c in range(3):
            geom = box(x0 + c * 40 + 4, y1 - (r + 1) * 40 + 4, x0 + (c + 1) * 40 - 4, y1 - r * 40 - 4)
            rows.append({"crop": CROPS[(r + c) % 3], "fid_": f"F{r}{c}", "geometry": geom})
    rows += extra or []
    parcels = root / f"parcels{shift:.0f}.gpkg"
    gpd.GeoDataFrame(rows, crs=f"EPSG:{EPSG}").to_file(parcels)
    return root / "stac" / "catalog.json", parcels


def test_parcels_become_pixel_series_with_parcel_ids(tmp_path: Path) -> None:
    catalog, parcels = make_area(tmp_path)
    assert not is_samples_table(parcels)
    series = load_labelled(
        LabelSource(parcels, "crop", id_column="fid_", s2=str(catalog), start=START, end=END, steps=8)
    )
    assert series.kind == "parcels"
    assert series.class_names == ("maize", "rye", "wheat")
    assert series.values.shape[1:] == (8, 12)
    # every parcel contributes the 4x4 pixels whose centres (5, 15, 25, 35 m) fall in its 32 m square
    ids, counts = np.unique(series.groups, return_counts=True)
    assert len(ids) == 9 and set(counts.tolist()) == {16}
    assert set(series.groups) == {f"F{r}{c}" for r in range(3) for c in range(3)}
    # each parcel's pixels carry its crop
    for pid in ids:
        assert len(set(series.labels[series.groups == pid].tolist())) == 1
    # reflectance from the fixture's DN rule: B02 (k=1) at t=0 is (100 + i + j) / 1e4
    b02 = series.values[:, 0, S2_BANDS.index("B02")]
    assert np.all((b02 > 0.0095) & (b02 < 0.0125))


def test_parcels_in_any_crs(tmp_path: Path) -> None:
    catalog, parcels = make_area(tmp_path)
    wgs84 = tmp_path / "parcels_4326.geojson"
    gpd.read_file(parcels).to_crs(4326).to_file(wgs84)
    series = load_labelled(LabelSource(wgs84, "crop", s2=str(catalog), start=START, end=END, steps=8))
    assert len(series) == 9 * 16


def test_labels_outside_the_imagery(tmp_path: Path) -> None:
    catalog, _ = make_area(tmp_path)
    _, far = make_area(tmp_path, shift=50_000.0)
    with pytest.raises(NoDataError, match="outside"):
        load_labelled(LabelSource(far, "crop", s2=str(catalog), start=START, end=END, steps=8))


def test_a_class_with_no_pixels(tmp_path: Path) -> None:
    x0, y1 = ORIGIN
    speck = {"crop": "hemp", "fid_": "tiny", "geometry": box(x0 + 41, y1 - 49, x0 + 44, y1 - 46)}
    catalog, parcels = make_area(tmp_path, extra=[speck])
    with pytest.raises(InputError, match="'hemp' cover no imagery pixel"):
        load_labelled(LabelSource(parcels, "crop", s2=str(catalog), start=START, end=END, steps=8))


def test_parcel_input_errors(tmp_path: Path) -> None:
    catalog, parcels = make_area(tmp_path)
    with pytest.raises(InputError, match=r"no class column 'kind'.*crop"):
        load_labelled(LabelSource(parcels, "kind", s2=str(catalog), start=START, end=END))
    with pytest.raises(InputError, match="with `s2`"):
        load_labelled(LabelSource(parcels, "crop", start=START, end=END))
    with pytest.raises(InputError, match="`start` and `end`"):
        load_labelled(LabelSource(parcels, "crop", s2=str(catalog)))
    no_crs = tmp_path / "nocrs.geojson"
    no_crs.write_text(
        '{"type": "FeatureCollection", "crs": null, "features": [{"type": "Feature", '
        '"properties": {"crop": "a"}, "geometry": {"type": "Point", "coordinates": [400000, 5819000]}}]}'
    )
    frame = gpd.read_file(no_crs)
    if frame.crs is not None:  # GDAL assumes EPSG:4326 for GeoJSON; use a format that keeps "no CRS"
        no_crs = tmp_path / "nocrs.gpkg"
        frame.set_crs(None, allow_override=True).to_file(no_crs)
    with pytest.raises(InputError, match="declare no CRS"):
        load_labelled(LabelSource(no_crs, "crop", s2=str(catalog), start=START, end=END))


def test_leaving_rare_classes_out_keeps_each_series_with_its_id() -> None:
    """`ids` follow the series when a rare class is dropped (they kept every sample before, so a bundle's
    training and validation ids named the wrong samples)."""
    import warnings

    from geocrop.core.temporal import TemporalGrid
    from geocrop.data.labelled import LabelledSeries, drop_rare_classes

    # class 1 ("rare") on two parcels only: dropped at 3 parcels per class
    labels = np.array([0, 1, 0, 2, 1, 0, 2, 2])
    series = LabelledSeries(
        values=np.arange(8, dtype=np.float32).reshape(8, 1, 1) * np.ones((1, 2, 12), np.float32),
        labels=labels,
        groups=np.array([f"p{i}" for i in range(8)]),
        class_names=("maize", "rare", "wheat"),
        grid=TemporalGrid(dt.date(2023, 1, 1), dt.date(2023, 12, 31), 2),
        ids=np.array([f"s{i}" for i in range(8)]),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kept = drop_rare_classes(series, 3, path=Path("t.parquet"))
    assert kept.class_names == ("maize", "wheat") and kept.ids is not None
    assert len(kept.ids) == len(kept) == 6
    # each kept series still carries its own id: value i belongs to sample s{i}
    assert [f"s{int(v)}" for v in kept.values[:, 0, 0]] == list(kept.ids)
