"""`geocrop map` through the real command group: outputs, --dry-run, --progress json, and every bad input.

Every bad input must give exit code 2, one `geocrop: error:` line, no traceback and nothing at --out.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from geocrop.cli import main as main_module
from tests.inference.map_fixtures import END, START, TinyArea, bandless_catalog, clouded_catalog, tiny_area


@pytest.fixture(scope="module")
def area(tmp_path_factory: pytest.TempPathFactory) -> TinyArea:
    return tiny_area(tmp_path_factory.mktemp("area"))


def geocrop_map(area: TinyArea, out: Path, *extra: str, aoi: list[str] | None = None) -> Result:
    args = ["map", *(aoi or ["--bbox", area.bbox]), "--start", str(START), "--end", str(END)]
    args += [
        "--stac",
        str(area.catalog),
        "--model",
        str(area.bundle),
        "--out",
        str(out),
        "--chunk-size",
        "16",
    ]
    return CliRunner().invoke(main_module.cli, [*args, "--progress", "none", *extra])


def assert_clean_failure(result: Result, out: Path, match: str, *, journal_ok: bool = False) -> None:
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.strip().splitlines() if ln.startswith("geocrop: error:")]
    assert len(lines) == 1 and match in lines[0], result.output
    assert "Traceback" not in result.output
    assert not out.exists()
    # Tiles finished before a read error stay in the resume journal; failures before any tile leave none.
    assert journal_ok or not Path(f"{out}.parts").exists()
    assert not [p for p in out.parent.glob(f".{out.name}*")], "temporary files left behind"


def test_dry_run_reports_scenes_pixels_and_compute_without_writing(area: TinyArea, tmp_path: Path) -> None:
    out = tmp_path / "map.tif"
    result = geocrop_map(area, out, "--dry-run")
    assert result.exit_code == 0, result.output
    text = result.output
    assert "scenes: 6 sentinel-2-l2a" in text and "S2A_T33UUU_20210401" in text
    assert "pixels x timestamps: 324 x 6 = 1,944" in text  # 18 x 18: the AOI snapped outwards to 10 m
    assert "MB in the scenes' asset files (file sizes)" in text and "FLOP" in text
    assert not list(tmp_path.iterdir())


def test_progress_json_protocol(area: TinyArea, tmp_path: Path) -> None:
    out = tmp_path / "map.tif"
    args = ["map", "--bbox", area.bbox, "--start", str(START), "--end", str(END), "--stac", str(area.catalog)]
    args += ["--model", str(area.bundle), "--out", str(out), "--chunk-size", "16", "--progress", "json"]
    result = CliRunner().invoke(main_module.cli, args)
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stdout.splitlines()]
    fractions = [e["fraction"] for e in events if e["event"] == "progress"]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert events[-1]["event"] == "done" and events[-1]["outputs"]["cog"] == str(out)
    assert out.exists()
    failed = CliRunner().invoke(main_module.cli, [*args[:-2], "--progress", "json", "--start", "2030-01-01",
                                                  "--end", "2030-02-01"])  # fmt: skip
    assert failed.exit_code == 2
    last = json.loads(failed.stdout.splitlines()[-1])
    assert last["event"] == "error" and "no sentinel-2-l2a scenes" in last["message"]


def test_self_intersecting_polygon_is_repaired_with_a_warning(area: TinyArea, tmp_path: Path) -> None:
    minx, miny, maxx, maxy = (float(v) for v in area.bbox.split(","))
    bowtie = [[minx, miny], [maxx, maxy], [maxx, miny], [minx, maxy], [minx, miny]]
    aoi = tmp_path / "bowtie.geojson"
    aoi.write_text(json.dumps({"type": "Polygon", "coordinates": [bowtie]}))
    out = tmp_path / "map.tif"
    result = geocrop_map(area, out, aoi=["--aoi", str(aoi)])
    assert result.exit_code == 0, result.output
    assert "geocrop: warning:" in result.output and out.exists()


@pytest.mark.parametrize(
    ("case", "match"),
    [
        ("invalid-geojson", "AOI"),
        ("empty-geojson", "AOI"),
        ("aoi-in-no-scene", "lies in no sentinel-2-l2a scene"),
        ("too-large", "too large"),
        ("no-scenes-in-range", "no sentinel-2-l2a scenes"),
        ("unreachable-stac", "unreachable"),
        ("unwritable-output", "does not exist"),
        ("output-is-folder", "is a folder"),
        ("bundle-other-bands", "not Sentinel-2 L2A bands"),
        ("bundle-missing", "does not exist"),
        ("aoi-and-bbox", "exactly one of --aoi"),
    ],
)
def test_bad_input_fails_cleanly_before_reading(
    area: TinyArea, tmp_path: Path, case: str, match: str
) -> None:
    out = tmp_path / "map.tif"
    aoi: list[str] | None = None
    extra: list[str] = []
    if case == "invalid-geojson":
        (tmp_path / "bad.geojson").write_text("{not json")
        aoi = ["--aoi", str(tmp_path / "bad.geojson")]
    elif case == "empty-geojson":
        (tmp_path / "empty.geojson").write_text('{"type": "FeatureCollection", "features": []}')
        aoi = ["--aoi", str(tmp_path / "empty.geojson")]
    elif case == "aoi-in-no-scene":
        aoi = ["--bbox", "100.0,-10.0,100.001,-9.999"]
    elif case == "too-large":
        aoi = ["--bbox", "12.0,51.5,15.0,53.5"]  # ~200 x 220 km around the tile
    elif case == "no-scenes-in-range":
        extra = ["--start", "2019-01-01", "--end", "2019-02-01"]
    elif case == "unreachable-stac":
        extra = ["--stac", "http://127.0.0.1:1"]
    elif case == "unwritable-output":
        out = tmp_path / "no" / "such" / "folder" / "map.tif"
    elif case == "output-is-folder":
        out = tmp_path / "folder.tif"
        out.mkdir()
    elif case == "bundle-other-bands":
        from tests.inference.inference_helpers import write_tiny_bundle

        bundle = write_tiny_bundle(tmp_path / "planet.safetensors", bands=("blue", "green", "red", "nir"))
        extra = ["--model", str(bundle)]
    elif case == "bundle-missing":
        extra = ["--model", str(tmp_path / "nope.safetensors")]
    elif case == "aoi-and-bbox":
        aoi = ["--bbox", area.bbox, "--aoi", "x.geojson"]
    result = geocrop_map(area, out, *extra, aoi=aoi)
    if case == "output-is-folder":
        assert result.exit_code == 2 and match in result.output and "Traceback" not in result.output
        return
    assert_clean_failure(result, out, match)


def test_default_model_missing_names_the_command_to_create_it(
    area: TinyArea, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEOCROP_DEMO_BUNDLE", str(tmp_path / "missing.safetensors"))
    args = ["map", "--bbox", area.bbox, "--start", str(START), "--end", str(END), "--stac", str(area.catalog)]
    out = tmp_path / "map.tif"
    result = CliRunner().invoke(main_module.cli, [*args, "--out", str(out), "--progress", "none"])
    assert_clean_failure(result, out, "geocrop demo")


def test_every_pixel_clouded(area: TinyArea, tmp_path: Path) -> None:
    catalog = clouded_catalog(tmp_path / "clouds")
    out = tmp_path / "map.tif"
    result = geocrop_map(area, out, "--stac", str(catalog))
    assert_clean_failure(result, out, "clouded")


def test_collection_without_the_needed_bands(area: TinyArea, tmp_path: Path) -> None:
    catalog = bandless_catalog(tmp_path / "bandless")
    out = tmp_path / "map.tif"
    result = geocrop_map(area, out, "--stac", str(catalog))
    assert_clean_failure(result, out, "has no asset for bands")


def test_corrupt_cog(area: TinyArea, tmp_path: Path) -> None:
    root = tmp_path / "corrupt"
    shutil.copytree(area.catalog.parent, root / "catalog")
    # Items point at absolute asset paths (copies under the catalog's folder): repoint them at this copy,
    # then truncate one band file.
    for item_json in (root / "catalog").rglob("S2A_*.json"):
        item_json.write_text(item_json.read_text().replace(str(area.catalog.parent), str(root / "catalog")))
    victim = root / "catalog" / "assets" / "S2A_T33UUU_20210511" / "red.tif"
    victim.write_bytes(victim.read_bytes()[:600])
    out = tmp_path / "map.tif"
    result = geocrop_map(area, out, "--stac", str(root / "catalog" / "catalog.json"))
    assert_clean_failure(result, out, "red.tif", journal_ok=True)
