"""Run the geocrop command line out of process and stream its `--progress json` lines back.

Why out of process: QGIS ships its own GDAL, and a pip-built geocrop brings another (inside rasterio);
two GDALs in one process crash, and QGIS's Python path would make geocrop's rasterio load QGIS's GDAL.
So the plugin never imports geocrop: it starts the `geocrop` executable (or a Python interpreter that
has geocrop installed) with an environment cleaned of everything QGIS sets for itself, reads its JSON
progress lines on a reader thread, and ends the whole process group when the user cancels.

This module imports only the standard library, so it can be tested without QGIS.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: The oldest geocrop whose `map --progress json` protocol this plugin speaks.
MIN_GEOCROP_VERSION: tuple[int, int, int] = (0, 1, 0)

INSTALL_HINT = (
    "Install geocrop in a Python environment outside QGIS (`pip install path/to/geocrop`) "
    "and give the path of its `geocrop` executable in Settings > Options > Processing > Providers > "
    "geocrop, or in the "
    "algorithm's advanced parameter 'geocrop executable'."
)

#: Variables QGIS sets for its own Python, GDAL and PROJ; inherited by geocrop they would make its
#: rasterio/pyproj load QGIS's libraries and data files instead of their own.
_DROPPED_VARIABLES = frozenset(
    {
        "PYTHONPATH",
        "PYTHONHOME",
        "PYTHONSTARTUP",
        "PYTHONEXECUTABLE",
        "PYTHONUSERBASE",
        "GDAL_DATA",
        "GDAL_DRIVER_PATH",
        "GDAL_PLUGINS_PATH",
        "GDAL_FILENAME_IS_UTF8",
        "PROJ_LIB",
        "PROJ_DATA",
        "PROJ_NETWORK",
        "GEOTIFF_CSV",
        "GEOS_LIBRARY_PATH",
        "LD_LIBRARY_PATH",
        "LD_PRELOAD",
        "QT_PLUGIN_PATH",
        "QT_QPA_PLATFORM_PLUGIN_PATH",
        "O4W_QT_PREFIX",
        "OSGEO4W_ROOT",
        "SAGA_MLB",
        "VIRTUAL_ENV",
    }
)
_DROPPED_PREFIXES = ("QGIS_", "PYQGIS_", "DYLD_", "CONDA_")

_VERSION_PATTERN = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")


#: A library argument name inside an error's `text`: `` `end` `` (as geocrop.errors writes them).
_ARGUMENT = re.compile(r"`([A-Za-z_][A-Za-z0-9_]*)`")


class GeocropRunError(Exception):
    """geocrop could not be started, reported an error, or exited non-zero; the message is for users.

    From a `{"event": "error"}` line: ``param`` is the library argument the error is about (``"end"``,
    or None) and ``text`` the message in library terms (argument names in backticks); `in_labels` turns
    ``text`` into a front end's own words. The message itself names CLI flags (``--end``).
    """

    def __init__(self, message: str, *, param: str | None = None, text: str | None = None) -> None:
        super().__init__(message)
        self.param = param
        self.text = text


def in_labels(message: str, text: str | None, labels: Mapping[str, str]) -> str:
    """An error in a front end's words: every `` `name` `` in ``text`` replaced by ``'labels[name]'``.

    ``text`` is the library-terms message of an error event (`` `end` 2021-03-01 is not after `start`
    2021-10-31; give start < end``). Falls back to ``message`` (which names CLI flags) when ``text`` is
    empty, names no argument, or names one that ``labels`` lacks, so a message is never half translated.
    """
    if not text:
        return message
    names = _ARGUMENT.findall(text)
    if not names or any(name not in labels for name in names):
        return message
    return _ARGUMENT.sub(lambda match: f"'{labels[match.group(1)]}'", text)


def error_in_labels(error: GeocropRunError, labels: Mapping[str, str]) -> str:
    """`in_labels` for a raised `GeocropRunError` (its message when it came without library terms)."""
    return in_labels(str(error), error.text, labels)


class GeocropCanceled(GeocropRunError):
    """The user canceled the run; the process group was ended and partial outputs removed."""


@dataclass(frozen=True)
class GeocropCommand:
    """How to start geocrop: the argument prefix before the subcommand, e.g. `["/venv/bin/geocrop"]`."""

    prefix: tuple[str, ...]

    def __str__(self) -> str:
        return " ".join(self.prefix)


@dataclass(frozen=True)
class RunResult:
    """What a finished run reported: `outputs` from the final `{"event": "done"}` line."""

    outputs: dict[str, str] = field(default_factory=dict)
    returncode: int = 0


def clean_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for geocrop: `environ` (default `os.environ`) without QGIS's Python/GDAL/PROJ setup.

    Also forces unbuffered UTF-8 output so progress lines arrive as they are printed.
    """
    source = os.environ if environ is None else environ
    env = {
        key: value
        for key, value in source.items()
        if key.upper() not in _DROPPED_VARIABLES and not key.upper().startswith(_DROPPED_PREFIXES)
    }
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def resolve_command(setting: str | None) -> GeocropCommand:
    """Turn the user's executable setting into a command prefix; empty means `geocrop` on PATH.

    The setting may name the `geocrop` executable (path or bare name on PATH) or a Python interpreter
    that has geocrop installed (its name starts with `python`). Raises `GeocropRunError` with the install
    command when nothing runnable is found.
    """
    value = (setting or "").strip().strip('"')
    candidate = value or "geocrop"
    path = Path(os.path.expanduser(candidate))
    found: str | None
    if path.is_absolute() or os.sep in candidate or (os.altsep and os.altsep in candidate):
        found = str(path) if path.is_file() and os.access(path, os.X_OK) else None
    else:
        search = os.pathsep.join([os.environ.get("PATH", ""), os.path.expanduser("~/.local/bin")])
        found = shutil.which(candidate, path=search)
    if found is None:
        where = f"'{value}'" if value else "'geocrop' on PATH"
        raise GeocropRunError(
            f"geocrop executable {where} was not found or is not executable. {INSTALL_HINT}"
        )
    if Path(found).name.lower().startswith("python"):
        bootstrap = "import sys; sys.argv[0] = 'geocrop'; from geocrop.cli.main import main; main()"
        return GeocropCommand((found, "-c", bootstrap))
    return GeocropCommand((found,))


