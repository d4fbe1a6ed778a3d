"""Layers in and out of the algorithms: the crop map as a file, a vector layer as a temporary GeoPackage,
geocrop's style on the maps that come back and the class colours of a map on the vector layers.

Imports only qgis, the standard library and (for the map's class table) QGIS's own GDAL bindings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from qgis.core import (
    QgsCategorizedSymbolRenderer,
    QgsFeatureRequest,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeatureSource,
    QgsProcessingFeedback,
    QgsProcessingLayerPostProcessorInterface,
    QgsProcessingUtils,
    QgsProviderRegistry,
    QgsRasterLayer,
    QgsRendererCategory,
    QgsSymbol,
    QgsVectorFileWriter,
    QgsVectorLayer,
    QgsWkbTypes,
)
from qgis.PyQt.QtGui import QColor

MAP_FIX = "choose the crop map GeoTIFF that 'Map crops in area' (geocrop map) wrote"


@dataclass(frozen=True)
class MapClass:
    """One class of a geocrop map: its pixel value, crop name and colour (#rrggbb)."""

    value: int
    name: str
    color: str


def map_file(layer: QgsRasterLayer | None, *, label: str, value: Any = None) -> Path:
    """The GeoTIFF on disk behind a raster layer (geocrop reads files, not QGIS layers)."""
    if layer is None or not layer.isValid():
        raise QgsProcessingException(f"{label}: could not open '{value}' as a raster; {MAP_FIX}.")
    path = ""
    if layer.providerType() == "gdal":
        path = str(QgsProviderRegistry.instance().decodeUri("gdal", layer.source()).get("path") or "")
    if not path or not Path(path).is_file():
        raise QgsProcessingException(
            f"{label}: layer '{layer.name()}' is not a GeoTIFF file on disk ({layer.source()}); {MAP_FIX}."
        )
    return Path(path)


def map_classes(path: Path) -> list[MapClass]:
    """The classes a geocrop map declares (its `GEOCROP_CLASSES` tag), or [] when it has none."""
    try:
        from osgeo import gdal
    except ImportError:
        return []
    dataset = gdal.Open(str(path))
    text = dataset.GetMetadataItem("GEOCROP_CLASSES") if dataset is not None else None
    try:
        entries = json.loads(text or "[]")
        return [MapClass(int(e["value"]), str(e["name"]), str(e["color"])) for e in entries]
    except (ValueError, TypeError, KeyError):
        return []


def write_layer_gpkg(
    source: QgsProcessingFeatureSource | None,
    *,
    context: QgsProcessingContext,
    feedback: QgsProcessingFeedback,
    label: str,
    geometry: int,
    fix: str,
    stem: str,
    value: Any = None,
) -> Path:
    """The features of `source` (selected ones only if so chosen), attributes and CRS as they are, in a
    temporary GeoPackage `<stem>.gpkg`; `geometry` is the QgsWkbTypes geometry type geocrop needs."""
    kind = QgsWkbTypes.geometryDisplayString(geometry).lower()
    if source is None:
        raise QgsProcessingException(f"{label}: could not open '{value}' as a {kind} layer; {fix}.")
    found = QgsWkbTypes.geometryType(source.wkbType())
    if found != geometry:
        name = QgsWkbTypes.geometryDisplayString(found).lower()
        if found in (QgsWkbTypes.NullGeometry, QgsWkbTypes.UnknownGeometry):
            name = "no"
        raise QgsProcessingException(
            f"{label}: the layer has {name} geometries, but geocrop needs {kind}s; {fix}."
        )
    if source.featureCount() == 0:
        raise QgsProcessingException(
            f"{label}: the layer has no features (or none is selected while 'Selected features only' is "
            f"ticked); {fix}."
        )
    path = Path(QgsProcessingUtils.generateTempFilename(f"{stem}.gpkg"))
    path.parent.mkdir(parents=True, exist_ok=True)
    options = QgsVectorFileWriter.SaveVectorOptions()
    options.driverName = "GPKG"
    options.layerName = path.stem
    options.fileEncoding = "UTF-8"
    writer = QgsVectorFileWriter.create(
        str(path), source.fields(), source.wkbType(), source.sourceCrs(), context.transformContext(), options
    )
    if writer.hasError() != QgsVectorFileWriter.NoError:
        raise QgsProcessingException(f"{label}: could not write {path}: {writer.errorMessage()}")
    written = 0
    for feature in source.getFeatures(QgsFeatureRequest()):
        if feedback.isCanceled():
            raise QgsProcessingException(f"canceled while reading {label}.")
        if not writer.addFeature(feature):
            raise QgsProcessingException(
                f"{label}: could not copy feature {feature.id()}: {writer.errorMessage()}"
            )
        written += 1
    del writer  # closes the file
    feedback.pushInfo(f"{label}: {written} feature(s) written to {path}")
    return path


class StyleLoader(QgsProcessingLayerPostProcessorInterface):
    """Applies geocrop's `.qml` (class colours and crop names) to the crop map QGIS loads on completion."""

    # Processing holds post-processors by raw pointer: keep the Python objects alive here.
    _alive: ClassVar[list[StyleLoader]] = []

    def __init__(self, qml: Path) -> None:
        super().__init__()
        self.qml = qml

    @classmethod
    def create(cls, qml: Path) -> StyleLoader:
        """A loader kept alive until a few later runs have replaced it."""
        loader = cls(qml)
        cls._alive = [*cls._alive[-15:], loader]
        return loader

    def postProcessLayer(
        self, layer: Any, context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> None:
        if not isinstance(layer, QgsRasterLayer) or not self.qml.is_file():
            return
        message, ok = layer.loadNamedStyle(str(self.qml))
        if not ok:
            feedback.pushWarning(f"could not apply the crop legend {self.qml}: {message}")
        layer.triggerRepaint()


def load_styled_on_completion(context: QgsProcessingContext, output: str, *, qml: Path, name: str) -> None:
    """If QGIS will load `output` into the project, give it a name and geocrop's crop legend."""
    if not context.willLoadLayerOnCompletion(output):
        return
    details = context.layerToLoadOnCompletionDetails(output)
    details.name = name
    details.setPostProcessor(StyleLoader.create(qml))


class CategoryStyler(QgsProcessingLayerPostProcessorInterface):
    """Colours a vector output by a class-name field in the crop map's own colours, legend in map order."""

    # Processing holds post-processors by raw pointer: keep the Python objects alive here.
    _alive: ClassVar[list[CategoryStyler]] = []

    def __init__(self, field: str, classes: list[MapClass]) -> None:
        super().__init__()
        self.field = field
        self.classes = classes

    @classmethod
    def create(cls, field: str, classes: list[MapClass]) -> CategoryStyler:
        styler = cls(field, classes)
        cls._alive = [*cls._alive[-15:], styler]
        return styler

    def postProcessLayer(
        self, layer: Any, context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> None:
        if not isinstance(layer, QgsVectorLayer) or layer.fields().indexOf(self.field) < 0:
            return
        categories = []
        for item in self.classes:
            symbol = QgsSymbol.defaultSymbol(layer.geometryType())
            symbol.setColor(QColor(item.color))
            categories.append(QgsRendererCategory(item.name, symbol, item.name))
        other = QgsSymbol.defaultSymbol(layer.geometryType())
        other.setColor(QColor("#9e9e9e"))
        categories.append(QgsRendererCategory("", other, "no class"))  # "" matches the rest, NULL too
        layer.setRenderer(QgsCategorizedSymbolRenderer(self.field, categories))
        layer.triggerRepaint()


def load_vector_on_completion(
    context: QgsProcessingContext, output: str, *, name: str, field: str, classes: list[MapClass]
) -> None:
    """If QGIS will load `output` into the project, give it a name and the map's class colours on `field`."""
    if not context.willLoadLayerOnCompletion(output):
        return
    details = context.layerToLoadOnCompletionDetails(output)
    details.name = name
    if classes:
        details.setPostProcessor(CategoryStyler.create(field, classes))
