"""Find scenes: STAC API search, static catalogs, and folders of provider-named GeoTIFFs.

``search(source, ...)`` returns pystac Items sorted by time whatever the source is:

- ``http(s)://...``: a STAC API, searched with pystac-client; 5xx answers and timeouts are retried with
  exponential backoff (urllib3 ``Retry`` inside pystac-client's ``StacApiIO``).
- a ``catalog.json``/``collection.json`` (or a folder holding one): a static catalog read with pystac and
  filtered here by collection, bbox and dates.
- a folder of GeoTIFFs named as providers name them (see :mod:`geocrop.io.folder_items`).

Cloud cover (``eo:cloud_cover``) is always filtered client-side, because some servers ignore ``query``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pystac
import shapely
from shapely.geometry import box, shape

from geocrop.errors import InputError, NoDataError, SourceError
from geocrop.io.aoi import Aoi, BBox

#: Collection ids that mean "Sentinel-2 L2A" / "PlanetScope" for sources without collections (folders).
S2_COLLECTIONS = frozenset({"sentinel-2-l2a", "sentinel-2-c1-l2a", "sentinel-s2-l2a-cogs", "sentinel-2"})
PLANET_COLLECTIONS = frozenset({"planetscope", "psscene", "planet"})
RETRY_STATUS = (429, 500, 502, 503, 504)


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


def _open_api(url: str, *, timeout: float, max_retries: int, backoff: float) -> Any:
    import requests
    from pystac_client import Client
    from pystac_client.stac_api_io import StacApiIO
    from urllib3.util.retry import Retry

    retry = Retry(
        total=max_retries,
        backoff_factor=backoff,
        status_forcelist=RETRY_STATUS,
        allowed_methods=None,  # retry POST /search too
        raise_on_status=False,
    )
    io = StacApiIO(timeout=timeout, max_retries=retry)
    try:
        return Client.open(url, stac_io=io)
    except (requests.RequestException, OSError) as exc:
        raise SourceError(
            f"STAC API {url} is unreachable ({type(exc).__name__}); check the URL and your network, "
            "or give a static catalog.json"
        ) from exc
    except Exception as exc:
        if _is_connection_error(exc):
            raise SourceError(
                f"STAC API {url} is unreachable (no connection after {max_retries} retries); check the URL "
                "and your network, or give a static catalog.json"
            ) from exc
        first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise SourceError(f"STAC API {url} did not answer as a STAC API: {first}; check --stac") from exc


_CONNECTION_HINTS = ("Max retries exceeded", "Failed to establish", "timed out", "Name or service not known")


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

    client = _open_api(url, timeout=timeout, max_retries=max_retries, backoff=backoff)
    kwargs: dict[str, Any] = {
        "collections": [collection],
        "bbox": list(bbox),
        "datetime": f"{start.isoformat()}/{end.isoformat()}",
    }
    if max_cloud is not None and _conforms_to_query(client):
        # A hint only: the result is filtered again client-side (some servers ignore `query`).
        kwargs["query"] = {"eo:cloud_cover": {"lte": max_cloud}}
    try:
        search = client.search(**kwargs)
        yield from search.items()
    except (requests.RequestException, OSError) as exc:
        raise SourceError(
            f"STAC API {url} failed during search ({type(exc).__name__}); retry later or check the URL"
        ) from exc
    except APIError as exc:
        if _is_connection_error(exc):
            raise SourceError(f"STAC API {url} stopped answering during search; retry later") from exc
        first = str(exc).splitlines()[0][:200] if str(exc) else "no message"
        raise SourceError(f"STAC API {url} refused the search for {collection!r}: {first}") from exc


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
    timeout: float = 30.0,
    max_retries: int = 4,
    backoff: float = 0.5,
) -> list[pystac.Item]:
    """Items of ``collection`` over ``bbox`` (EPSG:4326 or an :class:`Aoi`) between ``start`` and ``end``.

    Args:
        source: STAC API URL, path to a static ``catalog.json``/``collection.json`` (or a folder with one),
            or a folder of provider-named GeoTIFFs.
        max_cloud: keep items whose ``eo:cloud_cover`` is <= this (percent); applied here, not trusted
            to the server.
        limit: at most this many items (after cloud filtering), earliest first.
        timeout, max_retries, backoff: HTTP settings for STAC APIs (seconds, count, backoff factor).

    Raises:
        SourceError: the source is unreachable or unreadable. NoDataError: nothing matches.
    """
    box4326 = _bbox_of(bbox)
    area = bbox.geometry if isinstance(bbox, Aoi) else box(*box4326)
    t0, t1 = _as_datetime(start, end=False), _as_datetime(end, end=True)
    if t1 < t0:
        raise InputError(f"date range {start}..{end} ends before it starts; give start <= end")
    text = str(source)
    candidates: Iterable[pystac.Item]
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
        path = Path(source)
        if path.is_dir():
            found = [path / n for n in ("catalog.json", "collection.json") if (path / n).is_file()]
            path = found[0] if found else path
        if path.is_dir():
            from geocrop.io.folder_items import folder_items

            candidates = folder_items(path, collection=collection)
        elif path.is_file():
            candidates = (it for it in _read_static(path) if _collection_of(it) == collection)
        else:
            raise SourceError(
                f"STAC source {source} is neither a URL nor an existing catalog.json or GeoTIFF folder; "
                "give a STAC API URL, a path to catalog.json, or a GeoTIFF folder"
            )
    items: list[pystac.Item] = []
    for item in candidates:
        if _matches(item, area, t0, t1) and _cloud_ok(item, max_cloud):
            items.append(item)
    items.sort(key=lambda it: (_item_time_range(it) or (t0, t0))[0])
    if limit is not None:
        items = items[:limit]
    if not items:
        cloud = f" with cloud cover <= {max_cloud}%" if max_cloud is not None else ""
        raise NoDataError(
            f"no {collection} scenes in {source} over bbox {tuple(round(v, 5) for v in box4326)} "
            f"from {t0.date()} to {t1.date()}{cloud}; widen the dates, raise --max-cloud or check the "
            "collection name"
        )
    return items
