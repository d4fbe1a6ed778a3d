"""Real QGIS opens geocrop's class COG from the file alone: no `.qml`, no `.aux.xml`, and still a paletted
layer in the crop colours (the colour table is inside the GeoTIFF); the category names join from the
`.aux.xml` when it is there. The confidence COG opens beside it with its two bands."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from geocrop.io.cog import confidence_path, sidecar_path
from tests.io.out_helpers import CLASSES, write_synthetic_cog
from tests.qgis.qgis_harness import QgisProfile, make_profile, qgis_available, report_of

pytestmark = [
    pytest.mark.qgis,
    pytest.mark.skipif(not qgis_available(), reason="QGIS (qgis_process.bin, python3-qgis) is not installed"),
]


@pytest.fixture(scope="module")
def profile(tmp_path_factory: pytest.TempPathFactory) -> QgisProfile:
    return make_profile(tmp_path_factory.mktemp("qgis"), enable=False)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_cog(tmp_path_factory.mktemp("map") / "crops.tif", n_prob_bands=len(CLASSES))


def test_class_cog_alone_opens_paletted_in_the_crop_colours(
    profile: QgisProfile, written: Path, tmp_path: Path
) -> None:
    alone = tmp_path / "crops.tif"
    shutil.copy(written, alone)  # the COG only: no .qml, no .aux.xml beside it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crops.tif"]
    info = report_of(profile.python("inspect-raster", str(alone)))
    assert info["valid"] and info["bands"] == 1
    assert info["renderer"] == "paletted", info
    colours = {c["value"]: c["color"] for c in info["classes"]}
    for c in CLASSES:
        assert colours.get(c.value) == c.color.lower(), (c, info["classes"])
    assert not list(tmp_path.glob("*.aux.xml")), "QGIS wrote a sidecar it did not need"


def test_names_join_from_the_sidecar_and_confidence_cog_opens(
    profile: QgisProfile, written: Path, tmp_path: Path
) -> None:
    for path in (written, sidecar_path(written), confidence_path(written)):
        shutil.copy(path, tmp_path / path.name)
    info = report_of(profile.python("inspect-raster", str(tmp_path / "crops.tif")))
    assert info["renderer"] == "paletted"
    labels = {c["value"]: c["label"] for c in info["classes"]}
    assert all(labels.get(c.value) == c.name for c in CLASSES), info["classes"]
    values = report_of(profile.python("inspect-raster", str(tmp_path / "crops_confidence.tif")))
    assert values["valid"] and values["bands"] == 2 + len(CLASSES)
