"""CogWriter: streamed block writes -> a paletted class COG and a confidence COG, valid, named, coloured."""

from __future__ import annotations

import json
import shutil
import subprocess
import tracemalloc
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.enums import ColorInterp
from rasterio.windows import Window
from rio_cogeo.cogeo import cog_validate

from geocrop.errors import InputError, OutputError
from geocrop.io.classes import ClassInfo, check_classes, classes_from_names
from geocrop.io.cog import (
    CogWriter,
    check_writable,
    confidence_path,
    normalised_entropy,
    overview_factors,
    sidecar_path,
)
from tests.io.out_helpers import (
    CLASSES,
    SIZE,
    TRANSFORM,
    synthetic_classes,
    synthetic_confidence,
    write_synthetic_cog,
)

GDALINFO = shutil.which("gdalinfo")


def _writer(path: Path, **kwargs: object) -> CogWriter:
    opts: dict[str, object] = {
        "crs": "EPSG:32633", "transform": TRANSFORM, "width": SIZE, "height": SIZE, "classes": CLASSES,
    }  # fmt: skip
    opts.update(kwargs)
    return CogWriter(path, **opts)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def cog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_cog(tmp_path_factory.mktemp("cog") / "map.tif")


def test_output_is_two_valid_cogs_with_overviews(cog: Path) -> None:
    for path in (cog, confidence_path(cog)):
        is_valid, errors, _warnings = cog_validate(str(path), quiet=True)
        assert is_valid, (path, errors)
    assert confidence_path(cog).name == "map_confidence.tif"
    with rasterio.open(cog) as src:
        assert (src.count, src.width, src.height) == (1, SIZE, SIZE)
        assert src.dtypes == ("uint8",) and src.nodata == 255
        assert src.crs.to_epsg() == 32633
        assert src.overviews(1) == [2] and src.block_shapes[0] == (256, 256)
        assert src.descriptions == ("class",)
        assert src.colorinterp[0] == ColorInterp.palette
    with rasterio.open(confidence_path(cog)) as src:
        assert (src.count, src.width, src.height, src.nodata) == (2, SIZE, SIZE, 255)
        assert src.descriptions == ("confidence", "uncertainty")
        assert src.overviews(1) == [2] and src.overviews(2) == [2]


def test_round_trip_of_streamed_blocks(cog: Path) -> None:
    with rasterio.open(cog) as src:
        np.testing.assert_array_equal(src.read(1), synthetic_classes())
    with rasterio.open(confidence_path(cog)) as src:
        conf = synthetic_confidence()
        conf[synthetic_classes() == 255] = 255  # nodata class forces nodata confidence
        np.testing.assert_array_equal(src.read(1), conf)
        uncertainty = src.read(2)
    valid = synthetic_classes() != 255
    assert np.all(uncertainty[~valid] == 255) and uncertainty[valid].max() <= 100
    # more confident pixels are less uncertain
    c = synthetic_confidence()[valid]
    assert uncertainty[valid][c == 100].max() == 0 and uncertainty[valid][c <= 40].min() > 80


def test_palette_and_names_live_inside_the_class_cog(tmp_path: Path) -> None:
    cog = write_synthetic_cog(tmp_path / "alone.tif")
    sidecar_path(cog).unlink()  # what QGIS or GDAL sees from the COG alone
    with rasterio.open(cog) as src:
        cmap = src.colormap(1)
        assert cmap[0][:3] == (0xE6, 0xC6, 0x19) and cmap[3][:3] == (0x8A, 0x2B, 0xE2)
        assert cmap[2][:3] == (0, 0, 0)  # unused value (a TIFF palette has no alpha: nodata hides 255)
        assert src.tags(1)["CLASS_3"] == "sugar beet"
        assert [ClassInfo(**c) for c in json.loads(src.tags()["GEOCROP_CLASSES"])] == list(CLASSES)
        assert src.tags()["GEOCROP_CONFIDENCE"] == "alone_confidence.tif"


