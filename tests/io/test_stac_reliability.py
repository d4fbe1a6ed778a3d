"""STAC API reliability against a real server: `rustac serve` on loopback behind a failure-injecting proxy
(`tests.io.flaky_proxy`), and the trust rules for asset hrefs (`geocrop.io.stac.check_asset_hrefs`)."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pystac
import pytest

from geocrop.errors import InputError, SourceError
from geocrop.io.stac import API_CONNECT_RETRIES, API_RETRIES, check_asset_hrefs, search
from tests.io.flaky_proxy import flaky_proxy
from tests.io.stac_fixtures import (
    S2_COLLECTION,
    rustac_executable,
    rustac_server,
    synthetic_s2,
    tile_bbox,
    write_api_inputs,
    write_catalog,
)

needs_rustac = pytest.mark.skipif(rustac_executable() is None, reason="rustac CLI not installed (pip rustac)")
DATES = [dt.date(2021, 3, 1) + dt.timedelta(days=5 * k) for k in range(12)]
FAST = {"backoff": 0.01}  # the retry budget's attempts, with short waits so the test stays quick


@pytest.fixture(scope="module")
def items(tmp_path_factory: pytest.TempPathFactory) -> list[pystac.Item]:
    return synthetic_s2(tmp_path_factory.mktemp("s2"), DATES, size=4)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, items: list[pystac.Item]) -> Iterator[str]:
    coll, nd = write_api_inputs(tmp_path_factory.mktemp("api"), items, collection=S2_COLLECTION)
    with rustac_server(coll, nd) as url:
        yield url


def _ids(url: str, **kwargs: object) -> list[str]:
    kwargs.setdefault("allow_any_asset_href", True)  # the test API serves local files
    found = search(
        url,
        collection=S2_COLLECTION,
        bbox=tile_bbox(4),
        start="2021-01-01",
        end="2021-12-31",
        **kwargs,  # type: ignore[arg-type]
    )
    return [it.id for it in found]


@needs_rustac
def test_thirty_percent_failures_never_fail_a_search(api: str) -> None:
    """20 seeded runs through a proxy failing 30 % of requests (500, 503, dropped): 20 identical results."""
    expected = _ids(api)
    assert len(expected) == len(DATES)
    failures = requests = 0
    for seed in range(20):
        with flaky_proxy(api, failure_rate=0.3, seed=seed) as proxy:
            assert _ids(proxy.url, limit=None, **FAST) == expected
            failures += proxy.stats.failures
            requests += proxy.stats.requests
    assert failures > 0.15 * requests  # failures were really injected (0.3 of first tries, fewer overall)


@needs_rustac
def test_retry_after_is_honoured(api: str) -> None:
    with flaky_proxy(api, failure_rate=0.0, retry_after=1, fail_first=1, first_kind="503") as proxy:
        started = time.monotonic()
        assert len(_ids(proxy.url, **FAST)) == len(DATES)
        assert time.monotonic() - started >= 1.0
        assert proxy.stats.failures == 1


@needs_rustac
@pytest.mark.parametrize("kind", ["503", "500", "drop"])
def test_a_dead_api_names_the_status_and_the_attempts(api: str, kind: str) -> None:
    proxied = flaky_proxy(api, failure_rate=0.0, fail_first=10**6, first_kind=kind)
    with proxied as proxy, pytest.raises(SourceError) as info:
        _ids(proxy.url, max_retries=3, **FAST)
    message = str(info.value)
    assert "\n" not in message and "4 attempts" in message
    assert (f"HTTP {kind}" in message) if kind != "drop" else ("unreachable" in message)
    assert proxy.stats.requests == 4


@needs_rustac
@pytest.mark.parametrize(("kind", "retries"), [("503", 5), ("drop", 6), ("500", 0)])
def test_the_attempts_named_are_the_requests_made(api: str, kind: str, retries: int) -> None:
    """The message counts the tries the server saw, whatever the budget (was: always the budget)."""
    with flaky_proxy(api, failure_rate=0.0, fail_first=10**6, first_kind=kind) as proxy:
        with pytest.raises(SourceError) as info:
            _ids(proxy.url, max_retries=retries, **FAST)
        made = proxy.stats.requests
    assert made == retries + 1
    assert f"after {made} attempt{'s' if made != 1 else ''} over" in str(info.value)


def test_a_refused_connection_counts_its_few_attempts() -> None:
    """Refused connections stop after API_CONNECT_RETRIES + 1 tries, and the message says that many,
    not the full budget's API_RETRIES + 1."""
    with pytest.raises(SourceError, match="unreachable") as info:
        search(
            "http://127.0.0.1:9/stac",  # discard port: nothing listens
            collection=S2_COLLECTION,
            bbox=tile_bbox(4),
            start="2021-01-01",
            end="2021-12-31",
            backoff=0.01,
        )
    assert f"no connection after {API_CONNECT_RETRIES + 1} attempts over" in str(info.value)
    assert API_CONNECT_RETRIES + 1 != API_RETRIES + 1


