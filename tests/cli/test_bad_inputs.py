"""The table of bad inputs: every row must be refused cleanly, whatever the command.

A row is ``(id, args, expected fragment of the message)``. Arguments may use placeholders filled per test:
``{tmp}`` (the test's folder), ``{out}`` (the output path of the command), ``{catalog}``, ``{bundle}``,
``{bbox}`` (a tiny real area, see `tests.inference.map_fixtures`), ``{file}`` (an existing text file),
``{dir}`` (an existing folder), ``{catalogs}`` (the module's catalogs with one refused asset href each,
see `catalogs`). Each row is run twice, once with nothing at the output path and once with
an existing output there, and must give all of:

- exit code 2;
- exactly one line on stderr, starting with ``geocrop: error:`` and holding the fragment; no traceback;
- nothing created at the output path (and no hidden temporaries beside it), an existing output untouched.

Owners of other commands add their rows to `ROWS` (``train``, ``evaluate`` ...).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from geocrop.cli.main import cli
from tests.inference.map_fixtures import END, START, TinyArea, tiny_area

DATES = ["--start", str(START), "--end", str(END)]
MAP = ["map", "--bbox", "{bbox}", *DATES, "--stac", "{catalog}", "--model", "{bundle}", "--progress", "none"]
MAP_NO_AOI = ["map", *DATES, "--stac", "{catalog}", "--model", "{bundle}", "--progress", "none"]
PRETRAIN = ["pretrain", "--s2", "{catalog}", "--planet", "{catalog}", "--epochs", "1"]
EVALUATE = ["evaluate", "--labels", "{file}", "--class-column", "crop"]

#: (id, args without --out, where --out goes: "file" | "folder" | None, expected fragment)
ROWS: list[tuple[str, list[str], str | None, str]] = [
    # --- generic: click's usage errors, reformatted once for every command ------------------------------
    ("generic-bad-date", ["map", "--bbox", "{bbox}", "--start", "2021-13-45", "--end", "2021-10-01"], "file",
     "map --start: '2021-13-45' is not a date; give YYYY-MM-DD"),
    ("generic-word-date", ["map", "--bbox", "{bbox}", "--start", "yesterday", "--end", "2021-10-01"], "file",
     "is not a date"),
    ("generic-missing-option", ["map", "--bbox", "{bbox}", "--end", "2021-10-01"], "file",
     "missing option --start"),
    ("generic-missing-out", ["map", "--bbox", "{bbox}", *DATES], None, "missing option --out"),
    ("generic-bad-choice", [*MAP, "--device", "gpu"], "file", "choose one of auto, cpu, cuda"),
    ("generic-no-such-option", [*MAP, "--frobnicate"], "file", "no such option --frobnicate"),
    ("generic-no-such-command", ["frobnicate"], None, "No such command 'frobnicate'"),
    ("generic-extra-argument", [*MAP, "stray"], "file", "unexpected extra argument"),
    ("generic-not-a-number", [*MAP, "--chunk-size", "big"], "file", "give a whole number"),
    ("generic-model-folder", [*MAP, "--model", "{dir}"], "file", "is a folder; give the bundle file"),
    ("generic-progress-choice", [*MAP, "--progress", "loud"], "file", "choose one of rich, json, none"),
    # --- map: outputs ----------------------------------------------------------------------------------
    ("map-out-json", MAP, "map.json", "must end in .tif or .tiff"),
    ("map-out-png", MAP, "map.png", "must end in .tif or .tiff; give e.g."),
    ("map-out-no-suffix", MAP, "map", "must end in .tif"),
    ("map-html-is-the-cog", [*MAP, "--html", "{out}"], "file", "--html"),
    ("map-html-not-html", [*MAP, "--html", "{tmp}/page.txt"], "file", "must end in .html"),
    ("map-out-missing-folder", MAP, "no/such/folder/map.tif", "does not exist"),
    ("map-out-is-a-folder", MAP, "folder.tif/", "is a folder"),
    # --- map: area -------------------------------------------------------------------------------------
    ("map-bbox-three-numbers", [*MAP_NO_AOI, "--bbox", "1,2,3"], "file", "has 3 numbers"),
    ("map-bbox-five-numbers", [*MAP_NO_AOI, "--bbox", "1,2,3,4,5"], "file", "has 5 numbers"),
    ("map-bbox-words", [*MAP_NO_AOI, "--bbox", "a,b,c,d"], "file", "not four numbers"),
    ("map-bbox-latitude-200", [*MAP_NO_AOI, "--bbox", "10,200,11,201"], "file", "longitude first"),
    ("map-bbox-min-max", [*MAP_NO_AOI, "--bbox", "14,53,13,52"], "file", "min >= max"),
    ("map-aoi-and-bbox", [*MAP, "--aoi", "{file}"], "file", "exactly one of --aoi"),
    ("map-no-area", MAP_NO_AOI, "file", "exactly one of --aoi"),
    ("map-aoi-missing", [*MAP_NO_AOI, "--aoi", "{tmp}/nowhere.geojson"], "file", "does not exist"),
    ("map-aoi-not-json", [*MAP_NO_AOI, "--aoi", "{tmp}/bad.geojson"], "file", "is not valid GeoJSON"),
    ("map-aoi-latitude-200", [*MAP_NO_AOI, "--aoi", "{tmp}/lat200.geojson"], "file", "reproject it to"),
    ("map-aoi-shapefile-without-prj", [*MAP_NO_AOI, "--aoi", "{tmp}/noprj.shp"], "file", ".prj"),
    ("map-aoi-a-point", [*MAP_NO_AOI, "--aoi", "{tmp}/point.geojson"], "file", "not an area"),
    # --- map: options ----------------------------------------------------------------------------------
    ("map-end-before-start", [*MAP, "--start", "2021-09-01", "--end", "2021-04-01"], "file",
     "not after --start"),
    ("map-chunk-size", [*MAP, "--chunk-size", "8"], "file", "outside 16..4096"),
    ("map-max-cloud", [*MAP, "--max-cloud", "150"], "file", "not a percentage"),
    ("map-model-missing", [*MAP, "--model", "{tmp}/none.safetensors"], "file", "does not exist"),
    ("map-model-not-a-bundle", [*MAP, "--model", "{file}"], "file", "{file}"),
    # --- map: sources ----------------------------------------------------------------------------------
    ("map-stac-missing", [*MAP, "--stac", "{tmp}/nowhere/catalog.json"], "file", "neither a URL"),
    ("map-stac-not-json", [*MAP, "--stac", "{file}"], "file", "could not be read"),
    ("map-stac-closed-port", [*MAP, "--stac", "http://127.0.0.1:1"], "file", "unreachable"),
    ("map-no-scenes", [*MAP, "--start", "2019-01-01", "--end", "2019-02-01"], "file", "no sentinel-2-l2a"),
    ("map-asset-escaping", [*MAP, "--stac", "{catalogs}/escaping/catalog.json"], "file",
     "--allow-any-asset-href"),
    ("map-asset-file-url", [*MAP, "--stac", "{catalogs}/fileurl/catalog.json"], "file",
     "--allow-any-asset-href"),
    ("map-asset-vsicurl", [*MAP, "--stac", "{catalogs}/vsicurl/catalog.json"], "file", "/vsi"),
    ("map-asset-loopback", [*MAP, "--stac", "{catalogs}/loopback/catalog.json"], "file", "local host"),
    ("map-asset-missing", [*MAP, "--stac", "{catalogs}/missing/catalog.json"], "file",
     "does not exist; restore it"),
    ("map-catalog-item-missing", [*MAP, "--stac", "{catalogs}/brokenlink/catalog.json"], "file",
     "repair the catalog"),
    ("map-netcdf-no-time", [*MAP, "--stac", "{tmp}/notime.nc"], "file", "has no time dimension"),
    ("map-netcdf-no-bands", [*MAP, "--stac", "{tmp}/nobands.nc"], "file",
     "lacks the required Sentinel-2 band(s) B08"),
    ("map-itemcollection-no-s2", [*MAP, "--stac", "{tmp}/landsat.json"], "file", "none of sentinel-2-l2a"),
    ("map-source-is-a-table", [*MAP, "--stac", "{tmp}/nos1.csv"], "file", "tables go to"),
    ("map-source-unknown-kind", [*MAP, "--stac", "{file}"], "file", "a NetCDF (.nc) or Zarr (.zarr) cube"),
    # --- pretrain --------------------------------------------------------------------------------------
    ("pretrain-temperature-0", [*PRETRAIN, "--temperature", "0"], "folder",
     "--temperature must be a positive"),
    ("pretrain-temperature-nan", [*PRETRAIN, "--temperature", "nan"], "folder", "--temperature"),
    ("pretrain-pixels-per-date-0", [*PRETRAIN, "--pixels-per-date", "0"], "folder", "--pixels-per-date"),
    ("pretrain-epochs-0", [*PRETRAIN, "--epochs", "0"], "folder", "--epochs must be >= 1"),
    ("pretrain-batch-1", [*PRETRAIN, "--batch-size", "1"], "folder", "--batch-size must be >= 2"),
    ("pretrain-lr-negative", [*PRETRAIN, "--lr", "-1"], "folder", "--lr must be a positive"),
    ("pretrain-corruption", [*PRETRAIN, "--corruption", "1.5"], "folder", "1.5"),
    ("pretrain-tolerance", [*PRETRAIN, "--tolerance-days", "-1"], "folder", "--tolerance-days"),
    ("pretrain-threads", [*PRETRAIN, "--threads", "0"], "folder", "--threads"),
    ("pretrain-device", [*PRETRAIN, "--device", "tpu"], "folder", "--device 'tpu'"),
    ("pretrain-width", [*PRETRAIN, "--width", "0"], "folder", "--width must be >= 1"),
    ("pretrain-bad-date", [*PRETRAIN, "--start", "2021-02-30"], "folder",
     "--start: '2021-02-30' is not a date"),
    ("pretrain-end-before-start", [*PRETRAIN, "--start", "2021-06-01", "--end", "2021-05-01"], "folder",
     "not after --start"),
    ("pretrain-bimodal-without-planet-or-s1", ["pretrain", "--s2", "{catalog}"], "folder",
     "give an --s1 source (or --planet)"),
    ("pretrain-planetscope-without-planet",
     ["pretrain", "--s2", "{catalog}", "--second-modality", "planetscope"], "folder", "needs --planet"),
    ("pretrain-second-modality-choice", [*PRETRAIN, "--second-modality", "radar"], "folder",
     "choose one of auto, planetscope, s1"),
    ("pretrain-s1-and-planet", [*PRETRAIN, "--second-modality", "s1"], "folder", "drop one of them"),
    ("pretrain-source-unknown", ["pretrain", "--s2", "{file}"], "folder",
     "a samples table (.parquet or .csv)"),
    ("pretrain-table-without-s1", ["pretrain", "--s2", "{tmp}/nos1.csv"], "folder", "no Sentinel-1 columns"),
    ("pretrain-s1-no-overlap", ["pretrain", "--s2", "{catalog}", "--s1", "{tmp}/far.nc"], "folder",
     "do not overlap in space or time"),
    ("pretrain-netcdf-no-time", ["pretrain", "--s2", "{tmp}/notime.nc", "--mode", "unimodal"], "folder",
     "has no time dimension"),
    ("pretrain-mode-choice", [*PRETRAIN, "--mode", "trimodal"], "folder", "choose one of bimodal, unimodal"),
    ("pretrain-out-is-a-file", PRETRAIN, "{file}", "is a file; give a folder path"),
    ("pretrain-out-under-a-file", PRETRAIN, "{file}/run", "is not a folder"),
    ("pretrain-missing-out", PRETRAIN, None, "missing option --out"),
    # --- evaluate: label-scarce runs -------------------------------------------------------------------
    ("evaluate-labels-per-class-0", [*EVALUATE, "--labels-per-class", "0"], "folder",
     "--labels-per-class 0: a run needs at least 1 labelled parcel per class"),
    ("evaluate-labels-per-class-negative", [*EVALUATE, "--labels-per-class", "5,-3"], "folder",
     "--labels-per-class -3"),
    ("evaluate-labels-per-class-word", [*EVALUATE, "--labels-per-class", "5,ten"], "folder",
     "--labels-per-class 'ten' is not a whole number"),
    ("evaluate-labels-per-class-fraction", [*EVALUATE, "--labels-per-class", "2.5"], "folder",
     "is not a whole number"),
    ("evaluate-draws-0", [*EVALUATE, "--labels-per-class", "5", "--draws", "0"], "folder", "--draws 0"),
    # --- simulate --------------------------------------------------------------------------------------
    ("simulate-size-4", ["simulate", "--size", "4"], "folder", "--size: 4 is not in the range 8<=x<=4096"),
    ("simulate-size-huge", ["simulate", "--size", "100000"], "folder", "give a value from 8 to 4096"),
    ("simulate-year", ["simulate", "--year", "1800"], "folder", "--year"),
    ("simulate-seed-word", ["simulate", "--seed", "abc"], "folder", "give a whole number"),
    ("simulate-out-is-a-file", ["simulate"], "{file}", "is a file; give a folder path"),
    ("simulate-missing-out", ["simulate"], None, "missing option --out"),
]  # fmt: skip


@pytest.fixture(scope="module")
def area(tmp_path_factory: pytest.TempPathFactory) -> TinyArea:
    return tiny_area(tmp_path_factory.mktemp("area"))


@pytest.fixture(scope="module")
def catalogs(area: TinyArea, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Copies of the area's catalog with one asset href each rows must refuse, written once per module:
    six copies per row were 500 files written, read twice by the snapshot and deleted later, most of a
    row's CPU. The rows check that this folder is left as it was, as they do for their own."""
    folder = tmp_path_factory.mktemp("catalogs")
    red = next(area.catalog.parent.rglob("assets/*/red.tif"))
    for name, href in {
        "escaping": os.path.relpath(red, folder / "escaping" / "sentinel-2-l2a" / "x"),
        "fileurl": f"file://{red}",
        "vsicurl": "/vsicurl/http://example.com/red.tif",
        "loopback": "http://127.0.0.1:9/red.tif",
        "missing": str(folder / "missing" / "gone" / "red.tif"),
        "brokenlink": None,
    }.items():
        _catalog_with_red_at(area, folder / name, href)
    return folder


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bad sources of `_bad_sources`, written once: writing their netCDF cubes cost 0.3 s CPU, most of
    a row's time; each row gets a fresh copy in its own folder."""
    folder = tmp_path_factory.mktemp("sources")
    _bad_sources(folder)
    return folder


