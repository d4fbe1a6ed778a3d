"""Collection ids that name one sensor, for sources that carry no collection of their own.

A folder of GeoTIFFs or a NetCDF/Zarr cube has no STAC collection: the id a caller passes
(``sentinel-2-l2a``, ``planetscope``, ``sentinel-1-rtc``...) says which sensor to read, and a saved
ItemCollection's items count for any id of the same sensor (`same_sensor`).
"""

from __future__ import annotations

#: Collection ids that mean "Sentinel-2 L2A" / "PlanetScope" for sources without collections (folders).
S2_COLLECTIONS = frozenset({"sentinel-2-l2a", "sentinel-2-c1-l2a", "sentinel-s2-l2a-cogs", "sentinel-2"})
PLANET_COLLECTIONS = frozenset({"planetscope", "psscene", "planet"})
#: Collection ids that mean Sentinel-1 backscatter (Planetary Computer RTC, Earth Search GRD, ...).
S1_COLLECTIONS = frozenset({"sentinel-1", "sentinel-1-rtc", "sentinel-1-grd", "s1", "sentinel1"})


def same_sensor(item_collection: str | None, wanted: str) -> bool:
    """Whether an item of ``item_collection`` holds the sensor that collection id ``wanted`` names."""
    if item_collection == wanted:
        return True
    for family in (S2_COLLECTIONS, PLANET_COLLECTIONS, S1_COLLECTIONS):
        if wanted.lower() in family and (item_collection or "").lower() in family:
            return True
    return False
