"""`geocrop fields` from the shell: results per parcel, and one-line errors (exit 2) for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
from click.testing import CliRunner

from geocrop.cli.fields import fields
from geocrop.cli.main import _ErrorHandlingGroup
from tests.post.test_fields import UTM, cells, write_map, write_parcels

#: The real error boundary of `geocrop`, with only this command (main.py registers it for users).
GROUP = _ErrorHandlingGroup(name="geocrop", commands={"fields": fields})


def run(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(GROUP, ["fields", *map(str, args)])
    return result.exit_code, result.stdout, result.stderr


def test_fields_writes_one_row_per_parcel(tmp_path: Path) -> None:
    m = write_map(tmp_path / "crops.tif")
    parcels = write_parcels(tmp_path / "fields.gpkg")
    code, out, err = run(
        "--map", m, "--parcels", parcels, "--out", tmp_path / "r.parquet", "--progress", "none"
    )
    assert (code, err) == (0, "")
    assert "6 parcels, 4 with a class, mean probabilities" in out
    table = gpd.read_parquet(tmp_path / "r.parquet")
    assert table.set_index("parcel_id").loc[2, "class_share"] == 0.6
    code, out, _ = run("--map", m, "--parcels", parcels, "--out", tmp_path / "r.gpkg", "--progress", "json")
    events = [json.loads(line) for line in out.splitlines()]
    assert events[-1] == {"event": "done", "outputs": {"fields": str(tmp_path / "r.gpkg")}}
    assert code == 0 and any(e["event"] == "progress" for e in events)


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    m = write_map(tmp_path / "crops.tif")
    far = gpd.GeoDataFrame({"id": [1]}, geometry=[cells(500, 500, 505, 505)], crs=UTM)
    far.to_file(tmp_path / "far.gpkg")
    (tmp_path / "old.gpkg").write_text("keep me")
    plain = tmp_path / "plain.tif"
    plain.write_bytes(b"not a tiff")
    cases = [
        (["--parcels", tmp_path / "far.gpkg", "--map", m], "--parcels"),
        (["--parcels", tmp_path / "far.gpkg", "--map", plain], "--map"),
        (["--parcels", write_parcels(tmp_path / "p.gpkg"), "--map", m, "--column", "nope"], "--column"),
    ]
    for args, flag in cases:
        code, out, err = run(*args, "--out", tmp_path / "old.gpkg", "--progress", "none")
        assert code == 2 and out == ""
        assert err.startswith("geocrop: error: ") and err.count("\n") == 1, err
        assert flag in err and "`parcels`" not in err and "`map`" not in err and "`columns`" not in err
    _, _, err = run("--parcels", tmp_path / "far.gpkg", "--map", m, "--out", tmp_path / "old.gpkg")
    assert "--parcels far.gpkg do not overlap --map crops.tif" in err
    assert (tmp_path / "old.gpkg").read_text() == "keep me"