def _inputs(tmp: Path, area: TinyArea, sources: Path, catalogs: Path) -> dict[str, str]:
    """The files rows refer to: bad AOIs and sources (a fresh copy in ``tmp``), the catalogs pointing
    where they should not (``catalogs``, shared by the module), a text file, a folder."""
    import shutil

    (tmp / "notes.txt").write_text("not a raster, not a catalog, not a bundle\n")
    (tmp / "a-folder").mkdir()
    (tmp / "bad.geojson").write_text("{not json")
    square = [[10.0, 200.0], [11.0, 200.0], [11.0, 201.0], [10.0, 201.0], [10.0, 200.0]]
    (tmp / "lat200.geojson").write_text(json.dumps({"type": "Polygon", "coordinates": [square]}))
    (tmp / "point.geojson").write_text(json.dumps({"type": "Point", "coordinates": [13.0, 52.0]}))
    for source in sources.iterdir():
        shutil.copy(source, tmp / source.name)
    return {"tmp": str(tmp), "catalog": str(area.catalog), "bundle": str(area.bundle), "bbox": area.bbox,
            "file": str(tmp / "notes.txt"), "dir": str(tmp / "a-folder"),
            "catalogs": str(catalogs)}  # fmt: skip


def _bad_sources(tmp: Path) -> None:
    """A cube without time, one without B08, an S1 cube far from the catalog, an ItemCollection of Landsat
    items, a samples table without S1 columns."""
    import xarray as xr

    from tests.io.cube_fixtures import write_cube, write_long_table

    write_cube(tmp / "notime.nc", months=1)
    ds = xr.load_dataset(tmp / "notime.nc").isel(t=0, drop=True)
    (tmp / "notime.nc").unlink()
    ds.to_netcdf(tmp / "notime.nc", engine="h5netcdf")
    write_cube(tmp / "nobands.nc", bands=("B02", "B03", "B04"))
    write_cube(tmp / "far.nc")
    write_long_table(tmp / "nos1.csv", samples=6, dates=3, s1=False)
    _shapefile_without_prj(tmp / "noprj.shp")
    feature = {"type": "Feature", "stac_version": "1.0.0", "id": "ls", "collection": "landsat-c2-l2",
               "geometry": {"type": "Point", "coordinates": [13.5, 52.5]}, "bbox": [13.5, 52.5, 13.5, 52.5],
               "properties": {"datetime": "2021-05-01T00:00:00Z"}, "links": [], "assets": {}}  # fmt: skip
    (tmp / "landsat.json").write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))


