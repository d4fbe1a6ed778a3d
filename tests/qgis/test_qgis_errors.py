"""Failure paths of the plugin in real QGIS: bad AOI layers, missing geocrop, and cancel mid-run.

The stand-in geocrop plays the engine (the cancel test needs a run that is reliably still busy).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.qgis.qgis_harness import (
    QgisProfile,
    fake_geocrop,
    has_traceback,
    make_profile,
    process_gone,
    recorded_calls,
    report_of,
    write_fields,
)

pytestmark = pytest.mark.qgis


@pytest.fixture(scope="module")
def profile(tmp_path_factory: pytest.TempPathFactory) -> QgisProfile:
    return make_profile(tmp_path_factory.mktemp("qgis"))


def _run(profile: QgisProfile, *params: str) -> tuple[int, str]:
    completed = profile.run("run", "geocrop:mapcrops", "--", "START=2021-03-01", "END=2021-10-01", *params)
    return completed.returncode, completed.stdout + completed.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {},
                        "geometry": {"type": "Point", "coordinates": [13.5, 52.5]},
                    }
                ],
            },
            "Area of interest: the layer has point geometries, but geocrop needs polygons",
        ),
        ("this is not GeoJSON", "Area of interest: could not open '{path}' as a polygon layer"),
    ],
    ids=["points", "unreadable"],
)
def test_bad_aoi_layer_gives_the_plugins_message(
    profile: QgisProfile, tmp_path: Path, content: object, message: str
) -> None:
    path = tmp_path / "aoi.geojson"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    record = tmp_path / "record"
    out = tmp_path / "crops.tif"
    exe = fake_geocrop(tmp_path / "bin", record=record)
    code, text = _run(profile, f"AOI={path}", f"OUTPUT={out}", f"GEOCROP_EXECUTABLE={exe}")
    assert code != 0
    assert message.format(path=path) in text
    assert not has_traceback(text)
    assert not out.exists()
    assert not [call for call in recorded_calls(record) if call["argv"][:1] == ["map"]]  # geocrop never ran


def test_empty_layer_and_missing_area_are_refused_before_geocrop_runs(
    profile: QgisProfile, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.geojson"
    empty.write_text(json.dumps({"type": "FeatureCollection", "features": []}))
    exe = fake_geocrop(tmp_path / "bin")
    code, text = _run(profile, f"AOI={empty}", f"OUTPUT={tmp_path / 'a.tif'}", f"GEOCROP_EXECUTABLE={exe}")
    assert code != 0 and "Area of interest: the layer has no features" in text
    code, text = _run(profile, f"OUTPUT={tmp_path / 'b.tif'}", f"GEOCROP_EXECUTABLE={exe}")
    assert code != 0 and "Choose an area: a polygon layer" in text
    assert not has_traceback(text)


def test_missing_geocrop_names_the_install_command(profile: QgisProfile, tmp_path: Path) -> None:
    fields = write_fields(tmp_path / "fields.geojson")
    missing = tmp_path / "no-such-venv" / "bin" / "geocrop"
    code, text = _run(
        profile, f"AOI={fields}", f"OUTPUT={tmp_path / 'c.tif'}", f"GEOCROP_EXECUTABLE={missing}"
    )
    assert code != 0
    assert f"geocrop executable '{missing}' was not found" in text and "pip install path/to/geocrop" in text
    assert not has_traceback(text)


def test_cancel_mid_run_leaves_no_output_and_no_process(profile: QgisProfile, tmp_path: Path) -> None:
    """Cancelled through QgsProcessingFeedback.cancel() from another thread while geocrop is silent."""
    record = tmp_path / "record"
    exe = fake_geocrop(tmp_path / "bin", mode="slow", record=record)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    params = {
        "AOI": str(write_fields(tmp_path / "fields.geojson")),
        "START": "2021-03-01",
        "END": "2021-10-01",
        "OUTPUT": str(out_dir / "crops.tif"),
        "HTML": str(out_dir / "crops.html"),
        "GEOCROP_EXECUTABLE": str(exe),
    }
    report = report_of(
        profile.python("run", json.dumps(params), "--cancel-when-file", str(record / "child.pid"))
    )
    assert not report["ok"]
    assert any("canceled" in error for error in report["errors"])
    assert report["cancel_to_return"] < 15  # SIGINT is honoured promptly, no 600 s wait
    assert list(out_dir.iterdir()) == []  # neither the map, its legend, the page nor a partial file
    pids = [call["pid"] for call in recorded_calls(record)] + [int((record / "child.pid").read_text())]
    assert all(process_gone(pid, timeout=5) for pid in pids)  # geocrop and the worker it started
