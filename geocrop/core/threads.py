"""How many threads geocrop's numeric work asks for, so that it keeps its share of a shared machine.

Two torch threads that meet at the end of every parallel region (every matmul, convolution and
optimiser update) lose their turn whenever another process holds one of the cores: the thread that
finished first spins, then waits for the other to be scheduled again, and the job runs at the pace of
its slowest thread. Which count is faster for the same batch therefore depends on the machine's load at
the time: on the shared 2-core development machine two threads ran an engine batch of 42 pixels 0.06-0.15x
as fast as one in one run and 1.0-2.0x in another (docs/performance.md, "Sharing the machine"). So the
rules are measured or counted, not a fixed size threshold:

* **cores**: the cores this process may run on (its CPU affinity, as a container or ``taskset`` sets
  it), not the machine's count (`usable_cores`);
* **repeated like steps** (the engine's pixel batches): one thread or every usable core, whichever the
  recent steps measured faster (`ThreadChooser`);
* **Dask workers**: threads per worker process x worker processes on a host <= the host's cores
  (`threads_per_worker`); an explicit count always wins.

Arithmetic only: the callers hand the counts to torch.
"""

from __future__ import annotations

import os

__all__ = ["ThreadChooser", "threads_per_worker", "usable_cores"]


def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity where the OS reports one, else the machine's."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS and Windows have no sched_getaffinity
        return max(1, os.cpu_count() or 1)


def threads_per_worker(workers_on_host: int, cores_on_host: int) -> int:
    """Intra-op threads for each of ``workers_on_host`` worker processes sharing ``cores_on_host`` cores.

    ``cores // workers``, at least 1: two workers on two cores get one thread each instead of two each
    (four threads on two cores, every parallel region waiting for a descheduled thread).
    """
    return max(1, cores_on_host // max(1, workers_on_host))


class ThreadChooser:
    """Chooses, step after step, between one thread and every core by the time each took per unit of work.

    For a loop of like steps (the engine's pixel batches): both counts are timed once after a warm-up
    step each, then the faster runs, and the other is tried again now and then to notice a change in the
    machine's load. It is tried less often the slower it was (every ``explore_every`` x its slowdown
    steps), so exploring costs about 1 / ``explore_every`` of the time whichever way the load goes: on an
    idle machine the second thread pays, beside a busy process it can make a step ten times slower.
    Timings are smoothed (each new one weighs ``1 / 2``) so that one step disturbed by the OS moves the
    choice by half only.
    """

    def __init__(self, cores: int, *, explore_every: int = 32) -> None:
        self.options: tuple[int, ...] = (1, cores) if cores > 1 else (1,)
        self.explore_every = explore_every
        self._per_unit: dict[int, float] = {}
        self._seen: dict[int, int] = dict.fromkeys(self.options, 0)
        self._since_explore = 0

    @property
    def best(self) -> int:
        """The thread count with the lower smoothed time per unit so far (the first option untimed)."""
        timed = [n for n in self.options if n in self._per_unit]
        return min(timed, key=self._per_unit.__getitem__) if timed else self.options[0]

    def next(self) -> int:
        """The thread count for the next step."""
        for n in self.options:  # a warm-up step, then one timed step, for each count
            if self._seen[n] < 2:
                return n
        best = self.best
        other = next(n for n in self.options if n != best) if len(self.options) > 1 else best
        slowdown = self._per_unit.get(other, 0.0) / max(self._per_unit[best], 1e-12)
        if other != best and self._since_explore >= self.explore_every * max(1.0, slowdown):
            self._since_explore = 0
            return other
        self._since_explore += 1
        return best

    def record(self, threads: int, seconds: float, units: int) -> None:
        """Report that a step of ``units`` units of work took ``seconds`` on ``threads`` threads."""
        self._seen[threads] = self._seen.get(threads, 0) + 1
        if self._seen[threads] < 2 or units <= 0:  # the warm-up step: allocations, kernel choice
            return
        rate = seconds / units
        old = self._per_unit.get(threads)
        self._per_unit[threads] = rate if old is None else (old + rate) / 2


def wait_policy(environ: dict[str, str], load_average: float) -> str | None:
    """The OpenMP wait policy a new process should start with, or None to keep the runtime's default.

    By default OpenMP threads spin after a parallel region until the others arrive. Alone on the machine
    that is fastest; beside another busy process the spinning thread waits for a descheduled one at every
    region, and training collapsed to 12 % of its idle speed beside one busy thread on 2 cores
    (`bench/contention.py`). Passive threads sleep at once: there it kept 86 %, but alone it costs 10-25 %
    of the speed of two threads (docs/performance.md, "Sharing the machine"). So: passive when the
    1-minute load average says at least one other process was running, spinning otherwise, and never
    over a policy the user set. The policy changes only when threads wait, never what they compute.
    """
    if "OMP_WAIT_POLICY" in environ:
        return None
    return "PASSIVE" if load_average >= 1.0 else None
