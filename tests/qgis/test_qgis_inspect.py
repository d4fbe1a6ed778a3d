"""*Look at labelled samples* (`geocrop:inspectsamples`) in real QGIS with the real geocrop: a small samples
table becomes the profiles page, and a wrong class column is refused in the dialog's words."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.qgis.qgis_harness import QgisProfile, has_traceback, make_profile, qgis_available
from tests.training.heads_synth import write_table

GEOCROP = Path(sys.executable).with_name("geocrop")  # the venv's real console script

pytestmark = [
    pytest.mark.qgis,
    pytest.mark.skipif(not qgis_available(), reason="QGIS (qgis_process.bin, python3-qgis) is not installed"),
]


@pytest.fixture(scope="module")
def profile(tmp_path_factory: pytest.TempPathFactory) -> QgisProfile:
    return make_profile(tmp_path_factory.mktemp("qgis"))


def _run(profile: QgisProfile, *params: str) -> tuple[int, str, dict]:
    completed, payload = profile.run_json(
        "run", "geocrop:inspectsamples", "--", *params, f"GEOCROP_EXECUTABLE={GEOCROP}"
    )
    text = completed.stdout + completed.stderr
    assert not has_traceback(text), text
    return completed.returncode, text, payload


def test_a_samples_table_becomes_the_profiles_page(profile: QgisProfile, tmp_path: Path) -> None:
    table = write_table(tmp_path / "samples.csv", parcels=3, pixels=2)
    out = tmp_path / "look"
    code, text, payload = _run(
        profile, f"LABELS={table}", "CLASS_FIELD=crop", "GROUP_FIELD=parcel", f"OUTPUT={out}"
    )
    assert code == 0, text
    assert payload["results"]["PAGE"] == str(out / "index.html")
    assert (out / "profiles_ndvi.png").is_file() and (out / "counts.csv").is_file()
    assert "<td>6</td><td>3</td>" in (out / "index.html").read_text(encoding="utf-8")  # 6 series, 3 parcels


def test_a_wrong_class_column_names_the_parameter(profile: QgisProfile, tmp_path: Path) -> None:
    table = write_table(tmp_path / "samples.csv", parcels=3, pixels=2)
    out = tmp_path / "look"
    code, text, _ = _run(profile, f"LABELS={table}", "CLASS_FIELD=kind", f"OUTPUT={out}")
    assert code != 0 and not (out / "index.html").exists()
    assert "has no class column 'kind'" in text and "choose one of: crop, parcel" in text
