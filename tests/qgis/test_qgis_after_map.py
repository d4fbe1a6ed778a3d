"""The after-the-map algorithms in real QGIS with the real geocrop: per-field results, smoothing, points to
label and accuracy assessment, on the 300x300 synthetic map of `tests/io/out_helpers.py` (three crop
stripes: winter wheat | maize | sugar beet, a nodata corner). Each run takes seconds.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

from tests.io.out_helpers import CLASSES, write_synthetic_cog
from tests.qgis.qgis_harness import (
    QgisProfile,
    fake_geocrop,
    has_traceback,
    make_profile,
    qgis_available,
    report_of,
)

GEOCROP = Path(sys.executable).with_name("geocrop")  # the venv's real console script


def _registered() -> set[str]:
    return set(importlib.import_module("geocrop.cli.main")._COMMANDS)


def needs(*commands: str) -> pytest.MarkDecorator:
    """Skip until `geocrop COMMAND` is registered in `geocrop.cli.main` (the commands arrive one by one)."""
    missing = sorted(set(commands) - _registered())
    return pytest.mark.skipif(
        bool(missing), reason=f"geocrop {'/'.join(missing)} not registered in this checkout"
    )


pytestmark = [
    pytest.mark.qgis,
    pytest.mark.skipif(not qgis_available(), reason="QGIS (qgis_process.bin, python3-qgis) is not installed"),
]

NAMES = [c.name for c in CLASSES]  # winter wheat, maize, sugar beet
#: x of each stripe's middle (map x from 399 960 m, 10 m pixels, stripes of 100 pixels); the top rows.
_STRIPE_X = {"winter wheat": 400_460.0, "maize": 401_460.0, "sugar beet": 402_460.0}
_Y = 5_819_500.0


@pytest.fixture(scope="module")
def profile(tmp_path_factory: pytest.TempPathFactory) -> QgisProfile:
    return make_profile(tmp_path_factory.mktemp("qgis"))


@pytest.fixture(scope="module")
def crop_map(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic map with probability bands (Bayesian smoothing needs them)."""
    return write_synthetic_cog(tmp_path_factory.mktemp("map") / "crops.tif", n_prob_bands=len(CLASSES))


