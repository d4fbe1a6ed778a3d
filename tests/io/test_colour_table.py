"""`--colors`: class colour tables as CSV, JSON or a QGIS style, laid over geocrop's own colours."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from geocrop.errors import GeocropWarning, InputError
from geocrop.io.classes import class_colours, classes_from_names
from geocrop.io.colour_table import read_colour_table, with_colours
from geocrop.io.style import qml_text

NAMES = ("maize", "wheat", "fallow")


def test_csv_json_and_rgb_columns_read_alike(tmp_path: Path) -> None:
    (tmp_path / "c.csv").write_text("class,color\nmaize,#FF0000\nwheat,00ff00\n", encoding="utf-8")
    (tmp_path / "rgb.csv").write_text("Name,R,G,B\nmaize,255,0,0\nwheat,0,255,0\n", encoding="utf-8")
    (tmp_path / "c.json").write_text('{"maize": "#ff0000", "wheat": "#00ff00"}', encoding="utf-8")
    (tmp_path / "l.json").write_text('[{"name": "maize", "color": "#ff0000"}, {"name": "wheat", "colour": '
                                     '"#00ff00"}]', encoding="utf-8")  # fmt: skip
    expected = {"maize": "#ff0000", "wheat": "#00ff00"}
    for name in ("c.csv", "rgb.csv", "c.json", "l.json"):
        assert read_colour_table(tmp_path / name) == expected, name


def test_a_qgis_style_gives_its_palette(tmp_path: Path) -> None:
    classes = classes_from_names(["maize", "wheat"], ["#123456", "#abcdef"])
    (tmp_path / "map.qml").write_text(qml_text(classes), encoding="utf-8")
    assert read_colour_table(tmp_path / "map.qml") == {"maize": "#123456", "wheat": "#abcdef"}


def test_the_table_overrides_only_the_classes_it_names_in_any_case() -> None:
    own = class_colours(NAMES)
    assert with_colours(NAMES, {"MAIZE": "#010203"}) == ("#010203", own[1], own[2])
    assert with_colours(NAMES, None) == own


def test_a_class_the_data_lacks_is_named_in_a_warning() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with_colours(NAMES, {"maiz": "#010203"})
    assert [str(w.message) for w in caught if w.category is GeocropWarning] == [
        "the colour table names 1 class(es) the data does not have (maiz); check their spelling"
    ]


def test_bad_tables_are_one_line_naming_the_argument(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("class,color\nmaize,red\n", encoding="utf-8")
    (tmp_path / "cols.csv").write_text("crop,hex\nmaize,#ff0000\n", encoding="utf-8")
    (tmp_path / "t.txt").write_text("x", encoding="utf-8")
    cases = {"bad.csv": "class 'maize' has colour 'red'; give #rrggbb", "cols.csv": "has columns crop, hex",
             "t.txt": "give a .csv, .json or .qml colour table"}  # fmt: skip
    for name, fragment in cases.items():
        with pytest.raises(InputError) as caught:
            read_colour_table(tmp_path / name)
        assert caught.value.param == "colors" and fragment in str(caught.value), name
