"""Figures in error lines are true: the STAC attempts really made, a duplicate's own row count."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner, Result

from geocrop.cli.main import cli
from geocrop.io.stac import API_CONNECT_RETRIES
from tests.cli.test_bad_inputs import _snapshot
from tests.data.test_table_messages import _long
from tests.inference.map_fixtures import END, START, TinyArea, tiny_area


def _one_error(result: Result, *fragments: str) -> str:
    assert result.exit_code == 2, (result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("geocrop: error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def area(tmp_path_factory: pytest.TempPathFactory) -> TinyArea:
    return tiny_area(tmp_path_factory.mktemp("area"))


def test_a_refused_stac_api_names_the_attempts_made(area: TinyArea, tmp_path: Path) -> None:
    out = tmp_path / "map.tif"
    args = ["map", "--bbox", area.bbox, "--start", str(START), "--end", str(END), "--model", str(area.bundle),
            "--stac", "http://127.0.0.1:9/stac", "--out", str(out), "--progress", "none"]  # fmt: skip
    line = _one_error(CliRunner().invoke(cli, args), "is unreachable", "check the URL and your network")
    assert f"no connection after {API_CONNECT_RETRIES + 1} attempts over" in line
    assert list(tmp_path.iterdir()) == []


def test_a_conflicting_duplicate_row_names_its_own_count(tmp_path: Path) -> None:
    table = _long(26)
    path = tmp_path / "samples.csv"
    pd.concat([table, table[table["date"] == "2021-04-01"].assign(B02=0.5)]).to_csv(path, index=False)
    out = tmp_path / "model.safetensors"
    before = _snapshot(tmp_path)
    args = ["train", "--labels", str(path), "--class-column", "crop", "--head", "rf", "--out", str(out)]
    _one_error(
        CliRunner().invoke(cli, [*args, "--progress", "none"]),
        "sample 's00' has 2 rows for date 2021-04-01 with different values (25 more sample-dates like it); "
        "keep one row per sample and date",
    )
    assert _snapshot(tmp_path) == before
