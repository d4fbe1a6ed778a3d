"""Processing algorithm `geocrop:mapcrops` ("Map crops in area"): runs `geocrop map` out of process."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsProcessing,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFeatureSource,
)

from .base import GeocropAlgorithm, GeocropCall, given
from .common import aoi_problem, write_aoi_geojson
from .declared import DeclaredParameters

#: geocrop's default Sentinel-2 source (its declared `stac` default).
DEFAULT_STAC = DeclaredParameters("map").entry("stac")["default"]

_AOI_LABEL = "Area of interest"
_NO_AREA = "Choose an area: a polygon layer for 'Area of interest (polygons)', or draw an extent."

_HELP = "".join(
    [
        "<p>Maps which crop grows on every 10 m pixel of an area over one season, from Sentinel-2 image time "
        "series, with a geocrop model bundle. The result is a paletted GeoTIFF (one class per pixel, its "
        "colours inside the file) that is added to your project with a legend of crop names and colours, "
        "and beside it <code>NAME_confidence.tif</code> (confidence, uncertainty and optional class "
        "probabilities).</p>",
        "<h3>Area</h3>",
        "<p>Choose a <b>polygon layer</b> (tick <i>Selected features only</i> to map just the selected "
        "fields) or draw an <b>extent</b>. If both are given, the polygons are used. Start small: a few "
        "km² take minutes; imagery is streamed, so memory stays flat as the area grows.</p>",
        "<h3>Dates and sources</h3>",
        "<p><b>Start/end date</b>: the season to map. <b>Imagery</b>: a STAC API address (default: the "
        "free Earth Search catalogue, needs internet), the path of a local <code>catalog.json</code>, a "
        "folder of GeoTIFFs, a NetCDF/Zarr cube (<code>.nc</code>, <code>.zarr</code>) or a raster stack "
        "(a GeoTIFF with its band-date CSV, or a folder of GeoTIFFs named by date). "
        "<b>Planet source</b> is optional and only used by bundles trained with PlanetScope. <b>Maximum "
        "scene cloud cover</b> skips scenes cloudier than this; remaining clouds are masked per pixel.</p>",
        "<h3>Model</h3>",
        "<p>A geocrop bundle (<code>.safetensors</code>). Leave empty to use the demo bundle shipped with "
        "geocrop (trained on simulated scenes: for trying the tool, not for real maps; geocrop refuses it "
        "over real scenes unless you tick <b>Allow a model trained on simulated data</b>, and the log then "
        'says "model trained on simulated data"). <b>Class probabilities</b> adds one band per crop. '
        "<b>Web page</b> optionally writes an HTML map that works "
        "offline.</p>",
        "<h3>Requirements</h3>",
        "<p>geocrop runs as a separate program, so QGIS's own libraries never mix with it. Install it in a "
        "Python environment outside QGIS (<code>pip install path/to/geocrop</code>) and, "
        "if <code>geocrop</code> is not on your PATH, give its path in "
        "<i>Settings ▸ Options ▸ Processing ▸ Providers ▸ geocrop</i> "
        "or in the advanced parameter <i>geocrop executable</i>. <b>Cancel</b> stops geocrop and removes "
        "the partial output.</p>",
    ]
)


class MapCropsAlgorithm(GeocropAlgorithm):
    """AOI + dates + imagery source + model bundle -> styled crop-type GeoTIFF (and optional web page).

    Its parameters besides the area are `geocrop map`'s declared options (`declared.json`)."""

    AOI = "AOI"
    EXTENT = "EXTENT"

    NAME, DISPLAY_NAME = "mapcrops", "Map crops in area"
    HELP, HELP_END = _HELP, ""  # its help says how to install geocrop
    TAGS = ("crop", "classification", "sentinel-2", "planetscope", "stac", "land cover", "agriculture")
    TRAILING_FLAGS = ("--yes",)
    DECLARED = DeclaredParameters("map", own=("aoi",))
    ARGUMENTS: ClassVar[Mapping[str, str]] = {"aoi": AOI, "bbox": EXTENT}

    def declare(self) -> None:
        self.addParameter(
            QgsProcessingParameterFeatureSource(
                self.AOI,
                "Area of interest (polygons)",
                [QgsProcessing.TypeVectorPolygon],
                optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterExtent(self.EXTENT, "…or area of interest (extent)", optional=True)
        )
        super().declare()

    def check_layers(self, parameters: dict[str, Any], context: QgsProcessingContext) -> str | None:
        aoi = parameters.get(self.AOI)
        if given(aoi):
            source = self.parameterAsSource(parameters, self.AOI, context)
            return aoi_problem(source, label=_AOI_LABEL, value=aoi)
        if not given(parameters.get(self.EXTENT)):
            return _NO_AREA
        return None

    def prepare(
        self, parameters: dict[str, Any], context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> GeocropCall:
        """The area (a temporary GeoJSON of the polygons, or the extent), then the declared arguments."""
        area = self._area_args(parameters, context, feedback)
        model = self.parameterAsFile(parameters, "MODEL", context)
        if model and not Path(model).is_file():
            raise QgsProcessingException(
                f"Model bundle '{model}' does not exist; choose a .safetensors file."
            )
        call = super().prepare(parameters, context, feedback)
        return GeocropCall([*area, *call.args], call.cleanup, call.values)

    def _area_args(
        self, parameters: dict[str, Any], context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> list[str]:
        """`--aoi GEOJSON` from the polygon layer, else `--bbox W,S,E,N` (EPSG:4326) from the extent."""
        if given(parameters.get(self.AOI)):
            source = self.parameterAsSource(parameters, self.AOI, context)
            problem = aoi_problem(source, label=_AOI_LABEL, value=parameters.get(self.AOI))
            if problem:
                raise QgsProcessingException(problem)
            path = write_aoi_geojson(source, context=context, feedback=feedback, label=_AOI_LABEL)
            return ["--aoi", str(path)]
        if given(parameters.get(self.EXTENT)):
            wgs84 = QgsCoordinateReferenceSystem("EPSG:4326")
            rect = self.parameterAsExtent(parameters, self.EXTENT, context, wgs84)
            if rect.isNull() or rect.isEmpty() or rect.width() <= 0 or rect.height() <= 0:
                raise QgsProcessingException("Area of interest: the extent is empty; draw a larger extent.")
            bbox = [rect.xMinimum(), rect.yMinimum(), rect.xMaximum(), rect.yMaximum()]
            feedback.pushInfo(f"Area of interest: bounding box {bbox} (EPSG:4326)")
            return ["--bbox", ",".join(f"{value:.8f}" for value in bbox)]
        raise QgsProcessingException(_NO_AREA)
