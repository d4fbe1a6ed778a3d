"""geocrop.post.smooth: Bayesian and modal smoothing, streamed in blocks, written like `geocrop map`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.windows import Window
from shapely.geometry import box

from geocrop.errors import InputError
from geocrop.io.classes import NODATA, ClassInfo
from geocrop.io.cog import CogWriter, confidence_path, sidecar_path
from geocrop.io.map_reader import open_map, read_window
from geocrop.post.smooth import _sieve, bayes_smooth, modal_filter, smooth_map

CLASSES = (
    ClassInfo(0, "wheat", "#e6ab02"),
    ClassInfo(1, "maize", "#ff7f00"),
    ClassInfo(4, "beet", "#e7298a"),
)
VALUES = np.array([c.value for c in CLASSES], np.uint8)
TRANSFORM = Affine(10.0, 0.0, 600_000.0, 0.0, -10.0, 5_500_000.0)


def random_probs(rng: np.random.Generator, h: int, w: int, *, fields: bool = True) -> np.ndarray:
    """(3, h, w) probabilities: blocky fields with noise (or pure noise), a few NaN pixels."""
    if fields:
        base = rng.integers(0, 3, (h // 16 + 1, w // 16 + 1)).repeat(16, 0).repeat(16, 1)[:h, :w]
        logits = 2.0 * np.eye(3)[base].transpose(2, 0, 1) + rng.normal(0, 0.9, (3, h, w))
    else:
        logits = rng.normal(0, 1.5, (3, h, w))
    p = np.exp(logits) / np.exp(logits).sum(axis=0)
    p = np.round(p, 2).astype(np.float32)  # the COG stores percent
    p[:, rng.random((h, w)) < 0.02] = np.nan
    return p


def index_of(p: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(p).all(axis=0), np.nanargmax(np.nan_to_num(p, nan=-1), axis=0), -1)


def unanimous(cls: np.ndarray, window: int, nodata: int) -> np.ndarray:
    """Pixels whose whole window (valid pixels, itself included) holds its own class."""
    r = window // 2
    pad = np.pad(cls, r, constant_values=nodata)
    same = cls != nodata
    for dy in range(window):
        for dx in range(window):
            other = pad[dy : dy + cls.shape[0], dx : dx + cls.shape[1]]
            same &= (other == cls) | (other == nodata)
    return same


@pytest.mark.parametrize("seed", range(12))
def test_a_unanimous_neighbourhood_keeps_its_class(seed: int) -> None:
    """Property: neither method changes a pixel whose whole neighbourhood agrees with it."""
    rng = np.random.default_rng(seed)
    window = int(rng.choice([3, 5, 7]))
    p = random_probs(rng, 48, 40, fields=seed % 3 != 0)
    cls = index_of(p)
    _, best = bayes_smooth(
        p, cls, window=window, smoothness=float(rng.choice([1, 10, 100])), neigh_fraction=float(rng.random())
    )
    agree = unanimous(cls, window, -1)
    assert np.array_equal(best[agree], cls[agree])
    values = np.where(cls >= 0, VALUES[cls.clip(0)], NODATA).astype(np.uint8)
    agree8 = unanimous(values, window, NODATA)
    assert np.array_equal(modal_filter(values, window=window)[agree8], values[agree8])
    assert agree.sum() > 0 or seed % 3 == 0  # pure noise (every third seed) rarely agrees


def test_bayes_removes_isolated_pixels_and_keeps_borders() -> None:
    p = np.zeros((2, 30, 30), np.float32)
    p[0, :, :15], p[1, :, :15] = 0.8, 0.2  # wheat field left, maize right
    p[0, :, 15:], p[1, :, 15:] = 0.25, 0.75
    for r, c in ((5, 5), (20, 8), (12, 22)):  # salt and pepper
        p[:, r, c] = p[::-1, r, c]
    cls = index_of(p)
    probs, best = bayes_smooth(p, cls, window=5, smoothness=10, neigh_fraction=0.5)
    truth = np.zeros((30, 30), int)
    truth[:, 15:] = 1
    assert (cls != truth).sum() == 3 and np.array_equal(best, truth)
    assert np.allclose(probs.sum(axis=0), 1, atol=1e-5)
    assert probs[0, 5, 5] > 0.5 and probs[0, 0, 0] > 0.75


def test_modal_and_sieve() -> None:
    cls = np.zeros((12, 12), np.uint8)
    cls[:, 6:] = 1
    cls[3, 2] = 4  # one odd pixel
    cls[8:10, 8:10] = 4  # a 4-pixel patch
    cls[0, 0] = NODATA
    assert modal_filter(cls, window=3)[3, 2] == 0
    assert modal_filter(cls, window=3)[0, 0] == NODATA
    sieved = _sieve(cls, 5)
    assert sieved[8, 8] == 1 and sieved[3, 2] == 0 and sieved[0, 0] == NODATA
    assert np.array_equal(_sieve(cls, 4)[8:10, 8:10], cls[8:10, 8:10])


def write_map(path: Path, p: np.ndarray, *, probabilities: bool = True, tags: dict | None = None) -> Path:
    cls = index_of(p)
    values = np.where(cls >= 0, VALUES[cls.clip(0)], NODATA).astype(np.uint8)
    meta = {"model": "tiny", "start_date": "2023-03-01", "end_date": "2023-10-31", "scene_ids": ["a"]}
    with CogWriter(
        path, crs="EPSG:32632", transform=TRANSFORM, width=p.shape[2], height=p.shape[1], classes=CLASSES,
        n_prob_bands=3 if probabilities else 0, metadata=meta | (tags or {}),
    ) as cog:  # fmt: skip
        cog.write_block(
            Window(0, 0, p.shape[2], p.shape[1]),
            values,
            np.where(np.isfinite(p).all(axis=0), np.nan_to_num(p).max(axis=0), np.nan),
            p,
        )
    return path


def test_streamed_blocks_equal_the_whole_array_and_the_output_is_a_map(tmp_path: Path) -> None:
    """300 x 290 px (two 256 px blocks a side): the halo makes block seams invisible."""
    rng = np.random.default_rng(7)
    src = write_map(tmp_path / "crops.tif", random_probs(rng, 290, 300), tags={"warning": "simulated"})
    training = {"data": "simulated", "labels": "labels.geojson"}
    (tmp_path / "crops.json").write_text(
        json.dumps({"type": "Feature", "properties": {"geocrop:training": training}})
    )
    layers = open_map(src)
    whole = read_window(layers, Window(0, 0, 300, 290))
    assert whole.probabilities is not None
    values = whole.classes
    index = np.full(256, -1)
    index[VALUES] = np.arange(3)
    expected_p, best = bayes_smooth(
        whole.probabilities, index[values], window=7, smoothness=10, neigh_fraction=0.5
    )
    steps: list[float | None] = []
    result = smooth_map(
        map=str(src), out=tmp_path / "smooth.tif", progress=lambda e: steps.append(e.fraction)
    )
    out = open_map(result.cog)
    got = read_window(out, Window(0, 0, 300, 290))
    assert np.array_equal(got.classes, np.where(best >= 0, VALUES[best.clip(0)], NODATA))
    assert got.probabilities is not None
    assert np.nanmax(np.abs(got.probabilities - np.round(expected_p, 2))) <= 0.0100001
    assert 0 < result.changed_pixels < result.clear_pixels == int((values != NODATA).sum())
    assert steps[-1] == 1.0
    # written like `geocrop map`: same classes, bands, tags carried, a smoothing tag, sidecars, STAC item
    assert out.classes == CLASSES and out.probability_bands == layers.probability_bands
    assert out.tags["model"] == "tiny" and out.tags["warning"] == "simulated"
    assert json.loads(out.tags["smoothing"])["method"] == "bayes"
    with rasterio.open(result.cog) as ds:
        assert ds.colormap(1)[4][:3] == (0xE7, 0x29, 0x8A)
    assert sidecar_path(result.cog).is_file() and result.qml.is_file()
    assert result.stac_item is not None
    item = json.loads(result.stac_item.read_text())
    assert item["properties"]["geocrop:smoothing"]["smoothness"] == 10
    assert item["properties"]["geocrop:warning"] == "simulated"
    assert item["properties"]["geocrop:training"] == training
    assert {link["href"] for link in item["links"] if link["rel"] == "derived_from"} == {"crops.json"}


def test_modal_with_sieve_streams_like_the_whole_array(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    src = write_map(tmp_path / "crops.tif", random_probs(rng, 270, 280), probabilities=False)
    values = read_window(open_map(src), Window(0, 0, 280, 270)).classes
    result = smooth_map(map=src, out=tmp_path / "modal.tif", method="modal", window=3, sieve=6)
    got = read_window(open_map(result.cog), Window(0, 0, 280, 270))
    modal = modal_filter(values, window=3)
    whole = _sieve(modal, 6)
    # the same patches are sieved; the neighbour a patch joins is chosen within its block and halo, so a
    # patch between two neighbours of near-equal size may join the other one (1 pixel of 36 here)
    assert np.array_equal(got.classes != modal, whole != modal) and (whole != modal).sum() > 20
    assert (got.classes != whole).sum() <= 2
    assert got.confidence is not None
    changed = got.classes != values
    assert (got.confidence[changed] == NODATA).all() and result.changed_pixels == int(changed.sum())
    assert not open_map(result.cog).has_probabilities


def test_bad_inputs_write_nothing(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    bare = write_map(tmp_path / "bare.tif", random_probs(rng, 20, 20), probabilities=False)
    out = tmp_path / "out.tif"
    out.write_text("keep me")
    cases = [
        (dict(map=bare), "map", "rerun geocrop map with probabilities on, or use the modal method"),
        (dict(map=bare, method="modal", window=4), "window", "odd number"),
        (dict(map=bare, method="median"), "method", "choose one of"),
        (dict(map=bare, method="modal", out=bare), "out", "overwrite the input"),
        (dict(map=bare, method="modal", out=tmp_path / "x.png"), "out", "GeoTIFF"),
        (dict(map=tmp_path / "nothing.tif"), "map", "does not exist"),
    ]
    for kwargs, param, message in cases:
        with pytest.raises(InputError, match=message) as info:
            smooth_map(**({"out": out} | kwargs))  # type: ignore[arg-type]
        assert info.value.param == param and f"`{param}`" in str(info.value)
    assert out.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["bare.tif", "bare.tif.aux.xml", confidence_path(bare).name, "out.tif"]
    )


def test_docs_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ```python block of docs/fields-and-smoothing.md, on a small map and two parcels."""
    doc = Path(__file__).resolve().parents[2] / "docs" / "fields-and-smoothing.md"
    blocks = re.findall(r"^```python\n(.*?)^```$", doc.read_text(encoding="utf-8"), flags=re.DOTALL | re.M)
    assert len(blocks) == 1
    write_map(tmp_path / "crops.tif", random_probs(np.random.default_rng(5), 60, 60))
    x0, y0 = TRANSFORM.c, TRANSFORM.f
    parcels = [box(x0 + 20, y0 - 300, x0 + 300, y0 - 20), box(x0 + 5000, y0, x0 + 5100, y0 + 100)]
    gpd.GeoDataFrame({"id": [1, 2]}, geometry=parcels, crs="EPSG:32632").to_file(tmp_path / "fields.gpkg")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "__docs__"}
    exec(compile(blocks[0], doc.name, "exec"), namespace)
    assert (tmp_path / "crops_smooth.tif").is_file() and (tmp_path / "crops_smooth.json").is_file()
    assert gpd.read_file(tmp_path / "fields_crops.gpkg")["pixels"].tolist()[1] == 0