def _catalog_with_red_at(area: TinyArea, root: Path, href: str | None) -> None:
    """A copy of the area's catalog in which the first scene's red band points at ``href`` (None: the
    copy's second item file is deleted, a broken link)."""
    import shutil

    shutil.copytree(area.catalog.parent, root)
    for path in root.rglob("*.json"):
        path.write_text(path.read_text().replace(str(area.catalog.parent), str(root)))
    items = sorted(root.rglob("S2A_*.json"))
    if href is None:
        items[1].unlink()
        return
    data = json.loads(items[0].read_text())
    data["assets"]["red"]["href"] = href
    items[0].write_text(json.dumps(data))


def _shapefile_without_prj(path: Path) -> None:
    import geopandas as gpd
    from shapely.geometry import box

    gpd.GeoDataFrame({"id": [1]}, geometry=[box(13.0, 52.0, 13.01, 52.01)], crs="EPSG:4326").to_file(path)
    path.with_suffix(".prj").unlink()


def _args(row_args: list[str], out_kind: str | None, values: dict[str, str]) -> tuple[list[str], Path | None]:
    out: Path | None = None
    extra: list[str] = []
    if out_kind is not None:
        default = {"file": "map.tif", "folder": "run"}.get(out_kind, out_kind)
        out = Path(default.format(**values))
        if not out.is_absolute():
            out = Path(values["tmp"]) / default
        if default.endswith("/"):
            out.mkdir(parents=True, exist_ok=True)
        extra = ["--out", str(out)]
    values["out"] = str(out)
    return [a.format(**values) for a in row_args] + extra, out


