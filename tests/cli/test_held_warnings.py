"""Warnings wait until a command has passed every check: bad input found late in a run (a truncated or
corrupt scene, a COG href that is a text file, a truncated bundle, a bundle whose metadata disagrees with
its tensors) ends in exactly one ``geocrop: error:`` line, with no "model trained on simulated data"
warning before it, exit code 2 and nothing written; a run that succeeds still shows its warnings."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import click
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner, Result

from geocrop.cli.main import cli
from geocrop.errors import InputError
from geocrop.io.bundle import load_bundle, save_bundle
from geocrop.models.registry import build_head, state_to_numpy
from tests.cli.test_bad_inputs import _snapshot
from tests.inference.inference_helpers import tiny_metadata
from tests.inference.map_fixtures import END, START, TinyArea, tiny_area

NOTICE = "model trained on simulated data"
SIMULATED = {"data": "simulated", "labels": "labels.geojson", "season": [str(START), str(END)],
             "region": None, "classes": [], "accuracy": None}  # fmt: skip


@pytest.fixture(scope="module")
def area(tmp_path_factory: pytest.TempPathFactory) -> TinyArea:
    return tiny_area(tmp_path_factory.mktemp("area"))


@pytest.fixture(scope="module")
def bundles(area: TinyArea, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Bundles trained "on simulated data": a good one, and broken ones."""
    root = tmp_path_factory.mktemp("bundles")
    bundle = load_bundle(area.bundle)
    meta = {**bundle.metadata, "provenance": SIMULATED}
    good = save_bundle(root / "good.safetensors", bundle.tensors, meta)
    raw = good.read_bytes()
    (root / "truncated.safetensors").write_bytes(raw[: len(raw) - 500])
    wide = json.loads(json.dumps(meta))
    wide["backbone"]["width"] = 32  # tensors are 16 wide
    save_bundle(root / "width.safetensors", bundle.tensors, wide)
    transformer = {"name": "transformer", "in_features": 16, "n_classes": 3, "d_model": 16, "heads": 2,
                   "layers": 1}  # fmt: skip
    tensors = {k: v for k, v in bundle.tensors.items() if k.startswith("backbone.")}
    tensors |= state_to_numpy(build_head(transformer), "head")  # metadata still says lstm
    save_bundle(root / "lstm-over-transformer.safetensors", tensors, meta)
    return {p.stem: p for p in root.glob("*.safetensors")}


