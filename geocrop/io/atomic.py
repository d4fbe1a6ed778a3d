"""Atomic file writes: readers see the old file or the whole new one, never a part.

Every output geocrop writes (bundles, styles, plots, items, pages, pair shards, checkpoints) goes through
`atomic_path`, so an interrupted run leaves nothing half-written at the output path. The temporary file is
``.<name>.<host>-<pid>-<random>.partial`` beside the target; a run killed with ``kill -9`` cannot remove
it, so the first atomic write into a folder (per process) removes the temporaries there whose process,
on this host, is gone (`remove_stale_partials`). A finished run leaves only its outputs.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from geocrop.errors import OutputError

__all__ = ["atomic_path", "remove_stale_partials", "write_text_atomic"]

_PARTIAL = re.compile(r"^\..+\.(?P<host>[A-Za-z0-9_]+)-(?P<pid>\d+)-[A-Za-z0-9_]+\.partial$")
_swept: set[str] = set()
_swept_lock = threading.Lock()


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", socket.gethostname())[:24] or "host"


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. no permission to signal it: it exists
        return True
    return True


def remove_stale_partials(folder: str | os.PathLike[str], *, recursive: bool = False) -> list[Path]:
    """Delete `atomic_path` temporaries in ``folder`` whose writer (a process on this host) is gone.

    Files of live processes, of other hosts and any other file are left alone. Returns what was removed.
    """
    root = Path(folder)
    if not root.is_dir():
        return []
    host = _host()
    removed: list[Path] = []
    candidates = root.rglob(".*.partial") if recursive else root.glob(".*.partial")
    for path in candidates:
        match = _PARTIAL.match(path.name)
        if match is None or match["host"] != host or _alive(int(match["pid"])) or not path.is_file():
            continue
        with contextlib.suppress(OSError):
            path.unlink()
            removed.append(path)
    return removed


def _sweep_once(folder: Path) -> None:
    key = os.path.abspath(folder)
    with _swept_lock:
        if key in _swept:
            return
        _swept.add(key)
    remove_stale_partials(folder)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, what: str = "output") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``, on error remove it.

    The file gets the permissions a plain ``open(path, "w")`` would give (mkstemp's are owner-only, which
    would hide outputs from other users). An unwritable folder raises `OutputError` naming ``what``.
    """
    out = Path(path)
    try:
        _sweep_once(out.parent)
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{out.name}.{_host()}-{os.getpid()}-", suffix=".partial", dir=out.parent
        )
    except OSError as exc:
        raise OutputError(
            f"{what} {out}: cannot write in {out.parent} ({exc.strerror or exc}); choose a writable folder"
        ) from exc
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike[str], text: str, *, what: str = "output") -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (see `atomic_path`)."""
    with atomic_path(path, what=what) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json_atomic(
    path: str | os.PathLike[str],
    payload: Any,
    *,
    what: str = "output",
    indent: int | None = 1,
    sort_keys: bool = False,
    newline: bool = False,
) -> Path:
    """Write ``payload`` as JSON to ``path`` atomically (readers never see half a file).

    ``indent``/``sort_keys`` as `json.dumps`; ``newline``: end the file with one.
    """
    text = json.dumps(payload, indent=indent, sort_keys=sort_keys)
    return write_text_atomic(path, text + "\n" if newline else text, what=what)
