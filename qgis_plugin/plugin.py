"""The QGIS plugin object: registers the geocrop Processing provider and keeps it alive."""

from __future__ import annotations

from typing import Any

from qgis.core import QgsApplication

from .provider import GeocropProvider

#: Processing keeps only a C++ pointer to the provider: this Python reference stops it being
#: garbage-collected (otherwise qgis_process reports "Algorithm not found").
_PROVIDERS: list[GeocropProvider] = []


class GeocropPlugin:
    """Created by `classFactory`; QGIS calls `initProcessing` (qgis_process) or `initGui` (desktop)."""

    def __init__(self, iface: Any) -> None:
        self.iface = iface
        self.provider: GeocropProvider | None = None

    def initProcessing(self) -> None:
        if self.provider is not None:
            return
        self.provider = GeocropProvider()
        _PROVIDERS.append(self.provider)
        QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self) -> None:
        self.initProcessing()

    def unload(self) -> None:
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            _PROVIDERS.remove(self.provider)
            self.provider = None
