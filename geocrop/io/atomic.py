"""Atomic file writes: readers see the old file or the whole new one, never a part.

Every output geocrop writes (bundles, styles, plots, items, pages) goes through `atomic_path`, so an
interrupted run leaves nothing half-written at the output path.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from geocrop.errors import OutputError

__all__ = ["atomic_path", "write_text_atomic"]


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, what: str = "output") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``, on error remove it.

    The file gets the permissions a plain ``open(path, "w")`` would give (mkstemp's are owner-only, which
    would hide outputs from other users). An unwritable folder raises `OutputError` naming ``what``.
    """
    out = Path(path)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent)
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
