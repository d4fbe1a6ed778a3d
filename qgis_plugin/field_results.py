"""Processing algorithm `geocrop:fieldresults` ("Crop per field"): runs `geocrop fields`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from qgis.core import (
    QgsProcessing,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterVectorDestination,
    QgsWkbTypes,
)

from .base import GeocropAlgorithm, GeocropCall, output_path
from .layers import load_vector_on_completion, map_classes, map_file, write_layer_gpkg
from .runner import RunResult

_PARCELS_FIX = "choose a polygon layer of fields (parcels)"

_HELP = "".join(
    [
        "<p>Sums a crop map up per field: for every parcel of a polygon layer, which crop most of its "
        "pixels show, how sure the map is, and how much of the parcel the map covers. The result is a copy "
        "of your parcel layer (its own attributes and CRS kept) with these columns added, coloured by crop "
        "in the map's colours:</p>",
        "<ul>",
        "<li><b>class_name</b> / <b>class_value</b>: the majority crop of the parcel's mapped pixels, and "
        "<b>class_share</b> its share of them (0-1: 0.55 means a mixed or uncertain field, 0.95 a clear "
        "one);</li>",
        "<li><b>confidence</b>: the mean confidence of those pixels;</li>",
        "<li><b>pixels</b>, <b>clear_share</b> (share of pixels with a crop, not masked as cloud or outside "
        "the area) and <b>map_cover</b> (share of the parcel that lies on the map at all);</li>",
        "<li>with a map made with <i>Add class probability bands</i>: <b>prob_&lt;crop&gt;</b>, the mean "
        "probability of each crop, and <b>prob_class_name</b>, the crop of highest mean probability.</li>",
        "</ul>",
        "<p>A pixel belongs to a parcel when its centre lies inside it. Parcels without a clear pixel get "
        "empty values (grey on the map). Tick <i>Selected features only</i> to summarise just the selected "
        "parcels.</p>",
        "<p>geocrop runs as a separate program (see <i>Map crops in area</i> for installing it).</p>",
    ]
)


class FieldResultsAlgorithm(GeocropAlgorithm):
    """Crop map + parcels -> the parcels with their majority crop, its share, confidence, probabilities."""

    MAP = "MAP"
    PARCELS = "PARCELS"
    OUTPUT = "OUTPUT"

    COMMAND = "fields"
    NAME = "fieldresults"
    DISPLAY_NAME = "Crop per field"
    HELP = _HELP
    HELP_ANCHOR = "crop-per-field"
    TAGS = ("crop", "field", "parcel", "zonal statistics", "majority", "agriculture")
    ARGUMENTS: ClassVar[Mapping[str, str]] = {"map": MAP, "parcels": PARCELS, "out": OUTPUT}

    def declare(self) -> None:
        self.addParameter(QgsProcessingParameterRasterLayer(self.MAP, "Crop map"))
        self.addParameter(
            QgsProcessingParameterFeatureSource(self.PARCELS, "Parcels", [QgsProcessing.TypeVectorPolygon])
        )
        self.addParameter(
            QgsProcessingParameterVectorDestination(
                self.OUTPUT, "Field results", QgsProcessing.TypeVectorPolygon
            )
        )

    def prepare(
        self, parameters: dict[str, Any], context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> GeocropCall:
        label = self.argument_labels()
        crop_map = map_file(
            self.parameterAsRasterLayer(parameters, self.MAP, context),
            label=label["map"],
            value=parameters.get(self.MAP),
        )
        parcels = write_layer_gpkg(
            self.parameterAsSource(parameters, self.PARCELS, context),
            context=context,
            feedback=feedback,
            label=label["parcels"],
            geometry=QgsWkbTypes.PolygonGeometry,
            fix=_PARCELS_FIX,
            stem="parcels",
            value=parameters.get(self.PARCELS),
        )
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        out = output_path(output, suffixes=(".gpkg",), label=label["out"], kind="a GeoPackage")
        args = ["--map", str(crop_map), "--parcels", str(parcels), "--out", output]
        return GeocropCall(args, [out], {"output": output, "map": crop_map})

    def finish(
        self,
        parameters: dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
        call: GeocropCall,
        result: RunResult,
    ) -> dict[str, Any]:
        output = call.values["output"]
        self.written(output, "field results")
        classes = map_classes(call.values["map"])
        load_vector_on_completion(context, output, name="Field results", field="class_name", classes=classes)
        return {self.OUTPUT: output}
