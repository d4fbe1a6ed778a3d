"""Find scenes: STAC API search, static catalogs, and folders of provider-named GeoTIFFs.

``search(source, ...)`` returns pystac Items sorted by time whatever the source is:

- ``http(s)://...``: a STAC API, searched with pystac-client. Every HTTP request is retried on 429/5xx
  answers, dropped connections and timeouts: :data:`API_RETRIES` retries (so ``API_RETRIES + 1``
  attempts) with exponential backoff (``API_BACKOFF`` x 2^n seconds, at most :data:`API_BACKOFF_MAX`) plus
  random jitter, honouring a ``Retry-After`` header (capped at :data:`RETRY_AFTER_MAX`). That budget,
  about 1.5 minutes per request at worst, makes a run through an API failing 30 % of requests at random
  fail with odds 0.3^11 ~ 2e-6 per request. Giving up names the HTTP status and the attempts.
- a ``catalog.json``/``collection.json`` (or a folder holding one): a static catalog read with pystac and
  filtered here by collection, bbox and dates.
- a folder of GeoTIFFs named as providers name them (see :mod:`geocrop.io.folder_items`).
- a saved ItemCollection (a FeatureCollection of STAC items) or a local NetCDF/Zarr cube (one item per
  time step, `geocrop.io.cube_file`). `geocrop.io.sources.detect_source` tells the kinds apart and
  refuses anything else with one error listing them.

Cloud cover (``eo:cloud_cover``) is always filtered client-side, because some servers ignore ``query``.

Trust (`check_asset_hrefs`): a catalog decides which files geocrop reads, so its asset hrefs are checked.
Items from a STAC API may point only at remote assets (``http``, ``https``, ``s3``) on hosts other than
loopback/link-local ones (the API's own host excepted); a static catalog may point at files under its own
folder, or at such remote assets. Anything else (``file://`` or plain paths elsewhere, ``../`` escaping
the folder, GDAL ``/vsi...`` paths, loopback hosts) is refused with an `InputError` naming the item, the
asset and the way out: ``allow_any_asset_href=True``, a setting every config that reads a catalog carries
(`MapConfig`, the training and pretraining sources) and hands to `search`; no module state holds it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Self
from urllib.parse import unquote, urlparse

import pystac
import shapely
from shapely.geometry import box, shape

from geocrop.errors import GeocropError, InputError, NoDataError, SourceError
from geocrop.io.aoi import Aoi, BBox

RETRY_STATUS = (429, 500, 502, 503, 504)
#: HTTP retry budget for STAC API requests (see the module docstring; documented in docs/architecture.md).
API_RETRIES = 10
API_BACKOFF = 0.5
API_BACKOFF_MAX = 15.0
RETRY_AFTER_MAX = 60.0
API_TIMEOUT = 30.0
#: Refused connections and unknown hosts are rarely transient: fewer retries, so a wrong URL fails fast.
API_CONNECT_RETRIES = 3
#: Asset href schemes a STAC API (or a static catalog) may point at without `allow_any_asset_href`.
REMOTE_SCHEMES = frozenset({"http", "https", "s3"})


def _local_host(host: str) -> bool:
    """True for loopback, link-local (cloud metadata) and unspecified hosts."""
    name = host.strip("[]").lower()
    if name in ("localhost", "localhost.localdomain") or name.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_link_local or ip.is_unspecified


def _href_problem(href: str, *, api_host: str | None, folder: Path | None) -> str | None:
    """Why ``href`` may not be read from this source, or None when it may."""
    if href.startswith("/vsi"):
        return "a GDAL virtual path (/vsi...)"
    parsed = urlparse(href)
    scheme = parsed.scheme.lower()
    if len(scheme) == 1:  # a Windows drive letter, not a scheme
        scheme = ""
    if scheme in REMOTE_SCHEMES:
        host = parsed.hostname or ""
        if scheme != "s3" and _local_host(host) and host != api_host:
            return f"on the local host {host!r}"
        return None
    if scheme not in ("", "file"):
        return f"of scheme {scheme!r} (only http, https and s3 are read)"
    if folder is None:
        return "a local file, but items from a STAC API may point only at http, https or s3 assets"
    path = unquote(parsed.path) if scheme == "file" else href
    full = os.path.normpath(os.path.abspath(path))
    root = os.path.normpath(os.path.abspath(folder))
    if os.path.commonpath([full, root]) != root:
        return f"outside the catalog's folder {root}"
    return None


def check_asset_hrefs(
    items: Iterable[pystac.Item], *, source: str, allow_any: bool = False
) -> list[pystac.Item]:
    """``items`` unchanged if every asset href is one this source may point at; else `InputError`.

    ``source`` is the STAC API URL or the static catalog's path (its folder bounds local hrefs).
    """
    items = list(items)
    if allow_any:
        return items
    is_api = source.startswith(("http://", "https://"))
    api_host = (urlparse(source).hostname or "") if is_api else None
    folder = None if is_api else Path(source).expanduser().absolute().parent
    for item in items:
        for key, asset in item.assets.items():
            href = asset.href
            if not (urlparse(href).scheme or os.path.isabs(href)):  # relative: resolve against the item
                href = asset.get_absolute_href() or href
            problem = _href_problem(href, api_host=api_host, folder=folder)
            if problem is not None:
                kind = "STAC API" if is_api else "catalog"
                raise InputError(
                    f"item {item.id} of {kind} {source} has asset {key!r} at {href}, {problem}; geocrop "
                    "does not read it unless you trust this catalog: give `allow_any_asset_href`",
                    param="allow_any_asset_href",
                )
    return items


def _as_datetime(value: Any, *, end: bool) -> dt.datetime:
    if isinstance(value, dt.datetime):
        when = value
    elif isinstance(value, dt.date):
        when = dt.datetime.combine(value, dt.time.max if end else dt.time.min)
    else:
        try:
            text = str(value)
            when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            if len(text) <= 10 and end:
                when = dt.datetime.combine(when.date(), dt.time.max)
        except ValueError as exc:
            raise InputError(f"date {value!r} is not valid; give YYYY-MM-DD") from exc
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


def _bbox_of(bbox: BBox | Aoi | Any) -> BBox:
    if isinstance(bbox, Aoi):
        return bbox.bbox
    try:
        minx, miny, maxx, maxy = (float(v) for v in bbox)
    except (TypeError, ValueError) as exc:
        raise InputError(f"bbox {bbox!r} is not minx,miny,maxx,maxy in EPSG:4326") from exc
    return (minx, miny, maxx, maxy)


def _item_time_range(item: pystac.Item) -> tuple[dt.datetime, dt.datetime] | None:
    start = item.datetime or item.common_metadata.start_datetime
    end = item.datetime or item.common_metadata.end_datetime or start
    if start is None or end is None:
        return None
    fix = [t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc) for t in (start, end)]
    return fix[0], fix[1]


def _matches(item: pystac.Item, area: shapely.Geometry, start: dt.datetime, end: dt.datetime) -> bool:
    span = _item_time_range(item)
    if span is None or span[1] < start or span[0] > end:
        return False
    if item.geometry is not None:
        footprint = shape(item.geometry)
    elif item.bbox is not None:
        footprint = box(*item.bbox[:2], *item.bbox[-2:])
    else:
        return True
    return bool(footprint.intersects(area))


def _cloud_ok(item: pystac.Item, max_cloud: float | None) -> bool:
    if max_cloud is None:
        return True
    cc = item.properties.get("eo:cloud_cover")
    # An item that does not report cloud cover is kept: its SCL/UDM2 mask still applies pixel by pixel.
    return cc is None or float(cc) <= max_cloud


class _Attempts:
    """How many times the request that failed last was sent (its retry history plus the first try).

    The budget allows `API_RETRIES` + 1 attempts, but refused connections stop after
    `API_CONNECT_RETRIES` + 1: the message counts what was really tried, from urllib3's own history.
    """

    def __init__(self) -> None:
        self.count = 0

    def text(self, started: float) -> str:
        n = max(self.count, 1)
        return f"{n} attempt{'s' if n != 1 else ''} over {time.monotonic() - started:.0f} s"


class _Retry:
    """Factory for urllib3's ``Retry`` that also honours ``Retry-After`` on 500/502/504 (capped)."""

    @staticmethod
    def make(*, retries: int, backoff: float, attempts: _Attempts | None = None) -> Any:
        from urllib3.util.retry import Retry

        tally = attempts or _Attempts()

        class GeocropRetry(Retry):
            RETRY_AFTER_STATUS_CODES = frozenset(RETRY_STATUS)

            def get_retry_after(self, response: Any) -> float | None:
                value = super().get_retry_after(response)
                return None if value is None else min(float(value), RETRY_AFTER_MAX)

            def increment(
                self,
                method: str | None = None,
                url: str | None = None,
                response: Any = None,
                error: Exception | None = None,
                _pool: Any = None,
                _stacktrace: Any = None,
            ) -> Self:
                # called once per failed try of one request; history holds the earlier failed tries
                tally.count = len(self.history) + 1
                return super().increment(method, url, response, error, _pool, _stacktrace)

        return GeocropRetry(
            total=retries,
            connect=min(retries, API_CONNECT_RETRIES),
            read=None,
            status=None,
            other=None,
            backoff_factor=backoff,
            backoff_max=max(API_BACKOFF_MAX, backoff),
            backoff_jitter=backoff,
            status_forcelist=RETRY_STATUS,
            allowed_methods=None,  # retry POST /search too
            raise_on_status=False,
            respect_retry_after_header=True,
        )


