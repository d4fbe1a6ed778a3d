"""The thread policy: cores from the affinity mask, one thread for small steps, workers x threads <= cores."""

from __future__ import annotations

import os

import pytest

from geocrop.core import threads
from geocrop.core.threads import SERIAL_FLOP, threads_for_work, threads_per_worker, usable_cores


def test_usable_cores_follow_the_affinity_mask(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 3}, raising=False)
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 16)
    assert usable_cores() == 2


def test_usable_cores_fall_back_to_the_machine_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(threads.os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 6)
    assert usable_cores() == 6
    monkeypatch.setattr(threads.os, "cpu_count", lambda: None)
    assert usable_cores() == 1


def test_small_steps_run_on_one_thread_large_ones_on_every_core() -> None:
    assert threads_for_work(SERIAL_FLOP / 10, cores=8) == 1
    assert threads_for_work(SERIAL_FLOP * 0.99, cores=8) == 1
    assert threads_for_work(SERIAL_FLOP, cores=8) == 8
    assert threads_for_work(SERIAL_FLOP * 100, cores=0) == 1  # a nonsense core count still gives a thread
    assert threads_for_work(SERIAL_FLOP * 100) == usable_cores()


@pytest.mark.parametrize(
    ("workers", "cores", "expected"), [(1, 2, 2), (2, 2, 1), (3, 2, 1), (2, 16, 8), (3, 16, 5), (0, 4, 4)]
)
def test_workers_times_threads_stay_within_the_cores(workers: int, cores: int, expected: int) -> None:
    got = threads_per_worker(workers, cores)
    assert got == expected
    assert got * max(workers, 1) <= cores or got == 1


def test_this_process_has_at_least_one_core() -> None:
    assert 1 <= usable_cores() <= (os.cpu_count() or 1)
