"""`geocrop inspect`: per-class temporal profiles, counts and a page, from the series train reads."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
from click.testing import CliRunner

from geocrop.core.bands import S2_BANDS
from geocrop.core.temporal import TemporalGrid
from geocrop.data.labelled import LabelledSeries
from geocrop.viz.profiles import class_profiles, inspect_labels, ndvi
from tests.training.heads_synth import write_table


def _series() -> LabelledSeries:
    """Class 0: 11 series whose every band reads 0.00, 0.01, ..., 0.10 (one value per series, all steps);
    class 1: 3 series with red 0.1 and NIR 0.3 (NDVI 0.5)."""
    steps, bands = 4, len(S2_BANDS)
    flat = np.repeat(np.arange(11, dtype=np.float32)[:, None, None] / 100, steps, axis=1).repeat(
        bands, axis=2
    )
    green = np.full((3, steps, bands), 0.1, dtype=np.float32)
    green[..., S2_BANDS.index("B08")] = 0.3
    return LabelledSeries(
        values=np.concatenate([flat, green]),
        labels=np.array([0] * 11 + [1] * 3),
        groups=np.array([f"p{i // 2}" for i in range(11)] + ["q0", "q1", "q2"]),
        class_names=("fallow", "maize"),
        grid=TemporalGrid(dt.date(2021, 3, 1), dt.date(2021, 9, 1), steps),
        missing_bands=("B01",),
    )


def test_the_median_and_10_90_band_are_those_of_each_class_and_step() -> None:
    profiles = class_profiles(_series())
    assert profiles.variables == ("NDVI", *S2_BANDS)
    b04 = profiles.variables.index("B04")
    # 11 values 0.00..0.10: median 0.05, 10th percentile 0.01, 90th 0.09 (linear interpolation)
    np.testing.assert_allclose(profiles.median[0, :, b04], 0.05, atol=1e-6)
    np.testing.assert_allclose(profiles.low[0, :, b04], 0.01, atol=1e-6)
    np.testing.assert_allclose(profiles.high[0, :, b04], 0.09, atol=1e-6)
    np.testing.assert_allclose(profiles.median[1, :, 0], 0.5, atol=1e-6)  # NDVI (0.3 - 0.1) / 0.4
    assert profiles.series.tolist() == [11, 3] and profiles.parcels.tolist() == [6, 3]


def test_ndvi_is_nan_where_red_and_nir_are_not_positive() -> None:
    values = np.zeros((1, 2, len(S2_BANDS)))
    values[0, 1, S2_BANDS.index("B04")], values[0, 1, S2_BANDS.index("B08")] = 0.1, 0.3
    result = ndvi(values, S2_BANDS)
    assert np.isnan(result[0, 0]) and result[0, 1] == np.float64(0.3 - 0.1) / 0.4


def test_inspect_writes_figures_tables_and_a_page(tmp_path: Path) -> None:
    result = inspect_labels(_series(), tmp_path / "look", variables=["NDVI", "B08"])
    names = sorted(p.name for p in (tmp_path / "look").iterdir())
    assert names == ["counts.csv", "counts.png", "index.html", "profiles.csv", "profiles_b08.png",
                     "profiles_ndvi.png"]  # fmt: skip
    assert pd.read_csv(result.counts).to_dict("list") == {
        "class": ["fallow", "maize"],
        "series": [11, 3],
        "parcels": [6, 3],
    }
    table = pd.read_csv(result.profiles)
    assert len(table) == 2 * 13 * 4  # classes x variables x steps: every variable, drawn or not
    page = result.page.read_text(encoding="utf-8")
    assert "profiles_ndvi.png" in page and "B01 are absent" in page and "<td>11</td>" in page


def test_inspect_from_the_shell(tmp_path: Path) -> None:
    from geocrop.cli.main import cli

    table = write_table(tmp_path / "samples.csv", parcels=3, pixels=2)
    out = tmp_path / "look"
    args = ["inspect", "--labels", str(table), "--class-column", "crop", "--group-column", "parcel",
            "--variables", "NDVI,B04", "--out", str(out), "--progress", "none"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "18 series in 3 classes: maize 6, rapeseed 6, wheat 6" in result.stdout
    assert (out / "profiles_ndvi.png").exists() and (out / "profiles_b04.png").exists()
    assert not (out / "profiles_b08.png").exists()


def test_a_bad_variable_or_column_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    from geocrop.cli.main import cli

    table = write_table(tmp_path / "samples.csv", parcels=3, pixels=2)
    out = tmp_path / "look"
    base = ["inspect", "--labels", str(table), "--group-column", "parcel", "--out", str(out)]
    bad_band = CliRunner().invoke(cli, [*base, "--class-column", "crop", "--variables", "B13"])
    assert bad_band.exit_code == 2
    assert bad_band.stderr.startswith("geocrop: error: --variables") and "B13" in bad_band.stderr
    bad_column = CliRunner().invoke(cli, [*base, "--class-column", "kind"])
    assert bad_column.exit_code == 2 and len(bad_column.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_a_colour_table_sets_the_page_colours(tmp_path: Path) -> None:
    from geocrop.cli.main import cli

    table = write_table(tmp_path / "samples.csv", parcels=3, pixels=2)
    (tmp_path / "colours.csv").write_text("class,color\nmaize,#123456\n", encoding="utf-8")
    out = tmp_path / "look"
    args = ["inspect", "--labels", str(table), "--class-column", "crop", "--group-column", "parcel",
            "--variables", "NDVI", "--colors", str(tmp_path / "colours.csv"), "--out", str(out)]  # fmt: skip
    result = CliRunner().invoke(cli, [*args, "--progress", "none"])
    assert result.exit_code == 0, result.output
    assert "color:#123456'>&#9632;</span> maize" in (out / "index.html").read_text(encoding="utf-8")
