"""write_qml: a QGIS paletted-renderer style, checked as XML and (marker qgis) loaded by real QGIS."""

from __future__ import annotations

import os
import subprocess
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from geocrop.errors import OutputError
from geocrop.io.classes import ClassInfo
from geocrop.io.style import qml_path_for, qml_text, write_qml
from tests.io.out_helpers import CLASSES, write_synthetic_cog

SYSTEM_PYTHON = Path("/usr/bin/python3")


def test_qml_is_a_paletted_renderer_with_one_entry_per_class(tmp_path: Path) -> None:
    classes = [*CLASSES, ClassInfo(7, "oats & <barley>", "#A0B0C0")]
    path = write_qml(tmp_path / "map.qml", list(reversed(classes)))
    assert path == tmp_path / "map.qml"
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE qgis")
    root = ET.fromstring(text.split("\n", 1)[1])
    assert root.tag == "qgis"
    renderer = root.find("pipe/rasterrenderer")
    assert renderer is not None
    assert renderer.get("type") == "paletted" and renderer.get("band") == "1"
    entries = [
        (e.get("value"), e.get("color"), e.get("label"), e.get("alpha"))
        for e in renderer.iter("paletteEntry")
    ]
    assert entries == [
        ("0", "#e6c619", "winter wheat", "255"),
        ("1", "#2e8b57", "maize", "255"),
        ("3", "#8a2be2", "sugar beet", "255"),
        ("7", "#a0b0c0", "oats & <barley>", "255"),  # escaped in the file, intact when parsed
    ]
    resampling = root.find("pipe/provider/resampling")
    assert resampling is not None and resampling.get("zoomedOutResamplingMethod") == "nearestNeighbour"
    assert [p.name for p in tmp_path.iterdir()] == ["map.qml"]  # no temporary left


def test_qml_path_and_options(tmp_path: Path) -> None:
    assert qml_path_for(tmp_path / "crops.tif") == tmp_path / "crops.qml"
    assert 'opacity="0.5"' in qml_text(CLASSES, opacity=0.5)
    assert 'band="2"' in qml_text(CLASSES, band=2)


def test_unwritable_style_path(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="style"):
        write_qml(tmp_path / "missing" / "map.qml", CLASSES)


def _qgis_python_available() -> bool:
    if not SYSTEM_PYTHON.exists():
        return False
    probe = subprocess.run([str(SYSTEM_PYTHON), "-c", "import qgis.core"], capture_output=True, timeout=60)
    return probe.returncode == 0


@pytest.mark.qgis
def test_qgis_loads_the_cog_with_the_style_beside_it(tmp_path: Path) -> None:
    if not _qgis_python_available():
        pytest.skip("Debian's python3-qgis is not importable by /usr/bin/python3")
    cog = write_synthetic_cog(tmp_path / "crops.tif")
    write_qml(qml_path_for(cog), CLASSES)
    script = textwrap.dedent(
        """
        import sys
        from qgis.core import QgsApplication, QgsRasterLayer
        app = QgsApplication([], False)
        app.initQgis()
        layer = QgsRasterLayer(sys.argv[1], "crops", "gdal")
        renderer = layer.renderer()
        print("VALID", layer.isValid())
        print("RENDERER", renderer.type(), renderer.band())
        for c in renderer.classes():
            print("CLASS", int(c.value), c.color.name(), c.label)
        del renderer, layer  # a layer alive at exitQgis() crashes QGIS 3.22 on exit
        app.exitQgis()
        """
    )
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_RUNTIME_DIR": str(tmp_path)}
    run = subprocess.run(
        [str(SYSTEM_PYTHON), "-c", script, str(cog)], capture_output=True, text=True, timeout=120, env=env
    )
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.splitlines()
    assert "VALID True" in lines
    assert "RENDERER paletted 1" in lines  # QGIS picked up crops.qml as the layer's default style
    assert [ln for ln in lines if ln.startswith("CLASS")] == [
        "CLASS 0 #e6c619 winter wheat",
        "CLASS 1 #2e8b57 maize",
        "CLASS 3 #8a2be2 sugar beet",
    ]
