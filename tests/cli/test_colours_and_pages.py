"""`--colors` on `map` and `smooth`, `--html` on `smooth` and `fields`: the chosen palette reaches every
output (COG colour table, .qml, STAC item, web page), the pages are written, and bad input is one line,
exit 2, with nothing written."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

from geocrop.cli.fields import fields
from geocrop.cli.main import _ErrorHandlingGroup
from geocrop.cli.smooth import smooth
from geocrop.io.map_reader import open_map
from tests.cli.test_map_cli import geocrop_map
from tests.inference.map_fixtures import TinyArea, tiny_area
from tests.post import test_fields, test_smooth

GROUP = _ErrorHandlingGroup(name="geocrop", commands={"smooth": smooth, "fields": fields})


def run(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(GROUP, [*map(str, args), "--progress", "none"])
    return result.exit_code, result.stdout, result.stderr


def palette_of(cog: Path) -> dict[str, str]:
    """Class name -> colour as the COG's colour table, the .qml and the STAC item each hold them."""
    layers = open_map(cog)
    with rasterio.open(cog) as src:
        table = src.colormap(1)
    cog_colours = {c.name: "#{:02x}{:02x}{:02x}".format(*table[c.value][:3]) for c in layers.classes}
    assert cog_colours == {c.name: c.color for c in layers.classes}
    qml = cog.with_suffix(".qml").read_text(encoding="utf-8")
    for name, colour in cog_colours.items():
        assert f'color="{colour}"' in qml and f'label="{name}"' in qml
    item = cog.with_suffix(".json")
    if item.is_file():  # every class list of the item (asset and model output) holds the same colours
        lists = list(_class_lists(json.loads(item.read_text(encoding="utf-8"))))
        assert lists
        for listed in lists:
            hints = {c["title"]: "#" + c["color_hint"].lower() for c in listed if c["value"] != 255}
            assert hints == cog_colours
    return cog_colours


def _class_lists(node: object) -> Iterator[list[dict[str, Any]]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "classification:classes":
                yield value
            else:
                yield from _class_lists(value)
    elif isinstance(node, list):
        for value in node:
            yield from _class_lists(value)


def test_smooth_with_colours_and_a_page(tmp_path: Path) -> None:
    m = test_smooth.write_map(
        tmp_path / "crops.tif", test_smooth.random_probs(np.random.default_rng(0), 30, 30)
    )
    table = tmp_path / "colours.csv"
    table.write_text("class,color\nMAIZE,#123456\n", encoding="utf-8")  # any case; wheat keeps its colour
    page = tmp_path / "smooth.html"
    code, out, err = run("smooth", "--map", m, "--out", tmp_path / "s.tif", "--colors", table, "--html", page)
    assert (code, err) == (0, "") and out.endswith(f"web page: {page}\n")
    assert palette_of(tmp_path / "s.tif") == {"wheat": "#e6ab02", "maize": "#123456", "beet": "#e7298a"}
    text = page.read_text(encoding="utf-8")
    assert "background:#123456" in text and "geocrop smoothed crop map" in text  # legend, title
    assert open_map(m).classes[1].color == "#ff7f00"  # the input map is left as it was


def test_fields_page_colours_each_parcel_by_its_class(tmp_path: Path) -> None:
    m = test_fields.write_map(tmp_path / "crops.tif")
    parcels = test_fields.write_parcels(tmp_path / "fields.gpkg")
    page = tmp_path / "fields.html"
    code, out, err = run(
        "fields", "--map", m, "--parcels", parcels, "--out", tmp_path / "r.gpkg", "--html", page
    )
    assert (code, err) == (0, "") and out.endswith(f"web page: {page}\n")
    text = page.read_text(encoding="utf-8")
    assert "winter wheat: 100% of its pixels" in text and "maize: 100% of its pixels" in text
    assert "winter wheat: 60% of its pixels" in text  # parcel 2: 6 wheat, 4 maize
    assert '"color": "#ff7f00"' in text and "no clear pixel" in text


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--html", "page.txt"], "--html page.txt: a web page's name must end in .html"),
        (["--colors", "missing.csv"], "--colors missing.csv does not exist"),
        (["--colors", "bad.json"], "class 'maize' has colour 'red'; give #rrggbb"),
        (["--colors", "bad.txt"], "give a .csv, .json or .qml colour table"),
    ],
)
def test_bad_pages_and_colour_tables_write_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    m = test_smooth.write_map(
        tmp_path / "crops.tif", test_smooth.random_probs(np.random.default_rng(1), 10, 10)
    )
    Path("bad.json").write_text('{"maize": "red"}', encoding="utf-8")
    Path("bad.txt").write_text("maize,#ffffff", encoding="utf-8")
    Path("old.tif").write_text("keep me", encoding="utf-8")
    before = sorted(p.name for p in tmp_path.iterdir())
    code, out, err = run("smooth", "--map", m, "--out", "old.tif", *extra)
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert err.startswith("geocrop: error: ") and message in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before and Path("old.tif").read_text() == "keep me"
    if "--html" in extra:  # fields refuses the same way
        parcels = test_fields.write_parcels(tmp_path / "p.gpkg")
        code, out, err = run("fields", "--map", m, "--parcels", parcels, "--out", "r.gpkg", *extra)
        assert code == 2 and out == "" and err.count("\n") == 1 and "--html" in err, err
        assert not Path("r.gpkg").exists()


