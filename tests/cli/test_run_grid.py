"""The model behind `geocrop evaluate`'s rich view: the run grid (fold x method), the running fit's epochs
and the time left, rebuilt from the evaluation's events (the terminal drawing itself is not tested)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from geocrop.cli.run_grid import Cell, RunGrid, format_seconds
from geocrop.core.progress import ProgressEvent, RunState


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _run(key: str, fold: int, method: str, status: str = "left", seconds: float | None = None) -> RunState:
    return RunState(key, fold, 2, method, status, seconds)  # type: ignore[arg-type]


def _event(*runs: RunState, **fields: object) -> ProgressEvent:
    return ProgressEvent("evaluate", 0.0, "", runs=runs, **fields)  # type: ignore[arg-type]


PLAN = (
    _run("m0", 0, "majority"),
    _run("l0", 0, "lstm", "reused", seconds=90.0),
    _run("r0", 0, "rf", "reused", seconds=10.0),
    _run("m1", 1, "majority"),
    _run("l1", 1, "lstm"),
    _run("r1", 1, "rf"),
)


def test_the_grid_follows_the_runs() -> None:
    clock = Clock()
    grid = RunGrid(clock)
    grid.apply(_event(*PLAN))
    assert grid.folds == [0, 1] and grid.methods == ["majority", "lstm", "rf"]
    assert grid.cell(0, "lstm") == Cell(done=1) and grid.cell(1, "lstm") == Cell(left=1)
    assert grid.counts() == Cell(done=2, left=4)

    grid.apply(_event(replace(PLAN[3], status="done", seconds=0.0)))
    grid.apply(_event(replace(PLAN[4], status="running")))
    assert grid.current is not None and grid.current.key == "l1" and grid.cell(1, "lstm") == Cell(running=1)
    grid.apply(ProgressEvent("evaluate", 0.5, "l1: epoch 3/12", epoch=3, epochs=12))
    assert (grid.epoch, grid.epochs) == (3, 12)
    grid.apply(ProgressEvent("train", 0.5, "another stage", epoch=9, epochs=9))  # not this evaluation's
    assert (grid.epoch, grid.epochs) == (3, 12)

    grid.apply(_event(replace(PLAN[4], status="done", seconds=80.0)))
    assert grid.current is None and grid.epoch is None and grid.cell(1, "lstm") == Cell(done=1)
    assert grid.counts() == Cell(done=4, left=2)  # fold 0's majority and fold 1's rf


def test_the_eta_uses_the_method_mean_then_the_running_fit_pace() -> None:
    clock = Clock()
    grid = RunGrid(clock)
    grid.apply(_event(*PLAN))
    # left: lstm (its mean 90 s, from the journal) and rf (10 s); the majority class costs nothing
    assert grid.eta() == pytest.approx(100.0)
    grid.apply(_event(replace(PLAN[4], status="running")))
    clock.now = 30.0
    assert grid.eta() == pytest.approx(60.0 + 10.0)  # 90 s expected, 30 s in
    grid.apply(ProgressEvent("evaluate", 0.5, "", epoch=1, epochs=4))  # its own pace: 120 s in all
    assert grid.eta() == pytest.approx(90.0 + 10.0)
    clock.now = 200.0  # slower than any estimate: the running fit has nothing left to count
    grid.apply(ProgressEvent("evaluate", 0.5, "", epoch=4, epochs=4))
    assert grid.eta() == pytest.approx(10.0)


def test_no_eta_before_anything_is_timed() -> None:
    clock = Clock()
    grid = RunGrid(clock)
    grid.apply(_event(_run("l0", 0, "lstm"), _run("l1", 1, "lstm")))
    assert grid.eta() is None
    grid.apply(_event(_run("l0", 0, "lstm", "running")))
    clock.now = 10.0
    assert grid.eta() is None  # running, no epoch finished yet
    grid.apply(ProgressEvent("evaluate", 0.5, "", epoch=1, epochs=2))
    assert grid.eta() == pytest.approx(10.0 + 20.0)  # its pace stands in for the run left


def test_format_seconds() -> None:
    assert [format_seconds(s) for s in (None, 40, 720, 3900)] == ["?", "40 s", "12 min", "1 h 05 min"]