def _api_failure(
    url: str, exc: BaseException, *, attempts: _Attempts, started: float, doing: str
) -> SourceError:
    """A one-line `SourceError` for a STAC API request that failed for good."""
    status = getattr(exc, "status_code", None)
    tries = attempts.text(started)
    if isinstance(status, int) and (status >= 500 or status == 429):
        return SourceError(
            f"STAC API {url} answered HTTP {status} {doing}, still after {tries}; the server is failing or "
            "overloaded: retry later, or give a static catalog.json"
        )
    if isinstance(status, int):
        first = _first_line(exc, limit=150)
        return SourceError(
            f"STAC API {url} refused {doing} with HTTP {status} ({first}); check `stac` and `collection`",
            param="stac",
        )
    if _is_connection_error(exc):
        return SourceError(
            f"STAC API {url} is unreachable {doing} (no connection after {tries}); check the URL and your "
            "network, or give a static catalog.json"
        )
    return SourceError(
        f"STAC API {url} did not answer as a STAC API {doing}: {_first_line(exc)}; check `stac`",
        param="stac",
    )


def _first_line(exc: BaseException, *, limit: int = 200) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__


def _open_api(url: str, *, timeout: float, max_retries: int, backoff: float, attempts: _Attempts) -> Any:
    from pystac_client import Client
    from pystac_client.stac_api_io import StacApiIO

    retry = _Retry.make(retries=max_retries, backoff=backoff, attempts=attempts)
    io = StacApiIO(timeout=timeout, max_retries=retry)
    started = time.monotonic()
    try:
        return Client.open(url, stac_io=io)
    except Exception as exc:
        raise _api_failure(url, exc, attempts=attempts, started=started, doing="to its landing page") from exc


