"""The geocrop Processing provider: lists the algorithms and registers the executable setting."""

from __future__ import annotations

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .base import ICON
from .common import PROCESSING_SETTING
from .map_crops import MapCropsAlgorithm
from .train_classifier import TrainClassifierAlgorithm


class GeocropProvider(QgsProcessingProvider):
    """Provider id `geocrop`: algorithms appear in the toolbox as `geocrop:<name>`."""

    def id(self) -> str:
        return "geocrop"

    def name(self) -> str:
        return "geocrop"

    def longName(self) -> str:
        return "geocrop crop-type mapping"

    def icon(self) -> QIcon:
        return QIcon(str(ICON))

    def svgIconPath(self) -> str:
        return str(ICON)

    def load(self) -> bool:
        """Add 'geocrop executable' to Settings > Options > Processing > Providers (if Processing is here)."""
        try:
            from processing.core.ProcessingConfig import ProcessingConfig, Setting
        except ImportError:
            return super().load()
        ProcessingConfig.settingIcons[self.name()] = self.icon()
        ProcessingConfig.addSetting(
            Setting(
                self.name(),
                PROCESSING_SETTING,
                "geocrop executable (or a Python with geocrop installed); empty: 'geocrop' on PATH",
                "",
                valuetype=Setting.FILE,
            )
        )
        ProcessingConfig.readSettings()
        return super().load()

    def unload(self) -> None:
        try:
            from processing.core.ProcessingConfig import ProcessingConfig
        except ImportError:
            return
        ProcessingConfig.removeSetting(PROCESSING_SETTING)

    def supportedOutputRasterLayerExtensions(self) -> list[str]:
        return ["tif"]

    def loadAlgorithms(self) -> None:
        self.addAlgorithm(MapCropsAlgorithm())
        self.addAlgorithm(TrainClassifierAlgorithm())
