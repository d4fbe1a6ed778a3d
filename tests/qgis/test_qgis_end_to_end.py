"""The real `geocrop map` driven from real QGIS on a simulated sample area (slow: minutes under load).

The sample area comes from `geocrop.sim.sample_area` (the simulator: a test instrument, not real
imagery) and the model bundle has random weights, so the map's classes mean nothing; what is tested is
the plumbing: QGIS -> plugin -> geocrop out of process -> a valid COG that QGIS shows with crop names.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.qgis.qgis_harness import QgisProfile, has_traceback, make_profile, report_of

pytestmark = [
    pytest.mark.qgis,
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("geocrop.cli.map") is None
        or importlib.util.find_spec("geocrop.sim.sample_area") is None,
        reason="`geocrop map` or the sample-area simulator is not part of this checkout yet",
    ),
]

GEOCROP = Path(sys.executable).with_name("geocrop")  # the venv's real console script
START, END = "2021-03-01", "2021-10-31"


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny simulated sample area and a random-init bundle over the simulator's crop classes."""
    import torch

    from geocrop.core.bands import S2_BANDS
    from geocrop.io.bundle import save_bundle
    from geocrop.models.registry import build_backbone, build_head, state_to_numpy
    from geocrop.sim.phenology import CROP_COLOURS, CROP_TYPES
    from geocrop.sim.sample_area import write_sample_area
    from geocrop.sim.scene import SimulationConfig

    root = tmp_path_factory.mktemp("sample")
    area = write_sample_area(root / "area", SimulationConfig.tiny())
    n = len(S2_BANDS)
    metadata: dict[str, Any] = {
        "name": "qgis-test-random",
        "backbone": {"name": "resmlp", "in_features": n, "width": 16, "depth": 2},
        "head": {"name": "lstm", "in_features": 16, "n_classes": len(CROP_TYPES), "hidden": 8, "layers": 1},
        "bands": list(S2_BANDS),
        "normalization": {"mean": [0.1] * n, "std": [0.1] * n},
        "classes": [{"value": i, "name": c, "color": CROP_COLOURS[c]} for i, c in enumerate(CROP_TYPES)],
        "temporal_grid": {"start": START, "end": END, "steps": 6},
    }
    torch.manual_seed(0)
    tensors = {
        **state_to_numpy(build_backbone(metadata["backbone"]), "backbone"),
        **state_to_numpy(build_head(metadata["head"]), "head"),
    }
    bundle = save_bundle(root / "random.safetensors", tensors, metadata)
    return {"catalog": area.catalog, "field": area.field, "bundle": Path(bundle)}


@pytest.fixture(scope="module")
def profile(tmp_path_factory: pytest.TempPathFactory) -> QgisProfile:
    return make_profile(tmp_path_factory.mktemp("qgis"))


def _classes() -> list[tuple[str, str]]:
    from geocrop.sim.phenology import CROP_COLOURS, CROP_TYPES

    return [(name, CROP_COLOURS[name].lower()) for name in CROP_TYPES]


def test_qgis_process_maps_the_sample_area_with_real_geocrop(
    profile: QgisProfile, sample: dict[str, Path], tmp_path: Path
) -> None:
    from rio_cogeo.cogeo import cog_validate

    out = tmp_path / "out" / "crops.tif"
    html = tmp_path / "out" / "crops.html"
    completed, payload = profile.run_json(
        "run",
        "geocrop:mapcrops",
        "--",
        f"AOI={sample['field']}",
        f"START={START}",
        f"END={END}",
        f"STAC={sample['catalog']}",
        f"MODEL={sample['bundle']}",
        f"OUTPUT={out}",
        f"HTML={html}",
        f"GEOCROP_EXECUTABLE={GEOCROP}",
        timeout=600,
    )
    text = completed.stdout + completed.stderr
    assert completed.returncode == 0, text
    assert not has_traceback(text)
    assert payload["results"]["OUTPUT"] == str(out)
    log = payload["log"]["info"]
    assert any(line.startswith("Using geocrop ") for line in log)
    assert any(line.startswith("tile ") for line in log)  # geocrop's own progress messages reached QGIS

    is_valid, errors, _ = cog_validate(str(out))
    assert is_valid, errors
    assert out.with_suffix(".qml").is_file() and html.is_file()
    assert not out.with_name(f"{out.name}.parts").exists()  # the resume journal is gone after success

    info = report_of(profile.python("inspect-raster", str(out)))
    assert info["valid"] and info["renderer"] == "paletted" and info["crs"] == "EPSG:32633"
    assert [(c["label"], c["color"]) for c in info["classes"]] == _classes()
    assert info["legend"] == [name for name, _ in _classes()]


