"""`bench/device_check.sh` and `bench/device_check.py`: the script's shell syntax, its table from canned
results, and (slow) the whole ``--device cpu --smoke`` dry run."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_device_check() -> ModuleType:
    spec = importlib.util.spec_from_file_location("device_check", ROOT / "bench" / "device_check.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["device_check"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_shell_script_parses() -> None:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash")
    subprocess.run([bash, "-n", str(ROOT / "bench" / "device_check.sh")], check=True)


def test_wheel_list_pins_one_version_each() -> None:
    lines = (ROOT / "bench" / "device_wheels.txt").read_text().splitlines()
    pins = [ln.split("==") for ln in lines if ln and not ln.startswith("#")]
    assert all(len(p) == 2 and p[1] for p in pins)
    names = [p[0].lower().replace("_", "-") for p in pins]
    assert len(names) == len(set(names)) and "rasterio" in names and "torch" not in names


def test_table_from_canned_results(tmp_path: Path) -> None:
    dc = load_device_check()
    report = dc.Report("cuda", tmp_path, machine={"gpu": "Test GPU", "gpu_memory_gib": 80.0, "torch": "x"})
    (tmp_path / "tests.xml").write_text(
        '<testsuites><testsuite><testcase name="test_bf16_engine_matches_the_fp32_cpu_engine_on_the_demo_'
        'bundle[cuda]" time="1.5"/><testcase name="test_one_pretraining_epoch_on_cuda" time="2">'
        '<failure message="boom"/></testcase></testsuite></testsuites>'
    )
    facts = {"check": "parity", "device": "cuda", "pixels": 2000, "max_prob_diff": 0.004}
    facts["class_agreement"] = 1.0
    report.facts.write_text(json.dumps(facts) + "\n")
    # 100M pixel-timesteps/s: DENETHOR's 830M in 8.3 s (met); 100M / 144 px/s = 250,000 km²/h.
    head = {"pts": 1e8, "flops": 2e14, "block_pts": 5e7, "flops_per_pixel": 2e8, "denethor_s": 8.3}
    engine = {"peak": 8e14, "peak_name": "bf16 torch.mm 8192^3", "transformer": head}
    (tmp_path / "engine.json").write_text(json.dumps(engine))
    paper_s = 1.44e9 / 1e6
    pre = {"batch": 2048, "fp32": {"pairs_s": 1e6, "flops": 1e13, "peak": 5e13, "paper_s": paper_s}}
    (tmp_path / "pretrain_bench_2048.json").write_text(json.dumps(pre))
    for name in ("CUDA tests", "engine bench", "pretrain bench 2048"):
        report.steps.append(dc.Step(name, status="ok", output="| a | b |\n"))
    text = report.write().read_text()
    assert "Test GPU (80 GiB" in text
    assert "2,000 px of the demo bundle: max abs Δp 0.0040" in text
    assert "FAILED: boom" in text
    assert "100,000,000 pixel-timesteps/s" in text and "250,000 km²/h" in text
    assert "DENETHOR tile-year 8.3 s vs < 10 s: **met**" in text
    assert "1,000,000 pairs/s" in text and "24.0 min vs <= 15 min: **missed**" in text


def test_dry_run_without_steps_writes_the_table(tmp_path: Path) -> None:
    dc = load_device_check()
    assert dc.main(["--device", "cpu", "--out", str(tmp_path), "--skip-tests", "--skip-bench"]) == 0
    assert (tmp_path / "device_check.md").read_text().startswith("# geocrop device check, cpu")


@pytest.mark.slow
def test_cpu_smoke_dry_run(tmp_path: Path) -> None:
    """The whole script on the CPU at the smallest sizes (~40 s on 2 cores): tests, engine and pretraining."""
    env_out = tmp_path / "out"
    proc = subprocess.run(
        ["bash", "bench/device_check.sh", "--device", "cpu", "--smoke", "--out", str(env_out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHON": sys.executable},
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    text = (env_out / "device_check.md").read_text()
    assert "engine, ResMLP-8x256 + transformer | ok" in text
    assert "pretraining step, batch 64, fp32 | ok" in text


def test_pretrain_bench_runs_and_compares_the_plain_loss(tmp_path: Path) -> None:
    """`bench/pretrain_throughput.py` at a toy size: it once stopped importing without anyone noticing."""
    out = tmp_path / "pretrain.json"
    cmd = [sys.executable, str(ROOT / "bench" / "pretrain_throughput.py"), "--device", "cpu"]
    cmd += ["--batch-size", "64", "--steps", "1", "--peak-n", "128", "--plain-loss", "--json", str(out)]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=300)
    figures = json.loads(out.read_text())
    assert set(figures) >= {"fp32", "fp32, plain loss"}
    assert all(figures[k]["pairs_s"] > 0 for k in ("fp32", "fp32, plain loss"))
    assert "| fraction of peak, all matmuls |" in done.stdout