def parse_version(text: str) -> tuple[int, int, int] | None:
    """The first `X.Y[.Z]` in `text` (e.g. "geocrop, version 0.1.0"), or None."""
    match = _VERSION_PATTERN.search(text)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)


def check_version(
    command: GeocropCommand,
    *,
    minimum: tuple[int, int, int] = MIN_GEOCROP_VERSION,
    timeout: float = 120.0,
) -> tuple[int, int, int]:
    """Run `geocrop --version`; raise `GeocropRunError` (with the install hint) if it fails or is too old."""
    try:
        completed = subprocess.run(
            [*command.prefix, "--version"],
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            env=clean_environment(),
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GeocropRunError(f"could not run '{command} --version' ({exc}). {INSTALL_HINT}") from exc
    version = parse_version(completed.stdout) if completed.returncode == 0 else None
    if version is None:
        detail = (
            _last_line(completed.stderr) or _last_line(completed.stdout) or f"exit {completed.returncode}"
        )
        raise GeocropRunError(
            f"'{command} --version' did not report a geocrop version ({detail}). {INSTALL_HINT}"
        )
    if version < minimum:
        have, need = ".".join(map(str, version)), ".".join(map(str, minimum))
        raise GeocropRunError(
            f"geocrop {have} at '{command}' is too old: this plugin needs geocrop >= {need}. "
            f"Upgrade it with `pip install --upgrade 'geocrop>={need}'`."
        )
    return version


def run_geocrop(
    command: GeocropCommand,
    args: Sequence[str],
    *,
    on_progress: Callable[[float, str], None],
    on_log: Callable[[str], None],
    is_canceled: Callable[[], bool],
    on_warning: Callable[[str], None] | None = None,
    labels: Mapping[str, str] | None = None,
    cleanup: Sequence[Path] = (),
    poll_interval: float = 0.1,
    grace_period: float = 10.0,
) -> RunResult:
    """Run `geocrop ARGS` (which should include `--progress json`) and stream its progress until it ends.

    `on_progress(fraction 0..1, message)` gets each progress event, `on_warning(message)` each warning
    event (default: `on_log`; in `labels`' words where it comes in library terms, see `in_labels`),
    `on_log(line)` every other line of stdout/stderr. `is_canceled()` is
    polled every `poll_interval` seconds, even while geocrop prints nothing; on cancel the process group
    gets SIGINT (geocrop stops and cleans up), then SIGTERM/SIGKILL after `grace_period`, and
    `GeocropCanceled` is raised. On cancel or failure, every entry created during the run beside a
    `cleanup` path and named after it (`crops.qml`, `crops.tif.parts/`, `.crops.tif.1a2b.partial/` for
    `crops.tif`) is removed, so no partial output or resume journal is left. An `{"event": "error"}`
    line or a non-zero exit raises `GeocropRunError` with geocrop's own message (and, from an error event,
    its ``param`` and library-terms ``text``).
    """
    snapshots = {path: _listing(path.parent) for path in cleanup}
    try:
        process = subprocess.Popen(
            [*command.prefix, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            encoding="utf-8",
            errors="replace",
            env=clean_environment(),
            # Its own process group, so cancel reaches the workers geocrop starts too.
            start_new_session=sys.platform != "win32",
            creationflags=getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0),
        )
    except OSError as exc:
        raise GeocropRunError(f"could not start '{command}' ({exc}). {INSTALL_HINT}") from exc

    lines: queue.Queue[tuple[str, str | None]] = queue.Queue()
    readers = [
        threading.Thread(target=_pump, args=(stream, name, lines), daemon=True)
        for stream, name in ((process.stdout, "stdout"), (process.stderr, "stderr"))
    ]
    for reader in readers:
        reader.start()

    outputs: dict[str, str] = {}
    error: GeocropRunError | None = None
    stderr_tail: list[str] = []
    open_streams = 2
    canceled = False
    try:
        while open_streams:
            if is_canceled():
                canceled = True
                break
            try:
                stream_name, line = lines.get(timeout=poll_interval)
            except queue.Empty:
                continue
            if line is None:
                open_streams -= 1
                continue
            event = _parse_event(line) if stream_name == "stdout" else None
            if event is None:
                text = line.rstrip()
                if stream_name == "stderr" and text:
                    stderr_tail = [*stderr_tail[-4:], text]
                # In JSON mode geocrop repeats its warnings and errors as events: show them once.
                if text and not text.startswith(("geocrop: warning: ", "geocrop: error: ")):
                    on_log(text)
                continue
            kind = event.get("event")
            if kind == "progress":
                on_progress(_fraction(event.get("fraction")), str(event.get("message", "")))
            elif kind == "warning":
                message, text = str(event.get("message", "")), _optional_text(event.get("text"))
                (on_warning or on_log)(in_labels(message, text, labels or {}))
            elif kind == "done":
                raw = event.get("outputs") or {}
                outputs = {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
            elif kind == "error":
                error = GeocropRunError(
                    str(event.get("message") or "geocrop reported an error"),
                    param=_optional_text(event.get("param")),
                    text=_optional_text(event.get("text")),
                )
            elif "message" in event:
                on_log(str(event["message"]))
        if canceled:
            _stop(process, grace_period=grace_period)
        else:
            returncode = _wait_cancelable(process, is_canceled, poll_interval)
            canceled = returncode is None
            if canceled:
                _stop(process, grace_period=grace_period)
    finally:
        if process.poll() is None:  # an exception from a callback: never leave geocrop running
            _stop(process, grace_period=0.0)
        _kill_group(process)
        for reader in readers:
            reader.join(timeout=2.0)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()

    returncode = process.returncode
    if canceled or error is not None or returncode != 0:
        _remove_new_files(snapshots)
    if canceled:
        raise GeocropCanceled("canceled: geocrop was stopped and its partial output removed.")
    if error is not None:
        raise error
    if returncode != 0:
        # Commands without JSON progress still end with geocrop's one-line "geocrop: error: ..." message.
        reported = [line for line in stderr_tail if line.startswith("geocrop: error: ")]
        if reported:
            raise GeocropRunError(reported[-1].removeprefix("geocrop: error: "))
        detail = " ".join(stderr_tail[-1:]) or "no message"
        raise GeocropRunError(f"geocrop exited with code {returncode}: {detail}")
    return RunResult(outputs=outputs, returncode=returncode)


def _pump(stream: object, name: str, lines: queue.Queue[tuple[str, str | None]]) -> None:
    """Reader thread: forward each line of `stream`, then None at end of file."""
    try:
        for line in iter(stream.readline, ""):  # type: ignore[attr-defined]
            lines.put((name, line))
    except (OSError, ValueError):
        pass  # the stream was closed under us while stopping the process
    finally:
        lines.put((name, None))


def _parse_event(line: str) -> dict[str, object] | None:
    text = line.strip()
    if not text.startswith("{"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) and "event" in value else None


def _optional_text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _fraction(value: object) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0
    return min(max(number, 0.0), 1.0)


def _wait_cancelable(
    process: subprocess.Popen[str], is_canceled: Callable[[], bool], poll_interval: float
) -> int | None:
    """Wait for exit after the streams closed; None if the user canceled first."""
    while True:
        try:
            return process.wait(timeout=poll_interval)
        except subprocess.TimeoutExpired:
            if is_canceled():
                return None


def _stop(process: subprocess.Popen[str], *, grace_period: float) -> None:
    """Interrupt (so geocrop cleans up), then terminate, then kill the process group."""
    if sys.platform == "win32":
        steps: list[int | None] = [signal.CTRL_BREAK_EVENT, None]  # type: ignore[attr-defined]
    else:
        steps = [signal.SIGINT, signal.SIGTERM, signal.SIGKILL]
    for index, sig in enumerate(steps):
        if process.poll() is not None:
            return
        if sig is None:
            process.kill()
        elif sys.platform == "win32":
            process.send_signal(sig)
        else:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, sig)
        wait = grace_period if index == 0 else min(grace_period, 5.0)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(wait, 0.5))
    process.wait()


def _kill_group(process: subprocess.Popen[str]) -> None:
    """Kill anything geocrop started that outlived it (its group shares the leader's id)."""
    if sys.platform != "win32":
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)


def _listing(folder: Path) -> set[str]:
    with contextlib.suppress(OSError):
        return {entry.name for entry in folder.iterdir()}
    return set()


def _remove_new_files(snapshots: Mapping[Path, set[str]]) -> None:
    """Remove what appeared during the run and belongs to an output: `<stem>.*`, also hidden and folders."""
    for path, before in snapshots.items():
        prefix = f"{path.stem}."
        for entry in _new_entries(path.parent, before):
            if not entry.name.lstrip(".").startswith(prefix):
                continue
            with contextlib.suppress(OSError):
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()


def _new_entries(folder: Path, before: set[str]) -> Iterator[Path]:
    with contextlib.suppress(OSError):
        for entry in list(folder.iterdir()):
            if entry.name not in before:
                yield entry


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""
