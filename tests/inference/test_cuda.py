"""The CUDA path: bf16 engine parity with the fp32 CPU engine, out-of-memory back-off, `geocrop map` and one
pretraining epoch on the GPU; the device feed, batch growth and the compiled backbone on the GPU.

Tests marked ``gpu`` skip without a CUDA device (`tests/conftest.py`); `bench/device_check.sh` runs them
on a GPU machine. The unmarked tests run the same bf16 and back-off logic on the CPU, so the default suite
covers the code the GPU runs. When ``$GEOCROP_CHECK_FACTS`` names a file, the tests append what they
measured to it as JSON lines (the device check's table reads them).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from geocrop.cli import main as main_module
from geocrop.inference.engine import BlockPrediction, Predictor
from geocrop.inference.plan import DEMO_BUNDLE
from geocrop.models.batching import CUDA_BATCH_ROWS

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]
#: bf16 against fp32: largest probability difference, and share of pixels that may change class (only
#: where fp32's two best classes are this close).
PROB_ATOL = 0.02
CLASS_AGREEMENT = 0.99
NEAR_TIE = 0.05


def record(check: str, **facts: Any) -> None:
    """Append one measurement to ``$GEOCROP_CHECK_FACTS`` (JSON lines) when it is set."""
    path = os.environ.get("GEOCROP_CHECK_FACTS")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"check": check, **facts}) + "\n")


def demo_block(side: int, *, seed: int = 0) -> np.ndarray:
    """(144, 12, side, side) reflectance in [0, 0.5), one row of pixels fully masked and some NaN steps."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 0.5, (144, 12, side, side)).astype(np.float32)
    x[:, :, 0, : side // 2] = np.nan
    x[rng.random(144) < 0.3, :, 1:, :] = np.nan  # cloudy dates
    return x


def compare(got: BlockPrediction, want: BlockPrediction) -> dict[str, float]:
    """Assert bf16 ``got`` is within bf16 tolerance of fp32 ``want``; return the figures."""
    np.testing.assert_array_equal(got.classes == 255, want.classes == 255)
    valid = want.classes != 255
    diff = float(np.nanmax(np.abs(got.probs - want.probs)))
    same = got.classes[valid] == want.classes[valid]
    top2 = np.sort(want.probs[:, valid], axis=0)[-2:]
    margin = (top2[1] - top2[0])[~same]
    assert diff <= PROB_ATOL, f"bf16 probabilities differ from fp32 by up to {diff:.4f}"
    assert same.mean() >= CLASS_AGREEMENT and (margin < NEAR_TIE).all(), (same.mean(), margin)
    return {"pixels": int(valid.sum()), "max_prob_diff": diff, "class_agreement": float(same.mean())}


@pytest.mark.parametrize("device", DEVICES)
def test_bf16_engine_matches_the_fp32_cpu_engine_on_the_demo_bundle(device: str) -> None:
    side = 48 if device == "cuda" else 8
    x = demo_block(side)
    want = Predictor(DEMO_BUNDLE, device="cpu", precision="fp32").predict_block(x)
    predictor = Predictor(DEMO_BUNDLE, device=device)  # "auto" precision: bf16 on CUDA
    if device == "cpu":
        predictor = Predictor(DEMO_BUNDLE, device="cpu", precision="bf16")
    assert predictor.precision == "bf16"
    facts = compare(predictor.predict_block(x), want)
    record("parity", device=device, **facts)


@pytest.mark.parametrize("head", ["lstm", "inception", "transformer"])
@pytest.mark.parametrize("device", DEVICES)
def test_bf16_matches_fp32_for_every_head_family(device: str, head: str) -> None:
    """Random-weight paper-size backbone + each head family at its default size (the bench's models)."""
    from geocrop.core.bands import S2_BANDS
    from geocrop.inference.schema import spec_for_modules
    from geocrop.models.registry import build_backbone, build_head

    torch.manual_seed(0)
    backbone = build_backbone({"name": "resmlp", "in_features": 12, "width": 256, "depth": 8})
    module = build_head({"name": head, "in_features": 256, "n_classes": 9})
    spec = spec_for_modules(bands=S2_BANDS, classes=[f"c{i}" for i in range(9)], steps=144,
                            mean=[0.15] * 12, std=[0.1] * 12)  # fmt: skip
    x = demo_block(16 if device == "cuda" else 3, seed=4)
    want = Predictor.from_modules(backbone=backbone, head=module, spec=spec, device="cpu").predict_block(x)
    got = Predictor.from_modules(
        backbone=backbone, head=module, spec=spec, device=device, precision="bf16"
    ).predict_block(x)
    record(f"heads-{head}", device=device, **compare(got, want))


def test_precision_is_checked() -> None:
    from geocrop.errors import InputError

    with pytest.raises(InputError, match="precision"):
        Predictor(DEMO_BUNDLE, device="cpu", precision="fp16")  # type: ignore[arg-type]


def test_out_of_memory_halves_the_batch_and_keeps_the_result(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The back-off logic on the CPU: a batch over 2,000 rows raises CUDA's out-of-memory error."""
    x = demo_block(6, seed=1)
    want = Predictor(DEMO_BUNDLE, device="cpu").predict_block(x)
    predictor = Predictor(DEMO_BUNDLE, device="cpu", batch_rows=16 * 144)
    real = predictor._run_batch
    seen: list[int] = []

    def capped(batch: torch.Tensor) -> torch.Tensor:
        rows = batch.shape[0] * batch.shape[1]
        if rows > 2000:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        seen.append(rows)
        return real(batch)

    monkeypatch.setattr(predictor, "_run_batch", capped)
    with caplog.at_level(logging.WARNING, logger="geocrop.inference.engine"):
        got = predictor.predict_block(x)
    assert predictor.batch_rows == 8 * 144 and max(seen) <= 8 * 144
    assert "halving the batch" in caplog.text
    np.testing.assert_array_equal(got.classes, want.classes)
    np.testing.assert_allclose(got.probs, want.probs, atol=1e-5, equal_nan=True)


@pytest.mark.gpu
def test_cuda_out_of_memory_under_a_memory_cap_backs_off(caplog: pytest.LogCaptureFixture) -> None:
    """A 512 MiB cap on this process: the default 1Mi-row batch (about 1.5 GB of bf16 activations) fails,
    the engine halves it until it fits and the map is the same as without the cap."""
    x = demo_block(96, seed=2)
    want = Predictor(DEMO_BUNDLE, device="cuda").predict_block(x)
    torch.cuda.empty_cache()
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction((512 << 20) / total)
    try:
        predictor = Predictor(DEMO_BUNDLE, device="cuda")
        with caplog.at_level(logging.WARNING, logger="geocrop.inference.engine"):
            got = predictor.predict_block(x)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
        torch.cuda.empty_cache()
    assert predictor.batch_rows < CUDA_BATCH_ROWS
    assert "halving the batch" in caplog.text
    facts = compare(got, want)
    record("oom", cap_mib=512, start_rows=CUDA_BATCH_ROWS, final_rows=predictor.batch_rows, **facts)


@pytest.fixture(scope="module")
def sample_area(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("area") / "data"
    result = CliRunner().invoke(main_module.cli, ["simulate", "--out", str(out), "--tiny"])
    assert result.exit_code == 0, result.output
    return out


def read_classes(path: Path) -> np.ndarray:
    import rasterio

    with rasterio.open(path) as src:
        return np.asarray(src.read(1))


@pytest.mark.gpu
def test_geocrop_map_on_cuda_matches_the_cpu_map(sample_area: Path, tmp_path: Path) -> None:
    maps = {}
    for device in ("cpu", "cuda"):
        out = tmp_path / f"{device}.tif"
        args = ["map", "--aoi", str(sample_area / "field.geojson"), "--start", "2021-01-01"]
        args += ["--end", "2021-12-31", "--stac", str(sample_area / "catalog.json"), "--out", str(out)]
        result = CliRunner().invoke(main_module.cli, [*args, "--device", device, "--progress", "none"])
        assert result.exit_code == 0, result.output
        maps[device] = read_classes(out)
    valid = maps["cpu"] != 255
    np.testing.assert_array_equal(maps["cuda"] == 255, ~valid)
    agreement = float((maps["cuda"][valid] == maps["cpu"][valid]).mean())
    assert valid.sum() > 100 and agreement >= CLASS_AGREEMENT
    record("map", pixels=int(valid.sum()), class_agreement=agreement)


@pytest.mark.gpu
def test_one_pretraining_epoch_on_cuda(sample_area: Path, tmp_path: Path) -> None:
    cat = str(sample_area / "catalog.json")
    out = tmp_path / "run"
    args = ["pretrain", "--s2", cat, "--planet", cat, "--epochs", "1", "--out", str(out)]
    result = CliRunner().invoke(main_module.cli, [*args, "--device", "cuda", "--no-progress"])
    assert result.exit_code == 0, result.output
    epochs = json.loads((out / "history.json").read_text())["epochs"]
    assert len(epochs) == 1 and np.isfinite(epochs[0]["loss"])
    assert (out / "encoder.safetensors").is_file()
    record("pretrain", loss=epochs[0]["loss"], retrieval_top1=epochs[0]["retrieval_top1"],
           chance=epochs[0]["chance"], steps=epochs[0]["steps"])  # fmt: skip


@pytest.mark.gpu
def test_device_feed_on_cuda_gives_the_host_feeds_map() -> None:
    """One copy of the block through pinned memory and a copy stream, then mask, gather and normalise on
    the GPU: the same map as the host feed's per-batch gathers (the same batches in the same kernels)."""
    x = demo_block(64, seed=5)
    rows = 2000 * 144
    host = Predictor(DEMO_BUNDLE, device="cuda", feed="host", batch_rows=rows).predict_block(x)
    predictor = Predictor(DEMO_BUNDLE, device="cuda", batch_rows=rows)
    assert predictor.feed == "device"
    got = predictor.predict_block(x)
    np.testing.assert_array_equal(got.classes, host.classes)
    diff = float(np.nanmax(np.abs(got.probs - host.probs)))
    assert diff <= 1e-6, diff
    record("feed", pixels=int((host.classes != 255).sum()), max_prob_diff=diff)


@pytest.mark.gpu
def test_concurrent_blocks_on_cuda_match_sequential_ones() -> None:
    """Blocks staged by several threads at once (copies on the copy stream while another block computes)."""
    from concurrent.futures import ThreadPoolExecutor

    blocks = [demo_block(40, seed=s) for s in range(4)]
    predictor = Predictor(DEMO_BUNDLE, device="cuda")
    want = [predictor.predict_block(b) for b in blocks]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(predictor.predict_block, blocks))
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g.classes, w.classes)
        np.testing.assert_allclose(g.probs, w.probs, atol=1e-6, equal_nan=True)


@pytest.mark.gpu
def test_batch_grows_to_free_memory_on_cuda() -> None:
    x = demo_block(96, seed=6)  # 1.3M clear rows: the first batch is a full 1Mi-row one
    predictor = Predictor(DEMO_BUNDLE, device="cuda")
    want = Predictor(DEMO_BUNDLE, device="cuda", batch_rows=CUDA_BATCH_ROWS).predict_block(x)
    got = predictor.predict_block(x)
    free, _ = torch.cuda.mem_get_info()
    assert predictor.batch_rows > CUDA_BATCH_ROWS
    compare(got, want)  # other batch sizes may pick other bf16 kernels: bf16 tolerance
    record("growth", start_rows=CUDA_BATCH_ROWS, grown_rows=predictor.batch_rows, free_gib=free / 2**30)


@pytest.mark.gpu
def test_compiled_backbone_on_cuda_matches_the_eager_one() -> None:
    """The default CUDA engine (backbone through torch.compile) against the same engine uncompiled."""
    from geocrop.models.fused import FusedBackbone

    x = demo_block(48, seed=7)
    eager = Predictor(DEMO_BUNDLE, device="cuda", compile_backbone=False).predict_block(x)
    predictor = Predictor(DEMO_BUNDLE, device="cuda")
    got = predictor.predict_block(x)
    backbone = predictor._compute_backbone
    assert isinstance(backbone, FusedBackbone) and backbone.compiled  # no fallback to eager happened
    facts = compare(got, eager)
    record("compiled", **facts)


@pytest.mark.gpu
def test_pretraining_replays_its_step_from_a_cuda_graph(
    sample_area: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Small batches, so an epoch has more steps than the three warm-up ones: the step is captured and
    replayed inside `geocrop pretrain` (no fallback warning) and the run ends with finite losses."""
    cat = str(sample_area / "catalog.json")
    out = tmp_path / "run"
    args = [
        "pretrain",
        "--s2",
        cat,
        "--planet",
        cat,
        "--epochs",
        "2",
        "--batch-size",
        "64",
        "--out",
        str(out),
    ]
    with caplog.at_level(logging.WARNING, logger="geocrop.training.graph_step"):
        result = CliRunner().invoke(main_module.cli, [*args, "--device", "cuda", "--no-progress"])
    assert result.exit_code == 0, result.output
    epochs = json.loads((out / "history.json").read_text())["epochs"]
    assert len(epochs) == 2 and all(np.isfinite(e["loss"]) for e in epochs)
    assert epochs[0]["steps"] > 4, epochs[0]["steps"]  # warm-up, capture and replays in one epoch
    assert "could not be captured" not in caplog.text
    record(
        "graph",
        steps=epochs[0]["steps"],
        loss=epochs[-1]["loss"],
        retrieval_top1=epochs[-1]["retrieval_top1"],
    )
