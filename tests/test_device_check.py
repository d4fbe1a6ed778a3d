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
    (tmp_path / "device_targets.json").write_text(json.dumps(canned_targets()))
    scale = [{"run": "local threads", "workers": 0, "seconds": 10.0, "identical": True}]
    scale += [{"run": f"LocalCluster, {k} workers", "workers": k, "seconds": s, "identical": k != 8}
              for k, s in ((1, 80.0), (4, 20.0), (8, 20.0))]  # fmt: skip
    (tmp_path / "scale_out.json").write_text(json.dumps(scale))
    for name in ("CUDA tests", "engine bench", "pretrain bench 2048", "device targets", "scale-out"):
        report.steps.append(dc.Step(name, status="ok", output="| a | b |\n"))
    text = report.write().read_text()
    assert "Test GPU (80 GiB" in text
    assert "2,000 px of the demo bundle: max abs Δp 0.0040" in text
    assert "FAILED: boom" in text
    assert "100,000,000 pixel-timesteps/s" in text and "250,000 km²/h" in text
    assert "DENETHOR tile-year 8.3 s vs < 10 s: **met**" in text
    assert "1,000,000 pairs/s" in text and "24.0 min vs <= 15 min: **missed**" in text
    # device targets: 2x from compiling; host feed 40 % of on-device, device feed 80 %; graph step 3x faster.
    assert "1,000,000 -> 2,000,000 rows/s (2.00x; compiling 30 s" in text
    assert (
        "host feed | ok | 4,000,000 pixel-timesteps/s = 40% of the on-device 10,000,000 (>= 70 %: **missed**)"
        in text
    )
    assert (
        "device feed | ok | 8,000,000 pixel-timesteps/s = 80% of the on-device 10,000,000 (>= 70 %: **met**)"
        in text
    )
    assert (
        "fp32, CUDA graph | ok | 3.00 ms, 682,667 pairs/s; an epoch of 14.4M pairs 0.4 min; 100 epochs "
        in text
    )
    assert "35.2 min vs <= 15 min: **missed**" in text
    # 12 s for 512 x 512 px: 263.7 s for 2400 x 2400 px, under 5 min.
    assert (
        "12.0 s for 262,144 px; a DENETHOR tile-year (2400 x 2400 px) by area 4.4 min vs < 5 min: **met**"
        in text
    )
    # scale-out: 4x at 4 workers (met), 4x at 8 (missed) and a differing map said so.
    assert "4.00x one worker (100% per worker) vs >= 3x: **met**; map identical to local threads: yes" in text
    assert (
        "4.00x one worker (50% per worker) vs >= 5x: **missed**; map identical to local threads: NO" in text
    )


def canned_targets() -> dict[str, object]:
    """`bench/device_targets.py` JSON with round figures."""
    backbone = {
        "rows": 1 << 22,
        "speedup": 2.0,
        "max_abs_diff": 0.01,
        "eager": {"rows_s": 1e6, "first_call_s": 0.1, "precision": "bf16", "denethor_s": 830.0},
        "compiled": {"rows_s": 2e6, "first_call_s": 30.0, "precision": "bf16", "denethor_s": 415.0},
    }
    feed = {
        "size": 256,
        "head": "transformer",
        "identical_maps": True,
        "resident": {"pts": 1e7, "denethor_s": 83.0},
        "host": {"pts": 4e6, "denethor_s": 207.5, "batch_rows": 1 << 20, "of_resident": 0.4},
        "device": {"pts": 8e6, "denethor_s": 103.8, "batch_rows": 1 << 22, "of_resident": 0.8},
    }
    step = 3e-3
    pretrain = {"batch": 2048,
                "eager": {"step_s": 9e-3, "pairs_s": 2048 / 9e-3, "epoch_s": 14.4e6 * 9e-3 / 2048,
                          "paper_s": 1.44e9 * 9e-3 / 2048, "graph": False},
                "graph": {"step_s": step, "pairs_s": 2048 / step, "epoch_s": 14.4e6 * step / 2048,
                          "paper_s": 1.44e9 * step / 2048, "graph": True}}  # fmt: skip
    mapped = {"side": 512, "dates": 36, "head": "transformer", "seconds": 12.0, "pixels": 262144,
              "denethor_tile_s": 12.0 * 2400**2 / 512**2}  # fmt: skip
    return {"backbone": backbone, "feed": feed, "pretrain": pretrain, "map": mapped}


def test_dry_run_without_steps_writes_the_table(tmp_path: Path) -> None:
    dc = load_device_check()
    assert dc.main(["--device", "cpu", "--out", str(tmp_path), "--skip-tests", "--skip-bench"]) == 0
    assert (tmp_path / "device_check.md").read_text().startswith("# geocrop device check, cpu")


@pytest.mark.slow
def test_cpu_smoke_dry_run(tmp_path: Path) -> None:
    """The whole script on the CPU at the smallest sizes (9 min on the shared 2-core machine at load 20):
    tests, engine, pretraining, device targets (compiling included) and a one-worker scale-out."""
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
    # every new path at tiny sizes: compiled backbone, both feeds, the step wrapper, one scale-out worker
    assert "backbone, eager vs torch.compile (fp32) | ok" in text
    assert "host feed | ok" in text and "device feed | ok" in text
    assert "host- and device-fed maps identical | ok | yes" in text
    assert "pretraining step, batch 64, fp32, step wrapper, eager | ok" in text
    assert "geocrop map (map_aoi), 16 x 16 px, 2 scenes of local COGs, transformer | ok" in text
    assert "scale-out, LocalCluster, 1 worker process x 1 thread | ok" in text
    assert "map identical to local threads: yes" in text


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