def test_metadata_band_tags_colours_and_sidecar(cog: Path) -> None:
    with rasterio.open(cog) as src:
        tags = src.tags()
        assert tags["model"] == "tiny-test-model"
        assert json.loads(tags["scene_ids"]) == ["S2A_33UUU_20210301_0_L2A", "S2B_33UUU_20210306_0_L2A"]
        assert tags["start_date"] == "2021-03-01"
        stored = json.loads(tags["GEOCROP_CLASSES"])
        assert [ClassInfo(**c) for c in stored] == list(CLASSES)
        assert src.tags(1)["CLASS_3"] == "sugar beet"
    with rasterio.open(confidence_path(cog)) as src:
        assert src.tags(1)["UNITS"] == "percent" and "entropy" in src.tags(2)["DEFINITION"]
        assert src.tags()["model"] == "tiny-test-model" and src.tags()["GEOCROP_CLASS_MAP"] == "map.tif"
    root = ET.parse(sidecar_path(cog)).getroot()
    names = [c.text or "" for c in root.iter("Category")]
    assert names == ["winter wheat", "maize", "", "sugar beet"]
    rows = [[f.text for f in row.iter("F")] for row in root.iter("Row")]
    assert rows[2] == ["3", "sugar beet", "138", "43", "226", "255"]


def test_normalised_entropy() -> None:
    p = np.array([[[1.0, 0.5, 1 / 3, np.nan]], [[0.0, 0.5, 1 / 3, 0.5]], [[0.0, 0.0, 1 / 3, 0.5]]])
    out = normalised_entropy(p.astype(np.float32))
    assert out.tolist() == [[0, 63, 100, 255]]  # log(2)/log(3) = 0.63
    assert normalised_entropy(np.array([[[100, 255]], [[0, 0]]], np.uint8)).tolist() == [[0, 255]]


