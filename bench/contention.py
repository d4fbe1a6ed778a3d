"""Speed of geocrop's jobs when another process shares the CPU, as a fraction of their speed alone.

Each job runs alone, beside a busy process (a float32 ``torch.mm`` loop of 1 and of 2 threads, started
first and kept running until the job ends), and beside a second copy of itself (the same command,
restarted until the measured copy ends, so the two overlap all the way). The alone speed is taken twice
in the same run, first and last of each job's conditions, and their mean is the baseline, so a drift in
the machine's other load touches both sides. Printed per job and condition:

* **speed**: the job's own rate (engine: pixels/s over a timed loop after a warm-up block; the command
  line jobs: 1 / wall seconds of the whole command, start-up included, as a user waits for it);
* **kept**: speed / the alone speed. On C cores beside one busy process that wants k threads a fair
  share is about C / (C + k) for a job that wants every core: 50 % beside 2 threads on 2 cores;
* **CPU**: the job's CPU seconds per wall second (user + system, ``getrusage`` of the job process), and
  the competitor's in the same window.

Jobs (``--jobs``, comma-separated): ``engine-tempcnn`` (`Predictor.predict_block` on a 32 x 32 px block of
144 steps, TempCNN at defaults on the bands: what ``geocrop train``'s tables give), ``engine-resmlp+
transformer`` (the paper's ResMLP-8x256 before a default Transformer, 16 x 16 px blocks), ``train-tempcnn``
and ``train-gbm`` (``geocrop train`` on the France LPIS table, TempCNN for a fixed number of epochs),
``pretrain`` (one epoch of ``geocrop pretrain --mode temporal`` on the same table, Transformer). The
engine's block and weights are random (a speed instrument); the command line jobs read the real table.

    python bench/contention.py [--quick] [--jobs engine-tempcnn,train-gbm,...] [--seconds 12]
                               [--env NAME=VALUE ...] [--json PATH]

``--env`` sets variables for the measured job and its copy (e.g. ``OMP_WAIT_POLICY=PASSIVE``; or
``BENCH_ENGINE_THREADS=2``: the engine jobs on a fixed thread count, as every engine ran before it chose
one or all cores batch by batch); with ``--ab``, every measurement is taken both without and with them,
alternating, and both are printed (an A/B within one run). ``--quick``: 3 s engine loops, TempCNN for 2
epochs, only the 2-thread busy process and the copy: a smoke run, not the figures to quote.
Not a test: run it by hand on a quiet machine and copy the table into docs/performance.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_time import find_realdata

ENGINE_JOBS = ("engine-tempcnn", "engine-resmlp+transformer")
CLI_JOBS = ("train-tempcnn", "train-gbm", "pretrain")
JOBS = ENGINE_JOBS + CLI_JOBS
#: Busy competitors: a matmul loop of this many threads ("busy-1", "busy-2"), or a copy of the job.
CONDITIONS = ("alone", "busy-1", "busy-2", "copy")


@dataclass
class Sample:
    """One measured run of a job: its rate, wall and CPU seconds (over the timed part), and the
    competitor's CPU seconds over ``span``, the job process's whole life."""

    job: str
    condition: str
    variant: str
    speed: float
    unit: str
    wall: float
    cpu: float
    other_cpu: float
    span: float


# -- what runs in the child processes ----------------------------------------------------------------
def busy_loop(threads: int) -> None:
    """A torch matmul loop of ``threads`` intra-op threads, until killed (the competitor)."""
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(512, 512), torch.randn(512, 512)
    while True:
        torch.mm(a, b)


def engine_job(name: str, seconds: float) -> None:
    """Print one JSON line: pixels/s of ``predict_block`` over ``seconds``, and its CPU seconds."""
    import numpy as np

    from geocrop.inference.engine import Predictor
    from geocrop.inference.schema import spec_for_modules
    from geocrop.models.registry import build_backbone, build_head
    from geocrop.training.hparams import default_config

    family = name.rsplit("+", 1)[-1].removeprefix("engine-")
    backbone = {"name": "resmlp", "in_features": 12, "width": 256, "depth": 8} if "resmlp" in name else None
    steps, side = 144, (16 if backbone else 32)  # ~0.5 s a block idle for either, so loops end on time
    spec = default_config(family).spec(in_features=256 if backbone else 12, n_classes=9, steps=steps)
    bundle = spec_for_modules(
        bands=[f"b{i}" for i in range(12)], classes=[f"c{i}" for i in range(9)], steps=steps
    )
    fixed = int(os.environ.get("BENCH_ENGINE_THREADS", "0")) or None  # None: the engine's own choice
    predictor = Predictor.from_modules(
        backbone=build_backbone(backbone) if backbone else None,
        head=build_head(spec),
        spec=bundle,
        device="cpu",
        num_threads=fixed,
    )
    block = np.random.default_rng(0).uniform(0.0, 0.4, (steps, 12, side, side)).astype(np.float32)
    predictor.predict_block(block)  # warm-up: first-call allocations and oneDNN kernel choice
    pixels, t0, c0 = 0, time.perf_counter(), _own_cpu()
    while time.perf_counter() - t0 < seconds:
        predictor.predict_block(block)
        pixels += side * side
    wall, cpu = time.perf_counter() - t0, _own_cpu() - c0
    print(json.dumps({"speed": pixels / wall, "wall": wall, "cpu": cpu}))


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cli_command(job: str, out: Path, epochs: int) -> list[str]:
    """The ``geocrop`` command line of a command line job, writing under ``out``."""
    root = find_realdata()
    if root is None:
        sys.exit("shared/realdata not found (set GEOCROP_REALDATA): the train and pretrain jobs need it")
    table = root / "worldcereal" / "extractions_2023_FRA_LPIS_dekad.geoparquet"
    exe = str(Path(sys.executable).with_name("geocrop"))
    if job == "pretrain":
        return [exe, "pretrain", "--mode", "temporal", "--s2", str(table), "--head", "transformer",
                "--epochs", "1", "--out", str(out), "--no-progress"]  # fmt: skip
    head = job.removeprefix("train-")
    cmd = [exe, "train", "--labels", str(table), "--class-column", "ewoc_code", "--class-map",
           f"{table.parent / 'class_mappings.json'}:CROPTYPE28", "--drop-unmapped", "--head", head,
           "--out", str(out / "model.safetensors"), "--progress", "none"]  # fmt: skip
    return cmd + (["--epochs", str(epochs)] if head != "gbm" else [])


# -- the parent: start, time and stop processes ------------------------------------------------------
def job_command(job: str, opts: argparse.Namespace, out: Path) -> tuple[list[str], bool]:
    """(argv, prints_json): the engine jobs report their own rate, the command line jobs are timed."""
    if job in ENGINE_JOBS:
        return [sys.executable, __file__, "--child", job, "--seconds", str(opts.seconds)], True
    return cli_command(job, out, opts.epochs), False


def start_competitor(
    condition: str, job_argv: list[str], env: dict[str, str], copy_dir: Path
) -> subprocess.Popen[bytes] | None:
    """The busy process of ``condition`` in its own session (so it and its children stop together).

    A copy writes under ``copy_dir``, emptied before each restart (a pretraining run folder left in
    place would make the next one resume and stop at once).
    """
    if condition == "alone":
        return None
    if condition == "copy":
        # The copy restarts until it is stopped, so it overlaps the measured run from start to end.
        argv = [sys.executable, __file__, "--repeat", json.dumps(job_argv), "--repeat-dir", str(copy_dir)]
    else:
        argv = [sys.executable, __file__, "--busy", condition.removeprefix("busy-")]
    return subprocess.Popen(argv, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a competitor's process group (the busy loop, or the copy loop and the copy it runs)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    process.wait()


def _group_cpu(group: int) -> float:
    """CPU seconds so far of a process group's live members and the children they have waited for."""
    ticks, total = os.sysconf("SC_CLK_TCK"), 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended while we looked
            continue
        if int(fields[2]) == group:
            total += sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime stime cutime cstime
    return total / ticks


