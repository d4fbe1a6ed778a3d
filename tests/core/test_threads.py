"""The thread policy: cores from the affinity mask, one thread for small steps, workers x threads <= cores."""

from __future__ import annotations

import os

import pytest

from geocrop.core import threads
from geocrop.core.threads import (
    ThreadChooser,
    threads_per_worker,
    usable_cores,
    wait_policy,
)


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


@pytest.mark.parametrize(
    ("workers", "cores", "expected"), [(1, 2, 2), (2, 2, 1), (3, 2, 1), (2, 16, 8), (3, 16, 5), (0, 4, 4)]
)
def test_workers_times_threads_stay_within_the_cores(workers: int, cores: int, expected: int) -> None:
    got = threads_per_worker(workers, cores)
    assert got == expected
    assert got * max(workers, 1) <= cores or got == 1


def test_this_process_has_at_least_one_core() -> None:
    assert 1 <= usable_cores() <= (os.cpu_count() or 1)


def _run(chooser: ThreadChooser, cost: dict[int, float], steps: int) -> tuple[list[int], float]:
    """Drive ``chooser`` for ``steps`` steps whose time per unit is ``cost[threads]``; (choices, seconds)."""
    picked, total = [], 0.0
    for _ in range(steps):
        n = chooser.next()
        picked.append(n)
        total += cost[n] * 42
        chooser.record(n, cost[n] * 42, 42)
    return picked, total


def test_chooser_keeps_the_second_thread_when_it_pays() -> None:
    chooser = ThreadChooser(2)
    cost = {1: 1.0, 2: 0.55}  # an idle machine: the second core nearly halves a step
    picked, total = _run(chooser, cost, 2000)
    assert chooser.best == 2
    assert picked[-200:].count(1) <= 200 / 32 + 1
    assert total <= 1.03 * 2000 * 42 * cost[2]  # exploring costs a few percent at most


def test_chooser_drops_to_one_thread_beside_a_busy_process() -> None:
    chooser = ThreadChooser(2)
    cost = {1: 1.0, 2: 10.0}  # a busy machine: two threads wait for each other at every region
    _, total = _run(chooser, cost, 2000)
    assert chooser.best == 1
    assert total <= 1.05 * 2000 * 42 * cost[1]


def test_chooser_follows_a_change_of_load() -> None:
    chooser = ThreadChooser(2)
    _run(chooser, {1: 1.0, 2: 0.55}, 300)
    assert chooser.best == 2
    _run(chooser, {1: 1.0, 2: 8.0}, 300)  # another process starts
    assert chooser.best == 1
    _run(chooser, {1: 1.0, 2: 0.55}, 2000)  # and ends
    assert chooser.best == 2


def test_chooser_on_one_core_never_asks_for_two() -> None:
    chooser = ThreadChooser(1)
    picked, _ = _run(chooser, {1: 1.0}, 50)
    assert set(picked) == {1}


@pytest.mark.parametrize(
    ("environ", "load", "expected"),
    [({}, 0.3, None), ({}, 1.0, "PASSIVE"), ({}, 7.5, "PASSIVE"), ({"OMP_WAIT_POLICY": "ACTIVE"}, 7.5, None)],
)
def test_wait_policy_is_passive_only_on_a_busy_machine_and_never_over_the_users(
    environ: dict[str, str], load: float, expected: str | None
) -> None:
    assert wait_policy(environ, load) == expected


def test_the_console_script_sets_the_policy_before_openmp_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    from geocrop.cli.main import _choose_wait_policy

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (3.0, 2.0, 1.0))
    _choose_wait_policy()
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    _choose_wait_policy()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
