"""How many threads geocrop's numeric work asks for, so that it keeps its share of a shared machine.

Two torch threads that meet at the end of every parallel region (every matmul, convolution and
optimiser update) lose their turn whenever another process holds one of the cores: the thread that
finished first spins, then waits for the other to be scheduled again, and the whole job runs at the pace
of its slowest thread. On a machine shared with other work that collapses a job to a fraction of its
share (`bench/contention.py`); for small regions a second thread never paid even on an idle machine.
The rules, arithmetic on core counts only (the callers hand the result to torch):

* **cores**: the cores this process may run on (its CPU affinity, as a container or ``taskset`` sets
  it), not the machine's count;
* **by the size of the work**: one intra-op thread for a batch whose work per step is below
  `SERIAL_FLOP`, every usable core above it (`threads_for_work`);
* **Dask workers**: threads per worker process x worker processes on a host <= the host's cores
  (`threads_per_worker`); an explicit count always wins.
"""

from __future__ import annotations

import os

__all__ = ["SERIAL_FLOP", "threads_for_work", "threads_per_worker", "usable_cores"]

#: Floating-point operations per step (one engine batch, one training step) under which one thread is
#: used. Measured on the 2-core development CPU (bench/contention.py and the A/B in docs/performance.md,
#: "Sharing the machine"): a TempCNN training step of 32 series x 52 dekads (~0.2 GFLOP forward and
#: backward) ran no faster on two threads than on one when idle, and lost most of its speed beside a busy
#: process; engine batches of 42 pixels x 144 steps (0.7-8 GFLOP) kept the second thread's gain.
SERIAL_FLOP = 0.5e9


def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity where the OS reports one, else the machine's."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS and Windows have no sched_getaffinity
        return max(1, os.cpu_count() or 1)


def threads_for_work(flop_per_step: float, *, cores: int | None = None) -> int:
    """Intra-op threads for steps of ``flop_per_step`` operations: 1 below `SERIAL_FLOP`, else every core.

    ``cores``: the cores to spread over (default: `usable_cores`).
    """
    available = usable_cores() if cores is None else max(1, cores)
    return 1 if flop_per_step < SERIAL_FLOP else available


def threads_per_worker(workers_on_host: int, cores_on_host: int) -> int:
    """Intra-op threads for each of ``workers_on_host`` worker processes sharing ``cores_on_host`` cores.

    ``cores // workers``, at least 1: two workers on two cores get one thread each instead of two each
    (four threads on two cores, every parallel region waiting for a descheduled thread).
    """
    return max(1, cores_on_host // max(1, workers_on_host))
