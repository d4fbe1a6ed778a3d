"""The evaluation folder's state: the setup's fingerprint and one JSON line per finished run (the journal),
so an interrupted evaluation resumes and a folder of another evaluation is refused.

`geocrop.training.evaluate` appends a `RunRecord` after each run and reads the file back on a rerun;
runs are keyed by method, input variant (with the bundle's identity), fold and, for label-scarce runs,
the labels per class and the draw (`run_key`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from geocrop.errors import InputError, OutputError
from geocrop.io.atomic import write_json_atomic, write_text_atomic
from geocrop.io.bundle import read_bundle_metadata
from geocrop.training.fit import TrainConfig
from geocrop.training.records import RunRecord

JOURNAL = "results.jsonl"
SETUP = "evaluation.json"


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


def same_setup(previous: Mapping[str, Any], setup: Mapping[str, Any]) -> bool:
    """Equal fingerprints, a training setting missing on one side read as its default: a setting added
    to geocrop after the folder was made changes nothing while it stays at its default."""
    defaults = {k: v for k, v in asdict(TrainConfig()).items() if k != "device"}

    def filled(s: Mapping[str, Any]) -> dict[str, Any]:
        return {**s, "train": {**defaults, **dict(s.get("train", {}))}}

    return filled(previous) == filled(setup)


def open_folder(out: Path, setup: dict[str, Any]) -> Path:
    """Create ``out`` and write the fingerprint ``setup``, or check it against the one already there."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"cannot create `out` {out} ({exc.strerror}); choose a writable folder", param="out"
        ) from exc
    setup_path = out / SETUP
    if setup_path.exists():
        previous = json.loads(setup_path.read_text(encoding="utf-8"))
        if not same_setup(previous, setup):
            raise InputError(
                f"{out} holds results of a different evaluation (other data, folds or settings); "
                "use a new `out` folder or delete it",
                param="out",
            )
    else:
        write_json_atomic(setup_path, setup, sort_keys=True, newline=True)
    return out


def remove_checkpoint(ckpt: Path) -> None:
    """Remove a finished run's checkpoint and its JSON twin (gone already is fine)."""
    for leftover in (ckpt, ckpt.with_suffix(".json")):
        with contextlib.suppress(OSError):
            leftover.unlink()