@pytest.fixture(scope="module")
def plain_map(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic map without probability bands."""
    return write_synthetic_cog(tmp_path_factory.mktemp("plain") / "plain.tif")


def _parcels(path: Path) -> Path:
    """One 200 m square parcel inside each stripe, and one off the map; EPSG:32633 GeoJSON."""

    def square(x: float, y: float) -> list[list[list[float]]]:
        return [
            [
                [x - 100, y - 100],
                [x + 100, y - 100],
                [x + 100, y + 100],
                [x - 100, y + 100],
                [x - 100, y - 100],
            ]
        ]

    centres = [(f"p{i}", x, _Y) for i, x in enumerate(_STRIPE_X.values())] + [("off", 410_000.0, _Y)]
    features = [
        {
            "type": "Feature",
            "properties": {"parcel": name},
            "geometry": {"type": "Polygon", "coordinates": square(x, y)},
        }
        for name, x, y in centres
    ]
    crs = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32633"}}
    path.write_text(json.dumps({"type": "FeatureCollection", "crs": crs, "features": features}))
    return path


def _run(profile: QgisProfile, algorithm: str, *params: str) -> tuple[int, str, dict]:
    completed, payload = profile.run_json("run", algorithm, "--", *params, f"GEOCROP_EXECUTABLE={GEOCROP}")
    text = completed.stdout + completed.stderr
    assert not has_traceback(text), text
    return completed.returncode, text, payload


def _drive(profile: QgisProfile, algorithm: str, params: dict, *outputs: str) -> dict:
    """Run like the dialog, outputs loaded into the project with their styles."""
    params = {**params, "GEOCROP_EXECUTABLE": str(GEOCROP)}
    completed = profile.python(
        "run", json.dumps(params), "--algorithm", algorithm, "--load-outputs", *outputs
    )
    return report_of(completed)


def test_qgis_process_lists_the_after_map_algorithms(profile: QgisProfile) -> None:
    listing = profile.run("list").stdout
    for line in (
        "geocrop:fieldresults\tCrop per field",
        "geocrop:smoothmap\tSmooth crop map",
        "geocrop:samplepoints\tPoints to label",
        "geocrop:assessaccuracy\tAssess accuracy and area",
    ):
        assert line in listing


@needs("fields")
def test_crop_per_field_loads_parcels_coloured_by_crop(
    profile: QgisProfile, crop_map: Path, tmp_path: Path
) -> None:
    import geopandas as gpd

    out = tmp_path / "out" / "fields.gpkg"
    params = {
        "MAP": str(crop_map),
        "PARCELS": str(_parcels(tmp_path / "parcels.geojson")),
        "OUTPUT": str(out),
    }
    report = _drive(profile, "geocrop:fieldresults", params, "OUTPUT")
    assert report["ok"], report["errors"]
    (loaded,) = report["loaded"]
    assert loaded["name"] == "Field results" and loaded["features"] == 4 and loaded["crs"] == "EPSG:32633"
    assert loaded["renderer"] == "categorizedSymbol"
    colours = {c["label"]: c["color"] for c in loaded["categories"]}
    assert colours == {**{c.name: c.color.lower() for c in CLASSES}, "no class": "#9e9e9e"}
    frame = gpd.read_file(out).set_index("parcel")
    assert frame.loc[["p0", "p1", "p2"], "class_name"].tolist() == NAMES  # each parcel's stripe
    assert frame.loc["p0", "class_share"] == 1.0 and frame.loc["p0", "prob_class_name"] == "winter wheat"
    assert frame.loc["off", "pixels"] == 0 and frame["class_name"].isna()["off"]  # off the map: empty


@needs("smooth")
def test_smooth_writes_a_styled_map_and_its_confidence(
    profile: QgisProfile, crop_map: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out" / "smooth.tif"
    code, text, payload = _run(
        profile, "geocrop:smoothmap", f"MAP={crop_map}", "METHOD=1", "WINDOW=5", "SIEVE=4", f"OUTPUT={out}"
    )
    assert code == 0, text
    assert payload["results"]["OUTPUT"] == str(out)
    assert payload["results"]["CONFIDENCE"] == str(out.with_name("smooth_confidence.tif"))
    assert out.with_name("smooth_confidence.tif").is_file()
    info = report_of(profile.python("inspect-raster", str(out)))
    assert info["valid"] and info["renderer"] == "paletted" and info["legend"] == NAMES


@needs("smooth")
def test_bayesian_smoothing_of_a_map_without_probabilities_names_the_parameters(
    profile: QgisProfile, plain_map: Path, tmp_path: Path
) -> None:
    out = tmp_path / "smooth.tif"
    code, text, _ = _run(profile, "geocrop:smoothmap", f"MAP={plain_map}", "METHOD=0", f"OUTPUT={out}")
    assert code != 0 and not out.exists()
    assert "'Crop map' plain.tif has no probability bands, which Bayesian smoothing needs" in text
    assert "use the modal method ('Method' modal)" in text


@needs("smooth")
def test_even_window_is_refused_in_geocrops_words(
    profile: QgisProfile, crop_map: Path, tmp_path: Path
) -> None:
    code, text, _ = _run(
        profile, "geocrop:smoothmap", f"MAP={crop_map}", "WINDOW=6", f"OUTPUT={tmp_path / 's.tif'}"
    )
    assert code != 0 and "'Window' 6: give an odd number of pixels from 3 to 21, e.g. 7" in text


@needs("sample", "assess")
def test_points_to_label_then_assess_accuracy(profile: QgisProfile, crop_map: Path, tmp_path: Path) -> None:
    """Stratified points, labelled (two of them wrongly), then the accuracy report."""
    import geopandas as gpd

    points = tmp_path / "points.gpkg"
    params = {"MAP": str(crop_map), "METHOD": 0, "COUNT": 30, "MIN_PER_CLASS": 5, "OUTPUT": str(points)}
    report = _drive(profile, "geocrop:samplepoints", params, "OUTPUT")
    assert report["ok"], report["errors"]
    (loaded,) = report["loaded"]
    assert loaded["name"] == "Points to label" and loaded["features"] == 30 and loaded["geometry"] == "Point"
    assert loaded["renderer"] == "categorizedSymbol" and "reference" in loaded["fields"]
    assert [c["label"] for c in loaded["categories"]] == [*NAMES, "no class"]

    frame = gpd.read_file(points)
    frame["reference"] = frame["map_class"]
    for row in (0, 1):  # what an interpreter found on the ground: another crop than the map's
        frame.loc[row, "reference"] = next(n for n in NAMES if n != frame.loc[row, "map_class"])
    labelled = tmp_path / "labelled.gpkg"
    frame.to_file(labelled, driver="GPKG")

    folder = tmp_path / "report"
    code, text, payload = _run(
        profile, "geocrop:assessaccuracy", f"MAP={crop_map}", f"REFERENCE={labelled}", f"OUTPUT={folder}"
    )
    assert code == 0, text
    results = payload["results"]
    assert results["OVERALL_ACCURACY"] == pytest.approx(
        json.loads((folder / "assessment.json").read_text())["overall_accuracy"]
    )
    assert 0.8 < results["OVERALL_ACCURACY"] < 1.0 and results["OVERALL_ACCURACY_CI95"] > 0
    assert results["REPORT"] == str(folder / "report.md") and (folder / "per_class.csv").is_file()
    summary = Path(results["SUMMARY"]).read_text()
    assert "Overall accuracy" in summary and all(name in summary for name in NAMES)


@needs("assess")
def test_assess_refuses_unlabelled_points_and_polygons(
    profile: QgisProfile, crop_map: Path, tmp_path: Path
) -> None:
    """Points whose reference column is empty, and parcels given where points are needed."""
    import geopandas as gpd
    from shapely.geometry import Point

    points = tmp_path / "unlabelled.gpkg"
    gpd.GeoDataFrame(
        {"reference": [None, None]}, geometry=[Point(400_460, _Y), Point(401_460, _Y)], crs=32633
    ).to_file(points)
    code, text, _ = _run(
        profile,
        "geocrop:assessaccuracy",
        f"MAP={crop_map}",
        f"REFERENCE={points}",
        f"OUTPUT={tmp_path / 'r'}",
    )
    assert code != 0 and "none of its 2 points has a class" in text
    code, text, _ = _run(
        profile,
        "geocrop:assessaccuracy",
        f"MAP={crop_map}",
        f"REFERENCE={_parcels(tmp_path / 'parcels.geojson')}",
        "CLASS_FIELD=parcel",
        f"OUTPUT={tmp_path / 'r2'}",
    )
    assert (
        code != 0 and "Reference points: the layer has polygon geometries, but geocrop needs points" in text
    )


def test_a_geocrop_without_the_command_says_to_upgrade(
    profile: QgisProfile, plain_map: Path, tmp_path: Path
) -> None:
    """The stand-in knows only `map` and `train`, like a geocrop from before the after-the-map commands."""
    old = fake_geocrop(tmp_path / "bin")
    completed = profile.run(
        "run", "geocrop:smoothmap", "--", f"MAP={plain_map}", "METHOD=1", f"OUTPUT={tmp_path / 's.tif'}",
        f"GEOCROP_EXECUTABLE={old}",
    )  # fmt: skip
    text = completed.stdout + completed.stderr
    assert completed.returncode != 0 and not has_traceback(text)
    assert f"Smooth crop map needs `geocrop smooth`, which the geocrop at '{old}' does not have" in text
    assert "pip install --upgrade" in text