def _stats(folder: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``folder`` with its size and modification time: a write, a new file or a removal
    shows, at the cost of a stat (the shared catalogs are read by every row)."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


def _snapshot(folder: Path) -> dict[str, bytes | None]:
    return {
        str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(folder.rglob("*"))
    }


@pytest.mark.parametrize("existing", [False, True], ids=["no-output", "existing-output"])
@pytest.mark.parametrize(("row", "args", "out_kind", "fragment"), ROWS, ids=[r[0] for r in ROWS])
def test_bad_input_is_refused_cleanly(
    area: TinyArea, sources: Path, catalogs: Path, tmp_path: Path, row: str, args: list[str],
    out_kind: str | None, fragment: str, existing: bool,
) -> None:  # fmt: skip
    values = _inputs(tmp_path, area, sources, catalogs)
    argv, out = _args(args, out_kind, values)
    if existing and (out is None or out.exists() or not out.parent.is_dir()):
        pytest.skip("no separate existing-output case for this row")
    if existing and out is not None:
        if out_kind == "folder":
            out.mkdir()
            (out / "keep.txt").write_text("an earlier run")
        else:
            out.write_bytes(b"an earlier map")
    before, shared = _snapshot(tmp_path), _stats(catalogs)
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 2, (result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("geocrop: error: "), lines[0]
    assert fragment.format(**values) in lines[0], lines[0]
    assert "Traceback" not in result.output
    assert _snapshot(tmp_path) == before, "the command created, changed or removed files"
    assert _stats(catalogs) == shared, "the command created, changed or removed files beside a catalog"


def test_real_process_error_is_one_line_with_quiet_default_logging(
    area: TinyArea, sources: Path, catalogs: Path, tmp_path: Path
) -> None:
    """A run in its own process whose scene files are missing: one stderr line, no GDAL/urllib3 log lines."""
    values = _inputs(tmp_path, area, sources, catalogs)
    argv, out = _args([*MAP, "--stac", "{catalogs}/missing/catalog.json"], "file", values)
    proc = subprocess.run(
        [sys.executable, "-m", "geocrop.cli.main", *argv], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("geocrop: error: scene "), proc.stderr
    assert out is not None and not out.exists()


def test_verbose_shows_log_lines_and_quiet_hides_warnings(area: TinyArea, tmp_path: Path) -> None:
    out = tmp_path / "map.tif"
    base = [a.format(catalog=area.catalog, bundle=area.bundle, bbox=area.bbox) for a in MAP]
    plain = CliRunner().invoke(cli, [*base, "--planet", "unused", "--out", str(tmp_path / "a.tif")])
    assert plain.exit_code == 0 and plain.stderr == "", plain.stderr
    loud = CliRunner().invoke(cli, ["-v", *base, "--planet", "unused", "--out", str(out)])
    assert loud.exit_code == 0, loud.output
    assert "INFO geocrop.inference.mapping: --planet unused is not used" in loud.stderr, loud.stderr
    bow = tmp_path / "bowtie.geojson"
    minx, miny, maxx, maxy = (float(v) for v in area.bbox.split(","))
    ring = [[minx, miny], [maxx, maxy], [maxx, miny], [minx, maxy], [minx, miny]]
    bow.write_text(json.dumps({"type": "Polygon", "coordinates": [ring]}))
    aoi_args = [a.format(catalog=area.catalog, bundle=area.bundle, bbox=area.bbox) for a in MAP_NO_AOI]
    quiet = CliRunner().invoke(cli, ["-q", *aoi_args, "--aoi", str(bow), "--dry-run", "--out", str(out)])
    assert quiet.exit_code == 0, quiet.output
    assert "warning" not in quiet.stderr
    normal = CliRunner().invoke(cli, [*aoi_args, "--aoi", str(bow), "--dry-run", "--out", str(out)])
    assert normal.exit_code == 0 and "geocrop: warning:" in normal.stderr
