"""Every `geocrop` command's options and arguments, compared with a checked-in record.

The record (``options_golden.json`` beside this file) lists, for each command and subcommand reached from
`geocrop.cli.main.cli`, every parameter's names (its flags), type (click's description of it: choices,
ranges, path rules, the class of a custom type and its metavar), default, whether it is required,
repeatable (``multiple``), a flag or a counter, its ``nargs``, environment variable and whether it is
hidden. Help wording is left out, so rewording ``--help`` never fails this test; any change in what a
command accepts does.

A change that is meant (a new option, a new default, a choice added): regenerate the record with

    GEOCROP_UPDATE_OPTIONS_GOLDEN=1 .venv/bin/pytest tests/cli/test_options_golden.py

and say in the commit message which option changed and why; the diff of the JSON shows exactly what.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from geocrop.cli.main import _COMMANDS, cli

GOLDEN = Path(__file__).with_name("options_golden.json")
UPDATE_VAR = "GEOCROP_UPDATE_OPTIONS_GOLDEN"

#: Keys of click's `Parameter.to_info_dict` that are wording, not behaviour.
_WORDING = {"help"}


def _plain(value: Any) -> Any:
    """``value`` as JSON: tuples become lists, paths and other objects their ``repr``."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if callable(value):
        return f"<callable {getattr(value, '__qualname__', type(value).__name__)}>"
    return repr(value)


def _parameter(param: click.Parameter) -> dict[str, Any]:
    info = param.to_info_dict()
    return {key: _plain(info[key]) for key in sorted(info) if key not in _WORDING}


def _command(command: click.Command, ctx: click.Context) -> dict[str, Any]:
    record: dict[str, Any] = {"params": [_parameter(p) for p in command.params]}
    if isinstance(command, click.Group):
        names = _COMMANDS if command is cli else command.list_commands(ctx)
        record["commands"] = {}
        for name in sorted(names):
            sub = command.get_command(ctx, name)
            assert sub is not None, f"{ctx.command_path} {name}: listed but not found"
            with click.Context(sub, info_name=name, parent=ctx) as sub_ctx:
                record["commands"][name] = _command(sub, sub_ctx)
    return record


def current_options() -> dict[str, Any]:
    """The options and arguments of `geocrop` and every subcommand, as recorded in the golden file."""
    with click.Context(cli, info_name="geocrop") as ctx:
        return _command(cli, ctx)


def _diff(expected: dict[str, Any], actual: dict[str, Any], path: str = "geocrop") -> list[str]:
    """Readable differences: a command or a parameter added, removed or changed (which keys)."""
    lines: list[str] = []
    exp_params = {p["name"]: p for p in expected.get("params", [])}
    act_params = {p["name"]: p for p in actual.get("params", [])}
    for name in sorted(exp_params.keys() - act_params.keys()):
        lines.append(f"{path}: parameter {name!r} removed")
    for name in sorted(act_params.keys() - exp_params.keys()):
        lines.append(f"{path}: parameter {name!r} added")
    for name in sorted(exp_params.keys() & act_params.keys()):
        old, new = exp_params[name], act_params[name]
        for key in sorted(old.keys() | new.keys()):
            if old.get(key) != new.get(key):
                lines.append(f"{path} {name}.{key}: {old.get(key)!r} -> {new.get(key)!r}")
    if [p["name"] for p in expected.get("params", [])] != [p["name"] for p in actual.get("params", [])]:
        lines.append(f"{path}: parameter order changed (it is the order of --help)")
    exp_cmds, act_cmds = expected.get("commands", {}), actual.get("commands", {})
    for name in sorted(exp_cmds.keys() - act_cmds.keys()):
        lines.append(f"{path}: command {name!r} removed")
    for name in sorted(act_cmds.keys() - exp_cmds.keys()):
        lines.append(f"{path}: command {name!r} added")
    for name in sorted(exp_cmds.keys() & act_cmds.keys()):
        lines.extend(_diff(exp_cmds[name], act_cmds[name], f"{path} {name}"))
    return lines


def test_every_command_accepts_what_the_record_says() -> None:
    actual = current_options()
    if os.environ.get(UPDATE_VAR) == "1":
        GOLDEN.write_text(json.dumps(actual, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    expected = json.loads(GOLDEN.read_text(encoding="utf-8"))
    differences = _diff(expected, actual)
    assert not differences, (
        "the commands' options differ from tests/cli/options_golden.json:\n  "
        + "\n  ".join(differences)
        + f"\nif this is meant, rerun with {UPDATE_VAR}=1 and say so in the commit message"
    )


def test_the_record_covers_every_command_and_has_no_help_text() -> None:
    """The walk reaches every listed subcommand, and wording stays out of the record."""
    recorded = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert set(recorded["commands"]) == set(_COMMANDS)

    def params(record: dict[str, Any]) -> list[dict[str, Any]]:
        return record["params"] + [p for sub in record.get("commands", {}).values() for p in params(sub)]

    assert all("help" not in p for p in params(recorded))
    map_params = {p["name"]: p for p in recorded["commands"]["map"]["params"]}
    assert map_params["start"]["required"] is True  # a real value, so the comparison has teeth


def test_a_changed_default_is_reported() -> None:
    """The comparison itself finds a changed default, a removed option and an added command."""
    before = current_options()
    after = json.loads(json.dumps(before))
    after["commands"]["map"]["params"][0]["default"] = "changed"
    del after["commands"]["train"]["params"][0]
    after["commands"]["extra"] = {"params": []}
    found = "\n".join(_diff(before, after))
    first_map = before["commands"]["map"]["params"][0]["name"]
    assert f"geocrop map {first_map}.default" in found
    assert f"geocrop train: parameter {before['commands']['train']['params'][0]['name']!r} removed" in found
    assert "command 'extra' added" in found
