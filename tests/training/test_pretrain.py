"""Pretraining loop: outputs, learning signal, exact resume, refusal of foreign runs, checkpoints, DDP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from geocrop.data.pairs import build_pairs_from_arrays
from geocrop.errors import BundleError
from geocrop.io.bundle import load_bundle
from geocrop.io.encoder_metadata import ENCODER_SCHEMA, read_encoder_metadata
from geocrop.models.contrastive import ContrastiveModel
from geocrop.models.registry import build_backbone, load_state
from geocrop.training.checkpoint import load_checkpoint, restore_checkpoint, save_checkpoint
from geocrop.training.pretrain import PretrainConfig, pretrain
from geocrop.training.retrieval import retrieval_accuracy

H = W = 32
DATES = np.array(["2021-05-01", "2021-05-06", "2021-05-11", "2021-05-16"], dtype="datetime64[D]")


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Tiny models on a shared 2-core machine: one thread is faster and steadier. Module-scoped so that it
    is set before the module-scoped runs below (bit-exact resume needs the same thread count)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_pairs(root: Path, *, per_date: int = 400) -> Path:
    """Correlated S2/Planet stacks (Planet = S2 blue/green/red/nir upsampled + noise) -> ``root/pairs``."""
    rng = np.random.default_rng(0)
    s2 = rng.random((len(DATES), 12, H, W), dtype=np.float32)
    planet = np.repeat(np.repeat(s2[:, [1, 2, 3, 7]], 3, axis=2), 3, axis=3)
    planet = planet + 0.05 * rng.standard_normal(planet.shape).astype(np.float32)
    build_pairs_from_arrays(
        s2=s2,
        s2_dates=DATES,
        planet=planet,
        planet_dates=DATES,
        out_dir=root / "pairs",
        pixels_per_date=per_date,
        heldout_per_date=128,
        seed=0,
        provenance={"s2_source": "synthetic test stacks"},
    )
    return root


def tiny(out: Path, **kw: Any) -> PretrainConfig:
    args: dict[str, Any] = {
        "out": out,
        "epochs": 3,
        "batch_size": 128,
        "width": 32,
        "depth": 2,
        "retrieval_candidates": 64,
        "device": "cpu",
    }
    args.update(kw)
    return PretrainConfig(**args)


@pytest.fixture(scope="module")
def pairs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pairs(tmp_path_factory.mktemp("pairs"))


def _copy_pairs(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src / "pairs", dst / "pairs")
    return dst


@pytest.fixture(scope="module")
def straight(pairs_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = _copy_pairs(pairs_dir, tmp_path_factory.mktemp("straight"))
    pretrain(tiny(out), progress=False)
    return out


def test_outputs_metadata_and_learning_signal(straight: Path) -> None:
    history = json.loads((straight / "history.json").read_text())["epochs"]
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert history[-1]["loss"] < history[0]["loss"]
    assert history[-1]["chance"] == pytest.approx(1 / 64)
    assert history[-1]["retrieval_top1"] > 5 * history[-1]["chance"]
    assert (straight / "history.csv").read_text().splitlines()[0].startswith("epoch,loss,retrieval_top1")
    bundle = load_bundle(straight / "encoder.safetensors")
    meta = bundle.metadata
    assert meta["mode"] == "bimodal" and meta["loss"] == "bimodal_ntxent_eq1"
    assert meta["backbone"] == {"name": "resmlp", "in_features": 12, "width": 32, "depth": 2}
    assert meta["planet_backbone"]["in_features"] == 36
    assert len(meta["normalization"]["mean"]) == 12 and len(meta["planet_normalization"]["std"]) == 36
    assert not {"normalisation", "planet_normalisation", "corruption"} & set(meta)  # one spelling
    assert meta["encoder_schema"] == ENCODER_SCHEMA and meta["kind"] == "pretrained_encoder"
    typed = read_encoder_metadata(meta, source="encoder.safetensors")
    assert typed.to_dict() == {k: v for k, v in meta.items() if k != "format_version"}
    assert typed.second is not None and typed.second.sensor == "planetscope"
    assert meta["bands"][0] == "B01" and meta["planet_bands"] == ["blue", "green", "red", "nir"]
    assert meta["corruption_rate"] == 0.2 and meta["temperature"] == 0.07 and meta["seed"] == 0
    assert meta["epochs"] == 3 and meta["provenance"]["pairs"]["provenance"]["s2_source"]
    encoder = build_backbone(meta["backbone"])
    load_state(encoder, bundle.tensors, "backbone")
    assert encoder(torch.zeros(5, 12)).shape == (5, 32)
    assert (straight / "encoder.json").exists()


def test_interrupted_run_resumes_to_identical_weights(
    pairs_dir: Path, straight: Path, tmp_path: Path
) -> None:
    out = _copy_pairs(pairs_dir, tmp_path)

    def kill_after_first(epoch: int, record: Any) -> None:
        if epoch == 1:
            raise KeyboardInterrupt  # as if the process were killed right after epoch 1's checkpoint

    with pytest.raises(KeyboardInterrupt):
        pretrain(tiny(out), progress=False, on_epoch_end=kill_after_first)
    assert load_checkpoint(out / "checkpoints" / "last.safetensors").epoch == 1
    assert not (out / "encoder.safetensors").exists()
    result = pretrain(tiny(out), progress=False)
    assert result.resumed_from == 1
    a = load_bundle(straight / "encoder.safetensors").tensors
    b = load_bundle(out / "encoder.safetensors").tensors
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(torch.from_numpy(a[key]), torch.from_numpy(b[key])), key
    assert json.loads((out / "history.json").read_text()) == json.loads(
        (straight / "history.json").read_text()
    )


def test_more_epochs_continue_and_other_settings_are_refused(
    pairs_dir: Path, straight: Path, tmp_path: Path
) -> None:
    out = _copy_pairs(pairs_dir, tmp_path)
    pretrain(tiny(out, epochs=2), progress=False)
    pretrain(tiny(out, epochs=3), progress=False)  # raising --epochs continues the same trajectory
    a = load_bundle(straight / "encoder.safetensors").tensors
    b = load_bundle(out / "encoder.safetensors").tensors
    assert all(np.array_equal(a[k], b[k]) for k in a)
    with pytest.raises(BundleError, match=r"'width': 32.*'width': 64"):
        pretrain(tiny(out, width=64), progress=False)


def test_unimodal_scarf_trains_s2_only(pairs_dir: Path, tmp_path: Path) -> None:
    out = _copy_pairs(pairs_dir, tmp_path)
    result = pretrain(tiny(out, mode="unimodal", epochs=1), progress=False)
    meta = load_bundle(result.bundle).metadata
    assert meta["mode"] == "unimodal" and meta["loss"] == "ntxent_symmetric"
    assert "planet_backbone" not in meta
    assert 0.0 <= result.history[0]["retrieval_top1"] <= 1.0


def test_checkpoint_round_trip_restores_every_state(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = ContrastiveModel(mode="bimodal", width=16, depth=1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    z_a, z_b = model(torch.randn(8, 12), torch.randn(8, 36))
    (z_a.sum() + z_b.sum()).backward()
    opt.step()
    gen = torch.Generator().manual_seed(5)
    np.random.seed(3)
    path = save_checkpoint(
        tmp_path / "c.safetensors", model=model, optimizer=opt, epoch=4, fingerprint={"a": 1}, generator=gen
    )
    expect = (torch.rand(3, generator=gen), torch.rand(3), np.random.rand(3))
    model2 = ContrastiveModel(mode="bimodal", width=16, depth=1)
    opt2 = torch.optim.Adam(model2.parameters(), lr=1e-3)
    gen2 = torch.Generator()
    ckpt = load_checkpoint(path)
    assert ckpt.epoch == 4 and ckpt.fingerprint == {"a": 1}
    restore_checkpoint(ckpt, model=model2, optimizer=opt2, generator=gen2)
    for p, q in zip(model.parameters(), model2.parameters(), strict=True):
        assert torch.equal(p, q)
    for p, q in zip(opt.state.values(), opt2.state.values(), strict=True):
        assert all(torch.equal(p[k], q[k]) for k in p)
    assert torch.equal(torch.rand(3, generator=gen2), expect[0]) and torch.equal(torch.rand(3), expect[1])
    assert np.array_equal(np.random.rand(3), expect[2])
    (tmp_path / "pickle.safetensors").write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(BundleError, match="not a geocrop checkpoint"):
        load_checkpoint(tmp_path / "pickle.safetensors")


def test_retrieval_accuracy_and_chance() -> None:
    z = torch.randn(256, 16)
    perfect = retrieval_accuracy(z, z, candidates=64)
    assert perfect.accuracy == 1.0 and perfect.chance == 1 / 64 and perfect.queries == 256
    noise = retrieval_accuracy(z, torch.randn(256, 16), candidates=64)
    assert noise.accuracy < 0.15
    assert retrieval_accuracy(z[:10], z[:10], candidates=64).candidates == 10
    assert perfect.median_rank == 1 and perfect.top10 == 1.0
    assert noise.chance_median_rank == 32.5 and 16 < noise.median_rank < 49


def test_retrieval_ranks_match_a_brute_force_count() -> None:
    g = torch.Generator().manual_seed(5)
    queries = torch.randn(120, 8, generator=g)
    keys = queries + 1.5 * torch.randn(120, 8, generator=g)  # partners findable, but not always first
    score = retrieval_accuracy(queries, keys, candidates=40)
    ranks = []
    for start in range(0, 120, 40):
        q = torch.nn.functional.normalize(queries[start : start + 40], dim=1)
        c = torch.nn.functional.normalize(keys[start : start + 40], dim=1)
        for i in range(40):
            sims = [float(q[i] @ c[j]) for j in range(40)]
            ranks.append(1 + sum(s > sims[i] for s in sims))
    assert score.top10 == pytest.approx(sum(r <= 10 for r in ranks) / 120)
    assert score.median_rank == float(torch.tensor(ranks, dtype=torch.float64).median())
    assert 0 < score.accuracy < score.top10 < 1


@pytest.mark.slow
def test_two_cpu_ranks_match_one_process(pairs_dir: Path, straight: Path, tmp_path: Path) -> None:
    """torchrun x2 (gloo) on the same global batch ends with the single-process weights."""
    out = _copy_pairs(pairs_dir, tmp_path)
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
        "-m", "geocrop.cli.main", "pretrain", "--out", str(out), "--epochs", "3", "--batch-size", "128",
        "--width", "32", "--depth", "2", "--device", "cpu", "--no-progress",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    meta = load_bundle(out / "encoder.safetensors").metadata
    assert meta["world_size"] == 2 and meta["batch_size"] == 128
    a = load_bundle(straight / "encoder.safetensors").tensors
    b = load_bundle(out / "encoder.safetensors").tensors
    print("2 ranks vs 1 process, max |diff|:", max(float(np.abs(a[k] - b[k]).max()) for k in a))
    for key in a:
        np.testing.assert_allclose(a[key], b[key], atol=1e-5, rtol=1e-5, err_msg=key)
