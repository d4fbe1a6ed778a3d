"""Suite-wide switches: optional suites skip with a reason where their real part is absent."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

QGIS_PROCESS = Path("/usr/bin/qgis_process.bin")

# `make test` runs one pytest worker per core: each worker's OpenMP pool (scikit-learn's gradient boosting,
# torch) gets one thread, so the workers never oversubscribe the cores (an OpenMP pool whose threads wait
# for each other stalls whenever one is preempted: a gbm test took 136 s instead of a few). Set before
# any test module imports torch or scikit-learn; tests that set threads themselves still do.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
#: torch's thread count on a worker before any test changes it (None outside xdist: torch's own default).
_WORKER_THREADS = (
    int(os.environ["OMP_NUM_THREADS"])
    if os.environ.get("PYTEST_XDIST_WORKER") and os.environ["OMP_NUM_THREADS"].isdigit()
    else None
)


@pytest.fixture(autouse=True)
def _torch_threads_as_found() -> Iterator[None]:
    """Each test starts and ends with torch's thread count as the worker has it (one thread under xdist;
    outside xdist, the count the test found). `geocrop map` and `predict` run in process (CliRunner) let
    the engine use every core (``tune_process``) and leave torch there, and torch's count is the OpenMP
    count scikit-learn's gradient boosting uses too: later torch and gbm tests on that worker ran two
    threads beside the other worker, each step waiting on a preempted thread (a TempCNN overfit of 0.5 s
    CPU took 29 s, a gbm test of 1.2 s took 36 s on a busy machine)."""
    torch = sys.modules.get("torch")
    want = _WORKER_THREADS if _WORKER_THREADS is not None or torch is None else torch.get_num_threads()
    _set_torch_threads(want)  # a module fixture may have changed it
    yield
    _set_torch_threads(want)


def _set_torch_threads(count: int | None) -> None:
    torch = sys.modules.get("torch")
    if torch is not None and count is not None and torch.get_num_threads() != count:
        torch.set_num_threads(count)


def find_realdata() -> Path | None:
    """`shared/realdata/` beside the checkout (or above it), or `$GEOCROP_REALDATA`; read in place."""
    if os.environ.get("GEOCROP_REALDATA"):
        return Path(os.environ["GEOCROP_REALDATA"])
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "realdata"
        if candidate.is_dir():
            return candidate
    return None


REALDATA = find_realdata()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-network", action="store_true", help="run tests that touch the public internet")


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


# The files that take longest (CPU seconds on a quiet 2-core machine, most first). xdist hands out files in
# collection order under `make test`'s `--dist loadfile --no-loadscope-reorder`: these go first, so no
# worker starts a long file while the other has run out of work. (xdist's default order, most tests first,
# started the 31 s docs example test last, with the other worker idle for its whole run.)
LONG_FILES = (
    "tests/test_docs_python.py",
    "tests/cli/test_bad_inputs.py",
    "tests/qgis/test_qgis_after_map.py",
    "tests/qgis/test_qgis_plugin.py",
    "tests/qgis/test_qgis_errors.py",
    "tests/cli/test_predict_cli.py",
    "tests/training/test_evaluate.py",
    "tests/qgis/test_qgis_inspect.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {path: number for number, path in enumerate(LONG_FILES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))  # stable: others keep order
    reasons = {
        "qgis": None
        if QGIS_PROCESS.exists()
        else "QGIS is not installed (apt-get install qgis python3-qgis)",
        "browser": None
        if shutil.which("chromium")
        else "Chromium is not installed (apt-get install chromium)",
        "gpu": None if _cuda_available() else "no CUDA device",
        "network": None if config.getoption("--run-network") else "network tests need --run-network",
    }
    for item in items:
        for marker, reason in reasons.items():
            if reason and marker in item.keywords:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def realdata() -> Path:
    """`../shared/realdata/`, read in place; tests that need it skip with a reason where it is absent."""
    if REALDATA is None or not REALDATA.is_dir():
        pytest.skip("real data folder shared/realdata is absent (set GEOCROP_REALDATA to its path)")
    return REALDATA
