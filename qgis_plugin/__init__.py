"""geocrop for QGIS: a Processing provider that maps crop types by running geocrop out of process.

QGIS imports this package as `geocrop_qgis` and calls `classFactory`. The qgis imports happen inside it,
so the process runner (`runner.py`, standard library only) can be imported and tested without QGIS.
"""

from __future__ import annotations

from typing import Any


def classFactory(iface: Any) -> Any:
    """QGIS plugin entry point."""
    from .plugin import GeocropPlugin

    return GeocropPlugin(iface)
