"""`bench/throughput_alternatives.py --quick`: every method's row is printed for both series shapes.

Only the table's rows are checked, never a speed: the bench runs on shared machines.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TREES = ("sklearn-rf", "sklearn-gbm", "engine-rf", "engine-gbm")
DEEP = ("engine-tempcnn", "engine-inception", "engine-transformer", "engine-lstm")
PAPER = ("engine-resmlp+lstm", "engine-resmlp+inception", "engine-resmlp+transformer")


def rows_of(table: str) -> dict[tuple[str, str], list[str]]:
    """(shape, method) -> the row's cells, for the markdown table's body rows."""
    rows = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 8 and cells[0] in ("real", "imagery"):
            rows[(cells[0], cells[1])] = cells
    return rows


@pytest.mark.slow
def test_quick_run_prints_every_row() -> None:
    pytest.importorskip("sklearn")
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "throughput_alternatives.py"), "--quick"],
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    rows = rows_of(done.stdout)
    shapes = ["imagery"] + (["real"] if "real block" in done.stdout else [])
    for shape in shapes:
        expected = TREES + DEEP + (PAPER if shape == "imagery" else ())
        assert {m for s, m in rows if s == shape} == set(expected), shape
        assert rows[(shape, "sklearn-rf")][5] == "1.00"  # the reference of its own shape
        for method in ("engine-rf", "engine-gbm"):  # the packed trees answer as scikit-learn does
            assert float(rows[(shape, method)][7].rstrip("%")) >= 90.0, rows[(shape, method)]
        for method in DEEP:
            assert rows[(shape, method)][6].endswith("%"), rows[(shape, method)]
