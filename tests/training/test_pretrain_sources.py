"""Pretraining from what users have: samples tables and NetCDF cubes, Sentinel-1 as the second view,
exact resume, bundles that name their modality and filled bands, and the backbone warning."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from geocrop.data.pairs import PairSet
from geocrop.errors import InputError
from geocrop.io.bundle import load_bundle
from geocrop.training.features import filled_band_mismatch, load_backbone
from geocrop.training.pretrain import PretrainConfig, pretrain
from tests.io.cube_fixtures import write_cube, write_long_table


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny(out: Path, s2: Path, **kw: Any) -> PretrainConfig:
    args: dict[str, Any] = {"out": out, "s2": str(s2), "epochs": 2, "batch_size": 64, "width": 16, "depth": 1,
                            "retrieval_candidates": 32, "device": "cpu"}  # fmt: skip
    args.update(kw)
    return PretrainConfig(**args)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_table_pretrains_bimodal_with_s1_and_resumes_exactly(tmp_path: Path) -> None:
    table = write_long_table(tmp_path / "t.parquet", samples=60, dates=8)
    straight = pretrain(tiny(tmp_path / "a", table), progress=False)
    pairs = PairSet.open(tmp_path / "a" / "pairs")
    assert pairs.second_modality == "sentinel-1" and pairs.manifest["n_features"] == 14
    assert pairs.manifest["columns"][-2:] == ["s1.VV", "s1.VH"]
    meta = load_bundle(straight.bundle).metadata
    assert meta["second_modality"] == "sentinel-1" and meta["s1_backbone"]["in_features"] == 2
    assert meta["filled_bands"] == ["B01", "B8A", "B09"]
    assert any(k.startswith("s1_backbone.") for k in load_bundle(straight.bundle).tensors)

    def kill(epoch: int, record: Any) -> None:
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pretrain(tiny(tmp_path / "b", table), progress=False, on_epoch_end=kill)
    resumed = pretrain(tiny(tmp_path / "b", table), progress=False)
    assert resumed.resumed_from == 1
    a, b = load_bundle(straight.bundle).tensors, load_bundle(resumed.bundle).tensors
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    # train --backbone takes the S2 encoder of an S1-trained bundle like any other
    backbone = load_backbone(straight.bundle)
    assert backbone.module is not None and backbone.spec["in_features"] == 12
    assert filled_band_mismatch(backbone, ("B01", "B8A", "B09")) is None
    warning = filled_band_mismatch(backbone, ("B01", "B09"))
    assert warning is not None and "filled (not observed) band(s) B8A the labelled data has" in warning


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_table_unimodal_scarf(tmp_path: Path) -> None:
    table = write_long_table(tmp_path / "t.csv", samples=40, dates=6, s1=False)
    result = pretrain(tiny(tmp_path / "u", table, mode="unimodal"), progress=False)
    assert load_bundle(result.bundle).metadata["second_modality"] is None
    with pytest.raises(InputError, match="no Sentinel-1 columns"):
        pretrain(tiny(tmp_path / "v", table), progress=False)
    assert not (tmp_path / "v").exists()


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_cube_pretrains_bimodal_with_its_s1_variables(tmp_path: Path) -> None:
    cube = write_cube(tmp_path / "c.nc", size=16, months=3)
    result = pretrain(tiny(tmp_path / "c", cube, pixels_per_date=100), progress=False)
    pairs = PairSet.open(tmp_path / "c" / "pairs")
    assert pairs.second_modality == "sentinel-1" and pairs.manifest["counts"]["train"] > 100
    assert json.loads((tmp_path / "c" / "encoder.json").read_text())["second_modality"] == "sentinel-1"
    assert result.history[-1]["retrieval_top1"] >= 0


def test_second_modality_options_are_checked(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        tiny(tmp_path / "x", tmp_path, second_modality="radar")
    with pytest.raises(InputError, match="needs `planet`"):
        tiny(tmp_path / "x", tmp_path, second_modality="planetscope")
    with pytest.raises(InputError, match="drop one of them"):
        tiny(tmp_path / "x", tmp_path, second_modality="s1", planet="p")


def test_real_france_table_gives_s2_s1_pairs(realdata: Path, tmp_path: Path) -> None:
    from geocrop.data.table_pairs import open_table_pairs

    with pytest.warns(UserWarning, match="digital numbers"):
        pairs = open_table_pairs(
            realdata / "worldcereal" / "extractions_2023_FRA_LPIS_dekad.geoparquet", second="sentinel-1"
        )
    assert pairs.s2.shape[1:3] == (12, 1) and pairs.s2.shape[3] == 500
    assert pairs.second is not None and pairs.second.shape[1] == 2
    vv = pairs.second[:, 0]
    assert -16 < float(np.nanmedian(vv)) < -6  # VV over crops, in dB
    assert pairs.provenance["filled_bands"] == ["B01", "B8A", "B09"]
