"""The geocrop Processing provider: lists the algorithms and registers the executable setting."""

from __future__ import annotations

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .assess_accuracy import AssessAccuracyAlgorithm
from .base import ICON
from .common import PROCESSING_SETTING
from .field_results import FieldResultsAlgorithm
from .inspect_samples import InspectSamplesAlgorithm
from .map_crops import MapCropsAlgorithm
from .map_stack import MapStackAlgorithm
from .sample_points import SamplePointsAlgorithm
from .smooth_map import SmoothMapAlgorithm
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

    def supportedOutputVectorLayerExtensions(self) -> list[str]:
        return ["gpkg"]

    def defaultVectorFileExtension(self, hasGeometry: bool = True) -> str:
        return "gpkg"

    def loadAlgorithms(self) -> None:
        for algorithm in (
            MapCropsAlgorithm(),
            MapStackAlgorithm(),
            TrainClassifierAlgorithm(),
            FieldResultsAlgorithm(),
            SmoothMapAlgorithm(),
            SamplePointsAlgorithm(),
            AssessAccuracyAlgorithm(),
            InspectSamplesAlgorithm(),
        ):
            self.addAlgorithm(algorithm)