@pytest.fixture(scope="module")
def area(tmp_path_factory: pytest.TempPathFactory) -> TinyArea:
    return tiny_area(tmp_path_factory.mktemp("area"))


def test_map_with_a_qgis_style_as_colour_table(area: TinyArea, tmp_path: Path) -> None:
    first = tmp_path / "first.tif"
    assert geocrop_map(area, first).exit_code == 0
    names = [c.name for c in open_map(first).classes]
    style = first.with_suffix(".qml").read_text(encoding="utf-8")
    edited = tmp_path / "edited.qml"  # a user's edit of the style geocrop wrote, as QGIS saves it
    edited.write_text(style.replace(open_map(first).classes[1].color, "#abcdef"), encoding="utf-8")
    out, page = tmp_path / "again.tif", tmp_path / "again.html"
    result = geocrop_map(area, out, "--colors", str(edited), "--html", str(page))
    assert result.exit_code == 0, result.output
    assert palette_of(out)[names[1]] == "#abcdef"
    assert "background:#abcdef" in page.read_text(encoding="utf-8")
    bad = tmp_path / "bad.csv"
    bad.write_text("crop\nmaize\n", encoding="utf-8")
    refused = geocrop_map(area, tmp_path / "no.tif", "--colors", str(bad))
    assert refused.exit_code == 2 and "--colors bad.csv has columns crop" in refused.output
    assert not list(tmp_path.glob("no*"))


def test_a_trained_bundle_carries_the_chosen_colours(tmp_path: Path) -> None:
    from geocrop.cli.main import cli
    from geocrop.io.bundle import load_bundle
    from tests.training.heads_synth import write_table

    table = write_table(tmp_path / "samples.parquet", parcels=5, pixels=4)
    colours = tmp_path / "colours.json"
    colours.write_text('[{"name": "Wheat", "color": "#0a0b0c"}]', encoding="utf-8")
    args = ["train", "--labels", str(table), "--class-column", "crop", "--group-column", "parcel"]
    args += ["--head", "rf", "--steps", "12", "--device", "cpu", "--progress", "none"]
    out = tmp_path / "m.safetensors"
    result = CliRunner().invoke(cli, [*args, "--out", str(out), "--colors", str(colours)])
    assert result.exit_code == 0, result.output
    classes = {c["name"]: c["color"] for c in load_bundle(out).metadata["classes"]}
    assert classes["wheat"] == "#0a0b0c" and classes["maize"] == "#ff7f00"  # maize keeps geocrop's colour
    colours.write_text('{"wheat": "#0a0b0"}', encoding="utf-8")
    refused = CliRunner().invoke(
        cli, [*args, "--out", str(tmp_path / "no.safetensors"), "--colors", str(colours)]
    )
    assert (
        refused.exit_code == 2
        and "--colors colours.json: class 'wheat' has colour '#0a0b0'" in refused.output
    )
    assert not list(tmp_path.glob("no*"))