@pytest.mark.parametrize(
    "percent",
    [
        "3",
        "50",
    ],  # 3 %: opening the scenes; >= 50 %: the tile is classified, journal and COG temporaries exist
)
def test_cancel_real_geocrop_mid_run(
    profile: QgisProfile, sample: dict[str, Path], tmp_path: Path, percent: str
) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    params = {
        "AOI": str(sample["field"]),
        "START": START,
        "END": END,
        "STAC": str(sample["catalog"]),
        "MODEL": str(sample["bundle"]),
        "OUTPUT": str(out_dir / "crops.tif"),
        "GEOCROP_EXECUTABLE": str(GEOCROP),
    }
    completed = profile.python("run", json.dumps(params), "--cancel-at-progress", percent, timeout=600)
    report = report_of(completed)
    assert not report["ok"] and any("canceled" in error for error in report["errors"])
    assert report["cancel_to_return"] < 30
    assert list(out_dir.iterdir()) == []
    assert not _processes_mentioning(str(out_dir))  # no geocrop (or worker) left running


def test_train_then_map_with_real_geocrop(profile: QgisProfile, tmp_path: Path) -> None:
    """Train crop classifier on the simulated parcels, then map with that bundle: both from qgis_process."""
    from geocrop.io.bundle import read_bundle_metadata
    from geocrop.sim.sample_area import write_sample_area
    from geocrop.sim.scene import SimulationConfig

    # 48x48 pixels of 60 m fields: at least 3 parcels of every crop, so each class reaches both splits
    config = SimulationConfig(
        width=48, height=48, s2_revisit_days=15, planet_revisit_days=5, field_size_m=60.0
    )
    area = write_sample_area(tmp_path / "area", config)
    bundle = tmp_path / "models" / "fields.safetensors"
    completed, payload = profile.run_json(
        "run",
        "geocrop:trainclassifier",
        "--",
        f"PARCELS={area.labels}",
        "CLASS_FIELD=crop",
        f"S2={area.catalog}",
        f"START={START}",
        f"END={END}",
        "HEAD=1",
        "EPOCHS=2",
        "TRAIN_PIXELS=50",
        "STEPS=12",
        f"OUTPUT={bundle}",
        f"GEOCROP_EXECUTABLE={GEOCROP}",
        timeout=600,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert bundle.is_file() and any(line.startswith("epoch 2/2:") for line in payload["log"]["info"])
    names = [c["name"] for c in read_bundle_metadata(bundle)["classes"]]
    assert len(names) >= 2

    out = tmp_path / "out" / "crops.tif"
    completed = profile.run(
        "run",
        "geocrop:mapcrops",
        "--",
        f"AOI={area.field}",
        f"START={START}",
        f"END={END}",
        f"STAC={area.catalog}",
        f"MODEL={bundle}",
        f"OUTPUT={out}",
        f"GEOCROP_EXECUTABLE={GEOCROP}",
        timeout=600,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    info = report_of(profile.python("inspect-raster", str(out)))
    assert info["renderer"] == "paletted" and info["legend"] == names


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(int(entry.name))
    return found