def measure(job: str, condition: str, variant: str, env: dict[str, str], opts: argparse.Namespace) -> Sample:
    with tempfile.TemporaryDirectory(prefix="contention-") as tmp:
        argv, reports = job_command(job, opts, Path(tmp) / "run")
        copy_argv, _ = job_command(job, opts, Path(tmp) / "copy")
        competitor = start_competitor(condition, copy_argv, env, Path(tmp) / "copy")
        if competitor is not None:
            time.sleep(1.0)  # the busy loop or the copy is up to speed before the clock starts
        other0 = _group_cpu(competitor.pid) if competitor else 0.0
        t0 = time.perf_counter()
        out_path, err_path = Path(tmp) / "stdout", Path(tmp) / "stderr"
        with out_path.open("wb") as out, err_path.open("wb") as err:  # files: a full pipe cannot block it
            child = subprocess.Popen(argv, env=env, stdout=out, stderr=err)
            _, status, usage = os.wait4(child.pid, 0)  # the job's own rusage, not its competitor's
        wall = time.perf_counter() - t0
        child.returncode = os.waitstatus_to_exitcode(status)
        other = (_group_cpu(competitor.pid) - other0) if competitor else 0.0
        if competitor is not None:
            stop(competitor)
        stdout, stderr = out_path.read_text(), err_path.read_text()
    if child.returncode != 0:
        sys.exit(f"{job} ({condition}) failed:\n{stderr[-2000:]}")
    if reports:
        got = json.loads(stdout.strip().splitlines()[-1])
        return Sample(job, condition, variant, got["speed"], "px/s", got["wall"], got["cpu"], other, wall)
    cpu = usage.ru_utime + usage.ru_stime
    return Sample(job, condition, variant, 1.0 / wall, "runs/s", wall, cpu, other, wall)


