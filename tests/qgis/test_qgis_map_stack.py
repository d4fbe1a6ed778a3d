"""*Map crops from a raster stack* (`geocrop:mapstack`) in real QGIS with the geocrop of this checkout: a
multi-band GeoTIFF with its band-date table, and a folder of dated GeoTIFFs, become the same styled crop
map that `geocrop map --stac STACK` writes; a stack without its table is refused in one line."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio

from geocrop.core.bands import S2_BANDS
from tests.inference.map_fixtures import END, START, TinyArea, tiny_area
from tests.io.test_raster_stack import write_folder, write_single
from tests.qgis.qgis_harness import QgisProfile, has_traceback
from tests.qgis.test_qgis_inspect import profile, pytestmark  # the qgis marker and a module's profile

ROOT = Path(__file__).resolve().parents[2]
__all__ = ["profile", "pytestmark"]  # used by pytest


@pytest.fixture(scope="module")
def area(tmp_path_factory: pytest.TempPathFactory) -> TinyArea:
    return tiny_area(tmp_path_factory.mktemp("area"))


@pytest.fixture(scope="module")
def geocrop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A `geocrop` executable that runs this checkout's package (whatever the venv has installed)."""
    path = tmp_path_factory.mktemp("bin") / "geocrop"
    code = f"import sys; sys.path.insert(0, {str(ROOT)!r}); from geocrop.cli.main import main; main()"
    path.write_text(f'#!/bin/sh\nexec "{sys.executable}" -c "{code}" "$@"\n', encoding="utf-8")
    path.chmod(0o755)
    return path


def _run(profile: QgisProfile, geocrop: Path, *params: str) -> tuple[int, str, dict]:
    completed, payload = profile.run_json(
        "run", "geocrop:mapstack", "--", *params, f"GEOCROP_EXECUTABLE={geocrop}", timeout=600
    )
    text = completed.stdout + completed.stderr
    assert not has_traceback(text), text
    return completed.returncode, text, payload


@pytest.mark.parametrize("layout", ["single", "folder"])
def test_a_stack_becomes_the_styled_crop_map(
    profile: QgisProfile, geocrop: Path, area: TinyArea, tmp_path: Path, layout: str
) -> None:
    if layout == "single":
        stack = write_single(tmp_path / "s", bands=S2_BANDS)
        given = f"STACK={stack}"
    else:
        stack = write_folder(tmp_path / "f")
        given = f"FOLDER={stack}"
    out = tmp_path / "out" / "crops.tif"
    code, text, payload = _run(
        profile, geocrop, given, f"START={START}", f"END={END}", f"MODEL={area.bundle}", f"OUTPUT={out}"
    )
    assert code == 0, text
    assert payload["results"]["OUTPUT"] == str(out)
    assert out.with_suffix(".qml").is_file()
    with rasterio.open(out) as src:
        classes = src.read(1)
        assert src.colormap(1) and src.crs.to_epsg() == 32633
    mapped = classes != 255  # the map's grid reaches a little past the stack's 20 x 20 px, nodata there
    assert mapped.sum() >= 0.95 * 20 * 20 and np.isin(classes[mapped], [0, 1, 2]).all()


def test_a_stack_without_its_table_is_refused(
    profile: QgisProfile, geocrop: Path, area: TinyArea, tmp_path: Path
) -> None:
    stack = write_single(tmp_path / "s")
    stack.with_suffix(".csv").unlink()
    out = tmp_path / "out" / "crops.tif"
    code, text, _ = _run(
        profile,
        geocrop,
        f"STACK={stack}",
        f"START={START}",
        f"END={END}",
        f"MODEL={area.bundle}",
        f"OUTPUT={out}",
    )
    assert code != 0 and not out.exists()
    assert "needs its band-date table stack.csv beside it" in text
    code, text, _ = _run(profile, geocrop, f"START={START}", f"END={END}", f"OUTPUT={out}")
    assert code != 0 and "Choose one raster stack" in text
