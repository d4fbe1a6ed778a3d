"""The evaluation's journal: one JSON line per finished run, so an interrupted evaluation resumes.

`geocrop.training.evaluate` appends a `RunRecord` after each run and reads the file back on a rerun;
runs are keyed by method, input variant (with the bundle's identity), fold and, for label-scarce runs,
the labels per class and the draw (`run_key`).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path

from geocrop.io.atomic import write_text_atomic
from geocrop.io.bundle import read_bundle_metadata
from geocrop.training.records import RunRecord

JOURNAL = "results.jsonl"


def bundle_id(path: Path) -> str:
    """Short identity of a bundle: hash of its bytes (a changed bundle gets a new id, a moved one not)."""
    read_bundle_metadata(path)  # refuse a file that is not a bundle before hashing it
    h = hashlib.blake2b(digest_size=5)
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def run_key(stem: str, fold: int, labels_per_class: int | None, draw: int) -> str:
    """``<stem>-f<fold>`` with all labels (the key evaluations had before label-scarce runs existed, so
    their journals still resume), ``<stem>-f<fold>-n<labels>-d<draw>`` for a draw of some labels."""
    key = f"{stem}-f{fold}"
    return key if labels_per_class is None else f"{key}-n{labels_per_class}-d{draw}"


def read_journal(path: Path) -> dict[str, RunRecord]:
    """Finished runs by key. A torn last line (killed mid-write) is dropped and the file repaired."""
    if not path.exists():
        return {}
    records: dict[str, RunRecord] = {}
    good: list[str] = []
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    for line in lines:
        try:
            rec = RunRecord(**json.loads(line))
        except (json.JSONDecodeError, TypeError):
            continue
        if not line.endswith("\n"):
            continue
        records[rec.key] = rec
        good.append(line)
    if len(good) != len(lines):
        write_text_atomic(path, "".join(good), what="results journal")
    return records


def append_journal(path: Path, record: RunRecord) -> None:
    """Append one record as a line and fsync, so a finished run survives a crash right after it.

    The line goes out in one write: two evaluations of other label counts may share one folder.
    """
    line = json.dumps(asdict(record)) + "\n"
    with path.open("a", encoding="utf-8") as fh:
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())
