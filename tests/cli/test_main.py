from __future__ import annotations

import click
from click.testing import CliRunner

from geocrop import __version__
from geocrop.cli import main as main_module
from geocrop.errors import InputError


def test_version_flag_prints_version() -> None:
    result = CliRunner().invoke(main_module.cli, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_geocrop_error_becomes_one_line_and_exit_code_2(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    @click.command("boom")
    def boom() -> None:
        raise InputError("AOI file x.geojson is empty; draw a polygon or pass --bbox")

    monkeypatch.setitem(main_module._COMMANDS, "boom", "tests.cli.test_main:_unused")
    monkeypatch.setattr(main_module._LazyGroup, "get_command", lambda self, ctx, name: boom)
    result = CliRunner().invoke(main_module.cli, ["boom"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "geocrop: error: AOI file x.geojson is empty; draw a polygon or pass --bbox"
    ]
    assert "Traceback" not in result.output


def test_info_json_names_versions_and_the_demo_bundle() -> None:
    import json
    from pathlib import Path

    result = CliRunner().invoke(main_module.cli, ["info", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["geocrop"] == __version__
    assert Path(info["demo_bundle"]).is_file()