def test_the_default_budget_makes_thirty_percent_failure_negligible() -> None:
    # Documented in docs/architecture.md: API_RETRIES + 1 attempts per request.
    assert 0.3 ** (API_RETRIES + 1) < 1e-5


def _item(href: str, item_id: str = "S2A_X") -> pystac.Item:
    item = pystac.Item(
        id=item_id,
        geometry={"type": "Point", "coordinates": [13.0, 52.5]},
        bbox=[13.0, 52.5, 13.0, 52.5],
        datetime=dt.datetime(2021, 3, 1, tzinfo=dt.timezone.utc),
        properties={},
    )
    item.add_asset("red", pystac.Asset(href=href))
    return item


@pytest.mark.parametrize(
    ("href", "ok"),
    [
        ("https://sentinel-cogs.s3.us-west-2.amazonaws.com/tiles/red.tif", True),
        ("s3://sentinel-cogs/tiles/red.tif", True),
        ("https://stac.example.com/data/red.tif", True),
        ("file:///etc/passwd", False),
        ("/etc/passwd", False),
        ("/vsicurl/https://example.com/red.tif", False),
        ("http://127.0.0.1:8080/red.tif", False),
        ("http://localhost/red.tif", False),
        ("http://169.254.169.254/latest/meta-data", False),
        ("ftp://example.com/red.tif", False),
    ],
)
def test_remote_api_items_may_point_only_at_remote_assets(href: str, ok: bool) -> None:
    items = [_item(href)]
    source = "https://stac.example.com/v1"
    if ok:
        assert check_asset_hrefs(items, source=source) == items
    else:
        with pytest.raises(InputError, match="allow_any_asset_href") as info:
            check_asset_hrefs(items, source=source)
        assert "S2A_X" in str(info.value) and "'red'" in str(info.value)
        assert check_asset_hrefs(items, source=source, allow_any=True) == items


@needs_rustac
def test_api_item_on_another_loopback_host_is_refused(tmp_path: Path) -> None:
    item = synthetic_s2(tmp_path / "s2", DATES[:1], size=4)[0]
    item.assets["red"].href = "http://127.0.0.2:9/red.tif"
    for key in [k for k in item.assets if k != "red"]:
        del item.assets[key]
    coll, nd = write_api_inputs(tmp_path / "api", [item], collection=S2_COLLECTION)
    with rustac_server(coll, nd) as url, pytest.raises(InputError, match=r"local host '127\.0\.0\.2'"):
        _ids(url, allow_any_asset_href=False)


@pytest.mark.parametrize("kind", ["inside", "escaping", "file-url", "vsicurl", "loopback", "remote"])
def test_static_catalog_reads_only_files_under_its_folder(tmp_path: Path, kind: str) -> None:
    item = synthetic_s2(tmp_path / "s2", DATES[:1], size=4)[0]
    catalog = write_catalog(tmp_path / "cat", [item])
    item_json = next((tmp_path / "cat").rglob("S2A_*.json"))
    data = json.loads(item_json.read_text())
    hrefs = {
        "inside": None,
        "escaping": "../../../s2/S2A_T33UUU_20210301/red.tif",
        "file-url": f"file://{tmp_path}/s2/S2A_T33UUU_20210301/red.tif",
        "vsicurl": "/vsicurl/http://example.com/red.tif",
        "loopback": "http://127.0.0.1:9/red.tif",
        "remote": "https://example.com/red.tif",
    }
    if hrefs[kind] is not None:
        data["assets"]["red"]["href"] = hrefs[kind]
        item_json.write_text(json.dumps(data))
    run = lambda: search(  # noqa: E731
        catalog, collection=S2_COLLECTION, bbox=tile_bbox(4), start="2021-01-01", end="2021-12-31"
    )
    if kind in ("inside", "remote"):
        assert len(run()) == 1
        return
    with pytest.raises(InputError) as info:
        run()
    assert "allow_any_asset_href" in str(info.value) and "\n" not in str(info.value)
    found = search(
        catalog,
        collection=S2_COLLECTION,
        bbox=tile_bbox(4),
        start="2021-01-01",
        end="2021-12-31",
        allow_any_asset_href=True,
    )
    assert len(found) == 1
