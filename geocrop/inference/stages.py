"""Where a map's time went: search, read, regrid, engine and write, measured in every run.

Threads record spans of work (`StageClock.span`). Reading overlaps compute (tiles are read ahead of the
engine), so the spans overlap in time and their sum can exceed the wall time. `StageClock.summary`
therefore reports two views of the same spans:

* ``seconds``: the wall time split between the stages, each instant given to one stage, the first active
  in `STAGES_BY_PRIORITY` (engine, regrid, write, read, search). Read time that the engine hid costs
  nothing here: ``seconds["read"]`` is the time the map waited for data with nothing else to do. They
  sum to at most the wall time; the rest (``other``: planning, loading the model, idle) is reported too.
* ``busy``: for each stage, the wall time during which at least one thread worked on it (how long reading
  took, hidden or not).

With the bytes and requests the read took (GDAL's network statistics, `geocrop.io.reading`), this is what
``geocrop -v map`` logs and what the output STAC item's ``geocrop:processing`` carries.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["STAGES", "StageClock", "StageTimes"]

#: The stages in pipeline order (how they are printed).
STAGES = ("search", "read", "regrid", "engine", "write")
#: Which stage an instant belongs to when several are active (compute first: it is what a map is for).
STAGES_BY_PRIORITY = ("engine", "regrid", "write", "read", "search")


@dataclass(frozen=True)
class StageTimes:
    """One map's stage split (see the module docstring); seconds are wall-clock, bytes and requests the
    network reads (0 for local files, which GDAL does not count)."""

    wall: float
    seconds: Mapping[str, float]
    busy: Mapping[str, float]
    read_bytes: int = 0
    read_requests: int = 0
    tiles: int = 0
    pixels: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def other(self) -> float:
        """Wall time in none of the stages (planning, loading the model, waiting)."""
        return max(self.wall - sum(self.seconds.values()), 0.0)

    def as_properties(self) -> dict[str, Any]:
        """The JSON form (the STAC item's ``geocrop:processing``), seconds rounded to milliseconds."""
        return {
            "wall_seconds": round(self.wall, 3),
            "stage_seconds": {s: round(self.seconds.get(s, 0.0), 3) for s in STAGES},
            "other_seconds": round(self.other, 3),
            "busy_seconds": {s: round(self.busy.get(s, 0.0), 3) for s in STAGES},
            "read_bytes": int(self.read_bytes),
            "read_requests": int(self.read_requests),
            "tiles": int(self.tiles),
            "pixels": int(self.pixels),
            **dict(self.extra),
        }

    def describe(self) -> str:
        """One log line: the split, what was read, and how much reading the compute hid."""
        parts = [f"{s} {self.seconds.get(s, 0.0):.1f} s" for s in STAGES]
        read = f"{self.read_bytes / 1e6:,.1f} MB in {self.read_requests:,} requests"
        if self.read_requests == 0:
            read = "local files"
        hidden = max(self.busy.get("read", 0.0) - self.seconds.get("read", 0.0), 0.0)
        return (
            f"time: {', '.join(parts)}, other {self.other:.1f} s; wall {self.wall:.1f} s. Read: {read}, "
            f"{self.busy.get('read', 0.0):.1f} s of reading, {hidden:.1f} s of it hidden behind compute"
        )


class StageClock:
    """Collects ``(stage, start, end)`` spans from any thread; `summary` turns them into `StageTimes`."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self._spans: list[tuple[str, float, float]] = []
        self._lock = threading.Lock()

    def add(self, stage: str, start: float, end: float) -> None:
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; one of {STAGES}")
        with self._lock:
            self._spans.append((stage, start, max(end, start)))

    @contextlib.contextmanager
    def span(self, stage: str) -> Iterator[None]:
        """Time the block as ``stage`` (recorded even when it raises)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(stage, start, time.perf_counter())

    def summary(self, **counts: Any) -> StageTimes:
        """The split up to now; ``counts``: `StageTimes`'s ``read_bytes``, ``read_requests``, ``tiles``..."""
        end = time.perf_counter()
        with self._lock:
            spans = [(s, max(a, self.started), min(b, end)) for s, a, b in self._spans]
        seconds, busy = split_spans(spans)
        return StageTimes(wall=end - self.started, seconds=seconds, busy=busy, **counts)


def split_spans(spans: list[tuple[str, float, float]]) -> tuple[dict[str, float], dict[str, float]]:
    """(exclusive seconds by priority, union seconds) per stage of possibly overlapping spans."""
    events = sorted((t, kind, stage) for stage, a, b in spans if b > a for t, kind in ((a, 1), (b, -1)))
    active = dict.fromkeys(STAGES, 0)
    seconds = dict.fromkeys(STAGES, 0.0)
    busy = dict.fromkeys(STAGES, 0.0)
    last = events[0][0] if events else 0.0
    for t, kind, stage in events:
        if t > last:
            dt = t - last
            for s in STAGES:
                if active[s] > 0:
                    busy[s] += dt
            owner = next((s for s in STAGES_BY_PRIORITY if active[s] > 0), None)
            if owner is not None:
                seconds[owner] += dt
            last = t
        active[stage] += kind
    return seconds, busy
