"""The stratified estimators against the published worked example of Olofsson et al. (2014)."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest

from geocrop.errors import InputError
from geocrop.post.assess import Z95, AreaEstimates, stratified_estimates
from geocrop.post.assess_report import assess
from geocrop.post.sampling import stratified_sample
from tests.post.test_sampling import make_classes, write_map

CLASSES = ("deforestation", "forest gain", "stable forest", "stable non-forest")
#: Table 8: sample counts, rows = map class (stratum), columns = reference class.
TABLE_8 = np.array([[66, 0, 5, 4], [0, 55, 8, 12], [1, 0, 153, 11], [2, 1, 9, 313]])
#: Table 8: mapped area in 30 m pixels (0.09 ha each).
PIXELS = np.array([200_000, 150_000, 3_200_000, 6_450_000])


def olofsson() -> AreaEstimates:
    return stratified_estimates(TABLE_8, PIXELS, classes=CLASSES, pixel_area=900.0)


def test_olofsson_2014_worked_example() -> None:
    """Olofsson et al. (2014), Remote Sens. Environ. 148:42-57, Section 5 (Tables 8 and 9, p. 54-55).

    Sources of the published figures (the PDF itself was not at hand; every value below was checked in at
    least one of these and recomputed by hand from the formulas with the Table 8 matrix, agreeing to the
    printed precision):

    - the Table 8 counts and mapped pixels: the `mapaccuracy` R package (Hugo Costa,
      github.com/hagc/mapaccuracy, man/olofsson.Rd, "Example of table 8 in olofsson et al. (2014)", which
      compares its output with "left-hand of p. 54" (accuracies) and "right-hand of p. 54" (areas in ha));
    - a transcription of Tables 8-9 and Section 5.2 with page numbers kept as test data of an R package
      (Table 9 p_ij to 4 dp; user's 0.88/0.73/0.93/0.96 +- 0.07/0.10/0.04/0.02; producer's
      0.75/0.85/0.93/0.96; overall 0.95 +- 0.02; areas 21,158 / 11,686 / 285,770 / 581,386 ha
      +- 6,158 / 3,756 / 15,510 / 16,282 ha), and a JavaScript estimator verified against the same
      example ("OA 0.947, UA(1) 0.88 +- 0.07, PA(1) 0.75 +- 0.21, area(1) 235,086 +- 68,418 pixels").

    The deforestation area is 235,086 +- 68,418 **pixels** (= 21,158 +- 6,158 ha at 0.09 ha a pixel),
    not hectares. Two producer's-accuracy half-widths are misprinted in the paper (0.23 for forest gain and
    0.01 for stable non-forest, where the paper's own variance formula gives 0.254 and 0.018, as
    `mapaccuracy` and our own hand computation also give), so the formula values are asserted for those.
    """
    e = olofsson()
    # Table 9: estimated area proportions p_ij, 4 dp
    table_9 = [
        [0.0176, 0.0, 0.0013, 0.0011],
        [0.0, 0.0110, 0.0016, 0.0024],
        [0.0019, 0.0, 0.2967, 0.0213],
        [0.0040, 0.0020, 0.0179, 0.6212],
    ]
    np.testing.assert_allclose(e.proportions, table_9, atol=0.5e-4)
    # Section 5.2.1: accuracies +- 95 % half-width, 2 dp
    assert round(e.overall_accuracy, 2) == 0.95 and round(e.ci95(e.overall_accuracy_se), 2) == 0.02
    assert round(e.overall_accuracy, 3) == 0.947 and round(e.ci95(e.overall_accuracy_se), 3) == 0.018
    np.testing.assert_allclose(e.users_accuracy, [0.88, 0.73, 0.93, 0.96], atol=0.005)
    np.testing.assert_allclose(e.ci95(e.users_accuracy_se), [0.07, 0.10, 0.04, 0.02], atol=0.005)
    np.testing.assert_allclose(e.producers_accuracy, [0.75, 0.85, 0.93, 0.96], atol=0.005)
    np.testing.assert_allclose(e.ci95(e.producers_accuracy_se), [0.21, 0.254, 0.03, 0.018], atol=0.005)
    # Section 5.2.2: the deforestation area in pixels and every area in hectares, to the unit
    assert round(float(e.area_pixels[0])) == 235_086
    assert round(float(e.ci95(e.area_pixels_se[0]))) == 68_418
    assert e.area_ha is not None and e.area_ha_se is not None
    np.testing.assert_array_equal(np.rint(e.area_ha), [21_158, 11_686, 285_770, 581_386])
    np.testing.assert_array_equal(np.rint(e.ci95(e.area_ha_se)), [6_158, 3_756, 15_510, 16_282])


def test_proportions_are_consistent() -> None:
    e = olofsson()
    assert e.area_proportion.sum() == pytest.approx(1.0)
    assert e.proportions.sum(axis=1) == pytest.approx(e.weights)
    assert e.area_pixels.sum() == pytest.approx(PIXELS.sum())
    assert Z95 == 1.96


def test_perfect_map_has_no_error() -> None:
    e = stratified_estimates(np.diag([10, 20]), [300, 700], classes=("a", "b"))
    assert e.overall_accuracy == 1.0 and e.overall_accuracy_se == 0.0
    np.testing.assert_allclose(e.area_proportion, [0.3, 0.7])
    np.testing.assert_allclose(e.area_proportion_se, [0.0, 0.0])


def test_class_never_in_reference_has_nan_producers_accuracy() -> None:
    e = stratified_estimates([[5, 0], [3, 0]], [50, 50], classes=("a", "b"))
    assert np.isnan(e.producers_accuracy[1]) and e.users_accuracy[1] == 0.0
    data = e.to_dict()
    assert data["per_class"][1]["producers_accuracy"] is None  # JSON has no NaN


def test_class_without_mapped_pixels_is_no_stratum() -> None:
    e = stratified_estimates([[4, 1, 0], [1, 5, 0], [0, 0, 0]], [100, 100, 0], classes=("a", "b", "c"))
    assert e.weights[2] == 0 and np.isnan(e.users_accuracy[2])
    assert e.area_proportion.sum() == pytest.approx(1.0)


def test_reference_only_class_hand_computed() -> None:
    """Map classes a, b (600 and 400 pixels); the reference also names c, a crop the map cannot show.

    By hand: W = (0.6, 0.4); rows n_a = (8, 0, 2), n_b = (1, 3, 1); p_a = 0.6 (0.8, 0, 0.2) =
    (0.48, 0, 0.12), p_b = 0.4 (0.2, 0.6, 0.2) = (0.08, 0.24, 0.08); areas (0.56, 0.24, 0.20);
    O = 0.72; V(O) = 0.36 * 0.8 * 0.2 / 9 + 0.16 * 0.6 * 0.4 / 4 = 0.016; P_a = 0.48 / 0.56;
    V(p_.c) = 0.36 * 0.2 * 0.8 / 9 + 0.16 * 0.2 * 0.8 / 4 = 0.0128, so c covers 200 +- 1.96 * 113.1 px.
    """
    e = stratified_estimates(
        [[8, 0, 2], [1, 3, 1], [0, 0, 0]], [600, 400, 0], classes=("a", "b", "c"), pixel_area=100.0
    )
    np.testing.assert_allclose(e.weights, [0.6, 0.4, 0.0])  # the map classes' weights are unchanged
    np.testing.assert_allclose(e.proportions, [[0.48, 0, 0.12], [0.08, 0.24, 0.08], [0, 0, 0]])
    np.testing.assert_allclose(e.area_proportion, [0.56, 0.24, 0.20])
    assert e.overall_accuracy == pytest.approx(0.72) and e.overall_accuracy_se**2 == pytest.approx(0.016)
    np.testing.assert_allclose(e.users_accuracy[:2], [0.8, 0.6])
    assert np.isnan(e.users_accuracy[2])  # never mapped: user's accuracy undefined
    np.testing.assert_allclose(e.producers_accuracy, [0.48 / 0.56, 1.0, 0.0])  # pure omission
    assert e.area_proportion_se[2] ** 2 == pytest.approx(0.0128)
    assert e.area_pixels[2] == pytest.approx(200.0)
    assert e.ci95(e.area_pixels_se[2]) == pytest.approx(1.96 * 1000 * 0.0128**0.5)
    assert e.area_ha is not None and e.area_ha[2] == pytest.approx(2.0)  # 200 px of 100 m2
    assert e.strata.tolist() == [True, True, False]
    row = e.to_dict()["per_class"][2]
    assert row["reference_only"] and row["users_accuracy"] is None and row["producers_accuracy"] == 0.0
    assert row["sample_count"] == 0 and row["reference_count"] == 3


def test_other_class_hand_computed() -> None:
    """An `other` reference class in both strata: W = (0.5, 0.5); rows (3, 0, 1) and (0, 2, 2).

    By hand: p = (0.375, 0, 0.125), (0, 0.25, 0.25); areas (0.375, 0.25, 0.375); O = 0.625; every point
    labelled a or b was mapped so, P = (1, 1) and 0 for other; V(p_.other) = 0.25 * 0.25 * 0.75 / 3 +
    0.25 * 0.5 * 0.5 / 3 = 0.0364583.
    """
    e = stratified_estimates([[3, 0, 1], [0, 2, 2], [0, 0, 0]], [50, 50, 0], classes=("a", "b", "other"))
    np.testing.assert_allclose(e.area_proportion, [0.375, 0.25, 0.375])
    assert e.overall_accuracy == pytest.approx(0.625)
    np.testing.assert_allclose(e.producers_accuracy, [1.0, 1.0, 0.0])
    np.testing.assert_allclose(e.users_accuracy[:2], [0.75, 0.5])
    assert e.area_proportion_se[2] ** 2 == pytest.approx(0.25 * 0.25 * 0.75 / 3 + 0.25 * 0.5 * 0.5 / 3)


@pytest.mark.parametrize("row", [[1, 0], [0, 0]])
def test_stratum_needs_two_points(row: list[int]) -> None:
    with pytest.raises(InputError, match=r"'b' has \d reference point.*divides by n_i - 1") as info:
        stratified_estimates([[5, 0], row], [10, 10], classes=("a", "b"))
    assert info.value.param == "reference"


def test_bad_matrix() -> None:
    with pytest.raises(InputError, match="square"):
        stratified_estimates([[1, 2, 3]], [1])
    with pytest.raises(InputError, match="mapped_pixels"):
        stratified_estimates([[2, 0], [0, 2]], [1, -1])
    with pytest.raises(InputError, match="no mapped pixel"):
        stratified_estimates([[2, 0], [0, 2]], [1, 0])


# -- assess(): a generated map, its stratified sample labelled with known errors ----------------------


def labelled_points(tmp_path: Path) -> Path:
    """A stratified sample of the test map, labelled: maize ids 1-3 called wheat, names in other cases,
    one potato label given as a class value, and the points stored in lon/lat."""
    crop_map = tmp_path / "crops.tif"
    write_map(crop_map)
    stratified_sample(map=crop_map, n=60, out=tmp_path / "pts.gpkg", min_per_class=10, seed=5)
    pts = gpd.read_file(tmp_path / "pts.gpkg")
    labels = pts["map_class"].str.upper().tolist()
    maize = pts.index[pts["map_class"] == "maize"][:3]
    for i in maize:
        labels[i] = "Wheat"
    labels[int(pts.index[pts["map_class"] == "potato"][0])] = "2"  # maize, by value
    pts["reference"] = labels
    pts.to_crs(4326).to_file(tmp_path / "labelled.gpkg", driver="GPKG", engine="pyogrio")
    return tmp_path / "labelled.gpkg"


def test_assess_end_to_end(tmp_path: Path) -> None:
    reference = labelled_points(tmp_path)
    result = assess(map=tmp_path / "crops.tif", reference=str(reference), out=tmp_path / "report")
    e = result.estimates
    assert e.classes == ("wheat", "maize", "potato")  # soybean: neither mapped nor in the reference
    pts = gpd.read_file(tmp_path / "pts.gpkg")
    n_map = pts["map_class"].value_counts()
    expected = np.array(
        [[n_map["wheat"], 0, 0], [3, n_map["maize"] - 3, 0], [0, 1, n_map["potato"] - 1]], dtype=np.int64
    )
    np.testing.assert_array_equal(e.counts, expected)
    pixels = np.bincount(make_classes().ravel(), minlength=256)[[0, 2, 5]]
    want = stratified_estimates(expected, pixels, classes=e.classes, pixel_area=100.0)
    assert e.overall_accuracy == pytest.approx(want.overall_accuracy)
    np.testing.assert_allclose(e.area_pixels, want.area_pixels)
    assert e.area_ha is not None and e.area_ha.sum() == pytest.approx(pixels.sum() * 100 / 1e4)
    assert result.n_points == 60 and result.n_unlabelled == 0
    names = sorted(p.name for p in result.files)
    assert names == sorted(
        ["assessment.json", "per_class.csv", "error_matrix_counts.csv", "error_matrix_proportions.csv",
         "areas.png", "error_matrix.png", "report.md"]
    )  # fmt: skip
    data = json.loads((tmp_path / "report" / "assessment.json").read_text())
    assert data["overall_accuracy"] == pytest.approx(want.overall_accuracy)
    assert data["per_class"][1]["area_ha"] == pytest.approx(float(want.area_ha[1]))  # type: ignore[index]
    rows = list(csv.DictReader((tmp_path / "report" / "per_class.csv").open()))
    assert [r["class"] for r in rows] == ["wheat", "maize", "potato"]
    report = (tmp_path / "report" / "report.md").read_text()
    assert "Overall accuracy" in report and "![Error matrix](error_matrix.png)" in report
    assert [p.name for p in (tmp_path / "report").iterdir() if p.name.startswith(".")] == []


def test_assess_keeps_reference_only_classes(tmp_path: Path) -> None:
    """Labels the map lacks (a crop it cannot show, `other`) are columns of omission only."""
    reference = labelled_points(tmp_path)
    pts = gpd.read_file(reference)
    wheat = pts.index[pts["map_class"] == "wheat"]
    maize = pts.index[(pts["map_class"] == "maize") & (pts["reference"] == "MAIZE")]
    pts.loc[wheat[:2], "reference"] = "sugar_beet"
    pts.loc[maize[:3], "reference"] = ["other", "Other", "OTHER"]  # one class, any case
    pts.to_file(reference, driver="GPKG", engine="pyogrio")
    with pytest.warns(UserWarning, match=r"omission only .*: other \(3 points\), sugar_beet \(2 points\)"):
        result = assess(map=tmp_path / "crops.tif", reference=reference, out=tmp_path / "report")
    e = result.estimates
    assert e.classes == ("wheat", "maize", "potato", "other", "sugar_beet")
    n_map = gpd.read_file(tmp_path / "pts.gpkg")["map_class"].value_counts()
    expected = np.array(
        [[n_map["wheat"] - 2, 0, 0, 0, 2],
         [3, n_map["maize"] - 6, 0, 3, 0],
         [0, 1, n_map["potato"] - 1, 0, 0],
         [0, 0, 0, 0, 0],
         [0, 0, 0, 0, 0]],
        dtype=np.int64,
    )  # fmt: skip
    np.testing.assert_array_equal(e.counts, expected)
    pixels = np.bincount(make_classes().ravel(), minlength=256)[[0, 2, 5]]
    np.testing.assert_array_equal(e.mapped_pixels, [*pixels, 0, 0])  # map weights as without them
    want = stratified_estimates(expected, [*pixels, 0, 0], classes=e.classes, pixel_area=100.0)
    np.testing.assert_allclose(e.area_pixels, want.area_pixels)
    assert e.area_pixels[3] > 0 and e.area_pixels[4] > 0 and e.producers_accuracy[3:].tolist() == [0, 0]
    rows = list(csv.reader((tmp_path / "report" / "error_matrix_counts.csv").open()))
    assert rows[0][1:] == list(e.classes) and [r[0] for r in rows[1:]] == ["wheat", "maize", "potato"]
    report = (tmp_path / "report" / "report.md").read_text()
    assert (
        "- +- -" not in report
        and "| other | not mapped | 0 / 3 | undefined (not mapped) | 0.000 +- 0.000" in report
    )
    assert "Reference-only classes (other, sugar_beet)" in report


def test_assess_refuses_a_number_that_is_no_map_value(tmp_path: Path) -> None:
    reference = labelled_points(tmp_path)
    pts = gpd.read_file(reference)
    pts.loc[[0, 1, 2], "reference"] = ["12", "9", "7"]  # 7: soybean, declared in the map
    pts.to_file(reference, driver="GPKG", engine="pyogrio")
    with pytest.raises(
        InputError,
        match=r"column 'reference' holds 9, 12, not class values of the map \(0 wheat, 2 maize, 5 potato",
    ):
        assess(map=tmp_path / "crops.tif", reference=reference)


def test_report_areas_fit_the_map(tmp_path: Path) -> None:
    """Hectares with decimals so the smallest mapped class is not "0"; m2 on a map under 10 ha."""
    from geocrop.post.assess_report import area_unit, write_report

    counts = [[9, 1], [0, 2]]
    small = stratified_estimates(counts, [8000, 3], classes=("a", "b"), pixel_area=100.0)  # 80 ha, 0.03 ha
    assert area_unit(small) == (0.01, "ha", 3)
    write_report(small, tmp_path, inputs={"map": "m.tif", "reference": "r.gpkg", "class_column": "reference"})
    report = (tmp_path / "report.md").read_text()
    assert "| b | 0.030 | 2 / 3 |" in report and "| a | 80.000 |" in report
    tiny = stratified_estimates(counts, [800, 3], classes=("a", "b"), pixel_area=100.0)  # 8 ha
    assert area_unit(tiny) == (100.0, "m²", 0)
    big = stratified_estimates(counts, [8_000_000, 30_000], classes=("a", "b"), pixel_area=100.0)
    assert area_unit(big) == (0.01, "ha", 1)
    assert area_unit(stratified_estimates(counts, [80, 3], classes=("a", "b")))[1:] == ("pixels", 1)
    one_m2 = stratified_estimates(counts, [200_000, 3], classes=("a", "b"), pixel_area=1.0)  # 20 ha, 3 m2
    assert area_unit(one_m2) == (1.0, "m²", 1)  # 0.0003 ha would read 0.000


def test_assess_sets_unlabelled_points_aside_with_a_warning(tmp_path: Path) -> None:
    reference = labelled_points(tmp_path)
    pts = gpd.read_file(reference)
    pts.loc[[0, 1], "reference"] = None
    pts.loc[2, "reference"] = " "
    pts.to_file(reference, driver="GPKG", engine="pyogrio")
    with pytest.warns(UserWarning, match="3 of 60 reference points have no class"):
        result = assess(map=tmp_path / "crops.tif", reference=reference)
    assert result.n_points == 57 and result.n_unlabelled == 3 and result.files == ()


def test_docs_area_estimation_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/area-estimation.md: its ```python blocks run, in order, in one namespace, beside a test map."""
    write_map(tmp_path / "crops.tif")
    monkeypatch.chdir(tmp_path)
    doc = Path(__file__).resolve().parents[2] / "docs" / "area-estimation.md"
    blocks = re.findall(r"^```python\n(.*?)^```$", doc.read_text(encoding="utf-8"), flags=re.S | re.M)
    assert blocks
    namespace: dict[str, object] = {"__name__": "__docs__"}
    for number, block in enumerate(blocks, 1):
        exec(compile(block, f"{doc.name} block {number}", "exec"), namespace)
    assert (tmp_path / "report" / "report.md").is_file() and (tmp_path / "next.gpkg").is_file()
