"""The device check (issues 15 and 25): CUDA tests, engine, pretraining and scale-out benches, one table.

Run through ``bench/device_check.sh`` (which installs the carried wheels on the GPU machine). Steps, each a
subprocess with its own time limit inside an overall ``--deadline``:

1. ``pytest tests/inference/test_cuda.py tests/training/test_graph_step.py`` (bf16 parity with the fp32
   CPU engine on the demo bundle, the out-of-memory back-off under a memory cap, `geocrop map --device
   cuda` against the CPU map on the simulated sample area, one pretraining epoch on CUDA, the device feed
   against the host feed, batch growth, the compiled backbone against the eager one, the CUDA-graph
   pretraining step against the eager trajectory); the tests' figures arrive through
   ``$GEOCROP_CHECK_FACTS``;
2. ``bench/map_throughput.py --engine-only --device D``: per head, pixel-timesteps/s and the projected
   engine time of a DENETHOR tile-year (830M pixel-timesteps; target < 10 s on an H100/H200-class GPU),
   with the engine's defaults (on CUDA: compiled backbone, device feed, batches grown to free memory);
3. ``bench/device_targets.py``: the backbone eager vs compiled, the engine host-fed vs device-fed as a
   fraction of its on-device rate (target >= 70 %) with the DENETHOR tile-year projection, and the
   pretraining step eager vs replayed from a CUDA graph with its epoch and 100-epoch projection;
4. ``bench/pretrain_throughput.py`` at the paper's batch (2048) in fp32 / TF32 / bf16 autocast, on CUDA
   with the loss in its plain autograd form beside the row-blocked one: pairs/s and the paper's 100
   epochs x 14.4M pairs (target <= 15 min on a GPU);
5. ``bench/scale_out.py``: `geocrop map --scheduler` on a LocalCluster of 1, 4 and 8 worker processes
   (on the GPU machine's CPU cores), the speed-up per worker (targets >= 3x at 4, >= 5x at 8) and whether
   every map equals the threaded one.

``OUT/device_check.md`` is rewritten after every step, so a run cut short still leaves what it measured;
``--device cpu`` is the dry run (tiny sizes; the CUDA tests skip). Exit status 1 when a step failed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DENETHOR_TARGET_S = 10.0
PRETRAIN_TARGET_S = 15 * 60.0
#: Speed-up over one worker that `geocrop map --scheduler` should reach at 4 and 8 local workers.
SCALE_OUT_TARGETS = {4: 3.0, 8: 5.0}
STEPS = 144
#: 1 km² = 10,000 pixels at 10 m.
PX_PER_KM2 = 10_000


@dataclass(frozen=True)
class Sizes:
    block: int
    pixels: int
    batches: tuple[tuple[int, str, int], ...]  # (batch, precisions, steps) of each pretraining bench
    peak_n: int | None
    targets: tuple[str, ...] = ()  # bench/device_targets.py arguments
    scale_out: tuple[str, ...] = ()  # bench/scale_out.py arguments


SIZES = {
    "cuda": Sizes(256, 1 << 18, ((2048, "fp32,tf32,bf16", 20),), None,
                  ("--rows", str(1 << 22), "--size", "256", "--batch", "2048", "--steps", "20",
                   "--map-side", "512", "--dates", "36"),
                  ("--workers", "1,4,8", "--size", "96", "--chunk-size", "24")),
    "cpu": Sizes(8, 64, ((256, "fp32,bf16", 2),), 1024,
                 ("--rows", str(1 << 14), "--size", "8", "--batch", "256", "--steps", "2",
                  "--map-side", "64", "--dates", "12"),
                 ("--workers", "1,2", "--size", "32", "--chunk-size", "16")),
    "smoke": Sizes(4, 16, ((64, "fp32", 1),), 256,
                   ("--rows", "4096", "--size", "4", "--batch", "64", "--steps", "2", "--reps", "2",
                    "--width", "32", "--depth", "2", "--map-side", "16", "--dates", "2"),
                   ("--workers", "1", "--size", "16", "--chunk-size", "16")),
}  # fmt: skip


@dataclass
class Step:
    name: str
    status: str = "not run"
    seconds: float = 0.0
    output: str = ""


@dataclass
class Report:
    device: str
    out: Path
    machine: dict[str, Any] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)

    @property
    def facts(self) -> Path:
        return self.out / "facts.jsonl"

    def read_json(self, name: str) -> dict[str, Any]:
        path = self.out / name
        return json.loads(path.read_text()) if path.is_file() else {}

    def write(self) -> Path:
        path = self.out / "device_check.md"
        path.write_text(render(self))
        return path


def machine_facts(device: str) -> dict[str, Any]:
    import torch

    facts: dict[str, Any] = {"torch": torch.__version__, "python": sys.version.split()[0]}
    facts["cpus"] = os.cpu_count()
    # torch.compile needs a C compiler (Inductor's CPU code, Triton's launchers on CUDA): say if there is one.
    facts["cc"] = shutil.which("cc") or shutil.which("gcc") or "none"
    if device == "cuda" and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        facts.update(gpu=props.name, gpu_memory_gib=props.total_memory / 2**30, cuda=torch.version.cuda)
    return facts


def run_step(report: Report, name: str, argv: list[str], *, limit: float, deadline: float) -> Step:
    """Run ``argv`` (streaming its output to ours) within ``limit`` seconds and the overall deadline."""
    step = Step(name)
    report.steps.append(step)
    budget = min(limit, deadline - time.monotonic())
    if budget < 10:
        step.status = "skipped: out of time"
        report.write()
        return step
    print(f"\n=== {name}: {' '.join(argv)} (limit {budget:.0f} s)", flush=True)
    env = {**os.environ, "GEOCROP_CHECK_FACTS": str(report.facts), "PYTHONUNBUFFERED": "1"}
    started = time.monotonic()
    lines: list[str] = []
    with subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        assert proc.stdout is not None
        try:
            import selectors

            sel = selectors.DefaultSelector()
            sel.register(proc.stdout, selectors.EVENT_READ)
            while True:
                left = budget - (time.monotonic() - started)
                if left <= 0:
                    proc.kill()
                    step.status = f"timed out after {budget:.0f} s"
                    break
                if sel.select(timeout=min(left, 5.0)):
                    line = proc.stdout.readline()
                    if not line:
                        break
                    print(line, end="", flush=True)
                    lines.append(line)
            proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
    step.seconds = time.monotonic() - started
    step.output = "".join(lines)
    if step.status == "not run":
        step.status = "ok" if proc.returncode == 0 else f"failed (exit {proc.returncode})"
    report.write()
    return step


def test_outcomes(junit: Path) -> list[tuple[str, str, float]]:
    """(test name, passed/failed/skipped + reason, seconds) from a pytest JUnit XML file."""
    if not junit.is_file():
        return []
    rows = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "FAILED: " + (child.get("message") or "")[:160].replace("\n", " ")
            elif child.tag == "skipped":
                outcome = "skipped: " + (child.get("message") or "")[:80]
        rows.append((case.get("name", "?"), outcome, float(case.get("time", 0.0))))
    return rows


def read_facts(path: Path) -> dict[str, list[dict[str, Any]]]:
    facts: dict[str, list[dict[str, Any]]] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            entry = json.loads(line)
            facts.setdefault(entry.pop("check"), []).append(entry)
    return facts


def _fact_text(test: str, facts: dict[str, list[dict[str, Any]]], device: str) -> str:
    params = test.rstrip("]").split("[")[1].split("-") if "[" in test else []
    device = "cuda" if "cuda" in params else "cpu" if "cpu" in params else device

    def pick(kind: str) -> dict[str, Any] | None:
        entries = [f for f in facts.get(kind, []) if f.get("device", device) == device]
        return entries[-1] if entries else None

    if "matches_the_fp32" in test and (f := pick("parity")) is not None:
        return (f"{f['pixels']:,} px of the demo bundle: max abs Δp {f['max_prob_diff']:.4f} "
                f"(limit 0.02), same class on {f['class_agreement']:.2%}")  # fmt: skip
    heads = [pick(f"heads-{p}") for p in params]
    if "every_head_family" in test and (f := next((h for h in heads if h), None)) is not None:
        return (f"{f['pixels']:,} px: max abs Δp {f['max_prob_diff']:.4f}, "
                f"same class on {f['class_agreement']:.2%}")  # fmt: skip
    if "memory_cap" in test and (f := pick("oom")) is not None:
        return (
            f"{f['cap_mib']} MiB cap: batch {f['start_rows']:,} -> {f['final_rows']:,} rows; "
            f"max abs Δp {f['max_prob_diff']:.4f} vs uncapped, same class on {f['class_agreement']:.2%}"
        )
    if "device_feed" in test and (f := pick("feed")) is not None:
        return f"{f['pixels']:,} px: same classes as the host feed, max abs Δp {f['max_prob_diff']:.1e}"
    if "batch_grows" in test and (f := pick("growth")) is not None:
        return (f"batch {f['start_rows']:,} -> {f['grown_rows']:,} rows ({f['free_gib']:.0f} GiB free);"
                " same map within bf16 tolerance")  # fmt: skip
    if "compiled_backbone" in test and (f := pick("compiled")) is not None:
        return (f"{f['pixels']:,} px: max abs Δp {f['max_prob_diff']:.4f} vs eager, "
                f"same class on {f['class_agreement']:.2%}")  # fmt: skip
    if "cuda_graph" in test and (f := pick("graph")) is not None:
        return (f"{f['steps']} steps per epoch, replayed after 3 eager ones; loss {f['loss']:.3f}, held-out "
                f"retrieval {f['retrieval_top1']:.3f}")  # fmt: skip
    if "geocrop_map" in test and (f := pick("map")) is not None:
        return f"{f['pixels']:,} px: same class as the CPU map on {f['class_agreement']:.2%}"
    if "pretraining_epoch" in test and (f := pick("pretrain")) is not None:
        return (f"{f['steps']} steps, loss {f['loss']:.3f}, held-out retrieval {f['retrieval_top1']:.3f} "
                f"(chance {f['chance']:.4f})")  # fmt: skip
    return ""


def _rate(flops: float) -> str:
    return f"{flops / 1e12:.1f} TFLOP/s" if flops >= 1e12 else f"{flops / 1e9:.1f} GFLOP/s"


def _verdict(value: float, target: float) -> str:
    return "**met**" if value <= target else "**missed**"


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


def target_rows(t: dict[str, Any], status: str) -> list[str]:
    """Rows of `bench/device_targets.py`'s JSON: backbone eager vs compiled, host vs device feed, and the
    pretraining step eager vs CUDA graph."""
    rows = []
    if b := t.get("backbone"):
        e, c = b["eager"], b["compiled"]
        rows.append(
            f"| backbone, eager vs torch.compile ({c['precision']}) | {status} | {e['rows_s']:,.0f} -> "
            f"{c['rows_s']:,.0f} rows/s ({b['speedup']:.2f}x; compiling {c['first_call_s']:.0f} s; max abs "
            f"difference {b['max_abs_diff']:.1e}); DENETHOR tile-year, backbone alone "
            f"{e['denethor_s']:,.1f} -> {c['denethor_s']:,.1f} s |"
        )
    if f := t.get("feed"):
        for feed in ("host", "device"):
            v = f[feed]
            verdict = "**met**" if v["of_resident"] >= 0.7 else "**missed**"
            rows.append(
                f"| engine + {f['head']}, {f['size']} px block, {feed} feed | {status} | {v['pts']:,.0f} "
                f"pixel-timesteps/s = {v['of_resident']:.0%} of the on-device {f['resident']['pts']:,.0f} "
                f"(>= 70 %: {verdict}); DENETHOR tile-year from host memory {v['denethor_s']:,.1f} s vs < "
                f"{DENETHOR_TARGET_S:.0f} s: {_verdict(v['denethor_s'], DENETHOR_TARGET_S)}; batch "
                f"{v['batch_rows']:,} rows |"
            )
        if alone := f.get("feed_alone"):
            rows.append(
                f"| feed alone (mask, gather, normalise; no model) | {status} | host {alone['host']:,.0f}, "
                f"device {alone['device']:,.0f} pixel-timesteps/s |"
            )
        rows.append(
            f"| host- and device-fed maps identical | {status} | {'yes' if f['identical_maps'] else 'NO'} |"
        )
    if p := t.get("pretrain"):
        for name in ("eager", "graph"):
            v = p[name]
            label = "CUDA graph" if v["graph"] else "step wrapper, eager" if name == "graph" else "eager"
            rows.append(
                f"| pretraining step, batch {p['batch']}, fp32, {label} | {status} | "
                f"{v['step_s'] * 1e3:.2f} ms, {v['pairs_s']:,.0f} pairs/s; an epoch of 14.4M pairs "
                f"{_duration(v['epoch_s'])}; 100 epochs "
                f"{_duration(v['paper_s'])} vs <= 15 min: {_verdict(v['paper_s'], PRETRAIN_TARGET_S)} |"
            )
    if m := t.get("map"):
        rows.append(
            f"| geocrop map (map_aoi), {m['side']} x {m['side']} px, {m['dates']} scenes of local COGs, "
            f"{m['head']} | {status} | {m['seconds']:.1f} s for {m['pixels']:,} px; a DENETHOR tile-year "
            f"(2400 x 2400 px) by area {_duration(m['denethor_tile_s'])} vs < 5 min: "
            f"{_verdict(m['denethor_tile_s'], 300.0)} |"
        )
    return rows or [f"| device targets | {status} | |"]


def scale_out_rows(path: Path, status: str) -> list[str]:
    """Rows of `bench/scale_out.py --json`: wall time, speed-up over one worker, identical maps."""
    runs = json.loads(path.read_text()) if path.is_file() else []
    one = next((r["seconds"] for r in runs if r["workers"] == 1), None)
    rows = []
    for r in runs:
        text = f"{r['seconds']:.1f} s"
        if one and r["workers"]:
            speed = one / r["seconds"]
            target = SCALE_OUT_TARGETS.get(r["workers"])
            text += f", {speed:.2f}x one worker ({speed / r['workers']:.0%} per worker)"
            if target:
                text += f" vs >= {target:.0f}x: {'**met**' if speed >= target else '**missed**'}"
        text += f"; map identical to local threads: {'yes' if r['identical'] else 'NO'}"
        rows.append(f"| scale-out, {r['run']} | {status} | {text} |")
    return rows or [f"| scale-out | {status} | |"]


def render(report: Report) -> str:
    m = report.machine
    where = m.get("gpu") or f"{m.get('cpus')} CPU threads"
    if "gpu_memory_gib" in m:
        where += f" ({m['gpu_memory_gib']:.0f} GiB, CUDA {m.get('cuda')}, {m.get('cpus')} CPU threads)"
    head = (f"# geocrop device check, {report.device}: {where}, torch {m.get('torch')}, "
            f"python {m.get('python')}, C compiler {m.get('cc')}, "
            f"{dt.datetime.now():%Y-%m-%d %H:%M}\n")  # fmt: skip
    lines = [head, "| check | result | figures |", "|---|---|---|"]
    facts = read_facts(report.facts)
    for step in report.steps:
        if step.name == "CUDA tests":
            outcomes = test_outcomes(report.out / "tests.xml")
            if not outcomes:
                lines.append(f"| CUDA tests | {step.status} | |")
            for test, outcome, seconds in outcomes:
                figures = "" if outcome.startswith("skipped") else _fact_text(test, facts, report.device)
                lines.append(f"| `{test}` | {outcome} | {figures} ({seconds:.1f} s) |")
        elif step.name == "engine bench":
            engine = report.read_json("engine.json")
            heads = [k for k in ("lstm", "inception", "transformer") if k in engine]
            if not heads:
                lines.append(f"| engine bench | {step.status} | |")
            peak = engine.get("peak", 0.0)
            for h in heads:
                r = engine[h]
                km2_h = r["pts"] / STEPS * 3600 / PX_PER_KM2
                lines.append(
                    f"| engine, ResMLP-8x256 + {h} | {step.status} | {r['pts']:,.0f} pixel-timesteps/s on "
                    f"the device ({_rate(r['flops'])}, {r['flops'] / peak:.1%} of "
                    f"{engine['peak_name']} {_rate(peak)}), {km2_h:,.0f} km²/h at 144 steps; "
                    f"{r['block_pts']:,.0f} from a host block; DENETHOR tile-year {r['denethor_s']:,.1f} s "
                    f"vs < {DENETHOR_TARGET_S:.0f} s: {_verdict(r['denethor_s'], DENETHOR_TARGET_S)} |"
                )
            labels = {"backbone_flops": "backbone stage alone",
                      "compiled_backbone_flops": "backbone alone, torch.compile (experiment)"}  # fmt: skip
            for key, label in labels.items():
                if key in engine:
                    seconds = 830e6 * 1.0547e6 / engine[key]
                    lines.append(
                        f"| engine, {label} | {step.status} | {engine[key] / 1.0547e6:,.0f} "
                        f"pixel-timesteps/s ({_rate(engine[key])}, {engine[key] / peak:.1%} of peak); "
                        f"DENETHOR tile-year {seconds:,.1f} s for the backbone alone |"
                    )
        elif step.name.startswith("pretrain bench"):
            bench = report.read_json(step.name.replace(" ", "_") + ".json")
            results = {k: v for k, v in bench.items() if isinstance(v, dict)}
            if not results:
                lines.append(f"| {step.name} | {step.status} | |")
            for precision, r in results.items():
                lines.append(
                    f"| pretraining step, batch {bench['batch']}, {precision} | {step.status} | "
                    f"{r['pairs_s']:,.0f} pairs/s ({r['flops'] / r['peak']:.1%} of the {precision} matmul "
                    f"peak); 100 epochs x 14.4M pairs {r['paper_s'] / 60:,.1f} min vs <= 15 min: "
                    f"{_verdict(r['paper_s'], PRETRAIN_TARGET_S)} |"
                )
        elif step.name == "device targets":
            lines += target_rows(report.read_json("device_targets.json"), step.status)
        elif step.name == "scale-out":
            lines += scale_out_rows(report.out / "scale_out.json", step.status)
        else:
            lines.append(f"| {step.name} | {step.status} | ({step.seconds:.0f} s) |")
    lines.append("\n## Bench output\n")
    for step in report.steps:
        if step.name != "CUDA tests" and step.output:
            tables = [
                ln for ln in step.output.splitlines() if ln.startswith(("|", "#", "device:", "bf16", "fp32"))
            ]
            lines += [f"### {step.name} ({step.status}, {step.seconds:.0f} s)\n", *tables, ""]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--out", type=Path, required=True, help="folder for the table, JSON and JUnit XML")
    parser.add_argument("--deadline", type=float, default=540.0, help="seconds for every step together")
    parser.add_argument("--smoke", action="store_true", help="the smallest sizes (tests of this script)")
    parser.add_argument("--skip-tests", action="store_true", help="no pytest step")
    parser.add_argument("--skip-bench", action="store_true", help="no bench steps")
    args = parser.parse_args(argv)
    deadline = time.monotonic() + args.deadline
    args.out.mkdir(parents=True, exist_ok=True)
    report = Report(args.device, args.out)
    report.facts.unlink(missing_ok=True)
    report.machine = machine_facts(args.device)
    print(json.dumps(report.machine), flush=True)
    sizes = SIZES["smoke" if args.smoke else args.device]
    py = sys.executable
    if not args.skip_tests:
        junit = args.out / "tests.xml"
        run_step(report, "CUDA tests", [py, "-m", "pytest", "tests/inference/test_cuda.py",
                 "tests/training/test_graph_step.py", "-v", "-rA",
                 "-p", "no:cacheprovider", f"--junitxml={junit}"], limit=300, deadline=deadline)  # fmt: skip
    if not args.skip_bench:
        engine = [py, "bench/map_throughput.py", "--engine-only", "--device", args.device,
                  "--size", str(sizes.block), "--pixels", str(sizes.pixels),
                  "--json", str(args.out / "engine.json")]  # fmt: skip
        run_step(report, "engine bench", engine, limit=180, deadline=deadline)
        targets = [py, "bench/device_targets.py", "--device", args.device, *sizes.targets,
                   "--json", str(args.out / "device_targets.json")]  # fmt: skip
        run_step(report, "device targets", targets, limit=180, deadline=deadline)
        for batch, precisions, steps in sizes.batches:
            name = f"pretrain bench {batch}"
            bench = [py, "bench/pretrain_throughput.py", "--device", args.device, "--batch-size", str(batch),
                     "--precision", precisions, "--steps", str(steps),
                     "--json", str(args.out / (name.replace(" ", "_") + ".json"))]  # fmt: skip
            if sizes.peak_n:
                bench += ["--peak-n", str(sizes.peak_n)]
            if args.device == "cuda" and batch == 2048:
                bench.append("--plain-loss")  # the row-blocked loss beside its plain form, on CUDA
            run_step(report, name, bench, limit=120, deadline=deadline)
        scale = [py, "bench/scale_out.py", *sizes.scale_out, "--json", str(args.out / "scale_out.json")]
        run_step(report, "scale-out", scale, limit=240, deadline=deadline)
    path = report.write()
    print("\n" + path.read_text(), flush=True)
    return 0 if all(s.status == "ok" for s in report.steps) else 1


if __name__ == "__main__":
    sys.exit(main())
