"""The tiny area (`map_fixtures.tiny_area`) behind a loopback range server and a STAC API, for maps that
read over HTTP (`geocrop.io.reading`, `geocrop.io.read_cache`), and `map_tiny`, a map of it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from geocrop.inference.mapping import MapConfig, MapResult, map_aoi
from tests.inference.map_fixtures import END, START, TinyArea
from tests.io.range_server import Served, serve
from tests.io.stac_fixtures import rustac_server, write_api_inputs


@contextlib.contextmanager
def served_area(area: TinyArea, folder: Path, *, latency: float = 0.0) -> Iterator[tuple[Served, str]]:
    """``(range server, STAC API URL)``: the area's COGs served over HTTP, its items (hrefs on that
    server) from ``rustac serve``; ``folder`` holds the API's inputs."""
    with serve(area.root / "data", latency=latency) as files:
        items = [it.clone() for it in area.items]
        for it in items:
            for asset in it.assets.values():
                asset.href = files.url + "/" + Path(asset.href).relative_to(area.root / "data").as_posix()
        coll, lines = write_api_inputs(folder, items, collection="sentinel-2-l2a")
        with rustac_server(coll, lines) as url:
            yield files, url


def map_tiny(area: TinyArea, out: Path, stac: str, **options: Any) -> MapResult:
    """`map_aoi` of the tiny area's AOI from ``stac`` in 16 px tiles (4 tiles) into ``out``; ``options``:
    more `MapConfig` fields."""
    config = MapConfig(
        aoi=area.bbox, start=START, end=END, out=out, model=area.bundle, stac=stac, chunk_size=16, **options
    )
    return map_aoi(config)
