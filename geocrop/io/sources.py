"""One loader for every imagery source a user has, behind `geocrop map`, `train` and `pretrain`.

`detect_source` names the kind of a source string; `local_items` turns a local source into STAC items for
`geocrop.io.stac.search` (which filters them by area, dates and cloud cover); `geocrop.io.cube.load_s2`
loads any of them into the same ``(time, band, y, x)`` reflectance cube. The kinds:

=================  ===========================================================================
``stac-api``       ``http(s)://`` URL of a STAC API (searched with pystac-client)
``static-catalog`` a ``catalog.json``/``collection.json`` (or a folder holding one), or an item JSON
``item-collection`` a saved search result: a GeoJSON FeatureCollection of STAC items (``.json``)
``geotiff-folder`` a folder of provider-named GeoTIFFs (`geocrop.io.folder_items`)
``cube``           a local NetCDF (``.nc``) or Zarr (``.zarr``) cube (`geocrop.io.cube_file`), or a raster
                   stack read into the same layout (`geocrop.io.raster_stack`): a GeoTIFF with its
                   band-date CSV, or a folder of GeoTIFFs named by date
``table``          a samples table (``.parquet``/``.csv``, `geocrop.data.samples`): pretraining only
=================  ===========================================================================

A path that is none of them is refused with one `SourceError` that lists the accepted kinds.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import pystac

from geocrop.errors import SourceError
from geocrop.io.collections import S1_COLLECTIONS, same_sensor

SourceKind = Literal["stac-api", "static-catalog", "item-collection", "geotiff-folder", "cube", "table"]
TABLE_SUFFIXES = (".parquet", ".geoparquet", ".pq", ".csv")
_KINDS = (
    "a STAC API URL (https://...)",
    "a static catalog.json or collection.json",
    "a saved ItemCollection (.json FeatureCollection of STAC items)",
    "a folder of GeoTIFFs",
    "a NetCDF (.nc) or Zarr (.zarr) cube",
    "a raster stack (a GeoTIFF with its band-date CSV, or a folder of date-named GeoTIFFs)",
)
_TABLE_KIND = "a samples table (.parquet or .csv)"


def accepted_kinds(*, tables: bool = False) -> str:
    """The accepted kinds, for messages: "a STAC API URL ..., a static catalog.json ..., or ..."."""
    kinds = [*_KINDS, *([_TABLE_KIND] if tables else [])]
    return ", ".join(kinds[:-1]) + " or " + kinds[-1]


def _json_type(path: Path) -> str | None:
    try:
        with open(path, "rb") as fh:
            head = fh.read(1)
            if head not in (b"{", b"[", b" ", b"\n", b"\r", b"\t"):
                return None
        data = json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return str(data.get("type")) if isinstance(data, dict) else None


def _is_table(path: Path) -> bool:
    if path.suffix.lower() in TABLE_SUFFIXES:
        return True
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == b"PAR1"
    except OSError:
        return False


def detect_source(source: str | Path, *, tables: bool = False) -> SourceKind:
    """The kind of ``source`` (see the module docstring); one `SourceError` listing the kinds otherwise.

    ``tables``: whether a samples table is accepted here (pretraining); elsewhere it is refused with a
    message saying where tables go.
    """
    from geocrop.io.cube_file import is_cube_path
    from geocrop.io.raster_stack import is_stack_path

    text = str(source).strip()
    if text.startswith(("http://", "https://")):
        return "stac-api"
    path = Path(text).expanduser()
    if not path.exists():
        raise SourceError(
            f"source {source} is neither a URL nor an existing file or folder; give "
            f"{accepted_kinds(tables=tables)}"
        )
    if is_cube_path(path) or is_stack_path(path):
        return "cube"
    if path.is_dir():
        if any((path / n).is_file() for n in ("catalog.json", "collection.json")):
            return "static-catalog"
        if any(p.suffix.lower() in (".tif", ".tiff") for p in path.rglob("*")):
            return "geotiff-folder"
        raise SourceError(
            f"folder {source} holds no GeoTIFF, no catalog.json and no Zarr store; give "
            f"{accepted_kinds(tables=tables)}"
        )
    if _is_table(path):
        if tables:
            return "table"
        raise SourceError(
            f"source {source} is a samples table: tables go to pretraining's `s2` and training's "
            f"`labels`; here give {accepted_kinds()}"
        )
    kind = _json_type(path)
    if kind == "FeatureCollection":
        return "item-collection"
    if kind in ("Catalog", "Collection", "Feature"):
        return "static-catalog"
    raise SourceError(
        f"source {source} could not be read as any accepted kind of source; give "
        f"{accepted_kinds(tables=tables)}"
    )


def read_item_collection(path: Path) -> list[pystac.Item]:
    """The items of a saved ItemCollection / FeatureCollection of STAC items."""
    try:
        data = json.loads(path.read_text())
        items = list(pystac.ItemCollection.from_dict(data, preserve_dict=False))
    except Exception as exc:  # pystac raises many types for malformed items
        first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise SourceError(
            f"ItemCollection {path} could not be read ({first}); give a FeatureCollection of STAC items"
        ) from exc
    for item in items:  # relative asset hrefs resolve against the file
        item.set_self_href(str(path.absolute()))
    return items


def local_items(path: Path, kind: SourceKind, *, collection: str) -> tuple[Iterable[pystac.Item], str | None]:
    """Candidate items of a local source and the path that bounds their asset hrefs (None: trusted).

    Raises `SourceError` (one line) for an ItemCollection that holds no item of ``collection``'s sensor.
    """
    if kind == "cube":
        from geocrop.io.cube_file import cube_items

        sensor = "s1" if collection.lower() in S1_COLLECTIONS else "s2"
        return cube_items(path, collection=collection, sensor=sensor), None
    if kind == "geotiff-folder":
        from geocrop.io.folder_items import folder_items

        return folder_items(path, collection=collection), None
    if kind == "item-collection":
        items = read_item_collection(path)
        kept = [it for it in items if same_sensor(it.collection_id, collection)]
        if not kept:
            held = sorted({str(it.collection_id) for it in items})
            raise SourceError(
                f"ItemCollection {path} holds {len(items)} items of {held or 'no collection'} and none of "
                f"{collection}; save a search of a Sentinel-2 L2A collection (e.g. sentinel-2-l2a) or pass "
                "its collection id"
            )
        return kept, str(path)
    raise SourceError(f"source {path} of kind {kind} has no local items")
