"""write_output_item: a pystac item for the crop map with classification and projection extensions."""

from __future__ import annotations

import datetime
import json
import re
from pathlib import Path

import pystac
import pytest
import rasterio
from rasterio.warp import transform_bounds

from geocrop.errors import SourceError
from geocrop.io.stac_item import class_slug, write_output_item
from tests.io.out_helpers import CLASSES, EPSG, SIZE, write_synthetic_cog


@pytest.fixture(scope="module")
def cog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_cog(tmp_path_factory.mktemp("item") / "crops.tif")


def test_item_round_trips_with_classes_projection_and_dates(cog: Path) -> None:
    out_dir = cog.parent / "stac"
    out_dir.mkdir()
    path = write_output_item(
        out_dir / "crops.json",
        cog=cog,
        classes=CLASSES,
        datetime_range=("2021-03-01", "2021-10-31"),
        model={"name": "tiny-test-model", "head": "lstm"},
        sources=["S2A_1", "S2B_2"],
        extra_assets={"style": cog.with_suffix(".qml"), "webmap": cog.with_suffix(".html")},
    )
    item = pystac.Item.from_file(str(path))
    assert item.id == "crops"
    assert item.datetime is None
    assert item.common_metadata.start_datetime is not None and item.common_metadata.end_datetime is not None
    assert item.common_metadata.start_datetime.isoformat() == "2021-03-01T00:00:00+00:00"
    assert item.common_metadata.end_datetime.isoformat() == "2021-10-31T23:59:59+00:00"
    assert item.properties["geocrop:model"]["name"] == "tiny-test-model"
    assert item.properties["geocrop:source_scene_ids"] == ["S2A_1", "S2B_2"]
    assert item.properties["proj:code"] == f"EPSG:{EPSG}"
    assert item.properties["proj:shape"] == [SIZE, SIZE]
    with rasterio.open(cog) as src:
        assert item.properties["proj:transform"] == list(src.transform)[:6]
    assert any("classification" in uri for uri in item.stac_extensions)
    assert any("projection" in uri for uri in item.stac_extensions)

    data = item.assets["data"]
    assert data.href == "../crops.tif"  # relative to the item, so the folder can move
    assert Path(data.get_absolute_href() or "") == cog
    assert data.media_type == pystac.MediaType.COG
    classes = data.extra_fields["classification:classes"]
    assert [(c["value"], c["name"], c["title"], c.get("color_hint")) for c in classes] == [
        (0, "winter_wheat", "winter wheat", "E6C619"),
        (1, "maize", "maize", "2E8B57"),
        (3, "sugar_beet", "sugar beet", "8A2BE2"),
        (255, "nodata", "no data", None),
    ]
    assert classes[-1]["nodata"] is True
    assert all(re.fullmatch(r"[0-9A-Za-z_-]+", c["name"]) for c in classes)  # classification v2 pattern
    assert item.assets["style"].href == "../crops.qml" and item.assets["webmap"].roles == ["webmap"]
    assert not list(out_dir.glob(".*partial"))


def test_default_bbox_is_the_cog_footprint(cog: Path, tmp_path: Path) -> None:
    path = write_output_item(
        tmp_path / "i.json", cog=cog, classes=CLASSES, datetime_range=("2021-03-01", "2021-10-31"), model="m"
    )
    payload = json.loads(path.read_text())
    with rasterio.open(cog) as src:
        expected = transform_bounds(src.crs, "EPSG:4326", *src.bounds, densify_pts=21)
    assert payload["bbox"] == pytest.approx(list(expected))
    ring = payload["geometry"]["coordinates"][0]
    assert ring[0] == ring[-1] and len(ring) == 5


def test_missing_cog_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="cannot be read"):
        write_output_item(
            tmp_path / "i.json",
            cog=tmp_path / "absent.tif",
            classes=CLASSES,
            datetime_range=("2021-03-01", "2021-10-31"),
            model="m",
        )


def test_class_slug() -> None:
    assert class_slug("sugar beet") == "sugar_beet"
    assert class_slug(" Winter-wheat (soft) ") == "Winter-wheat_soft"
    assert class_slug("???") == "class"


def test_item_names_the_model_its_training_data_and_its_source_scenes(cog: Path, tmp_path: Path) -> None:
    scene_dir = tmp_path / "scenes"
    scene = pystac.Item("S2A_1", None, None, datetime.datetime(2021, 5, 1), {})
    scene.set_self_href(str(scene_dir / "S2A_1.json"))  # a local static catalog item
    remote = pystac.Item("S2B_2", None, None, datetime.datetime(2021, 6, 1), {})
    remote.set_self_href("https://example.org/stac/collections/s2/items/S2B_2")
    loose = pystac.Item("S2B_3", None, None, datetime.datetime(2021, 7, 1), {})  # a GeoTIFF folder: no href
    provenance = {"data": "simulated", "labels": "labels.geojson", "season": ["2021-01-01", "2021-12-31"]}
    model = {"name": "demo", "architecture": "resmlp + transformer", "file": str(tmp_path / "m.safetensors")}
    (tmp_path / "out").mkdir()
    path = write_output_item(
        tmp_path / "out" / "crops.json",
        cog=cog,
        classes=CLASSES,
        datetime_range=("2021-03-01", "2021-10-31"),
        model={**model, "sha256": "ab" * 32},
        sources=["S2A_1", "S2B_2", "S2B_3"],
        source_items=[scene, remote, loose],
        provenance=provenance,
        notice="model trained on simulated data",
        extra_assets={"confidence": cog.with_name("crops_confidence.tif")},
    )
    text = path.read_text()
    assert str(tmp_path) not in text and "/work" not in text  # no absolute local path anywhere
    item = pystac.Item.from_file(str(path))
    assert any("mlm" in uri for uri in item.stac_extensions)
    props = item.properties
    assert props["mlm:name"] == "demo" and props["mlm:architecture"] == "resmlp + transformer"
    assert [c["title"] for c in props["mlm:output"][0]["classification:classes"]] == [c.name for c in CLASSES]
    assert props["geocrop:model"] == {"name": "demo", "architecture": "resmlp + transformer",
                                      "file": "m.safetensors", "sha256": "ab" * 32}  # fmt: skip
    assert props["geocrop:training"]["data"] == "simulated"
    assert props["geocrop:warning"] == "model trained on simulated data"
    assert "model trained on simulated data" in props["description"]
    derived = [link.href for link in item.links if link.rel == "derived_from"]
    assert derived == ["../scenes/S2A_1.json", "https://example.org/stac/collections/s2/items/S2B_2"]
    assert item.assets["confidence"].roles == ["data", "confidence"]
