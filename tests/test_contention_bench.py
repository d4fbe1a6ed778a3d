"""`bench/contention.py --quick`: the table has a row per job with a cell per condition.

Only the table's shape and the CPU accounting are checked, never a speed: the bench runs on shared machines.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_quick_engine_run_prints_each_condition(tmp_path: Path) -> None:
    out = tmp_path / "samples.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "contention.py"), "--quick", "--jobs", "engine-tempcnn",
         "--seconds", "1", "--json", str(out)],
        capture_output=True, text=True, check=False, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| engine-tempcnn |")]
    assert len(rows) == 1
    cells = [c.strip() for c in re.split(r"(?<!\\)\|", rows[0].strip("|"))]  # not the cells' escaped \|
    assert len(cells) == 3 + 2  # job, variant, alone speed, then busy-2 and copy
    samples = json.loads(out.read_text())
    assert [s["condition"] for s in samples] == ["alone", "busy-2", "copy", "alone"]
    for s in samples:
        assert s["speed"] > 0 and s["cpu"] > 0
        assert (s["other_cpu"] > 0) == (s["condition"] != "alone")  # the competitor's CPU was seen
