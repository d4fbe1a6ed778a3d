"""The plugin inside real QGIS (Debian's 3.22, headless), with the stand-in geocrop for speed.

Every QGIS call runs in a subprocess (`qgis_process.bin` or the system Python), never in the venv.
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
    polygons_of,
    recorded_calls,
    report_of,
    write_fields,
)

pytestmark = pytest.mark.qgis

CROPS = ["winter wheat", "maize", "sugar beet"]  # what the stand-in writes


@pytest.fixture(scope="module")
def profile(tmp_path_factory: pytest.TempPathFactory) -> QgisProfile:
    return make_profile(tmp_path_factory.mktemp("qgis"))


def _option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def _dates() -> list[str]:
    return ["START=2021-03-01", "END=2021-10-01"]


def test_qgis_process_lists_the_algorithm(profile: QgisProfile) -> None:
    listing = profile.run("list")
    assert listing.returncode == 0
    assert "geocrop:mapcrops\tMap crops in area" in listing.stdout
    assert "geocrop:trainclassifier\tTrain crop classifier" in listing.stdout


def test_help_documents_every_parameter(profile: QgisProfile) -> None:
    completed = profile.run("help", "geocrop:mapcrops")
    assert completed.returncode == 0
    for name in ("AOI:", "EXTENT:", "START:", "END:", "STAC:", "MODEL:", "PLANET:", "MAX_CLOUD:"):
        assert name in completed.stdout
    assert "pip install path/to/geocrop" in completed.stdout  # the help tells a QGIS user how to install


def test_run_streams_progress_and_writes_styled_map(profile: QgisProfile, tmp_path: Path) -> None:
    record = tmp_path / "record"
    exe = fake_geocrop(tmp_path / "bin", record=record)
    out = tmp_path / "out" / "crops.tif"
    html = tmp_path / "out" / "crops.html"
    fields = write_fields(tmp_path / "fields.geojson")
    completed, payload = profile.run_json(
        "run",
        "geocrop:mapcrops",
        "--",
        f"AOI={fields}",
        *_dates(),
        "STAC=/data/catalog.json",
        "MAX_CLOUD=40",
        "PROBABILITIES=true",
        f"OUTPUT={out}",
        f"HTML={html}",
        f"GEOCROP_EXECUTABLE={exe}",
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert payload["results"]["OUTPUT"] == str(out) and out.is_file() and html.is_file()
    assert "Mapping block 4 of 4" in payload["log"]["info"]  # progress messages reach the log

    argv = next(call["argv"] for call in recorded_calls(record) if call["argv"][:1] == ["map"])
    assert _option(argv, "--start") == "2021-03-01" and _option(argv, "--end") == "2021-10-01"
    assert _option(argv, "--stac") == "/data/catalog.json" and _option(argv, "--max-cloud") == "40"
    assert _option(argv, "--out") == str(out) and _option(argv, "--html") == str(html)
    assert "--probabilities" in argv and argv[-3:] == ["--progress", "json", "--yes"]
    assert "--model" not in argv  # empty bundle: geocrop's default
    # the AOI went out as GeoJSON reprojected to EPSG:4326 (UTM 33N near 13.5 E, 52.5 N)
    rings = polygons_of(record / "aoi.geojson")
    assert len(rings) == 2
    assert all(13.4 < x < 13.6 and 52.4 < y < 52.6 for ring in rings for x, y in ring)

    info = report_of(profile.python("inspect-raster", str(out)))
    assert info["valid"] and info["renderer"] == "paletted"
    assert [c["label"] for c in info["classes"]] == CROPS and info["legend"] == CROPS


def test_extent_becomes_a_wgs84_bbox_and_settings_name_geocrop(profile: QgisProfile, tmp_path: Path) -> None:
    record = tmp_path / "record"
    exe = fake_geocrop(tmp_path / "bin", record=record)
    profile.set_setting("geocrop", "executable", str(exe))  # no GEOCROP_EXECUTABLE parameter this time
    completed = profile.run(
        "run",
        "geocrop:mapcrops",
        "--",
        "EXTENT=400000,400600,5819000,5819600 [EPSG:32633]",
        *_dates(),
        f"OUTPUT={tmp_path / 'crops.tif'}",
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert f"Using geocrop 0.1.0: {exe}" in completed.stdout
    argv = next(call["argv"] for call in recorded_calls(record) if call["argv"][:1] == ["map"])
    assert "--aoi" not in argv
    west, south, east, north = map(float, _option(argv, "--bbox").split(","))
    assert 13.52 < west < east < 13.54 and 52.50 < south < north < 52.52
    assert east - west == pytest.approx(600 / (111_320 * 0.6088), rel=0.05)  # 600 m at 52.5 N


def test_selected_features_only_and_legend_on_load(profile: QgisProfile, tmp_path: Path) -> None:
    """Driven like the dialog: a layer with one selected field, output loaded with its legend."""
    record = tmp_path / "record"
    exe = fake_geocrop(tmp_path / "bin", record=record)
    fields = write_fields(tmp_path / "fields.geojson")
    params = {
        "AOI": {"path": str(fields), "select": "\"name\" = 'south'"},
        "START": "2021-03-01",
        "END": "2021-10-01",
        "STAC": "https://example.invalid/v1",
        "OUTPUT": str(tmp_path / "crops.tif"),
        "GEOCROP_EXECUTABLE": str(exe),
    }
    report = report_of(profile.python("run", json.dumps(params), "--load-outputs"))
    assert report["ok"], report["errors"]
    rings = polygons_of(record / "aoi.geojson")
    assert len(rings) == 1
    assert max(y for _, y in rings[0]) < 52.516  # the south field only (the north one starts at 52.518)
    assert report["progress"][-1] == 100 and 80 in [round(p) for p in report["progress"]]
    (loaded,) = report["loaded"]
    assert loaded["name"] == "Crop map" and loaded["renderer"] == "paletted" and loaded["labels"] == CROPS


def test_each_progress_line_shows_once(profile: QgisProfile, tmp_path: Path) -> None:
    """The dialog and qgis_process log a progress text (`setProgressText`) themselves; the plugin set
    each message as progress text and pushed it as an info line, which showed every line twice."""
    exe = fake_geocrop(tmp_path / "bin")
    area = f"AOI={write_fields(tmp_path / 'fields.geojson')}"
    completed = profile.run(
        "run",
        "geocrop:mapcrops",
        "--",
        area,
        *_dates(),
        f"OUTPUT={tmp_path / 'a.tif'}",
        f"GEOCROP_EXECUTABLE={exe}",
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    for step in range(1, 5):
        assert completed.stdout.count(f"Mapping block {step} of 4") == 1, completed.stdout

    params = {"AOI": area[4:], "START": "2021-03-01", "END": "2021-10-01", "GEOCROP_EXECUTABLE": str(exe)}
    report = report_of(profile.python("run", json.dumps({**params, "OUTPUT": str(tmp_path / "b.tif")})))
    assert report["ok"], report["errors"]
    dialog_log = report["infos"] + report["progress_texts"]  # what the Processing dialog shows
    for step in range(1, 5):
        assert dialog_log.count(f"Mapping block {step} of 4") == 1, dialog_log


def test_geocrop_error_line_becomes_processing_error(profile: QgisProfile, tmp_path: Path) -> None:
    exe = fake_geocrop(tmp_path / "bin", mode="error")
    out = tmp_path / "crops.tif"
    completed = profile.run(
        "run",
        "geocrop:mapcrops",
        "--",
        f"AOI={write_fields(tmp_path / 'fields.geojson')}",
        *_dates(),
        f"OUTPUT={out}",
        f"GEOCROP_EXECUTABLE={exe}",
    )
    text = completed.stdout + completed.stderr
    assert completed.returncode != 0
    assert (
        "ERROR:\tno Sentinel-2 scenes in https://earth-search.aws.element84.com/v1 between the dates" in text
    )
    assert not has_traceback(text) and not out.exists()


def test_train_classifier_defaults_to_auto_and_refuses_epochs_it_cannot_use(
    profile: QgisProfile, tmp_path: Path
) -> None:
    record = tmp_path / "record"
    exe = fake_geocrop(tmp_path / "bin", record=record)
    common = [
        f"PARCELS={write_fields(tmp_path / 'fields.geojson')}",
        "CLASS_FIELD=name",
        "S2=/data/catalog.json",
        *_dates(),
        f"GEOCROP_EXECUTABLE={exe}",
    ]
    bundle = tmp_path / "models" / "auto.safetensors"
    completed = profile.run("run", "geocrop:trainclassifier", "--", *common, f"OUTPUT={bundle}")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    argv = next(call["argv"] for call in recorded_calls(record) if call["argv"][:1] == ["train"])
    assert _option(argv, "--head") == "auto" and "--epochs" not in argv

    refused = tmp_path / "models" / "gbm.safetensors"
    completed = profile.run(
        "run", "geocrop:trainclassifier", "--", *common, "HEAD=5", "EPOCHS=3", f"OUTPUT={refused}"
    )
    text = completed.stdout + completed.stderr
    assert completed.returncode != 0 and "set Epochs to 0" in text
    assert not has_traceback(text) and not refused.exists()


def test_train_classifier_sends_parcels_with_classes(profile: QgisProfile, tmp_path: Path) -> None:
    record = tmp_path / "record"
    exe = fake_geocrop(tmp_path / "bin", record=record)
    bundle = tmp_path / "models" / "fields.safetensors"
    completed, payload = profile.run_json(
        "run",
        "geocrop:trainclassifier",
        "--",
        f"PARCELS={write_fields(tmp_path / 'fields.geojson')}",
        "CLASS_FIELD=name",
        "S2=/data/catalog.json",
        *_dates(),
        "HEAD=3",
        "EPOCHS=4",
        f"OUTPUT={bundle}",
        f"GEOCROP_EXECUTABLE={exe}",
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert payload["results"]["OUTPUT"] == str(bundle) and bundle.is_file()
    argv = next(call["argv"] for call in recorded_calls(record) if call["argv"][:1] == ["train"])
    assert _option(argv, "--class-column") == "name" and _option(argv, "--id-column") == "qgis_fid"
    assert _option(argv, "--head") == "transformer" and _option(argv, "--epochs") == "4"
    assert _option(argv, "--s2") == "/data/catalog.json" and _option(argv, "--out") == str(bundle)
    labels = json.loads((record / "labels.geojson").read_text())
    assert sorted(f["properties"]["name"] for f in labels["features"]) == ["north", "south"]
    assert {type(f["properties"]["qgis_fid"]) for f in labels["features"]} == {int}
    assert any(line.startswith("epoch 4/4:") for line in payload["log"]["info"])  # epochs reach the log


def test_train_classifier_takes_parcels_drawn_in_qgis(profile: QgisProfile, tmp_path: Path) -> None:
    """A scratch layer of polygons drawn in QGIS (a memory layer, no file) with a class field trains like
    a file: its polygons go to geocrop with the class and the feature id."""
    record = tmp_path / "record"
    exe = fake_geocrop(tmp_path / "bin", record=record)
    params = {
        "PARCELS": {"drawn": str(write_fields(tmp_path / "fields.geojson"))},
        "CLASS_FIELD": "name",
        "S2": "/data/catalog.json",
        "START": "2021-03-01",
        "END": "2021-10-01",
        "OUTPUT": str(tmp_path / "drawn.safetensors"),
        "GEOCROP_EXECUTABLE": str(exe),
    }
    report = report_of(profile.python("run", json.dumps(params), "--algorithm", "geocrop:trainclassifier"))
    assert report["ok"], report["errors"]
    assert report["results"]["OUTPUT"] == str(tmp_path / "drawn.safetensors")
    argv = next(call["argv"] for call in recorded_calls(record) if call["argv"][:1] == ["train"])
    assert _option(argv, "--class-column") == "name" and _option(argv, "--s2") == "/data/catalog.json"
    labels = json.loads((record / "labels.geojson").read_text())
    assert sorted(f["properties"]["name"] for f in labels["features"]) == ["north", "south"]
    rings = [f["geometry"]["coordinates"][0] for f in labels["features"]]
    assert all(13.4 < x < 13.6 and 52.4 < y < 52.6 for ring in rings for x, y in ring)  # EPSG:4326
