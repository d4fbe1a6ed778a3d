"""Real Sentinel-2 (ESA WorldCereal's monthly composites, Belgium) through the parcels path.

The cube has no labels, so the parcels here are drawn by hand and their "crops" are placeholders: the test
shows that real reflectances with three bands missing (B01, B09, B8A) travel from a STAC catalog through
`load_labelled` and `train_model` into a bundle that flags the filled bands. It says nothing about accuracy.
"""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import torch
from shapely.geometry import box

from geocrop.core.bands import S2_BANDS
from geocrop.data.labelled import LabelSource, load_labelled
from geocrop.io.bundle import load_bundle
from geocrop.training.hparams import HeadConfig
from geocrop.training.train import TrainConfig, TrainJob, train_model
from tests.conftest import REALDATA
from tests.io.stac_fixtures import write_worldcereal_catalog

NC = (REALDATA or Path("shared/realdata")) / "worldcereal" / "worldcereal_preprocessed_inputs.nc"
pytestmark = pytest.mark.skipif(not NC.exists(), reason=f"real WorldCereal cube not found at {NC}")


def _parcels(root: Path) -> Path:
    """12 hand-drawn 60 m squares (UTM 31N) inside the cube's 1 km tile, two placeholder labels."""
    x0, y1 = 664_000.0, 5_612_120.0
    rows = []
    for k in range(12):
        r, c = divmod(k, 4)
        x, y = x0 + 100 + 200 * c, y1 - 100 - 250 * r
        rows.append(
            {"label": "placeholder-a" if k % 2 else "placeholder-b", "geometry": box(x, y - 60, x + 60, y)}
        )
    path = root / "parcels.gpkg"
    gpd.GeoDataFrame(rows, crs="EPSG:32631").to_file(path)
    return path


def test_real_reflectances_with_missing_bands_end_to_end(tmp_path: Path) -> None:
    catalog = write_worldcereal_catalog(NC, tmp_path / "stac")
    source = LabelSource(
        _parcels(tmp_path),
        "label",
        s2=str(catalog),
        start=dt.date(2020, 11, 1),
        end=dt.date(2021, 10, 31),
        steps=24,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        series = load_labelled(source)
    assert set(series.missing_bands) == {"B01", "B09", "B8A"}
    assert any("B01" in str(w.message) for w in caught)
    assert len(series) == 12 * 36  # 6x6 pixels per 60 m square
    values = series.values
    assert np.isfinite(values).mean() > 0.95
    nir, red = values[..., S2_BANDS.index("B08")], values[..., S2_BANDS.index("B04")]
    assert np.nanmin(values) >= 0.0 and np.nanmax(values) <= 1.0
    assert np.nanmedian(nir) > np.nanmedian(red)  # vegetated Belgian land: NIR above red, as real data is
    # B01 is filled by copying B02, B8A by interpolating B08 (842 nm) -> B11 (1610 nm): close to B08
    assert np.allclose(values[..., S2_BANDS.index("B01")], values[..., S2_BANDS.index("B02")], equal_nan=True)

    job = TrainJob(
        source=source,
        out=tmp_path / "real.safetensors",
        head=HeadConfig("lstm", {"hidden": 8, "layers": 2}, 1e-4),
        config=TrainConfig(epochs=1, batch_size=32, device="cpu"),
        n_train=40,
        n_val=20,
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            train_model(job)
    finally:
        torch.set_num_threads(threads)
    meta = load_bundle(job.out).metadata
    assert set(meta["missing_bands"]) == {"B01", "B09", "B8A"}
    assert meta["temporal_grid"] == {"start": "2020-11-01", "end": "2021-10-31", "steps": 24}