_CONNECTION_HINTS = (
    "Max retries exceeded",
    "Failed to establish",
    "timed out",
    "Name or service not known",
    "Connection aborted",
    "Connection refused",
    "RemoteDisconnected",
)


def _is_connection_error(exc: BaseException) -> bool:
    """True when ``exc`` (or what it wraps) is a connection failure rather than a bad answer."""
    seen: BaseException | None = exc
    while seen is not None:
        text = str(seen)
        if any(h in text for h in _CONNECTION_HINTS):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _conforms_to_query(client: Any) -> bool:
    from pystac_client.conformance import ConformanceClasses

    try:
        return bool(client.conforms_to(ConformanceClasses.QUERY))
    except Exception:
        return False


def _search_api(
    url: str,
    *,
    collection: str,
    bbox: BBox,
    start: dt.datetime,
    end: dt.datetime,
    max_cloud: float | None,
    timeout: float,
    max_retries: int,
    backoff: float,
) -> Iterator[pystac.Item]:
    import requests
    from pystac_client.exceptions import APIError

    attempts = _Attempts()
    client = _open_api(url, timeout=timeout, max_retries=max_retries, backoff=backoff, attempts=attempts)
    kwargs: dict[str, Any] = {
        "collections": [collection],
        "bbox": list(bbox),
        "datetime": f"{start.isoformat()}/{end.isoformat()}",
    }
    if max_cloud is not None and _conforms_to_query(client):
        # A hint only: the result is filtered again client-side (some servers ignore `query`).
        kwargs["query"] = {"eo:cloud_cover": {"lte": max_cloud}}
    doing = f"to the search for {collection!r}"
    started = time.monotonic()
    try:
        search = client.search(**kwargs)
        yield from search.items()
    except (requests.RequestException, OSError, APIError) as exc:
        raise _api_failure(url, exc, attempts=attempts, started=started, doing=doing) from exc


