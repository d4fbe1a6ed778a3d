"""The finished-tile journal that lets an interrupted `geocrop map` resume without recomputing.

Beside the output ``map.tif`` lives ``map.tif.parts/``: a ``manifest.json`` holding a fingerprint of the
run (model, AOI grid, dates, scenes, tile size, bands written) and one small ``<key>.npz`` per finished
tile with exactly the uint8 blocks written to the COG. Each part is written to a temporary name and renamed,
so a part either exists whole or not at all. A rerun with the same fingerprint reuses the parts; a
different fingerprint (other model, dates, AOI...) discards them with a log line, because mixing tiles from
two runs would give a wrong map. The mapper removes the journal after the COG is in place.
"""

from __future__ import annotations

import contextlib
import glob
import json
import logging
import os
import shutil
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from geocrop.errors import OutputError
from geocrop.io.atomic import atomic_path

__all__ = ["TileJournal", "journal_dir", "output_lock", "remove_leftovers"]

log = logging.getLogger(__name__)
_MANIFEST = "manifest.json"


def journal_dir(output: str | os.PathLike[str]) -> Path:
    """The journal folder of an output path: ``<output>.parts``."""
    return Path(f"{os.fspath(output)}.parts")


def _lock_path(output: Path) -> Path:
    return output.parent / f".{output.name}.lock"


@contextlib.contextmanager
def output_lock(output: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an exclusive lock on ``output`` for the block; `OutputError` if another run holds it.

    Best effort: where the lock file cannot be created (the folder is missing or read-only: the output
    checks report that) or ``fcntl`` is unavailable, the block runs unlocked. The lock file is removed after.
    """
    out = Path(output).expanduser().absolute()
    try:
        import fcntl
    except ImportError:  # not POSIX
        yield
        return
    lock = _lock_path(out)
    try:
        fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
    except OSError:
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise OutputError(
                f"output {out} is being written by another geocrop run right now; wait for it to finish "
                "or choose another `out`",
                param="out",
            ) from None
        try:
            yield
        finally:
            lock.unlink(missing_ok=True)
    finally:
        os.close(fd)


def remove_leftovers(outputs: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Delete hidden temporaries (``.<name>.*.partial`` files and folders) of ``outputs``; return them.

    Call it only while holding `output_lock`: then no live run owns them.
    """
    removed: list[Path] = []
    for output in outputs:
        path = Path(output).expanduser().absolute()
        for stale in path.parent.glob(f".{glob.escape(path.name)}.*.partial"):
            if stale.is_dir() and not stale.is_symlink():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)
            removed.append(stale)
    if removed:
        log.info("removed %d temporary files left by an interrupted run", len(removed))
    return removed


class TileJournal:
    """Finished tiles of one run, keyed by tile name (``"r0003_c0012"``), each a dict of numpy arrays."""

    def __init__(self, directory: str | os.PathLike[str], *, fingerprint: Mapping[str, Any]) -> None:
        self.directory = Path(directory)
        self.fingerprint = json.loads(json.dumps(dict(fingerprint), sort_keys=True, default=str))
        try:
            self._open()
        except OSError as exc:
            raise OutputError(
                f"cannot keep the resume journal {self.directory} ({exc.strerror or exc}); "
                "choose an output folder you can write to"
            ) from exc

    def _open(self) -> None:
        manifest = self.directory / _MANIFEST
        if manifest.exists():
            try:
                old = json.loads(manifest.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                old = None
            if old == self.fingerprint:
                n = len(self.finished())
                if n:
                    log.info("resuming: %d finished tiles found in %s", n, self.directory)
                return
            log.info("journal %s belongs to another run (inputs changed); starting afresh", self.directory)
            shutil.rmtree(self.directory)
        # The folder is created with the first finished tile, so a run that fails early leaves nothing.

    def _create(self) -> None:
        if (self.directory / _MANIFEST).exists():
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        manifest = self.directory / _MANIFEST
        self._atomic(manifest, lambda tmp: tmp.write_text(json.dumps(self.fingerprint), encoding="utf-8"))

    def _atomic(self, target: Path, write: Any) -> None:
        with atomic_path(target, what="tile journal") as tmp:
            write(tmp)

    def finished(self) -> set[str]:
        """Keys of the tiles whose results are stored."""
        if not self.directory.is_dir():
            return set()
        return {p.stem for p in self.directory.glob("*.npz")}

    def save(self, key: str, arrays: Mapping[str, npt.NDArray[Any]]) -> None:
        """Store one finished tile's arrays (atomically)."""

        def write(tmp: Path) -> None:
            with tmp.open("wb") as fh:
                np.savez(fh, **{k: np.asarray(v) for k, v in arrays.items()})  # type: ignore[arg-type]

        try:
            self._create()
            self._atomic(self.directory / f"{key}.npz", write)
        except OSError as exc:
            raise OutputError(
                f"cannot write to the resume journal {self.directory} ({exc.strerror or exc}); free disk "
                "space or choose another output folder"
            ) from exc

    def load(self, key: str) -> dict[str, npt.NDArray[Any]]:
        """The arrays stored for ``key``."""
        with np.load(self.directory / f"{key}.npz") as data:
            return {k: data[k] for k in data.files}

    def remove(self) -> None:
        """Delete the journal (after the output is complete)."""
        shutil.rmtree(self.directory, ignore_errors=True)
