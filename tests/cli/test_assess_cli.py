"""`geocrop assess`: the click command on a generated map and labelled points; bad input is one line."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pytest
import shapely

from tests.cli.test_sample_cli import one_line_error, run
from tests.post.test_assess import labelled_points


@pytest.fixture
def labelled(tmp_path: Path) -> Path:
    return labelled_points(tmp_path)


def assess_args(tmp_path: Path, reference: Path, *extra: str) -> list[str]:
    return ["assess", "--map", str(tmp_path / "crops.tif"), "--reference", str(reference),
            "--out", str(tmp_path / "report"), *extra]  # fmt: skip


def test_assess_writes_the_report(tmp_path: Path, labelled: Path) -> None:
    result = run(*assess_args(tmp_path, labelled))
    assert result.exit_code == 0, result.output
    assert result.output.startswith("overall accuracy 0.") and "(60 points)" in result.output
    assert (tmp_path / "report" / "report.md").is_file() and (tmp_path / "report" / "areas.png").is_file()


def test_assess_class_column_option(tmp_path: Path, labelled: Path) -> None:
    pts = gpd.read_file(labelled).rename(columns={"reference": "crop"})
    pts.to_file(tmp_path / "crop.gpkg", driver="GPKG", engine="pyogrio")
    result = run(*assess_args(tmp_path, tmp_path / "crop.gpkg", "--class-column", "crop"))
    assert result.exit_code == 0, result.output


def edited(path: Path, tmp_path: Path, change: object) -> Path:
    pts = gpd.read_file(path)
    pts = change(pts)  # type: ignore[operator]
    out = tmp_path / "edited.gpkg"
    pts.to_file(out, driver="GPKG", engine="pyogrio")
    return out


def _outside(pts: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    pts.loc[pts.index[:2], "geometry"] = [shapely.Point(10.0, 10.0), shapely.Point(11.0, 10.0)]
    return pts


def _unknown(pts: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    pts.loc[pts.index[:2], "reference"] = ["barley", "Rye"]
    return pts


def _bad_value(pts: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    pts.loc[pts.index[:2], "reference"] = ["9", "7"]
    return pts


def _one_potato(pts: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    potato = pts.index[pts["map_class"] == "potato"]
    return pts.drop(potato[1:])


def _no_points(pts: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    return pts.iloc[:0]


@pytest.mark.parametrize(
    ("change", "extra", "expected"),
    [
        (_no_points, [], "holds no points; draw points on the map (geocrop sample), label them"),
        (_outside, [], "--reference: 2 points lie outside the map (ids 1, 2)"),
        (_bad_value, [], "column 'reference' holds 9, not class values of the map (0 wheat, 2 maize"),
        (_one_potato, [], "'potato' has 1 reference point(s); the variance estimator divides by n_i - 1"),
        (None, ["--class-column", "crop"], "has no column 'crop'; its columns are id, map_value, map_class, "
         "reference: choose one with --class-column"),
    ],
)  # fmt: skip
def test_assess_bad_input_is_one_line_and_writes_nothing(
    tmp_path: Path, labelled: Path, change: object, extra: list[str], expected: str
) -> None:
    reference = edited(labelled, tmp_path, change) if change is not None else labelled
    report = tmp_path / "report"
    report.mkdir()
    (report / "report.md").write_text("an earlier report")
    line = one_line_error(run(*assess_args(tmp_path, reference, *extra)))
    assert expected in line
    assert [p.name for p in report.iterdir()] == ["report.md"]
    assert (report / "report.md").read_text() == "an earlier report"


def test_assess_keeps_classes_the_map_lacks(tmp_path: Path, labelled: Path) -> None:
    """Labels the map cannot show are omission only: a warning names them, the report has their areas."""
    result = run(*assess_args(tmp_path, edited(labelled, tmp_path, _unknown)))
    assert result.exit_code == 0, result.output
    assert "geocrop: warning: reference classes that are not map classes are kept as omission only" in (
        result.output
    )
    assert "barley (1 point), Rye (1 point)" in result.output  # name order ignores case
    report = (tmp_path / "report" / "report.md").read_text()
    assert "| barley | not mapped | 0 / 1 |" in report and "| Rye | not mapped | 0 / 1 |" in report


def test_assess_refuses_a_map_that_is_not_a_geocrop_map(tmp_path: Path, labelled: Path) -> None:
    line = one_line_error(
        run("assess", "--map", str(tmp_path / "crops_confidence.tif"), "--reference", str(labelled),
            "--out", str(tmp_path / "r"))
    )  # fmt: skip
    assert "--map" in line and "confidence COG" in line
    assert not (tmp_path / "r").exists()
