"""The scene simulator (a test instrument): determinism, shapes, co-registration, phenology, clouds, AOI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import box, shape

from geocrop.errors import InputError
from geocrop.sim.phenology import CROP_CALENDARS, CROP_COLOURS, CROP_TYPES
from geocrop.sim.sample_area import aoi_geometry
from geocrop.sim.scene import SimulatedScenes, SimulationConfig, simulate

REPO = Path(__file__).resolve().parents[2]
#: A very small config for the determinism checks (three S2 dates, a few Planet dates).
MICRO = SimulationConfig(width=12, height=12, s2_revisit_days=120, planet_revisit_days=40, field_size_m=40.0)


@pytest.fixture(scope="module")
def tiny() -> SimulatedScenes:
    return simulate(SimulationConfig.tiny())


def _reflectance_s2(dn: np.ndarray) -> np.ndarray:
    return dn.astype(np.float64) * 1e-4 - 0.1


def _ndvi(refl: np.ndarray) -> np.ndarray:
    """refl (..., 12, H, W) -> NDVI (..., H, W) from B08 and B04."""
    nir, red = refl[..., 7, :, :], refl[..., 3, :, :]
    return (nir - red) / (nir + red)


def test_crop_types_have_colours_and_calendars() -> None:
    assert len(CROP_TYPES) >= 9
    assert len(set(CROP_TYPES)) == len(CROP_TYPES)
    for crop in CROP_TYPES:
        assert re.fullmatch(r"#[0-9a-f]{6}", CROP_COLOURS[crop])
        assert crop in CROP_CALENDARS
    assert len(set(CROP_COLOURS.values())) == len(CROP_TYPES)


def test_shapes_dtypes_and_dates(tiny: SimulatedScenes) -> None:
    c = tiny.config
    t_s, t_p = len(tiny.s2_times), len(tiny.planet_times)
    assert tiny.s2_dn.shape == (t_s, 12, c.height, c.width) and tiny.s2_dn.dtype == np.uint16
    assert tiny.scl.shape == (t_s, c.height, c.width) and tiny.scl.dtype == np.uint8
    assert tiny.planet_dn.shape == (t_p, 4, 3 * c.height, 3 * c.width) and tiny.planet_dn.dtype == np.uint16
    assert tiny.udm2.shape == (t_p, 8, 3 * c.height, 3 * c.width) and tiny.udm2.dtype == np.uint8
    assert tiny.s2_surface.shape == (t_s, 12, c.height, c.width) and tiny.s2_surface.dtype == np.float32
    assert tiny.parcel_raster.shape == (c.height, c.width)
    # Revisit: S2 exactly every s2_revisit_days over the whole year; Planet on its own cadence.
    s2_days = np.diff(tiny.s2_dates).astype(int)
    assert set(s2_days) == {c.s2_revisit_days}
    assert (np.diff(tiny.planet_dates).astype(int) % c.planet_revisit_days == 0).all()
    assert str(tiny.s2_dates[0]) < f"{c.year}-01-{c.s2_revisit_days + 1:02d}"
    assert str(tiny.s2_dates[-1]) >= f"{c.year}-12-01"
    # Pairing needs same-day acquisitions: most S2 dates have a Planet scene that day.
    same_day = np.isin(tiny.s2_dates, tiny.planet_dates).mean()
    assert same_day >= 0.6
    # Every crop is present even in the tiny area, and labels match the parcel table.
    labels = tiny.crop_labels()
    assert set(np.unique(labels[labels >= 0])) == set(range(len(CROP_TYPES)))
    assert ((labels == -1) == (tiny.parcel_raster == 0)).all()


def test_s2_dn_uses_l2a_offset_and_nodata(tiny: SimulatedScenes) -> None:
    clear = np.isin(tiny.scl, (4, 5))
    refl = _reflectance_s2(tiny.s2_dn)
    diff = (refl - tiny.s2_surface).transpose(1, 0, 2, 3)[:, clear]
    # DN = reflectance x 10000 + 1000 up to sensor noise (0.2% + 1% of the signal).
    assert abs(float(np.median(diff))) < 0.002
    assert float(np.abs(diff).mean()) < 0.01
    nodata = tiny.scl == 0
    assert nodata.any(), "the tiny config should contain a swath-edge scene"
    assert (tiny.s2_dn.transpose(1, 0, 2, 3)[:, nodata] == 0).all()
    assert (tiny.s2_dn.transpose(1, 0, 2, 3)[:, ~nodata] > 0).all()


def test_spectra_are_physically_plausible(tiny: SimulatedScenes) -> None:
    ndvi = _ndvi(tiny.s2_surface)
    green = ndvi > 0.7
    bare = ndvi < 0.3
    assert green.any() and bare.any()
    surf = tiny.s2_surface.transpose(1, 0, 2, 3)
    # Green canopy: dark red, bright NIR, SWIR below NIR. Bare soil: red > green > blue, SWIR16 highest.
    assert surf[3][green].mean() < 0.06 and surf[7][green].mean() > 0.3
    assert surf[10][green].mean() < surf[7][green].mean()
    assert surf[3][bare].mean() > surf[2][bare].mean() > surf[1][bare].mean()
    assert surf[10][bare].mean() > surf[7][bare].mean()
    assert (tiny.s2_surface >= 0).all() and (tiny.s2_surface < 0.7).all()


def test_determinism() -> None:
    a, b, other = (
        simulate(MICRO),
        simulate(MICRO),
        simulate(SimulationConfig(**{**MICRO.__dict__, "seed": 1})),
    )
    for name in ("s2_dn", "scl", "planet_dn", "udm2", "parcel_raster", "s2_times", "planet_times"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert [p.geometry.wkt for p in a.parcels] == [p.geometry.wkt for p in b.parcels]
    assert not np.array_equal(a.s2_dn, other.s2_dn)
    assert not np.array_equal(a.planet_dn, other.planet_dn)


def test_planet_window_tracks_s2_pixel(tiny: SimulatedScenes) -> None:
    c = tiny.config
    h, w = c.height, c.width
    pairs = [
        (i, int(np.flatnonzero(tiny.planet_dates == d)[0]))
        for i, d in enumerate(tiny.s2_dates)
        if d in tiny.planet_dates
    ]
    assert len(pairs) >= 5
    s2_of_planet = {0: 1, 1: 2, 2: 3, 3: 8}  # blue B02, green B03, red B04, nir B8A
    for band, s2_band in s2_of_planet.items():
        xs, ys = [], []
        for i, j in pairs:
            planet_clear = tiny.udm2[j, 0].reshape(h, 3, w, 3).min(axis=(1, 3)) == 1
            ok = np.isin(tiny.scl[i], (4, 5)) & planet_clear
            s2 = _reflectance_s2(tiny.s2_dn[i, s2_band])
            window = tiny.planet_dn[j, band].astype(np.float64).reshape(h, 3, w, 3).mean(axis=(1, 3)) * 1e-4
            xs.append(s2[ok])
            ys.append(window[ok])
        x, y = np.concatenate(xs), np.concatenate(ys)
        assert x.size > 1000
        assert np.corrcoef(x, y)[0, 1] > 0.9, band
        # A modest sensor difference: close, but not identical.
        assert 0.003 < float(np.abs(x - y).mean()) < 0.03, band


def test_planet_window_carries_sub_pixel_structure(tiny: SimulatedScenes) -> None:
    h, w = tiny.config.height, tiny.config.width
    ids = tiny.planet_parcel_raster.reshape(h, 3, w, 3)
    mixed = ids.min(axis=(1, 3)) != ids.max(axis=(1, 3))
    # The S2 label is the parcel under the pixel centre, which is the centre Planet pixel.
    np.testing.assert_array_equal(tiny.parcel_raster, tiny.planet_parcel_raster[1::3, 1::3])
    edge_sd, inner_sd = [], []
    for j in range(len(tiny.planet_dates)):
        clear = tiny.udm2[j, 0].reshape(h, 3, w, 3).min(axis=(1, 3)) == 1
        sd = (tiny.planet_dn[j, 3].astype(np.float64) * 1e-4).reshape(h, 3, w, 3).std(axis=(1, 3))
        edge_sd.append(sd[clear & mixed])
        inner_sd.append(sd[clear & ~mixed])
    edge, inner = np.concatenate(edge_sd).mean(), np.concatenate(inner_sd).mean()
    assert mixed.mean() > 0.2
    assert edge > 2.0 * inner  # field edges at 3.3 m show inside the 3x3 window
    assert inner > 0.004  # within-field texture and noise too


def test_phenology_distinct_per_crop_and_harvest_drops_ndvi(tiny: SimulatedScenes) -> None:
    labels = tiny.crop_labels()
    ndvi = _ndvi(tiny.s2_surface)  # clear-sky truth: (T, H, W)
    curves = np.array([ndvi[:, labels == k].mean(axis=1) for k in range(len(CROP_TYPES))])
    rms = np.sqrt(((curves[:, None] - curves[None]) ** 2).mean(axis=-1))
    off_diagonal = rms[~np.eye(len(CROP_TYPES), dtype=bool)]
    assert off_diagonal.min() > 0.04, rms
    doy = (tiny.s2_dates - np.datetime64(f"{tiny.config.year}-01-01")).astype(int) + 1
    for k, crop in enumerate(CROP_TYPES):
        cal = CROP_CALENDARS[crop]
        peak = curves[k].max()
        assert peak > 0.6, crop
        if cal.cuts:  # grassland: green all year, never bare
            assert curves[k].min() > 0.45
            continue
        # Per-field jitter is at most 15 days: 20 days after harvest every field is cut.
        after = curves[k][(doy > cal.harvest + 20) & (doy < cal.harvest + 45)]
        assert after.size and after.max() < peak - 0.25, crop
    # Winter crops are green in January, spring crops are not.
    jan = curves[:, 0]
    assert jan[CROP_TYPES.index("winter_rapeseed")] > jan[CROP_TYPES.index("maize")] + 0.1


def test_clouds_are_flagged_in_scl_and_udm2(tiny: SimulatedScenes) -> None:
    valid = tiny.scl != 0
    cloudy = tiny.s2_cloud >= 0.1
    assert (cloudy & valid).sum() > 100, "the tiny config should hold cloudy pixels"
    assert np.isin(tiny.scl[cloudy & valid], (8, 9, 10)).all()
    assert not np.isin(tiny.scl[~cloudy], (8, 9, 10)).any()
    assert (tiny.scl == 3).any()  # cloud shadows
    # Thick cloud is bright in the visible: the observed blue is far above the surface's.
    thick = (tiny.s2_cloud >= 0.6) & valid
    blue = _reflectance_s2(tiny.s2_dn[:, 1])
    assert (blue[thick] - tiny.s2_surface[:, 1][thick]).mean() > 0.2

    udm = tiny.udm2
    nodata = (udm[:, 7] & 1) == 1
    assert ((tiny.planet_dn == 0).all(axis=1) == nodata).all()
    exclusive = udm[:, :6].sum(axis=1)
    assert (exclusive[~nodata] == 1).all() and (exclusive[nodata] == 0).all()
    p_cloudy = tiny.planet_cloud >= 0.1
    assert p_cloudy.any()
    assert (udm[:, 0][p_cloudy & ~nodata] == 0).all()
    assert (udm[:, 3:6].max(axis=1)[p_cloudy & ~nodata] == 1).all()
    assert (tiny.planet_cloud[udm[:, 0] == 1] < 0.1).all()


def test_config_rejects_bad_values() -> None:
    with pytest.raises(InputError, match="width"):
        SimulationConfig(width=4)
    with pytest.raises(InputError, match="cloud_fraction"):
        SimulationConfig(cloud_fraction=1.5)


def test_committed_field_geojson_lies_inside_the_default_area() -> None:
    config = SimulationConfig()
    doc = json.loads((REPO / "sample_aoi" / "field.geojson").read_text())
    committed = shape(doc["features"][0]["geometry"])
    assert committed.equals_exact(aoi_geometry(config), tolerance=1e-7)
    to_utm = Transformer.from_crs(4326, config.epsg, always_xy=True)
    utm = shapely.transform(committed, lambda xy: np.column_stack(to_utm.transform(xy[:, 0], xy[:, 1])))
    extent = box(*config.bounds)
    assert extent.contains(utm)
    assert utm.area > 0.3 * extent.area
