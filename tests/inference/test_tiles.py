"""The tile driver: chunking does not change the map; interrupted runs resume without recomputing."""

from __future__ import annotations

from pathlib import Path

import dask.array as da
import numpy as np
import pytest

from geocrop.inference.journal import TileJournal
from geocrop.inference.tiles import PredictorRef, Tile, plan_tiles
from tests.inference.inference_helpers import random_block, run, write_tiny_bundle


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> PredictorRef:
    path = write_tiny_bundle(tmp_path_factory.mktemp("bundle") / "m.safetensors")
    return PredictorRef(str(path), "cpu")


@pytest.fixture(scope="module")
def cube() -> np.ndarray:
    return random_block(h=23, w=19, seed=11)


def test_plan_tiles_covers_the_map_once() -> None:
    tiles = plan_tiles(23, 19, 8)
    cover = np.zeros((23, 19), int)
    for t in tiles:
        cover[t.y0 : t.y0 + t.height, t.x0 : t.x0 + t.width] += 1
    assert (cover == 1).all() and len(tiles) == 3 * 3 and len({t.key for t in tiles}) == 9


def test_chunked_equals_single_chunk(cube: np.ndarray, bundle: PredictorRef) -> None:
    whole = run(cube, bundle, 64)
    assert whole.writes == 1
    lazy = da.from_array(cube, chunks=(-1, -1, 8, 8))
    chunked = run(lazy, bundle, 8)
    assert chunked.writes == 9
    np.testing.assert_array_equal(chunked.classes, whole.classes)
    np.testing.assert_array_equal(chunked.probs, whole.probs)
    assert (whole.classes != 254).all()


def test_interrupted_run_resumes_without_recomputing(
    tmp_path: Path, cube: np.ndarray, bundle: PredictorRef
) -> None:
    reference = run(cube, bundle, 8)
    fingerprint = {"model": bundle.bundle, "size": 8}
    journal = TileJournal(tmp_path / "out.tif.parts", fingerprint=fingerprint)
    calls: list[str] = []

    def interrupt_after_3(tile: Tile) -> None:
        calls.append(tile.key)
        if len(calls) == 3:
            raise KeyboardInterrupt  # what Ctrl-C looks like to the driver

    with pytest.raises(KeyboardInterrupt):
        run(cube, bundle, 8, journal=journal, scheduler="sync", after_tile=interrupt_after_3)
    finished = journal.finished()
    assert finished == set(calls) and len(finished) == 3

    recomputed: list[str] = []
    journal = TileJournal(tmp_path / "out.tif.parts", fingerprint=fingerprint)
    resumed = run(cube, bundle, 8, journal=journal, after_tile=lambda t: recomputed.append(t.key))
    assert not finished & set(recomputed)
    assert finished | set(recomputed) == {t.key for t in plan_tiles(23, 19, 8)}
    np.testing.assert_array_equal(resumed.classes, reference.classes)
    np.testing.assert_array_equal(resumed.probs, reference.probs)


def test_journal_of_another_run_is_discarded(tmp_path: Path) -> None:
    j = TileJournal(tmp_path / "x.parts", fingerprint={"a": 1})
    j.save("r0000_c0000", {"classes": np.zeros((2, 2), np.uint8)})
    assert TileJournal(tmp_path / "x.parts", fingerprint={"a": 1}).finished() == {"r0000_c0000"}
    assert TileJournal(tmp_path / "x.parts", fingerprint={"a": 2}).finished() == set()
