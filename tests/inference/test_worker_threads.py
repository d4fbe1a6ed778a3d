"""Torch threads for `geocrop map --scheduler` workers: threads x worker processes stay within each host."""

from __future__ import annotations

from typing import Any

import pytest

from geocrop.inference.tiles import _host_cores, worker_threads


class FakeClient:
    """What `worker_threads` asks of a ``distributed.Client``: ``run`` a function on every worker."""

    def __init__(self, answers: dict[str, tuple[str, int]]) -> None:
        self.answers = answers

    def run(self, fn: Any) -> dict[str, tuple[str, int]]:
        assert fn is _host_cores
        return self.answers


def test_two_workers_on_two_cores_get_one_thread_each() -> None:
    client = FakeClient({"tcp://a:1": ("node", 2), "tcp://a:2": ("node", 2)})
    assert worker_threads(client) == 1


def test_one_worker_gets_every_core_of_its_host() -> None:
    assert worker_threads(FakeClient({"tcp://a:1": ("node", 8)})) == 8


def test_the_most_crowded_host_sets_the_share() -> None:
    answers = {"tcp://a:1": ("big", 16), "tcp://a:2": ("big", 16)} | {
        f"tcp://b:{i}": ("small", 4) for i in range(4)
    }
    assert worker_threads(FakeClient(answers)) == 1
    assert worker_threads(FakeClient({"tcp://a:1": ("big", 16), "tcp://a:2": ("big", 16)})) == 8


def test_no_worker_yet_gives_one_thread() -> None:
    assert worker_threads(FakeClient({})) == 1


def test_host_cores_names_this_host() -> None:
    host, cores = _host_cores()
    assert host and cores >= 1


@pytest.mark.slow
def test_workers_of_a_local_cluster_run_within_the_cores(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Two worker processes on this host: each predictor runs cores // 2 torch threads (at least 1)."""
    distributed = pytest.importorskip("distributed")
    import dask.array as da

    from geocrop.core.threads import usable_cores
    from geocrop.inference.tiles import PredictorRef
    from tests.inference.inference_helpers import random_block, run, write_tiny_bundle

    bundle = PredictorRef(str(write_tiny_bundle(tmp_path_factory.mktemp("b") / "m.safetensors")), "cpu")
    cube = da.from_array(random_block(h=16, w=16, seed=3), chunks=(-1, -1, 8, 8))
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            worker_dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        run(cube, bundle, 8, scheduler=cluster.scheduler_address)
        threads = client.run(_torch_threads)
    assert sorted(threads.values()) == [max(1, usable_cores() // 2)] * 2


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()