def _read_static(path: Path) -> Iterable[pystac.Item]:
    try:
        obj = pystac.read_file(str(path))
    except Exception as exc:
        first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise SourceError(
            f"STAC catalog {path} could not be read: {first}; give a valid catalog.json"
        ) from exc
    if isinstance(obj, pystac.Item):
        return [obj]
    if isinstance(obj, pystac.ItemCollection):
        return list(obj)
    if isinstance(obj, pystac.Catalog):
        return obj.get_items(recursive=True)
    raise SourceError(f"STAC file {path} is a {type(obj).__name__}, not a catalog, collection or item")


def _collection_of(item: pystac.Item) -> str | None:
    if item.collection_id:
        return item.collection_id
    parent = item.get_parent()
    return parent.id if parent is not None else None


def search(
    source: str | Path,
    *,
    collection: str,
    bbox: BBox | Aoi | Any,
    start: dt.date | dt.datetime | str,
    end: dt.date | dt.datetime | str,
    max_cloud: float | None = None,
    limit: int | None = None,
    timeout: float = API_TIMEOUT,
    max_retries: int = API_RETRIES,
    backoff: float = API_BACKOFF,
    allow_any_asset_href: bool = False,
) -> list[pystac.Item]:
    """Items of ``collection`` over ``bbox`` (EPSG:4326 or an :class:`Aoi`) between ``start`` and ``end``.

    Args:
        source: STAC API URL, path to a static ``catalog.json``/``collection.json`` (or a folder with one),
            a saved ItemCollection JSON, a folder of provider-named GeoTIFFs, or a NetCDF/Zarr cube.
        max_cloud: keep items whose ``eo:cloud_cover`` is <= this (percent); applied here, not trusted
            to the server.
        limit: at most this many items (after cloud filtering), earliest first.
        timeout, max_retries, backoff: HTTP settings for STAC APIs (seconds per attempt, retries, first
            backoff in seconds); the defaults are the documented budget.
        allow_any_asset_href: accept items whose assets point anywhere (see `check_asset_hrefs`).

    Raises:
        SourceError: the source is unreachable or unreadable. NoDataError: nothing matches.
        InputError: an item points at an asset this source may not point at (see the module docstring).
    """
    box4326 = _bbox_of(bbox)
    area = bbox.geometry if isinstance(bbox, Aoi) else box(*box4326)
    t0, t1 = _as_datetime(start, end=False), _as_datetime(end, end=True)
    if t1 < t0:
        raise InputError(f"date range {start}..{end} ends before it starts; give start <= end")
    text = str(source)
    candidates: Iterable[pystac.Item]
    trusted_source: str | None = text  # what bounds the asset hrefs; None for generated folder items
    if text.startswith(("http://", "https://")):
        candidates = _search_api(
            text,
            collection=collection,
            bbox=box4326,
            start=t0,
            end=t1,
            max_cloud=max_cloud,
            timeout=timeout,
            max_retries=max_retries,
            backoff=backoff,
        )
    else:
        from geocrop.io.sources import detect_source, local_items

        path = Path(source).expanduser()
        kind = detect_source(path)
        if kind == "static-catalog":
            if path.is_dir():
                path = next(path / n for n in ("catalog.json", "collection.json") if (path / n).is_file())
            trusted_source = str(path)
            candidates = (it for it in _read_static(path) if _collection_of(it) == collection)
        else:
            candidates, trusted_source = local_items(path, kind, collection=collection)
    items: list[pystac.Item] = []
    try:
        for item in candidates:
            if _matches(item, area, t0, t1) and _cloud_ok(item, max_cloud):
                items.append(item)
    except GeocropError:
        raise
    except Exception as exc:  # a static catalog's item links are followed lazily, here
        raise SourceError(
            f"STAC catalog {source} could not be read: {_first_line(exc)}; repair the catalog (a linked item "
            "file is missing or invalid) or give another `stac`",
            param="stac",
        ) from exc
    if trusted_source is not None:
        check_asset_hrefs(items, source=trusted_source, allow_any=allow_any_asset_href)
    items.sort(key=lambda it: (_item_time_range(it) or (t0, t0))[0])
    if limit is not None:
        items = items[:limit]
    if not items:
        cloud = f" with cloud cover <= {max_cloud}%" if max_cloud is not None else ""
        raise NoDataError(
            f"no {collection} scenes in {source} over bbox {tuple(round(v, 5) for v in box4326)} "
            f"from {t0.date()} to {t1.date()}{cloud}; widen the dates, raise `max_cloud` or check the "
            "collection name",
            param="max_cloud",
        )
    return items