def _catalog_with_broken_red(area: TinyArea, root: Path, how: str) -> Path:
    """A copy of the area's catalog whose first scene's red band file is broken ``how``."""
    shutil.copytree(area.catalog.parent, root)
    for path in root.rglob("*.json"):
        path.write_text(path.read_text().replace(str(area.catalog.parent), str(root)))
    item = sorted(root.rglob("S2A_*.json"))[0]
    href = Path(json.loads(item.read_text())["assets"]["red"]["href"])
    red = href if href.is_absolute() else (item.parent / href).resolve()
    assert red.is_file() and str(red).startswith(str(root))
    raw = red.read_bytes()
    if how == "truncated-half":
        red.write_bytes(raw[: len(raw) // 2])
    elif how == "truncated-tail":
        red.write_bytes(raw[: len(raw) - 64])
    elif how == "text-file":
        red.write_text("this is a text file, not a GeoTIFF\n")
    else:  # zeroed after the first 400 bytes: the header survives, the tags and tiles do not
        red.write_bytes(raw[:400] + bytes(len(raw) - 400))
    return root / "catalog.json"


def _map(area: TinyArea, stac: Path, model: Path, out: Path, *extra: str) -> Result:
    args = ["map", "--bbox", area.bbox, "--start", str(START), "--end", str(END), "--stac", str(stac),
            "--model", str(model), "--out", str(out), "--chunk-size", "16", "--allow-simulated-model",
            *extra]  # fmt: skip
    return CliRunner().invoke(cli, args)


def _one_error(result: Result, *fragments: str) -> str:
    assert result.exit_code == 2, (result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("geocrop: error: "), lines[0]
    assert NOTICE not in result.output and "warning" not in result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("how", ["truncated-half", "truncated-tail", "text-file", "zeroed"])
def test_a_broken_scene_file_is_one_error_after_no_warning(area: TinyArea, bundles: dict[str, Path],
                                                           tmp_path: Path, how: str) -> None:  # fmt: skip
    stac = _catalog_with_broken_red(area, tmp_path / "catalog", how)
    work = tmp_path / "work"
    work.mkdir()
    before = _snapshot(tmp_path)
    line = _one_error(_map(area, stac, bundles["good"], work / "map.tif", "--progress", "none"))
    assert "red.tif" in line and "download it again or remove its item" in line
    assert _snapshot(tmp_path) == before, "the command created, changed or removed files"


@pytest.mark.parametrize(
    ("name", "fragments"),
    [
        ("truncated", ("truncated or corrupt, copy or write it again",)),
        ("width", ("(width: metadata says 32, tensors are 16)", "retrain, or re-export the bundle")),
        ("lstm-over-transformer",
         ("(metadata says lstm, the tensors hold transformer head weights)",
          "retrain, or re-export the bundle")),
    ],
)  # fmt: skip
@pytest.mark.parametrize("progress", ["none", "json"])
def test_a_broken_bundle_is_one_error_after_no_warning(area: TinyArea, bundles: dict[str, Path],
                                                       tmp_path: Path, name: str, fragments: tuple[str, ...],
                                                       progress: str) -> None:  # fmt: skip
    out = tmp_path / "map.tif"
    result = _map(area, area.catalog, bundles[name], out, "--progress", progress)
    _one_error(result, *fragments)
    assert list(tmp_path.iterdir()) == []
    if progress == "json":
        events = [json.loads(line)["event"] for line in result.stdout.splitlines() if line.startswith("{")]
        assert "warning" not in events and events[-1] == "error"


@pytest.mark.slow  # two maps: ~10 s
def test_a_good_run_still_shows_its_warning_once_and_before_done(area: TinyArea, bundles: dict[str, Path],
                                                                 tmp_path: Path) -> None:  # fmt: skip
    plain = _map(area, area.catalog, bundles["good"], tmp_path / "a.tif", "--progress", "none")
    assert plain.exit_code == 0, plain.output
    assert plain.stderr == f"geocrop: warning: {NOTICE}\n"
    as_json = _map(area, area.catalog, bundles["good"], tmp_path / "b.tif", "--progress", "json")
    assert as_json.exit_code == 0, as_json.output
    events = [json.loads(line) for line in as_json.stdout.splitlines() if line.startswith("{")]
    kinds = [e["event"] for e in events]
    assert kinds.count("warning") == 1 and kinds.index("warning") < kinds.index("done") == len(kinds) - 1


def _probe_commands() -> click.Group:
    """Two throwaway commands that warn, then fail or succeed (outside any progress block)."""

    @click.command("warn-then-fail")
    def warn_then_fail() -> None:
        warnings.warn("a degraded result", UserWarning, stacklevel=1)
        raise InputError("`thing` is bad; give a good one", param="thing")

    @click.command("warn-then-succeed")
    def warn_then_succeed() -> None:
        warnings.warn("a degraded result", UserWarning, stacklevel=1)
        click.echo("done")

    return click.Group(commands=[warn_then_fail, warn_then_succeed])


def test_every_command_holds_its_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    for command in _probe_commands().commands.values():
        monkeypatch.setitem(cli.commands, str(command.name), command)
    failed = CliRunner().invoke(cli, ["warn-then-fail"])
    assert failed.exit_code == 2 and failed.stderr == "geocrop: error: --thing is bad; give a good one\n"
    passed = CliRunner().invoke(cli, ["warn-then-succeed"])
    assert passed.exit_code == 0 and passed.stderr == "geocrop: warning: a degraded result\n"
    assert passed.stdout == "done\n"


def _many_class_bundle(root: Path, n_classes: int) -> Path:
    """A bands-only bundle (random weights) over ``n_classes`` classes: a frame of > 100 columns."""
    meta = tiny_metadata(backbone=False)
    meta["classes"] = [{"value": i, "name": f"crop{i:03d}", "color": "#336699"} for i in range(n_classes)]
    meta["head"] = {**meta["head"], "n_classes": n_classes}
    return save_bundle(root / "many.safetensors", state_to_numpy(build_head(meta["head"]), "head"), meta)


def _wide_table(path: Path, n: int, *, value: float | None) -> Path:
    rng = np.random.default_rng(0)
    days = pd.date_range(str(START), str(END), periods=6)
    columns: dict[str, object] = {"crop": ["a", "b"] * (n // 2)}
    for day in days:
        for band in ("B02", "B03", "B04", "B08", "B11"):
            columns[f"{band}_{day.date()}"] = (
                rng.uniform(0.02, 0.4, n).astype(np.float32)
                if value is None
                else np.full(n, value, np.float32)
            )
    pd.DataFrame(columns).to_parquet(path)
    return path


def test_predict_writes_a_wide_frame_without_a_pandas_warning(tmp_path: Path) -> None:
    model = _many_class_bundle(tmp_path, 120)
    table = _wide_table(tmp_path / "t.parquet", 10, value=None)
    out = tmp_path / "p.csv"
    with warnings.catch_warnings():
        warnings.simplefilter("always")  # a warning pandas gives once per place must show here
        args = ["predict", "--model", str(model), "--samples", str(table), "--out", str(out)]
        result = CliRunner().invoke(cli, [*args, "--class-column", "crop"])
    assert result.exit_code == 0, result.output
    assert "fragmented" not in result.stderr and "PerformanceWarning" not in result.stderr, result.stderr
    frame = pd.read_csv(out)
    assert list(frame.columns[:4]) == ["sample_id", "crop", "predicted", "confidence"]
    assert frame.shape == (10, 4 + 120)


def test_predict_on_an_all_nan_table_is_one_line(tmp_path: Path) -> None:
    model = _many_class_bundle(tmp_path, 120)
    table = _wide_table(tmp_path / "t.parquet", 10, value=float("nan"))
    out = tmp_path / "p.csv"
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        result = CliRunner().invoke(cli, ["predict", "--model", str(model), "--samples", str(table),
                                          "--out", str(out)])  # fmt: skip
    line = _one_error(result, "holds no finite band value; check its band columns")
    assert str(table) in line and not out.exists()


def test_numpy_scalars_print_plainly(monkeypatch: pytest.MonkeyPatch) -> None:
    """The edge's last guard: a message that formatted numpy scalars with !r reads as plain values."""
    fail = {"now": True}

    @click.command("numpy-names")
    def numpy_names() -> None:
        warnings.warn(f"class {np.str_('maize')!r} has {np.int64(3)!r} parcels", UserWarning, stacklevel=1)
        if fail["now"]:
            raise InputError(f"labels hold a single class ({np.str_('sunflower (oil)')!r}); add crops")

    monkeypatch.setitem(cli.commands, "numpy-names", numpy_names)
    result = CliRunner().invoke(cli, ["numpy-names"])
    assert result.stderr == "geocrop: error: labels hold a single class ('sunflower (oil)'); add crops\n"
    fail["now"] = False
    result = CliRunner().invoke(cli, ["numpy-names"])
    assert result.exit_code == 0 and result.stderr == "geocrop: warning: class 'maize' has 3 parcels\n"


def test_dependencies_deprecations_are_not_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    """A valid run shows no third-party FutureWarning/DeprecationWarning (they say nothing of the data)."""

    @click.command("deprecations")
    def deprecations() -> None:
        warnings.warn("a future pandas will change this", FutureWarning, stacklevel=1)
        warnings.warn("shapely.ops.transform is deprecated", DeprecationWarning, stacklevel=1)
        click.echo("done")

    monkeypatch.setitem(cli.commands, "deprecations", deprecations)
    with warnings.catch_warnings():
        warnings.simplefilter("always")  # as under pytest or python -W always: the command decides
        result = CliRunner().invoke(cli, ["deprecations"])
    assert result.exit_code == 0 and result.stderr == "" and result.stdout == "done\n"
