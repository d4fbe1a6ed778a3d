"""Bundles: round trip, JSON copy, atomic writes, and clear BundleErrors for missing/corrupt/foreign files."""

from __future__ import annotations

import json
import os
import pickle
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from geocrop.errors import BundleError, OutputError
from geocrop.io.bundle import (
    BUNDLE_FORMAT_VERSION,
    METADATA_KEY,
    load_bundle,
    read_bundle_metadata,
    save_bundle,
)


def _tensors() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "backbone.stem.weight": rng.standard_normal((256, 12)).astype(np.float32),
        "backbone.stem.bias": rng.standard_normal(256).astype(np.float32),
        "head.steps": np.arange(144, dtype=np.int64),
    }


META = {
    "architecture": {"backbone": {"name": "resmlp", "in_features": 12}},
    "bands": ["B01", "B02"],
    "seed": 3,
}


def test_round_trip_tensors_metadata_and_json_copy(tmp_path: Path) -> None:
    path = save_bundle(tmp_path / "sub" / "model.safetensors", _tensors(), META)
    assert path == tmp_path / "sub" / "model.safetensors"
    bundle = load_bundle(path)
    assert bundle.tensors.keys() == _tensors().keys()
    for name, arr in _tensors().items():
        np.testing.assert_array_equal(bundle.tensors[name], arr)
        assert bundle.tensors[name].dtype == arr.dtype
    assert bundle.metadata == {**META, "format_version": BUNDLE_FORMAT_VERSION}
    assert read_bundle_metadata(path) == bundle.metadata
    sidecar = json.loads((tmp_path / "sub" / "model.json").read_text())
    assert sidecar == bundle.metadata
    # Only the two files: no temporary files left behind.
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.json", "model.safetensors"]


def test_overwrite_replaces_atomically(tmp_path: Path) -> None:
    path = save_bundle(tmp_path / "m.safetensors", _tensors(), META)
    save_bundle(path, {"x": np.ones(3, np.float32)}, {"seed": 9})
    assert load_bundle(path).tensors.keys() == {"x"}
    assert read_bundle_metadata(path)["seed"] == 9


def test_unserialisable_metadata_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match=r"JSON.*tolist"):
        save_bundle(tmp_path / "m.safetensors", _tensors(), {"stats": np.ones(3)})
    with pytest.raises(BundleError, match="NaN"):
        save_bundle(tmp_path / "m.safetensors", _tensors(), {"mean": float("nan")})
    assert list(tmp_path.iterdir()) == []


def test_wrong_suffix_and_unwritable_folder(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match=r"\.safetensors"):
        save_bundle(tmp_path / "model.pt", _tensors(), META)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="writable"):
        save_bundle(blocker / "model.safetensors", _tensors(), META)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match=r"does not exist.*geocrop pretrain"):
        load_bundle(tmp_path / "nope.safetensors")
    with pytest.raises(BundleError, match="not a file"):
        read_bundle_metadata(tmp_path)


class _Payload:
    """Unpickling this creates a directory: proof that a loader unpickled the file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, (str(self.marker),))


def test_pickle_renamed_safetensors_is_rejected_without_unpickling(tmp_path: Path) -> None:
    marker = tmp_path / "unpickled"
    path = tmp_path / "evil.safetensors"
    path.write_bytes(pickle.dumps({"weights": _Payload(marker)}, protocol=2))
    for reader in (load_bundle, read_bundle_metadata):
        with pytest.raises(BundleError, match="not a safetensors file"):
            reader(path)
    assert not marker.exists()
    pickle.loads(path.read_bytes())  # the payload is live: unpickling it would have left the marker
    assert marker.exists()


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"abc",
        struct.pack("<Q", 10**12) + b"{}",
        struct.pack("<Q", 4) + b"\xff\xfe{}",
        struct.pack("<Q", 2) + b"[]",
    ],
    ids=["empty", "short", "huge-header", "not-utf8", "not-an-object"],
)
def test_corrupt_files_are_rejected(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(BundleError, match="not a safetensors file"):
        load_bundle(path)


def test_truncated_tensor_data_is_rejected(tmp_path: Path) -> None:
    path = save_bundle(tmp_path / "m.safetensors", _tensors(), META)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 100])
    with pytest.raises(BundleError, match="truncated or corrupt"):
        load_bundle(path)


def test_safetensors_without_geocrop_metadata(tmp_path: Path) -> None:
    path = tmp_path / "plain.safetensors"
    save_file({"w": np.zeros(2, np.float32)}, str(path))
    with pytest.raises(BundleError, match="no geocrop metadata"):
        load_bundle(path)
    save_file({"w": np.zeros(2, np.float32)}, str(path), metadata={METADATA_KEY: "{not json"})
    with pytest.raises(BundleError, match="not valid JSON"):
        read_bundle_metadata(path)


@pytest.mark.parametrize("version", [None, 99, "1"])
def test_unsupported_format_version(tmp_path: Path, version: object) -> None:
    path = tmp_path / "v.safetensors"
    meta = {} if version is None else {"format_version": version}
    save_file({"w": np.zeros(2, np.float32)}, str(path), metadata={METADATA_KEY: json.dumps(meta)})
    with pytest.raises(BundleError, match="format_version"):
        load_bundle(path)
    with pytest.raises(BundleError, match="format_version"):
        save_bundle(tmp_path / "w.safetensors", _tensors(), {"format_version": 99})


def test_io_bundle_never_imports_torch() -> None:
    code = "import sys, geocrop.io.bundle; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