def run_all(opts: argparse.Namespace) -> list[Sample]:
    base_env = dict(os.environ)
    extra = dict(item.split("=", 1) for item in opts.env)
    variants = [("A", base_env)]
    if extra:
        with_extra = {**base_env, **extra}
        variants = [("A", base_env), ("B", with_extra)] if opts.ab else [("B", with_extra)]
    conditions = ["alone", *opts.conditions, "alone"]
    samples = []
    for job in opts.jobs:
        for i, condition in enumerate(conditions):
            order = variants if i % 2 == 0 else variants[::-1]  # alternate which variant goes first
            for variant, env in order:
                sample = measure(job, condition, variant, env, opts)
                samples.append(sample)
                print(f"{job} {condition} [{variant}]: {sample.speed:.4g} {sample.unit}, wall "
                      f"{sample.wall:.1f} s, CPU {sample.cpu / sample.wall:.2f}, other "
                      f"{sample.other_cpu / sample.span:.2f}", file=sys.stderr)  # fmt: skip
    return samples


def table(samples: list[Sample], opts: argparse.Namespace) -> str:
    cores = os.cpu_count() or 1
    lines = [
        f"Contention on {cores} CPU threads (load average at the end {os.getloadavg()[0]:.1f}); kept = "
        "speed / the mean of the two alone runs in this run; CPU = CPU s per wall s (job | competitor)",
        "| job | variant | alone speed | " + " | ".join(f"{c}: kept, CPU" for c in opts.conditions) + " |",
        "|---|---|---|" + "---|" * len(opts.conditions),
    ]
    for job in opts.jobs:
        for variant in sorted({s.variant for s in samples if s.job == job}):
            mine = [s for s in samples if s.job == job and s.variant == variant]
            alone = [s for s in mine if s.condition == "alone"]
            base = sum(s.speed for s in alone) / len(alone)
            cells = []
            for condition in opts.conditions:
                s = next(s for s in mine if s.condition == condition)
                cells.append(f"{s.speed / base:.0%}, {s.cpu / s.wall:.2f} \\| {s.other_cpu / s.span:.2f}")
            spread = f" ({min(s.speed for s in alone):.4g}-{max(s.speed for s in alone):.4g})"
            lines.append(
                f"| {job} | {variant} | {base:.4g} {alone[0].unit}{spread} | " + " | ".join(cells) + " |"
            )
    if opts.env:
        lines.append(f"variant B: {' '.join(opts.env)}; variant A: the environment as given")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", default=",".join(JOBS), help=f"comma-separated, of {', '.join(JOBS)}")
    parser.add_argument("--quick", action="store_true", help="a short smoke run (see the docstring)")
    parser.add_argument("--seconds", type=float, default=12.0, help="engine loop seconds (default 12)")
    parser.add_argument("--epochs", type=int, default=8, help="train-tempcnn epochs (default 8)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--ab", action="store_true", help="measure without and with --env, alternating")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", choices=ENGINE_JOBS, help=argparse.SUPPRESS)
    parser.add_argument("--busy", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--repeat", help=argparse.SUPPRESS)
    parser.add_argument("--repeat-dir", type=Path, help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)
    if opts.busy:
        busy_loop(opts.busy)
        return
    if opts.child:
        engine_job(opts.child, opts.seconds)
        return
    if opts.repeat:
        command = json.loads(opts.repeat)
        while True:  # until the parent stops this process group
            shutil.rmtree(opts.repeat_dir, ignore_errors=True)
            subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    opts.jobs = opts.jobs.split(",")
    unknown = sorted(set(opts.jobs) - set(JOBS))
    if unknown:
        sys.exit(f"unknown job(s) {', '.join(unknown)}; choose from {', '.join(JOBS)}")
    opts.conditions = ["busy-2", "copy"] if opts.quick else list(CONDITIONS[1:])
    if opts.quick:
        opts.seconds, opts.epochs = min(opts.seconds, 3.0), min(opts.epochs, 2)
    samples = run_all(opts)
    print(table(samples, opts))
    if opts.json:
        opts.json.write_text(json.dumps([asdict(s) for s in samples], indent=1))


if __name__ == "__main__":
    main()
