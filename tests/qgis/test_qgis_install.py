"""The plugin as users get it: `make qgis-plugin`'s zip installs and loads; the dialog renders offscreen."""

from __future__ import annotations

import struct
import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.qgis.qgis_harness import REPO, make_profile, render_dialog

pytestmark = pytest.mark.qgis


def test_make_qgis_plugin_zip_installs_and_lists_the_algorithm(tmp_path: Path) -> None:
    subprocess.run(
        ["make", "-s", "-C", str(REPO), "qgis-plugin"], check=True, capture_output=True, timeout=120
    )
    archive = REPO / "dist" / "geocrop_qgis.zip"
    names = zipfile.ZipFile(archive).namelist()
    assert "geocrop_qgis/metadata.txt" in names and "geocrop_qgis/__init__.py" in names
    assert not [name for name in names if "__pycache__" in name]
    metadata = zipfile.ZipFile(archive).read("geocrop_qgis/metadata.txt").decode()
    assert "hasProcessingProvider=yes" in metadata

    profile = make_profile(tmp_path, plugin_zip=archive)
    listing = profile.run("list")
    assert "geocrop:mapcrops\tMap crops in area" in listing.stdout


def test_dialog_renders_offscreen(tmp_path: Path) -> None:
    out = tmp_path / "dialog.png"
    report = render_dialog(out, width=700, height=600)
    assert report == {"saved": True, "width": 700, "height": 600}
    header = out.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", header[16:24]) == (700, 600)
    assert out.stat().st_size > 20_000  # widgets and help text drawn, not a blank window
