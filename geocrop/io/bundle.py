"""Model bundles: one ``.safetensors`` file of weights with JSON metadata in its header, never a pickle.

Layout: the safetensors header's ``__metadata__`` holds one key, ``"geocrop"``, whose value is the bundle
metadata as a JSON string (architecture specs, band order, normalisation statistics, temporal grid, class
names and colours, loss, seed, provenance; ``format_version`` is added). The same metadata is written beside
the weights as ``<stem>.json`` so people can read it; loading only ever trusts the copy inside the weights.
Tensor names carry prefixes (``backbone.``, ``planet_backbone.``, ``head.`` ...); see
`geocrop.models.registry`.

Safety: the header is parsed here as plain JSON (8-byte little-endian length, then JSON) before any tensor
is read, and tensors are read by ``safetensors`` itself; nothing is ever unpickled, so a pickle or a
PyTorch ``.pt`` file renamed ``.safetensors`` is rejected as "not a safetensors file". Writes go to a
temporary file in the target folder and are renamed into place (``os.replace``), so a crash never leaves a
half-written bundle. This module is numpy-only: ``geocrop.io`` never imports torch.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from safetensors.numpy import load_file, save_file

from geocrop.errors import BundleError, OutputError
from geocrop.io.atomic import atomic_path

__all__ = [
    "BUNDLE_FORMAT_VERSION",
    "METADATA_KEY",
    "Bundle",
    "load_bundle",
    "read_bundle_metadata",
    "save_bundle",
]

#: Bumped when the metadata schema changes incompatibly; readers refuse newer versions.
BUNDLE_FORMAT_VERSION = 1
#: Key of the JSON metadata inside the safetensors header's ``__metadata__``.
METADATA_KEY = "geocrop"
# A header larger than this is not a model bundle (ours are a few KB); refuse before reading it.
_MAX_HEADER_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Bundle:
    """A loaded bundle: ``tensors`` by prefixed name (numpy, as stored) and the parsed ``metadata``."""

    tensors: dict[str, npt.NDArray[Any]]
    metadata: dict[str, Any]
    path: Path | None = field(default=None, compare=False)


def _json_sidecar(path: Path) -> Path:
    return path.with_suffix(".json")


def _atomic_write(target: Path, write: Any) -> None:
    """Call ``write(tmp_path)`` on a temp file beside ``target``, then rename it over ``target``."""
    with atomic_path(target, what="bundle") as tmp:
        write(tmp)


def save_bundle(
    path: str | os.PathLike[str], tensors: Mapping[str, np.ndarray], metadata: Mapping[str, Any]
) -> Path:
    """Write ``tensors`` and ``metadata`` to ``path`` (a ``.safetensors`` file) and ``<stem>.json`` beside it.

    ``metadata`` must be JSON-serialisable; ``format_version`` is set to `BUNDLE_FORMAT_VERSION` when absent.
    Parent folders are created. Both files are written atomically. Returns the weights path.
    """
    target = Path(path)
    if target.suffix != ".safetensors":
        raise BundleError(
            f"bundle path {target} does not end in .safetensors; name it e.g. model.safetensors"
        )
    meta = dict(metadata)
    version = meta.setdefault("format_version", BUNDLE_FORMAT_VERSION)
    if version != BUNDLE_FORMAT_VERSION:
        raise BundleError(
            f"cannot write bundle format_version={version!r}; this geocrop writes {BUNDLE_FORMAT_VERSION}, "
            "drop format_version from the metadata"
        )
    try:
        meta_json = json.dumps(meta, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise BundleError(
            f"bundle metadata for {target} is not JSON-serialisable ({exc}); pass plain str/number/list/dict "
            "values (convert numpy arrays with .tolist(), NaN to None)"
        ) from exc
    arrays: dict[str, np.ndarray] = {}
    for name, value in tensors.items():
        if not isinstance(name, str) or not name:
            raise BundleError(
                f"bundle tensor name {name!r} is invalid; use non-empty strings like 'backbone.x'"
            )
        arr = np.asarray(value)
        if arr.dtype == object:
            raise BundleError(f"bundle tensor {name!r} has dtype object; pass numeric numpy arrays")
        arrays[name] = np.ascontiguousarray(arr).reshape(arr.shape)  # keep 0-d tensors 0-d
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(target, lambda tmp: save_file(arrays, str(tmp), metadata={METADATA_KEY: meta_json}))
        pretty = json.dumps(meta, sort_keys=True, indent=2) + "\n"
        _atomic_write(_json_sidecar(target), lambda tmp: tmp.write_text(pretty, encoding="utf-8"))
    except OSError as exc:
        raise OutputError(
            f"cannot write bundle {target} ({exc.strerror or exc}); choose a writable folder"
        ) from exc
    return target


def _read_header(path: Path) -> dict[str, Any]:
    """Parse the safetensors JSON header without reading tensors; BundleError if it is not one."""
    if not path.exists():
        raise BundleError(
            f"bundle {path} does not exist; check the path or run geocrop pretrain or train first"
        )
    if not path.is_file():
        raise BundleError(f"bundle {path} is not a file; pass the .safetensors file itself")
    foreign = (
        f"bundle {path} is not a safetensors file (corrupt, truncated, or another format such as a pickle "
        "or .pt checkpoint); pass a .safetensors bundle written by geocrop"
    )
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            raw_len = fh.read(8)
            if len(raw_len) < 8:
                raise BundleError(foreign)
            (header_len,) = struct.unpack("<Q", raw_len)
            if header_len < 2 or header_len > min(size - 8, _MAX_HEADER_BYTES):
                raise BundleError(foreign)
            raw = fh.read(header_len)
    except OSError as exc:
        raise BundleError(
            f"cannot read bundle {path} ({exc.strerror or exc}); check its permissions"
        ) from exc
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(foreign) from exc
    if not isinstance(header, dict):
        raise BundleError(foreign)
    return header


def read_bundle_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The bundle's metadata, read from the weights file's header only (fast; tensors are not read)."""
    bundle_path = Path(path)
    header = _read_header(bundle_path)
    extra = header.get("__metadata__")
    if not isinstance(extra, dict) or METADATA_KEY not in extra:
        raise BundleError(
            f"{bundle_path} is a safetensors file but has no geocrop metadata; it was not written by "
            "geocrop: pass a bundle from `geocrop pretrain` or `geocrop train`"
        )
    try:
        meta = json.loads(extra[METADATA_KEY])
    except (TypeError, json.JSONDecodeError) as exc:
        raise BundleError(
            f"geocrop metadata in {bundle_path} is not valid JSON; the file is corrupt, rewrite it"
        ) from exc
    if not isinstance(meta, dict):
        raise BundleError(
            f"geocrop metadata in {bundle_path} is not a JSON object; the file is corrupt, rewrite it"
        )
    version = meta.get("format_version")
    if version is None:
        raise BundleError(
            f"bundle {bundle_path} has no format_version in its metadata; rewrite it with geocrop"
        )
    if not isinstance(version, int) or version > BUNDLE_FORMAT_VERSION or version < 1:
        raise BundleError(
            f"bundle {bundle_path} has format_version {version!r} but this geocrop reads up to "
            f"{BUNDLE_FORMAT_VERSION}; upgrade geocrop or re-export the bundle"
        )
    return meta


def load_bundle(path: str | os.PathLike[str]) -> Bundle:
    """Read a bundle's metadata (validated first) and then its tensors. Never unpickles."""
    bundle_path = Path(path)
    meta = read_bundle_metadata(bundle_path)
    try:
        tensors = load_file(str(bundle_path))
    except Exception as exc:  # safetensors raises its own SafetensorError for truncated/corrupt data
        raise BundleError(
            f"bundle {bundle_path} has a valid header but unreadable tensors ({exc}); the file is truncated "
            "or corrupt, copy or write it again"
        ) from exc
    return Bundle(tensors=dict(tensors), metadata=meta, path=bundle_path)