def test_overviews_use_mode_for_classes_and_average_for_confidence(tmp_path: Path) -> None:
    # In every 2x2 cell: classes (0, 3, 3, 3) -> mode 3 (average 2.25 and nearest 0 would differ);
    # confidence (0, 100, 100, 100) -> average 75 (mode and nearest would give 100 or 0).
    cls = np.tile(np.array([[0, 3], [3, 3]], dtype=np.uint8), (SIZE // 2, SIZE // 2))
    conf = np.tile(np.array([[0, 100], [100, 100]], dtype=np.uint8), (SIZE // 2, SIZE // 2))
    out = tmp_path / "ovr.tif"
    with _writer(out) as writer:
        writer.write_block(Window(0, 0, SIZE, SIZE), cls, conf)
    with rasterio.open(out, overview_level=0) as ovr:
        assert ovr.shape == (SIZE // 2, SIZE // 2)
        assert np.all(ovr.read(1) == 3)
    with rasterio.open(confidence_path(out), overview_level=0) as ovr:
        assert np.all(ovr.read(1) == 75)


def test_probability_bands_from_floats(tmp_path: Path) -> None:
    out = write_synthetic_cog(tmp_path / "probs.tif", n_prob_bands=len(CLASSES))
    assert cog_validate(str(confidence_path(out)), quiet=True)[0]
    with rasterio.open(confidence_path(out)) as src:
        assert src.count == 2 + len(CLASSES)
        assert src.descriptions[2:] == (
            "probability_winter wheat",
            "probability_maize",
            "probability_sugar beet",
        )
        classes, conf = synthetic_classes(), synthetic_confidence()
        p_maize = src.read(4)
        inside = classes == 1
        np.testing.assert_array_equal(p_maize[inside], conf[inside])  # percent of the float probability
        assert np.all(p_maize[classes == 255] == 255)
        assert p_maize[classes != 255].max() <= 100


def test_float_confidence_nan_becomes_nodata(tmp_path: Path) -> None:
    cls = np.zeros((SIZE, SIZE), dtype=np.uint8)
    conf = np.full((SIZE, SIZE), 0.426, dtype=np.float32)
    conf[:10] = np.nan
    out = tmp_path / "float.tif"
    with _writer(out, blocksize=512) as writer:
        writer.write_block(Window(0, 0, SIZE, SIZE), cls, conf)
    with rasterio.open(confidence_path(out)) as src:
        band = src.read(1)
        assert np.all(band[:10] == 255) and np.all(band[10:] == 43)
        assert np.all(src.read(2) == 255)  # no probabilities given: uncertainty unknown
        assert src.overviews(1) == []  # 300 px fits one 512 px block: no overview needed


def test_unwritten_windows_are_nodata_and_parallel_writes_land(tmp_path: Path) -> None:
    classes, conf = synthetic_classes(), synthetic_confidence()
    windows = [Window(c, r, 100, 100) for r in range(0, 200, 100) for c in range(0, SIZE, 100)]
    out = tmp_path / "partial.tif"
    with _writer(out) as writer, ThreadPoolExecutor(4) as pool:
        # rows 0..199 only, from 4 threads at once
        futures = [
            pool.submit(writer.write_block, w, classes[w.toslices()], conf[w.toslices()]) for w in windows
        ]
        for future in futures:
            future.result()
    with rasterio.open(out) as src:
        band = src.read(1)
    np.testing.assert_array_equal(band[:200], classes[:200])
    assert np.all(band[200:] == 255)


def test_error_inside_with_leaves_previous_output_and_no_temporaries(tmp_path: Path) -> None:
    out = tmp_path / "map.tif"
    out.write_bytes(b"previous run")
    with pytest.raises(RuntimeError, match="boom"), _writer(out) as writer:
        writer.write_block(Window(0, 0, 10, 10), np.zeros((10, 10), np.uint8), np.zeros((10, 10), np.uint8))
        raise RuntimeError("boom")
    assert out.read_bytes() == b"previous run"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["map.tif"]


def test_success_leaves_only_the_cogs_and_sidecar(tmp_path: Path) -> None:
    write_synthetic_cog(tmp_path / "m.tif")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.tif", "m.tif.aux.xml", "m_confidence.tif"]


def test_unwritable_output_fails_before_compute(tmp_path: Path) -> None:
    (tmp_path / "a_file").write_text("x")
    for bad, message in [
        (tmp_path / "missing" / "map.tif", "does not exist"),
        (tmp_path, "is a folder"),
        (tmp_path / "a_file" / "map.tif", "does not exist"),
    ]:
        with pytest.raises(OutputError, match=message):
            check_writable(bad)
        with pytest.raises(OutputError):
            _writer(bad)
    assert check_writable(tmp_path / "ok.tif") == (tmp_path / "ok.tif").absolute()
    assert not list(tmp_path.glob(".*probe"))


def test_bad_blocks_are_rejected(tmp_path: Path) -> None:
    ok = np.zeros((10, 10), np.uint8)
    with _writer(tmp_path / "bad.tif", n_prob_bands=3) as writer:
        probs = np.zeros((3, 10, 10), np.float32)
        with pytest.raises(InputError, match=r"values \[2\]"):
            writer.write_block(Window(0, 0, 10, 10), np.full((10, 10), 2, np.uint8), ok, probs)
        with pytest.raises(InputError, match="uint8"):
            writer.write_block(Window(0, 0, 10, 10), ok.astype(np.int32), ok, probs)
        with pytest.raises(InputError, match="outside"):
            writer.write_block(Window(295, 0, 10, 10), ok, ok, probs)
        with pytest.raises(InputError, match="percent"):
            writer.write_block(Window(0, 0, 10, 10), ok, np.full((10, 10), 150, np.uint8), probs)
        with pytest.raises(InputError, match="probs="):
            writer.write_block(Window(0, 0, 10, 10), ok, ok)
        with pytest.raises(InputError, match="shape"):
            writer.write_block(Window(0, 0, 10, 10), ok, ok, probs[:2])
    with pytest.raises(InputError, match="n_prob_bands"):
        _writer(tmp_path / "x.tif", n_prob_bands=2)
    with pytest.raises(InputError, match="geobox"):
        CogWriter(tmp_path / "x.tif", classes=CLASSES, width=3, height=3)


def test_geobox_argument(tmp_path: Path) -> None:
    from odc.geo.geobox import GeoBox

    gbox = GeoBox((40, 60), TRANSFORM, "EPSG:32633")
    out = tmp_path / "g.tif"
    with CogWriter(out, geobox=gbox, classes=CLASSES) as writer:
        writer.write_block(Window(0, 0, 60, 40), np.ones((40, 60), np.uint8), np.ones((40, 60), np.uint8))
    with rasterio.open(out) as src:
        assert (src.height, src.width) == (40, 60)
        assert src.transform == TRANSFORM and src.crs.to_epsg() == 32633


def test_memory_stays_below_the_raster_size(tmp_path: Path) -> None:
    size, block = 2048, 256  # 4 MiB per band; the writer must never hold a whole band in Python
    cls = np.ones((block, block), np.uint8)
    tracemalloc.start()
    with CogWriter(
        tmp_path / "big.tif", crs="EPSG:32633", transform=TRANSFORM, width=size, height=size, classes=CLASSES
    ) as writer:
        for r in range(0, size, block):
            for c in range(0, size, block):
                writer.write_block(Window(c, r, block, block), cls, cls)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < size * size / 4, f"peak Python memory {peak} bytes"
    with rasterio.open(tmp_path / "big.tif") as src:
        assert src.overviews(1) == [2, 4, 8]


def test_overview_factors() -> None:
    assert overview_factors(300, 300, blocksize=256) == [2]
    assert overview_factors(256, 100, blocksize=256) == []
    assert overview_factors(5000, 200, blocksize=512) == [2, 4, 8, 16]


def test_class_info_validation() -> None:
    with pytest.raises(InputError, match="255 is reserved"):
        ClassInfo(255, "x", "#000000")
    with pytest.raises(InputError, match="#rrggbb"):
        ClassInfo(1, "x", "red")
    with pytest.raises(InputError, match="empty"):
        ClassInfo(1, " ", "#000000")
    with pytest.raises(InputError, match="more than once"):
        check_classes([ClassInfo(1, "a", "#000000"), ClassInfo(1, "b", "#000000")])
    with pytest.raises(InputError, match="more than once"):
        check_classes([ClassInfo(1, "a", "#000000"), ClassInfo(2, "a", "#000000")])
    assert classes_from_names(["a", "b"], ["#000000", "#FFFFFF"])[1] == ClassInfo(1, "b", "#FFFFFF")
    assert ClassInfo(1, "b", "#FFa0c1").rgb == (255, 160, 193)


@pytest.mark.skipif(GDALINFO is None, reason="gdalinfo (Debian gdal-bin) is not on PATH")
def test_gdal_sees_cog_layout_overviews_names_and_colours(cog: Path) -> None:
    out = subprocess.run(
        [GDALINFO or "gdalinfo", str(cog)], capture_output=True, text=True, check=True
    ).stdout
    assert "LAYOUT=COG" in out
    assert "Overviews: 150x150" in out
    assert "Color Table" in out and "3: 138,43,226,255" in out
    categories = out.split("Categories:")[1]
    assert "0: winter wheat" in categories and "3: sugar beet" in categories
    values = subprocess.run(
        [GDALINFO or "gdalinfo", str(confidence_path(cog))], capture_output=True, text=True, check=True
    ).stdout
    assert "LAYOUT=COG" in values and "Description = uncertainty" in values
