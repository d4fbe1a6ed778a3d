"""The plugin's process runner (standard library only), driven with the stand-in geocrop; no QGIS needed."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

from qgis_plugin.runner import (
    GeocropCanceled,
    GeocropCommand,
    GeocropRunError,
    check_version,
    clean_environment,
    error_in_labels,
    in_labels,
    parse_version,
    resolve_command,
    run_geocrop,
)
from tests.qgis.qgis_harness import fake_geocrop, process_gone, recorded_calls

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the stand-in is a POSIX shell script")


def _map_args(out: Path) -> list[str]:
    dates = ["--start", "2021-03-01", "--end", "2021-10-01"]
    return [
        "map",
        "--bbox",
        "13.5,52.5,13.6,52.6",
        "--stac",
        "x",
        *dates,
        "--out",
        str(out),
        "--progress",
        "json",
    ]


def test_clean_environment_drops_qgis_python_and_gdal_variables() -> None:
    env = clean_environment(
        {
            "PATH": "/usr/bin",
            "HOME": "/home/u",
            "PYTHONPATH": "/usr/share/qgis/python",
            "PYTHONHOME": "/x",
            "GDAL_DATA": "/usr/share/gdal",
            "PROJ_LIB": "/usr/share/proj",
            "GDAL_DRIVER_PATH": "/usr/lib/gdalplugins",
            "QGIS_PREFIX_PATH": "/usr",
            "QGIS_PLUGINPATH": "/p",
        }
    )
    assert env["PATH"] == "/usr/bin" and env["HOME"] == "/home/u"
    assert not {"PYTHONPATH", "PYTHONHOME", "GDAL_DATA", "PROJ_LIB", "GDAL_DRIVER_PATH"} & env.keys()
    assert not [key for key in env if key.startswith("QGIS_")]
    assert env["PYTHONUNBUFFERED"] == "1"


def test_parse_version_reads_click_version_line() -> None:
    assert parse_version("geocrop, version 0.1.0") == (0, 1, 0)
    assert parse_version("geocrop 1.2") == (1, 2, 0)
    assert parse_version("no digits") is None


def test_missing_executable_names_the_install_command(tmp_path: Path) -> None:
    with pytest.raises(GeocropRunError, match="pip install path/to/geocrop") as info:
        resolve_command(str(tmp_path / "nowhere" / "geocrop"))
    assert "nowhere" in str(info.value)


def test_python_interpreter_setting_runs_geocrop_module() -> None:
    command = resolve_command(sys.executable)
    assert command.prefix[0] == sys.executable and command.prefix[1] == "-c"
    assert check_version(command) >= (0, 1, 0)  # the real geocrop installed in this venv


def test_too_old_geocrop_is_refused_with_upgrade_command(tmp_path: Path) -> None:
    command = resolve_command(str(fake_geocrop(tmp_path, version="0.0.9")))
    with pytest.raises(GeocropRunError, match=r"too old.*pip install --upgrade"):
        check_version(command)
    assert check_version(resolve_command(str(fake_geocrop(tmp_path / "new", version="0.1.0")))) == (0, 1, 0)


def test_progress_lines_are_streamed_and_outputs_returned(tmp_path: Path) -> None:
    record = tmp_path / "record"
    command = resolve_command(str(fake_geocrop(tmp_path / "bin", record=record)))
    progress: list[tuple[float, str]] = []
    logs: list[str] = []
    warnings: list[str] = []
    out = tmp_path / "crops.tif"
    result = run_geocrop(
        command,
        _map_args(out),
        on_progress=lambda f, m: progress.append((f, m)),
        on_log=logs.append,
        on_warning=warnings.append,
        is_canceled=lambda: False,
    )
    assert warnings == ["3 of 12 scenes are cloudier than --max-cloud"]  # once, not again from stderr
    assert not [line for line in logs if "cloudier" in line]
    assert [f for f, _ in progress] == pytest.approx([0.2, 0.4, 0.6, 0.8])
    assert progress[0][1] == "Mapping block 1 of 4"
    assert result.outputs["cog"] == str(out) and out.is_file()
    assert any("wrote the crop map" in line for line in logs)  # stderr reaches the log
    env = recorded_calls(record)[-1]["env"]
    assert "PYTHONPATH" not in env and "GDAL_DATA" not in env


def test_warning_events_are_worded_in_the_labels_given(tmp_path: Path) -> None:
    command = resolve_command(str(fake_geocrop(tmp_path / "bin")))
    warnings: list[str] = []
    run_geocrop(
        command,
        _map_args(tmp_path / "crops.tif"),
        on_progress=lambda f, m: None,
        on_log=lambda line: None,
        on_warning=warnings.append,
        labels={"max_cloud": "Maximum cloud cover"},
        is_canceled=lambda: False,
    )
    assert warnings == ["3 of 12 scenes are cloudier than 'Maximum cloud cover'"]


def test_error_event_becomes_the_exception_message(tmp_path: Path) -> None:
    command = resolve_command(str(fake_geocrop(tmp_path / "bin", mode="error")))
    with pytest.raises(GeocropRunError, match=r"^no Sentinel-2 scenes in x between the dates$"):
        run_geocrop(
            command,
            _map_args(tmp_path / "crops.tif"),
            on_progress=lambda f, m: None,
            on_log=lambda line: None,
            is_canceled=lambda: False,
        )


def test_error_event_in_library_terms_keeps_param_and_text(tmp_path: Path) -> None:
    command = resolve_command(str(fake_geocrop(tmp_path / "bin", mode="param-error")))
    out = tmp_path / "crops.tif"
    with pytest.raises(GeocropRunError) as info:
        run_geocrop(
            command,
            _map_args(out),
            on_progress=lambda f, m: None,
            on_log=lambda line: None,
            is_canceled=lambda: False,
        )
    error = info.value
    assert str(error).startswith(f"--out {out}: cannot write there") and error.param == "out"
    assert error.text is not None and error.text.startswith(f"`out` {out}:")
    assert error_in_labels(error, {"out": "Crop map"}) == (
        f"'Crop map' {out}: cannot write there (read-only folder); choose a folder you can write to"
    )
    assert error_in_labels(error, {}) == str(error)  # no label for `out`: geocrop's flag message


LABELS = {"start": "Start date", "end": "End date", "out": "Crop map"}


@pytest.mark.parametrize(
    ("message", "text", "expected"),
    [
        (
            "--end 2021-03-01 is not after --start 2021-10-31; give start < end",
            "`end` 2021-03-01 is not after `start` 2021-10-31; give start < end",
            "'End date' 2021-03-01 is not after 'Start date' 2021-10-31; give start < end",
        ),
        # a name without a label: the whole message stays in flags, never half translated
        (
            "--chunk-size 8 is outside 16..4096",
            "`chunk_size` 8 is outside 16..4096",
            "--chunk-size 8 is outside 16..4096",
        ),
        (
            "--out x.png: give .tif; --chunk-size 8",
            "`out` x.png: give .tif; `chunk_size` 8",
            "--out x.png: give .tif; --chunk-size 8",
        ),
        # no backticks, no text, an empty text: the message as geocrop printed it
        ("no scenes between the dates", "no scenes between the dates", "no scenes between the dates"),
        ("no scenes between the dates", None, "no scenes between the dates"),
        ("no scenes between the dates", "", "no scenes between the dates"),
        # backticks around something that is not an argument name are left alone
        ("run `geocrop demo` first", "run `geocrop demo` first", "run `geocrop demo` first"),
    ],
    ids=["season", "unknown-name", "one-unknown", "plain", "no-text", "empty-text", "not-a-name"],
)
def test_in_labels_names_parameters_or_falls_back(message: str, text: str | None, expected: str) -> None:
    assert in_labels(message, text, LABELS) == expected


def test_nonzero_exit_without_event_reports_stderr(tmp_path: Path) -> None:
    command = resolve_command(str(fake_geocrop(tmp_path / "bin", mode="crash")))
    with pytest.raises(GeocropRunError, match=r"exited with code 1: something unexpected"):
        run_geocrop(
            command,
            _map_args(tmp_path / "crops.tif"),
            on_progress=lambda f, m: None,
            on_log=lambda line: None,
            is_canceled=lambda: False,
        )


def test_cancel_while_silent_ends_process_group_and_removes_partial_output(tmp_path: Path) -> None:
    record = tmp_path / "record"
    command = resolve_command(str(fake_geocrop(tmp_path / "bin", mode="slow", record=record)))
    out = tmp_path / "out" / "crops.tif"
    out.parent.mkdir()
    (out.parent / "unrelated.txt").write_text("keep me")
    (out.parent / "crops_2020.tif").write_text("an earlier map, not this run's")
    cancel = threading.Event()

    def cancel_once_running() -> None:
        deadline = time.monotonic() + 30
        while not (record / "child.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
        cancel.set()

    threading.Thread(target=cancel_once_running, daemon=True).start()
    started = time.monotonic()
    with pytest.raises(GeocropCanceled):
        run_geocrop(
            command,
            _map_args(out),
            on_progress=lambda f, m: None,
            on_log=lambda line: None,
            is_canceled=cancel.is_set,
            cleanup=[out],
        )
    assert time.monotonic() - started < 20
    pids = [call["pid"] for call in recorded_calls(record)] + [int((record / "child.pid").read_text())]
    assert all(process_gone(pid, timeout=5) for pid in pids)
    # the journal, the temporary folder and the style went; other files stayed
    assert sorted(p.name for p in out.parent.iterdir()) == ["crops_2020.tif", "unrelated.txt"]


def test_unstartable_command_raises_run_error(tmp_path: Path) -> None:
    with pytest.raises(GeocropRunError, match="could not start"):
        run_geocrop(
            GeocropCommand((str(tmp_path / "missing"),)),
            ["map"],
            on_progress=lambda f, m: None,
            on_log=lambda line: None,
            is_canceled=lambda: False,
        )


def test_plain_error_line_of_a_command_without_json_progress_is_the_message(tmp_path: Path) -> None:
    command = resolve_command(str(fake_geocrop(tmp_path / "bin", mode="error")))
    labels = tmp_path / "labels.geojson"
    labels.write_text('{"type": "FeatureCollection", "features": []}')
    args = [
        "train",
        "--labels",
        str(labels),
        "--class-column",
        "crop",
        "--head",
        "lstm",
        "--out",
        "m.safetensors",
    ]
    with pytest.raises(GeocropRunError) as info:
        run_geocrop(
            command, args, on_progress=lambda f, m: None, on_log=lambda line: None, is_canceled=lambda: False
        )
    assert str(info.value) == f"labels {labels}: only 1 crop type; give at least 2"
