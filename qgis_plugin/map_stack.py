"""Processing algorithm `geocrop:mapstack` ("Map crops from a raster stack"): `geocrop map` over a local
raster stack, as SCP and dzetsaka users classify the imagery they already hold in QGIS."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingParameterFile,
    QgsProcessingParameterRasterLayer,
    QgsProject,
    QgsRasterLayer,
    QgsRectangle,
)

from .base import GeocropAlgorithm, GeocropCall, given
from .declared import DeclaredParameters

_HELP = "".join(
    [
        "<p>Maps which crop grows on every pixel of a <b>raster stack you hold</b>, with a geocrop model "
        "bundle: the same crop map, legend and confidence as <i>Map crops in area</i>, without a STAC "
        "catalogue. The map covers the whole stack.</p>",
        "<h3>The stack</h3>",
        "<p>Either <b>one multi-band GeoTIFF</b> whose bands are band x date, with a band-date table beside "
        "it: <code>stack.tif</code> and <code>stack.csv</code>, one row per band of the file, columns "
        "<code>band</code> (its number in the file), <code>date</code> (YYYY-MM-DD) and <code>name</code> "
        "(the Sentinel-2 band: B02, B2 or blue); or a <b>folder of GeoTIFFs named by date</b> "
        "(<code>2023-05-01.tif</code>, <code>S2_20230501.tif</code>), one date each, on one grid, whose band "
        "descriptions name the bands (else a <code>bands.csv</code> with columns band, name in the "
        "folder). Values: reflectance x 10000 (integers) or reflectance (floats). The model needs at least "
        "B02, B03, B04 and B08; missing bands are filled and the log says which.</p>",
        "<p><b>Start/end date</b>: the season of the model's grid; dates of the stack outside it are not "
        "used.</p>",
    ]
)


class MapStackAlgorithm(GeocropAlgorithm):
    """A raster stack (a GeoTIFF + band-date CSV, or a folder of dated GeoTIFFs) + dates + model -> the
    styled crop map; its other parameters are `geocrop map`'s declared options (`declared.json`)."""

    STACK = "STACK"
    FOLDER = "FOLDER"

    NAME, DISPLAY_NAME = "mapstack", "Map crops from a raster stack"
    HELP = _HELP
    TAGS = ("crop", "classification", "raster stack", "time series", "geotiff", "sentinel-2", "land cover")
    TRAILING_FLAGS = ("--yes",)
    # the stack is the area and the imagery; cloud cover, collection and Planet are STAC notions
    DECLARED = DeclaredParameters(
        "map",
        own=("aoi", "stac"),
        hidden=("planet", "max_cloud", "read_threads", "read_ahead", "read_cache_mb"),
    )
    # an error about the imagery (`stac`) names the stack's parameter
    ARGUMENTS: ClassVar[Mapping[str, str]] = {"stac": STACK}

    def declare(self) -> None:
        self.addParameter(
            QgsProcessingParameterRasterLayer(
                self.STACK, "Raster stack (a GeoTIFF with its band-date .csv beside it)", optional=True
            )
        )
        self.addParameter(
            QgsProcessingParameterFile(
                self.FOLDER,
                "…or a folder of GeoTIFFs named by date",
                QgsProcessingParameterFile.Folder,
                optional=True,
            )
        )
        super().declare()

    def check_layers(self, parameters: dict[str, Any], context: QgsProcessingContext) -> str | None:
        if given(parameters.get(self.STACK)) == given(parameters.get(self.FOLDER)):
            return "Choose one raster stack: a GeoTIFF layer, or a folder of GeoTIFFs named by date."
        return None

    def prepare(
        self, parameters: dict[str, Any], context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> GeocropCall:
        """`--stac STACK --bbox` its extent (EPSG:4326), then the declared arguments."""
        problem = self.check_layers(parameters, context)
        if problem:
            raise QgsProcessingException(problem)
        source, layer = self._stack(parameters, context)
        wgs84 = QgsCoordinateReferenceSystem("EPSG:4326")
        to_wgs84 = QgsCoordinateTransform(layer.crs(), wgs84, QgsProject.instance())
        rect: QgsRectangle = to_wgs84.transformBoundingBox(layer.extent())
        bbox = [rect.xMinimum(), rect.yMinimum(), rect.xMaximum(), rect.yMaximum()]
        feedback.pushInfo(f"Raster stack {source}: bounding box {bbox} (EPSG:4326)")
        call = super().prepare(parameters, context, feedback)
        area = ["--stac", str(source), "--bbox", ",".join(f"{v:.8f}" for v in bbox)]
        return GeocropCall([*area, *call.args], call.cleanup, call.values)

    def _stack(
        self, parameters: dict[str, Any], context: QgsProcessingContext
    ) -> tuple[Path, QgsRasterLayer]:
        """The stack's path and a layer of it (the folder's first GeoTIFF gives the grid they share)."""
        if given(parameters.get(self.STACK)):
            layer = self.parameterAsRasterLayer(parameters, self.STACK, context)
            path = Path(layer.source().split("|")[0]) if layer is not None else None
            if path is None or path.suffix.lower() not in (".tif", ".tiff") or not path.is_file():
                raise QgsProcessingException(
                    "Raster stack: choose a GeoTIFF file layer (a layer of a .tif on disk), or a folder."
                )
            return path, layer
        folder = Path(self.parameterAsFile(parameters, self.FOLDER, context))
        first = next(iter(sorted(folder.glob("*.tif*"))), None) if folder.is_dir() else None
        if first is None:
            raise QgsProcessingException(f"Raster stack: the folder '{folder}' holds no GeoTIFF.")
        layer = QgsRasterLayer(str(first), first.stem)
        if not layer.isValid():
            raise QgsProcessingException(f"Raster stack: QGIS cannot read '{first}'.")
        return folder, layer
