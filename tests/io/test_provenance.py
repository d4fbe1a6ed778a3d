"""Bundle provenance: detection of simulated data, the record's fields, and the simulated-model guard."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from geocrop.errors import InputError
from geocrop.io.provenance import (
    SIMULATED_NOTICE,
    check_simulated_use,
    describe_provenance,
    file_sha256,
    labels_are_simulated,
    public_source,
    read_provenance,
    training_provenance,
)

PARCEL = {
    "type": "Polygon",
    "coordinates": [[[4.0, 50.0], [4.2, 50.0], [4.2, 50.1], [4.0, 50.1], [4.0, 50.0]]],
}


def _labels(path: Path, **members: object) -> Path:
    feature = {"type": "Feature", "properties": {"crop": "maize"}, "geometry": PARCEL}
    path.write_text(json.dumps({"type": "FeatureCollection", **members, "features": [feature]}))
    return path


def _source(path: Path, s2: str | None = None) -> SimpleNamespace:
    return SimpleNamespace(path=path, s2=s2, start=dt.date(2021, 3, 1), end=dt.date(2021, 10, 31))


def test_simulated_labels_are_recognised_by_their_mark_or_the_sample_marker(tmp_path: Path) -> None:
    assert labels_are_simulated(_labels(tmp_path / "sim.geojson", **{"geocrop:simulated": True}))
    real = _labels(tmp_path / "real.geojson")
    assert not labels_are_simulated(real)
    area = tmp_path / "area"
    area.mkdir()
    (area / "geocrop-sample.json").write_text(json.dumps({"simulated": True}))
    assert labels_are_simulated(_labels(area / "labels.geojson"))  # an older sample area without the mark


def test_record_of_real_labels_has_name_season_region_classes_accuracy(tmp_path: Path) -> None:
    record = training_provenance(
        _source(_labels(tmp_path / "fields.geojson")), class_names=("maize", "wheat"), accuracy=0.8123456
    )
    assert record["data"] == "real"
    assert record["labels"] == "fields.geojson"  # the name only, never the absolute path
    assert record["season"] == ["2021-03-01", "2021-10-31"]
    assert record["region"] == [4.0, 50.0, 4.2, 50.1]
    assert record["classes"] == ["maize", "wheat"]
    assert record["accuracy"]["value"] == 0.8123 and "parcel" in record["accuracy"]["protocol"]
    assert str(tmp_path) not in json.dumps(record)


def test_record_is_simulated_when_the_imagery_is(tmp_path: Path) -> None:
    catalog = tmp_path / "sample" / "catalog.json"
    catalog.parent.mkdir()
    catalog.write_text("{}")
    (catalog.parent / "geocrop-sample.json").write_text(json.dumps({"simulated": True}))
    record = training_provenance(
        _source(_labels(tmp_path / "fields.geojson"), s2=str(catalog)),
        class_names=["a"],
        accuracy=float("nan"),
    )
    assert record["data"] == "simulated" and record["accuracy"] is None


def test_samples_table_region_from_lon_lat(tmp_path: Path) -> None:
    table = tmp_path / "samples.csv"
    table.write_text("sample_id,lon,lat,crop\na,3.5,51.0,maize\nb,3.7,51.2,wheat\n")
    source = SimpleNamespace(path=table, s2=None, start=None, end=None)
    grid = SimpleNamespace(start=dt.date(2021, 1, 1), end=dt.date(2021, 12, 31))
    record = training_provenance(source, class_names=["maize", "wheat"], grid=grid)
    assert record["region"] == [3.5, 51.0, 3.7, 51.2] and record["season"] == ["2021-01-01", "2021-12-31"]


def test_old_bundles_read_as_unknown_and_paths_are_reduced_to_names() -> None:
    old = read_provenance({"classes": [{"value": 0, "name": "maize", "color": "#ffffff"}]})
    assert old["data"] == "unknown" and old["classes"] == ["maize"]
    assert "no provenance" in describe_provenance(old)
    sneaky = read_provenance({"provenance": {"data": "real", "labels": "/home/me/secret/fields.gpkg"}})
    assert sneaky["labels"] == "fields.gpkg"
    assert public_source("/home/me/data/catalog.json") == "data/catalog.json"
    assert (
        public_source("https://earth-search.aws.element84.com/v1")
        == "https://earth-search.aws.element84.com/v1"
    )


def test_simulated_model_is_refused_over_real_scenes_unless_allowed() -> None:
    simulated = {"data": "simulated"}
    real_scene = SimpleNamespace(properties={"platform": "sentinel-2a"})
    sim_scene = SimpleNamespace(properties={"geocrop:simulated": True})
    with pytest.raises(InputError, match="`allow_simulated_model`"):
        check_simulated_use(simulated, [real_scene, sim_scene], allow=False)
    assert check_simulated_use(simulated, [real_scene], allow=True) == SIMULATED_NOTICE
    assert check_simulated_use(simulated, [sim_scene], allow=False) == SIMULATED_NOTICE
    assert check_simulated_use({"data": "real"}, [real_scene], allow=False) is None
    assert check_simulated_use({"data": "unknown"}, [real_scene], allow=False) is None


def test_describe_and_hash(tmp_path: Path) -> None:
    line = describe_provenance(
        {"data": "real", "labels": "f.gpkg", "season": ["2023-01-01", "2023-12-31"], "region": [1, 2, 3, 4],
         "accuracy": {"metric": "overall_accuracy", "value": 0.5, "protocol": "held-out parcels"}}
    )  # fmt: skip
    assert line.startswith("real data; labels f.gpkg; season 2023-01-01..2023-12-31")
    assert "lon 1.000..3.000, lat 2.000..4.000" in line and "overall_accuracy 0.500" in line
    (tmp_path / "x").write_bytes(b"abc")
    assert file_sha256(tmp_path / "x").startswith("ba7816bf")
