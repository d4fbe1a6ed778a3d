"""A run killed with ``kill -9`` leaves temporaries; the rerun removes them and ends as if never killed."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import rasterio

from geocrop.inference.mapping import MapConfig, map_aoi
from geocrop.io.atomic import atomic_path, remove_stale_partials
from tests.inference.map_fixtures import END, START, TinyArea, tiny_area

KILL_AFTER_FIRST_TILE = """
import os, signal, sys
from geocrop.inference.mapping import MapConfig, map_aoi
aoi, catalog, bundle, out = sys.argv[1:5]
cfg = MapConfig(aoi=aoi, start="{start}", end="{end}", out=out, model=bundle, stac=catalog, chunk_size=16)
map_aoi(cfg, after_tile=lambda tile: os.kill(os.getpid(), signal.SIGKILL))
"""


@pytest.fixture(scope="module")
def area(tmp_path_factory: pytest.TempPathFactory) -> TinyArea:
    return tiny_area(tmp_path_factory.mktemp("area"))


def _config(area: TinyArea, out: Path) -> MapConfig:
    return MapConfig(
        aoi=area.bbox, start=START, end=END, out=out, model=area.bundle, stac=str(area.catalog), chunk_size=16
    )


def test_killed_map_leaves_temporaries_that_the_rerun_removes(area: TinyArea, tmp_path: Path) -> None:
    reference = (
        map_aoi(_config(area, tmp_path / "ref" / "map.tif")) if (tmp_path / "ref").mkdir() is None else None
    )
    assert reference is not None
    out_dir = tmp_path / "run"
    out_dir.mkdir()
    out = out_dir / "map.tif"
    script = textwrap.dedent(KILL_AFTER_FIRST_TILE.format(start=START, end=END))
    proc = subprocess.run(
        [sys.executable, "-c", script, area.bbox, str(area.catalog), str(area.bundle), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -9, proc.stderr
    left = sorted(p.name for p in out_dir.iterdir())
    assert any(n.startswith(".map.tif.") and n.endswith(".partial") for n in left), left  # the COG writer's
    assert "map.tif.parts" in left and "map.tif" not in left
    # A stale temporary of an atomic write, as a kill during the style write would leave it:
    (out_dir / ".map.qml.somehost-1-abc.partial").write_text("half")

    result = map_aoi(_config(area, out))
    assert result.tiles_resumed >= 1
    names = sorted(p.name for p in out_dir.iterdir())
    expected = sorted(p.name for p in (tmp_path / "ref").iterdir())
    assert names == expected, names  # only the outputs: no .partial, no .parts, no .lock
    assert not [n for n in names if n.startswith(".")]
    for name in ("map.tif", "map_confidence.tif"):
        if (tmp_path / "ref" / name).exists():
            with rasterio.open(out_dir / name) as a, rasterio.open(tmp_path / "ref" / name) as b:
                np.testing.assert_array_equal(a.read(), b.read())


def test_a_second_run_on_the_same_output_is_refused_while_one_holds_it(
    area: TinyArea, tmp_path: Path
) -> None:
    from geocrop.errors import OutputError
    from geocrop.inference.journal import output_lock

    out = tmp_path / "map.tif"
    with output_lock(out), pytest.raises(OutputError, match="another geocrop run"):
        map_aoi(_config(area, out))
    assert not list(tmp_path.iterdir())


ATOMIC_KILL = """
import os, signal, sys
from geocrop.io.atomic import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    tmp.write_text("half a shard")
    os.kill(os.getpid(), signal.SIGKILL)
"""


def _killed_atomic_write(target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([sys.executable, "-c", ATOMIC_KILL, str(target)], timeout=120)
    assert proc.returncode == -9
    stale = [p for p in target.parent.iterdir() if p.name.endswith(".partial")]
    assert len(stale) == 1 and not target.exists()
    return stale[0]


def test_atomic_temporaries_of_killed_processes_are_removed(tmp_path: Path) -> None:
    stale = _killed_atomic_write(tmp_path / "run" / "pairs" / "train-00000.npy")
    (tmp_path / "run" / "checkpoints").mkdir()
    with atomic_path(tmp_path / "run" / "checkpoints" / "live.txt") as tmp:
        tmp.write_text("in progress")
        # what `geocrop pretrain` does first: a live writer's temporary survives, the dead one goes
        assert remove_stale_partials(tmp_path / "run", recursive=True) == [stale]
        assert tmp.exists()
    # the first atomic write into a folder also sweeps it
    stale = _killed_atomic_write(tmp_path / "shards" / "train-00001.npy")
    with atomic_path(tmp_path / "shards" / "train-00001.npy") as tmp:
        tmp.write_text("whole")
    assert sorted(p.name for p in stale.parent.iterdir()) == ["train-00001.npy"]
