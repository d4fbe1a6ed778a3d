"""geocrop.post.sampling: allocation, stratified and uncertainty samples of a small generated map."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from affine import Affine
from rasterio.windows import Window

from geocrop.errors import InputError, OutputError
from geocrop.io.classes import ClassInfo
from geocrop.io.cog import CogWriter
from geocrop.io.map_reader import open_map
from geocrop.post.sampling import (
    REFERENCE_COLUMN,
    allocate,
    class_pixel_counts,
    stratified_sample,
    uncertain_sample,
)

CLASSES = (
    ClassInfo(0, "wheat", "#e6ab02"),
    ClassInfo(2, "maize", "#ff7f00"),
    ClassInfo(5, "potato", "#7570b3"),
    ClassInfo(7, "soybean", "#1b9e77"),  # declared, never mapped
)
TRANSFORM = Affine(10.0, 0.0, 500_000.0, 0.0, -10.0, 5_600_000.0)
H, W = 150, 200


def make_classes() -> np.ndarray:
    """wheat left, maize right, a 6 x 5 potato patch, nodata in the first two rows."""
    cls = np.zeros((H, W), np.uint8)
    cls[:, 120:] = 2
    cls[60:66, 30:35] = 5
    cls[:2, :] = 255
    return cls


def write_map(path: Path, cls: np.ndarray | None = None) -> np.ndarray:
    """A geocrop map (class + confidence COG) whose uncertainty grows from left to right."""
    cls = make_classes() if cls is None else cls
    h, w = cls.shape
    top = np.linspace(0.99, 0.26, w, dtype=np.float32)[None, :].repeat(h, axis=0)  # 3 other classes share
    probs = np.empty((len(CLASSES), h, w), np.float32)
    for k, c in enumerate(CLASSES):
        probs[k] = np.where(cls == c.value, top, (1 - top) / (len(CLASSES) - 1))
    probs[:, cls == 255] = np.nan
    conf = np.where(cls == 255, np.nan, top).astype(np.float32)
    with CogWriter(
        path, crs="EPSG:32631", transform=TRANSFORM, width=w, height=h, classes=CLASSES, blocksize=64
    ) as cog:
        for row in range(0, h, 64):  # several blocks, as `geocrop map` writes them
            for col in range(0, w, 64):
                win = Window(col, row, min(64, w - col), min(64, h - row))
                sl = (slice(row, row + win.height), slice(col, col + win.width))
                cog.write_block(win, cls[sl], conf[sl], probs[(slice(None), *sl)])
    return cls


@pytest.fixture
def crop_map(tmp_path: Path) -> Path:
    write_map(tmp_path / "crops.tif")
    return tmp_path / "crops.tif"


def test_allocation_gives_rare_classes_the_minimum_and_the_rest_proportionally() -> None:
    # 360 points left for wheat and maize after the minimum of potato and the last class: 327.3 / 32.7
    assert allocate([9_000, 900, 30, 0, 70], 400, min_per_class=20).tolist() == [327, 33, 20, 0, 20]
    # maize's proportional share (160 x 900 / 9,900 = 14.5) falls below the minimum: it gets 20 too
    assert allocate([9_000, 900, 30, 0, 70], 200, min_per_class=20).tolist() == [140, 20, 20, 0, 20]
    assert allocate([5, 1_000], 40, min_per_class=10).tolist() == [5, 35]  # all 5 pixels of a tiny class
    assert allocate([100, 100, 100], 10, min_per_class=2).tolist() == [4, 3, 3]  # largest remainder


def test_allocation_refuses_impossible_requests() -> None:
    with pytest.raises(InputError, match="more than the 30 mapped pixels"):
        allocate([10, 20], 31, min_per_class=2)
    with pytest.raises(InputError, match=r"too few.*`min_per_class` 50"):
        allocate([1000, 1000], 60, min_per_class=50)


def test_class_counts_stream_over_blocks(crop_map: Path) -> None:
    cls = make_classes()
    counts = class_pixel_counts(open_map(crop_map))
    assert counts.tolist() == np.bincount(cls.ravel(), minlength=256).tolist()


def test_stratified_sample(crop_map: Path, tmp_path: Path) -> None:
    cls = make_classes()
    seen: list[float | None] = []
    result = stratified_sample(
        map=crop_map, n=90, out=tmp_path / "pts.gpkg", min_per_class=20, seed=3,
        progress=lambda event: seen.append(event.fraction),
    )  # fmt: skip
    assert result.n == 90 and result.per_class["potato"] == 20 and "soybean" not in result.per_class
    assert sum(result.per_class.values()) == 90
    assert seen and seen[-1] == pytest.approx(1.0) and seen == sorted(seen)
    pts = gpd.read_file(tmp_path / "pts.gpkg")
    assert list(pts.columns) == ["id", "map_value", "map_class", REFERENCE_COLUMN, "geometry"]
    assert pts.crs.to_epsg() == 32631 and pts[REFERENCE_COLUMN].isna().all()
    assert pts["id"].tolist() == list(range(1, 91))
    col = (pts.geometry.x - 500_000) / 10 - 0.5  # pixel centres
    row = (5_600_000 - pts.geometry.y) / 10 - 0.5
    assert np.allclose(col, np.round(col)) and np.allclose(row, np.round(row))
    values = cls[row.round().astype(int), col.round().astype(int)]
    assert values.tolist() == pts["map_value"].tolist()
    assert len(set(zip(row, col, strict=True))) == 90  # without replacement
    again = stratified_sample(map=crop_map, n=90, out=tmp_path / "again.gpkg", min_per_class=20, seed=3)
    assert again.per_class == result.per_class
    assert gpd.read_file(tmp_path / "again.gpkg").geometry.equals(pts.geometry)  # reproducible
    stratified_sample(map=crop_map, n=90, out=tmp_path / "other.gpkg", min_per_class=20, seed=4)
    assert not gpd.read_file(tmp_path / "other.gpkg").geometry.equals(pts.geometry)


def test_whole_stratum_when_asked_for_every_pixel(tmp_path: Path) -> None:
    cls = np.full((20, 30), 255, np.uint8)
    cls[5:8, 5:9] = 5  # 12 potato pixels
    cls[10:, :] = 0
    write_map(tmp_path / "m.tif", cls)
    result = stratified_sample(map=tmp_path / "m.tif", n=12 + 300, out=tmp_path / "p.gpkg", min_per_class=2)
    assert result.per_class == {"wheat": 300, "potato": 12}
    with pytest.raises(InputError, match="`n` 313 is more than the 312 mapped pixels"):
        stratified_sample(map=tmp_path / "m.tif", n=313, out=tmp_path / "q.gpkg", min_per_class=2)
    assert not (tmp_path / "q.gpkg").exists()


def test_uncertain_sample_picks_uncertain_spread_out_pixels(crop_map: Path, tmp_path: Path) -> None:
    cls = make_classes()
    result = uncertain_sample(map=crop_map, n=12, out=tmp_path / "u.gpkg", min_distance=150.0, seed=1)
    pts = gpd.read_file(tmp_path / "u.gpkg")
    assert result.n == 12 and len(pts) == 12 and result.min_distance == 150.0
    assert {"uncertainty", "confidence", REFERENCE_COLUMN, "map_class"} <= set(pts.columns)
    xy = np.c_[pts.geometry.x, pts.geometry.y]
    dist = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    assert dist[~np.eye(12, dtype=bool)].min() >= 150.0
    col = ((xy[:, 0] - 500_000) / 10 - 0.5).round().astype(int)
    row = ((5_600_000 - xy[:, 1]) / 10 - 0.5).round().astype(int)
    assert (cls[row, col] != 255).all() and (pts["map_value"] == cls[row, col]).all()
    assert col.min() >= 150  # the right-hand side is the uncertain one
    assert pts["uncertainty"].min() >= 90 and (pts["uncertainty"].diff().dropna() <= 0).all()
    again = uncertain_sample(map=crop_map, n=12, out=tmp_path / "v.gpkg", min_distance=150.0, seed=1)
    assert again.n == 12 and gpd.read_file(tmp_path / "v.gpkg").geometry.equals(pts.geometry)


def test_uncertain_sample_default_spacing_and_limits(crop_map: Path, tmp_path: Path) -> None:
    result = uncertain_sample(map=crop_map, n=30, out=tmp_path / "u.gpkg")
    assert result.n == 30 and result.min_distance is not None and result.min_distance >= 10.0
    with pytest.raises(InputError, match=r"only .* lie `min_distance` 1000 apart"):
        uncertain_sample(map=crop_map, n=50, out=tmp_path / "w.gpkg", min_distance=1000.0)
    with pytest.raises(InputError, match=r"`n` 40000: give 1 to 29600"):
        uncertain_sample(map=crop_map, n=40_000, out=tmp_path / "w.gpkg")
    assert not (tmp_path / "w.gpkg").exists()


def test_uncertain_sample_needs_the_confidence_cog(crop_map: Path, tmp_path: Path) -> None:
    (tmp_path / "crops_confidence.tif").unlink()
    with pytest.raises(InputError, match="no confidence COG") as info:
        uncertain_sample(map=crop_map, n=3, out=tmp_path / "u.gpkg")
    assert info.value.param == "map"


def test_outputs_are_checked_first_and_never_destroyed(crop_map: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"ending in \.gpkg"):
        stratified_sample(map=crop_map, n=10, out=tmp_path / "p.shp", min_per_class=2)
    with pytest.raises(OutputError, match="does not exist"):
        stratified_sample(map=crop_map, n=10, out=tmp_path / "no" / "p.gpkg", min_per_class=2)
    with pytest.raises(InputError, match="min_per_class"):
        stratified_sample(map=crop_map, n=10, out=tmp_path / "p.gpkg", min_per_class=1)
    existing = tmp_path / "keep.gpkg"
    existing.write_bytes(b"old")
    with pytest.raises(InputError):
        stratified_sample(map=crop_map, n=10**6, out=existing, min_per_class=2)
    assert existing.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")] == []
