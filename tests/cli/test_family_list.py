"""`geocrop evaluate --families ''` names no head family: refused in one line, not run as "baselines only"."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from geocrop.cli.main import cli
from geocrop.errors import InputError
from geocrop.training.hparams import family_list


@pytest.mark.parametrize("given", ["", " ", ",", " , "])
@pytest.mark.parametrize("existing", [False, True], ids=["no-output", "existing-output"])
def test_empty_families_are_refused(tmp_path: Path, given: str, existing: bool) -> None:
    table = tmp_path / "samples.csv"
    pd.DataFrame({"crop": ["a", "b"], "B02_2021-04-01": [0.1, 0.2]}).to_csv(table, index=False)
    out = tmp_path / "report"
    if existing:
        out.mkdir()
        (out / "keep.txt").write_text("an earlier report")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    args = [
        "evaluate",
        "--labels",
        str(table),
        "--class-column",
        "crop",
        "--families",
        given,
        "--out",
        str(out),
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"geocrop: error: --families {given!r} names no head family; give families such as lstm,tempcnn "
        "(or none to run the tree baselines only)"
    ]
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
    assert not existing or (out / "keep.txt").read_text() == "an earlier report"


def test_family_list() -> None:
    assert family_list("lstm, tempcnn") == ["lstm", "tempcnn"]
    assert family_list("none") == []
    with pytest.raises(InputError, match="`families` '' names no head family") as info:
        family_list("")
    assert info.value.param == "families"
