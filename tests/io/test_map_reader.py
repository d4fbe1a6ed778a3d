"""geocrop.io.map_reader: a map written by CogWriter reads back with its classes, grid, bands and tags."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.windows import Window

from geocrop.errors import InputError
from geocrop.io.classes import ClassInfo
from geocrop.io.cog import CogWriter, confidence_path
from geocrop.io.map_reader import MapSource, open_map, read_window

CLASSES = (ClassInfo(0, "wheat", "#e6ab02"), ClassInfo(2, "maize", "#ff7f00"))
TRANSFORM = Affine(10.0, 0.0, 500_000.0, 0.0, -10.0, 5_600_000.0)


def write_map(path: Path, *, probabilities: bool, crs: str = "EPSG:32631") -> np.ndarray:
    """A 70 x 90 map: wheat left, maize right, a nodata row; probabilities 0.8/0.2."""
    h, w = 70, 90
    cls = np.zeros((h, w), np.uint8)
    cls[:, 45:] = 2
    cls[10, :] = 255
    p_wheat = np.where(cls == 0, 0.8, 0.2).astype(np.float32)
    probs = np.stack([p_wheat, 1 - p_wheat])
    probs[:, cls == 255] = np.nan
    conf = np.where(cls == 255, np.nan, 0.8).astype(np.float32)
    with CogWriter(
        path, crs=crs, transform=TRANSFORM, width=w, height=h, classes=CLASSES,
        n_prob_bands=2 if probabilities else 0, metadata={"model": "m", "scene_ids": ["a", "b"]},
    ) as cog:  # fmt: skip
        cog.write_block(Window(0, 0, w, h), cls, conf, probs)
    return cls


def test_layers_of_a_map_with_probabilities(tmp_path: Path) -> None:
    cls = write_map(tmp_path / "m.tif", probabilities=True)
    layers = open_map(str(tmp_path / "m.tif"))
    assert layers.classes == CLASSES
    assert layers.confidence == confidence_path(tmp_path / "m.tif")
    assert (layers.width, layers.height) == (90, 70)
    assert layers.crs.to_epsg() == 32631
    assert layers.probability_bands == {"wheat": 3, "maize": 4}
    assert (layers.confidence_band, layers.uncertainty_band) == (1, 2)
    assert layers.has_probabilities
    assert layers.tags["model"] == "m"
    assert layers.pixel_area == 100.0
    assert layers.bounds == (500_000.0, 5_599_300.0, 500_900.0, 5_600_000.0)
    blocks = list(layers.blocks(32))
    assert len(blocks) == 3 * 3
    assert sum(int(b.width * b.height) for b in blocks) == 70 * 90
    part = read_window(layers, Window(40, 5, 10, 10))
    assert np.array_equal(part.classes, cls[5:15, 40:50])
    assert part.probabilities is not None and part.probabilities.shape == (2, 10, 10)
    assert np.isnan(part.probabilities[:, 5]).all()
    assert np.allclose(part.probabilities[0, 0], np.where(cls[5, 40:50] == 0, 0.8, 0.2))
    assert part.confidence is not None and part.confidence[0, 0] == 80 and part.confidence[5, 0] == 255
    assert part.uncertainty is not None and part.uncertainty[5, 0] == 255


def test_map_without_probabilities_and_without_confidence(tmp_path: Path) -> None:
    write_map(tmp_path / "m.tif", probabilities=False)
    layers = open_map(tmp_path / "m.tif")
    assert layers.probability_bands == {} and not layers.has_probabilities
    with MapSource(layers) as src:
        part = src.read(Window(0, 0, 5, 5))
    assert part.probabilities is None and part.confidence is not None
    confidence_path(tmp_path / "m.tif").unlink()
    bare = open_map(tmp_path / "m.tif")
    assert bare.confidence is None and bare.uncertainty_band is None
    assert read_window(bare, Window(0, 0, 5, 5)).confidence is None


def test_geographic_map_has_no_pixel_area(tmp_path: Path) -> None:
    write_map(tmp_path / "m.tif", probabilities=False, crs="EPSG:4326")
    with pytest.raises(InputError, match="not projected in metres"):
        _ = open_map(tmp_path / "m.tif").pixel_area


def test_not_a_geocrop_map(tmp_path: Path) -> None:
    plain = tmp_path / "plain.tif"
    with rasterio.open(
        plain, "w", driver="GTiff", width=4, height=4, count=1, dtype="uint8",
        crs="EPSG:32631", transform=TRANSFORM,
    ) as ds:  # fmt: skip
        ds.write(np.zeros((1, 4, 4), np.uint8))
    text = tmp_path / "notes.tif"
    text.write_text("hello")
    cases = {
        tmp_path / "missing.tif": "does not exist",
        plain: "is not a geocrop crop map",
        text: "is not a raster GDAL can read",
        tmp_path: "is a folder",
    }
    for path, message in cases.items():
        with pytest.raises(InputError, match=message) as info:
            open_map(path, param="parcels_map")
        assert info.value.param == "parcels_map"
        assert "`parcels_map`" in str(info.value) and "\n" not in str(info.value)
    write_map(tmp_path / "m.tif", probabilities=False)
    with pytest.raises(InputError, match="is the confidence COG of a map; give its class COG"):
        open_map(confidence_path(tmp_path / "m.tif"))
