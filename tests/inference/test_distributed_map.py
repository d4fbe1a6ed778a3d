"""The tile driver on a `dask.distributed` LocalCluster of two worker processes (each loads the model)."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

from geocrop.inference.tiles import PredictorRef
from tests.inference.inference_helpers import random_block, run, write_tiny_bundle


def test_local_cluster_with_two_workers_matches_threads(tmp_path_factory: pytest.TempPathFactory) -> None:
    distributed = pytest.importorskip("distributed")
    bundle = PredictorRef(str(write_tiny_bundle(tmp_path_factory.mktemp("b") / "m.safetensors")), "cpu")
    cube = random_block(h=23, w=19, seed=11)
    threaded = run(cube, bundle, 8)
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        worker_dashboard_address=None,
    ) as cluster:
        lazy = da.from_array(cube, chunks=(-1, -1, 8, 8))
        on_cluster = run(lazy, bundle, 8, scheduler=cluster.scheduler_address)
    np.testing.assert_array_equal(on_cluster.classes, threaded.classes)
    np.testing.assert_array_equal(on_cluster.probs, threaded.probs)


@pytest.mark.slow
def test_map_aoi_on_a_local_cluster_matches_threads(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The whole pipeline with `--scheduler ADDRESS`: the lazy odc-stac cube's graph runs on the workers."""
    distributed = pytest.importorskip("distributed")
    import rasterio

    from geocrop.inference.mapping import MapConfig, map_aoi
    from tests.inference.map_fixtures import END, START, tiny_area

    root = tmp_path_factory.mktemp("area")
    area = tiny_area(root)

    def make(out: str, scheduler: str | None) -> np.ndarray:
        cfg = MapConfig(aoi=area.bbox, start=START, end=END, out=root / out, model=area.bundle,
                        stac=str(area.catalog), chunk_size=16, scheduler=scheduler)  # fmt: skip
        with rasterio.open(map_aoi(cfg).cog) as src:
            return np.asarray(src.read())

    threaded = make("threads.tif", None)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        on_cluster = make("cluster.tif", cluster.scheduler_address)
    np.testing.assert_array_equal(on_cluster, threaded)
