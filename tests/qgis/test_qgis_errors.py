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


@pytest.mark.parametrize("algorithm", ["geocrop:mapcrops", "geocrop:trainclassifier"])
def test_end_before_start_is_refused_in_geocrops_words_and_labels(
    profile: QgisProfile, tmp_path: Path, algorithm: str
) -> None:
    """The library's season rule (`geocrop.api_types.check_season`: start < end), its words, our labels."""
    record = tmp_path / "record"
    exe = fake_geocrop(tmp_path / "bin", record=record)
    fields = write_fields(tmp_path / "fields.geojson")
    layer = f"AOI={fields}" if algorithm == "geocrop:mapcrops" else f"PARCELS={fields}"
    completed = profile.run(
        "run",
        algorithm,
        "--",
        layer,
        "CLASS_FIELD=name",
        "START=2021-10-01",
        "END=2021-03-01",
        f"OUTPUT={tmp_path / 'out.tif'}",
        f"GEOCROP_EXECUTABLE={exe}",
    )
    text = completed.stdout + completed.stderr
    assert completed.returncode != 0
    assert "'End date' 2021-03-01 is not after 'Start date' 2021-10-01; give start < end" in text
    assert not has_traceback(text) and not recorded_calls(record)  # refused before geocrop ran


def test_one_day_season_is_refused_like_in_the_library(profile: QgisProfile, tmp_path: Path) -> None:
    """A season of one day has no temporal grid (`geocrop.core.temporal`): the library and the dialog
    refuse it alike, before geocrop runs."""
    record = tmp_path / "record"
    exe = fake_geocrop(tmp_path / "bin", record=record)
    completed = profile.run(
        "run",
        "geocrop:mapcrops",
        "--",
        f"AOI={write_fields(tmp_path / 'fields.geojson')}",
        "START=2021-06-01",
        "END=2021-06-01",
        f"OUTPUT={tmp_path / 'crops.tif'}",
        f"GEOCROP_EXECUTABLE={exe}",
    )
    text = completed.stdout + completed.stderr
    assert completed.returncode != 0
    assert "'End date' 2021-06-01 is not after 'Start date' 2021-06-01; give start < end" in text
    assert not recorded_calls(record)


def test_geocrop_error_about_an_argument_names_the_parameter_label(
    profile: QgisProfile, tmp_path: Path
) -> None:
    """geocrop's error event says `out`; the user reads the label of the field they filled in."""
    exe = fake_geocrop(tmp_path / "bin", mode="param-error")
    out = tmp_path / "crops.tif"
    code, text = _run(
        profile,
        f"AOI={write_fields(tmp_path / 'fields.geojson')}",
        f"OUTPUT={out}",
        f"GEOCROP_EXECUTABLE={exe}",
    )
    assert code != 0
    assert f"ERROR:\t'Crop map' {out}: cannot write there (read-only folder)" in text
    assert "--out" not in text.split("ERROR:", 1)[1]
    assert not has_traceback(text)


def test_every_argument_table_names_a_parameter(profile: QgisProfile) -> None:
    report = report_of(profile.python("labels"))
    assert {"geocrop:mapcrops", "geocrop:trainclassifier"} <= report.keys()
    for algorithm, table in report.items():
        assert table["labels"].keys() == table["arguments"].keys(), algorithm  # no argument lost
        assert set(table["arguments"].values()) <= set(table["parameters"]), algorithm
        assert "GEOCROP_EXECUTABLE" in table["parameters"] and table["help_url"].startswith("https://")
    labels = report["geocrop:mapcrops"]["labels"]
    assert labels["end"] == "End date" and labels["out"] == "Crop map"
    assert labels["max_cloud"] == "Maximum scene cloud cover" and labels["bbox"] == "Area of interest"
    assert report["geocrop:trainclassifier"]["labels"]["class_column"] == "Crop type field"
