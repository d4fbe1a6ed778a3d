"""search(): static catalogs, GeoTIFF folders, a real STAC API on loopback (rustac), retries, errors."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from affine import Affine

from geocrop.errors import InputError, NoDataError, SourceError
from geocrop.io.aoi import read_aoi
from geocrop.io.stac import search
from tests.io.stac_fixtures import (
    ORIGIN,
    PLANET_COLLECTION,
    S2_COLLECTION,
    planet_item,
    rustac_executable,
    rustac_server,
    synthetic_s2,
    tile_bbox,
    write_api_inputs,
    write_catalog,
    write_cog,
)

DATES = [dt.date(2021, 3, 1), dt.date(2021, 3, 6), dt.date(2021, 3, 11), dt.date(2021, 4, 20)]
CLOUDS = [5.0, 80.0, 20.0, 1.0]


@pytest.fixture(scope="module")
def s2_items(tmp_path_factory: pytest.TempPathFactory) -> list:
    return synthetic_s2(tmp_path_factory.mktemp("s2"), DATES, size=8, clouds=CLOUDS)


def test_static_catalog_filters_dates_bbox_cloud_collection(tmp_path: Path, s2_items: list) -> None:
    cat = write_catalog(tmp_path / "cat", s2_items)
    bbox = tile_bbox(8)
    got = search(cat, collection=S2_COLLECTION, bbox=bbox, start="2021-03-01", end="2021-03-31")
    assert [it.datetime.date() for it in got] == DATES[:3]
    got = search(cat, collection=S2_COLLECTION, bbox=bbox, start="2021-01-01", end="2021-12-31", max_cloud=25)
    assert [it.properties["eo:cloud_cover"] for it in got] == [5.0, 20.0, 1.0]
    got = search(
        tmp_path / "cat", collection=S2_COLLECTION, bbox=read_aoi(bbox), start=DATES[0], end=DATES[-1]
    )
    assert len(got) == 4  # a folder holding catalog.json, an Aoi as bbox, dates as date objects
    got = search(cat, collection=S2_COLLECTION, bbox=bbox, start="2021-01-01", end="2021-12-31", limit=2)
    assert [it.datetime.date() for it in got] == DATES[:2]
    with pytest.raises(NoDataError, match="no sentinel-2-l2a scenes"):
        search(cat, collection=S2_COLLECTION, bbox=(0.0, 0.0, 0.1, 0.1), start="2021-01-01", end="2021-12-31")
    with pytest.raises(NoDataError):
        search(cat, collection="landsat-c2-l2", bbox=bbox, start="2021-01-01", end="2021-12-31")
    with pytest.raises(InputError, match="ends before it starts"):
        search(cat, collection=S2_COLLECTION, bbox=bbox, start="2021-05-01", end="2021-04-01")


def test_missing_source_and_bad_catalog(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="neither a URL nor an existing"):
        search(
            tmp_path / "nope.json",
            collection=S2_COLLECTION,
            bbox=tile_bbox(),
            start="2021-01-01",
            end="2021-12-31",
        )
    bad = tmp_path / "catalog.json"
    bad.write_text("{broken")
    with pytest.raises(SourceError, match="could not be read"):
        search(bad, collection=S2_COLLECTION, bbox=tile_bbox(), start="2021-01-01", end="2021-12-31")


def test_unreachable_url_is_source_error() -> None:
    with pytest.raises(SourceError, match="unreachable") as info:
        search(
            "http://127.0.0.1:9/stac",  # discard port: nothing listens
            collection=S2_COLLECTION,
            bbox=tile_bbox(),
            start="2021-01-01",
            end="2021-12-31",
            max_retries=1,
            backoff=0.0,
            timeout=2,
        )
    assert "\n" not in str(info.value)


def test_geotiff_folder_with_provider_names(tmp_path: Path) -> None:
    tf = Affine(10.0, 0, ORIGIN[0], 0, -10.0, ORIGIN[1])
    arr = np.full((6, 6), 1500, np.uint16)
    folder = tmp_path / "tifs"
    for band in ("B02", "B03", "B04", "B08"):
        write_cog(folder / f"T33UUU_20210301T101021_{band}_10m.tif", arr, transform=tf)
    write_cog(
        folder / "T33UUU_20210301T101021_SCL_20m.tif",
        arr[:3, :3].astype(np.uint8),
        transform=tf @ Affine.scale(2),
    )
    write_cog(folder / "S2B_33UUU_20210402_0_L2A" / "blue.tif", arr, transform=tf)
    write_cog(folder / "S2B_33UUU_20210402_0_L2A" / "SCL.tif", arr.astype(np.uint8), transform=tf)
    ptf = Affine(10 / 3, 0, ORIGIN[0], 0, -10 / 3, ORIGIN[1])
    planet_item(
        folder,
        "20210301_101021_1_2403",
        dt.datetime(2021, 3, 1, 10, 10, 21, tzinfo=dt.timezone.utc),
        sr=np.full((4, 18, 18), 900, np.uint16),
        udm2=np.ones((8, 18, 18), np.uint8),
        transform=ptf,
        provider_names=True,
    )
    (folder / "notes.txt").write_text("ignored")
    bbox = tile_bbox(6)
    s2 = search(folder, collection=S2_COLLECTION, bbox=bbox, start="2021-01-01", end="2021-12-31")
    assert [it.id for it in s2] == ["S2_T33UUU_20210301T101021", "S2B_33UUU_20210402_0_L2A"]
    assert set(s2[0].assets) == {"blue", "green", "red", "nir", "scl"}
    assert s2[0].datetime == dt.datetime(2021, 3, 1, 10, 10, 21, tzinfo=dt.timezone.utc)
    assert set(s2[1].assets) == {"blue", "scl"}
    pl = search(folder, collection=PLANET_COLLECTION, bbox=bbox, start="2021-01-01", end="2021-12-31")
    assert [it.id for it in pl] == ["20210301_101021_1_2403"]
    assert set(pl[0].assets) == {"ortho_analytic_4b_sr", "ortho_udm2"}
    with pytest.raises(InputError, match="not known for GeoTIFF folders"):
        search(folder, collection="landsat", bbox=bbox, start="2021-01-01", end="2021-12-31")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SourceError, match="holds no GeoTIFF"):
        search(empty, collection=S2_COLLECTION, bbox=bbox, start="2021-01-01", end="2021-12-31")


needs_rustac = pytest.mark.skipif(rustac_executable() is None, reason="rustac CLI not installed (pip rustac)")


@pytest.fixture(scope="module")
def stac_api(tmp_path_factory: pytest.TempPathFactory, s2_items: list) -> Iterator[str]:
    coll, items = write_api_inputs(tmp_path_factory.mktemp("api"), s2_items, collection=S2_COLLECTION)
    with rustac_server(coll, items) as url:
        yield url


@needs_rustac
def test_rustac_api_search_and_client_side_cloud_filter(stac_api: str) -> None:
    bbox = tile_bbox(8)
    # The test API serves items whose assets are local files: refused unless the caller trusts it.
    with pytest.raises(InputError, match=r"a local file.*allow_any_asset_href"):
        search(stac_api, collection=S2_COLLECTION, bbox=bbox, start="2021-03-01", end="2021-03-31")
    got = search(
        stac_api,
        collection=S2_COLLECTION,
        bbox=bbox,
        start="2021-03-01",
        end="2021-03-31",
        allow_any_asset_href=True,
    )
    assert [it.datetime.date() for it in got] == DATES[:3]
    # rustac's memory backend ignores `query`: the 80 % scene must still be dropped (client-side filter).
    got = search(
        stac_api,
        collection=S2_COLLECTION,
        bbox=bbox,
        start="2021-01-01",
        end="2021-12-31",
        max_cloud=25,
        allow_any_asset_href=True,
    )
    assert [it.properties["eo:cloud_cover"] for it in got] == [5.0, 20.0, 1.0]
    assert all(Path(it.assets["blue"].href).is_file() for it in got)
    with pytest.raises(NoDataError):
        search(stac_api, collection=S2_COLLECTION, bbox=bbox, start="2019-01-01", end="2019-12-31")


class _Flaky(BaseHTTPRequestHandler):
    """A minimal STAC API whose first two answers are 503 (tests the retry/backoff path)."""

    failures_left = 2
    hits = 0

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        type(self).hits += 1
        if type(self).failures_left > 0:
            type(self).failures_left -= 1
            self.send_response(503)
            self.end_headers()
            return
        base = f"http://127.0.0.1:{self.server.server_address[1]}"
        if self.path.startswith("/search"):
            body = {"type": "FeatureCollection", "features": [], "links": []}
        else:
            body = {
                "type": "Catalog",
                "id": "flaky",
                "description": "flaky",
                "stac_version": "1.0.0",
                "conformsTo": [
                    "https://api.stacspec.org/v1.0.0/item-search",
                    "https://api.stacspec.org/v1.0.0/core",
                ],
                "links": [
                    {"rel": "self", "href": base + "/"},
                    {"rel": "root", "href": base + "/"},
                    {
                        "rel": "search",
                        "href": base + "/search",
                        "method": "GET",
                        "type": "application/geo+json",
                    },
                ],
            }
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.do_GET()


def test_retries_on_5xx_then_succeeds() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        with pytest.raises(NoDataError):  # reached the (empty) search: the 503s were retried
            search(
                url,
                collection=S2_COLLECTION,
                bbox=tile_bbox(),
                start="2021-01-01",
                end="2021-12-31",
                backoff=0.01,
            )
        assert _Flaky.hits >= 4
    finally:
        server.shutdown()
        server.server_close()
