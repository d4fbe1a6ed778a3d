"""`geocrop smooth` from the shell: a smoothed map beside the input; bad input is one line, exit 2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from click.testing import CliRunner

from geocrop.cli.main import _ErrorHandlingGroup
from geocrop.cli.smooth import smooth
from geocrop.io.map_reader import open_map
from tests.post.test_smooth import random_probs, write_map

#: The real error boundary of `geocrop`, with only this command (main.py registers it for users).
GROUP = _ErrorHandlingGroup(name="geocrop", commands={"smooth": smooth})


def run(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(GROUP, ["smooth", *map(str, args), "--progress", "none"])
    return result.exit_code, result.stdout, result.stderr


def test_smooth_bayes_and_modal(tmp_path: Path) -> None:
    m = write_map(tmp_path / "crops.tif", random_probs(np.random.default_rng(0), 40, 50))
    code, out, err = run("--map", m, "--out", tmp_path / "s.tif", "--smoothness", "20", "--window", "5")
    assert (code, err) == (0, "") and out.startswith(f"smoothed map: {tmp_path / 's.tif'} (bayes; ")
    assert open_map(tmp_path / "s.tif").has_probabilities
    code, out, err = run("--map", m, "--out", tmp_path / "m.tif", "--method", "modal", "--sieve", "4")
    assert (code, err) == (0, "") and "(modal; " in out
    assert (tmp_path / "m.qml").is_file() and (tmp_path / "m.json").is_file()


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bare = write_map(
        tmp_path / "bare.tif", random_probs(np.random.default_rng(0), 20, 20), probabilities=False
    )
    old = tmp_path / "old.tif"
    old.write_text("keep me")
    cases = [
        (
            ["--map", bare],
            "rerun geocrop map with probabilities on, or use the modal method (--method modal)",
        ),
        (["--map", bare, "--method", "modal", "--window", "4"], "--window 4: give an odd number"),
        (["--map", bare, "--method", "median"], "--method"),
        (["--map", tmp_path / "none.tif"], "--map"),
    ]
    for args, message in cases:
        code, out, err = run(*args, "--out", old)
        assert code == 2 and out == "" and err.count("\n") == 1, err
        assert err.startswith("geocrop: error: ") and message in err, err
    code, _, err = run("--map", bare, "--out", bare, "--method", "modal")
    assert code == 2 and "--out" in err and "overwrite the input map" in err
    assert old.read_text() == "keep me"
