"""The CLI words the library's argument names as its own flags, in errors, JSON error events and warnings.

The library says `` `corruption_rate` `` (`tests/test_messages.py`); ``geocrop pretrain`` calls that option
``--corruption``, so its error line must say ``--corruption``. One function does this for the CLI
(`geocrop.cli.flags.in_flags`), from the running command's own options.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from geocrop.cli import progress
from geocrop.cli.flags import FLAG_ALIASES, in_flags
from geocrop.cli.main import _one_line_warning, cli
from geocrop.errors import GeocropWarning, InputError


def _command(name: str) -> click.Command:
    with click.Context(cli) as ctx:
        command = cli.get_command(ctx, name)
    assert command is not None
    return command


def test_errors_reach_the_command_line_as_flags(tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("id,crop\n1,maize\n", encoding="utf-8")
    cases = [
        (  # the library's `families` and `baselines` (training/evaluate.py)
            ["evaluate", "--labels", str(labels), "--class-column", "crop", "--families", "rf", "--out", "o"],
            "geocrop: error: --families rf: tree heads are baselines; give them with --baselines",
        ),
        (  # `corruption_rate` is the option `--corruption` of pretrain
            ["pretrain", "--out", str(tmp_path / "run"), "--corruption", "1.5"],
            "geocrop: error: --corruption 1.5 is not a fraction in [0, 1)",
        ),
    ]
    for args, start in cases:
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 2, result.output
        assert result.output.startswith(start), result.output
        assert "`" not in result.output


def test_in_flags_uses_the_running_commands_options() -> None:
    pretrain, train = _command("pretrain"), _command("train")
    text = "`corruption_rate` 2 is too high; lower `corruption_rate` or raise `epochs`"
    assert in_flags(text, pretrain) == "--corruption 2 is too high; lower --corruption or raise --epochs"
    # an argument that is not one of this command's options still reads as a flag
    assert in_flags("give `second_modality` s1", train) == "give --second-modality s1"
    # an alias a command set for an argument it spells otherwise (geocrop sample's `n`)
    with click.Context(_command("sample")) as ctx:
        ctx.meta[FLAG_ALIASES] = {"n": "--stratified"}
        assert in_flags("`n` 0: give at least 1") == "--stratified 0: give at least 1"
    # outside a command (a Python caller in the same process) the library's words stay
    assert in_flags("give more `epochs`") == "give more `epochs`"


def test_warnings_on_the_command_line_name_flags() -> None:
    with click.Context(_command("train")):
        line = _one_line_warning("the head may be underfit: give more `epochs`", UserWarning, "x.py", 1)
    assert line == "geocrop: warning: the head may be underfit: give more --epochs\n"


def test_the_json_error_event_has_flags_and_the_library_text(capsys: pytest.CaptureFixture[str]) -> None:
    """A front end (QGIS) gets both: the message in flags and ``text``/``param`` in library terms."""
    with click.Context(_command("pretrain")), pytest.raises(InputError), progress.reporting("json"):
        raise InputError("`corruption_rate` 2 is not a fraction", param="corruption_rate")
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    error = next(e for e in events if e.get("event") == "error")
    assert error["message"] == "--corruption 2 is not a fraction"
    assert error["param"] == "corruption_rate" and error["text"] == "`corruption_rate` 2 is not a fraction"


def test_a_warning_in_a_reporting_block_names_flags(capsys: pytest.CaptureFixture[str]) -> None:
    """The terminal line says the flag; the JSON event adds the library-terms text for a front end."""
    with click.Context(_command("pretrain")), progress.reporting("json") as reporter:
        warnings.warn("lower `corruption_rate` to keep more of each pixel", GeocropWarning, stacklevel=1)
        reporter.done({})
    captured = capsys.readouterr()
    assert "geocrop: warning: lower --corruption to keep more of each pixel" in captured.err
    events = [json.loads(line) for line in captured.out.splitlines() if line.startswith("{")]
    warning = next(e for e in events if e.get("event") == "warning")
    assert warning["message"] == "lower --corruption to keep more of each pixel"
    assert warning["text"] == "lower `corruption_rate` to keep more of each pixel"
