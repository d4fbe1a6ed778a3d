"""Processing algorithm `geocrop:samplepoints` ("Points to label"): runs `geocrop sample`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from qgis.core import (
    QgsProcessing,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterVectorDestination,
)

from .base import GeocropAlgorithm, GeocropCall, output_path
from .layers import load_vector_on_completion, map_classes, map_file
from .runner import RunResult

#: Method index -> the flag that takes the number of points.
METHOD_FLAGS = ("--stratified", "--uncertain")

_HELP = "".join(
    [
        "<p>Draws points on a crop map for you to label, one at the centre of a map pixel, as a new point "
        "layer coloured by the crop the map shows there. Label each point by looking at imagery or visiting "
        "the field: toggle editing, open the attribute table and type the true crop into the empty "
        "<b>reference</b> column (the crop name as the map's legend writes it, or its value), then save.</p>",
        "<h3>Method</h3>",
        "<p><b>Stratified random</b>: points spread over the crops in proportion to their mapped area, with "
        "at least <b>Minimum points per crop</b> for each (rare crops too). This is the sample <i>Assess "
        "accuracy and area</i> needs for honest accuracy figures and area estimates with confidence "
        "intervals (Olofsson et al. 2014); label every point, also those you find hard.</p>",
        "<p><b>Most uncertain pixels</b>: the pixels where the model hesitated most between crops, at least "
        "<b>Minimum distance</b> apart (0: about ten cells per point). Labelling these and training again "
        "improves the model fastest, but they are not a random sample: do not use them to assess "
        "accuracy.</p>",
        "<p>The same map, number of points and <b>random seed</b> always give the same points. The layer "
        "has the columns <b>id</b>, <b>map_value</b>, <b>map_class</b>, <b>reference</b> (empty) and, for "
        "uncertain pixels, <b>uncertainty</b> and <b>confidence</b>.</p>",
        "<p>geocrop runs as a separate program (see <i>Map crops in area</i> for installing it).</p>",
    ]
)


class SamplePointsAlgorithm(GeocropAlgorithm):
    """Crop map -> points to label (stratified by crop, or the most uncertain pixels), as a GeoPackage."""

    MAP = "MAP"
    METHOD = "METHOD"
    COUNT = "COUNT"
    MIN_PER_CLASS = "MIN_PER_CLASS"
    MIN_DISTANCE = "MIN_DISTANCE"
    SEED = "SEED"
    OUTPUT = "OUTPUT"

    COMMAND = "sample"
    NAME = "samplepoints"
    DISPLAY_NAME = "Points to label"
    HELP = _HELP
    HELP_ANCHOR = "points-to-label"
    TAGS = ("crop", "sample", "reference", "validation", "accuracy", "active learning", "labelling")
    ARGUMENTS: ClassVar[Mapping[str, str]] = {
        "map": MAP,
        "n": COUNT,
        "min_per_class": MIN_PER_CLASS,
        "min_distance": MIN_DISTANCE,
        "seed": SEED,
        "out": OUTPUT,
    }

    def declare(self) -> None:
        self.addParameter(QgsProcessingParameterRasterLayer(self.MAP, "Crop map"))
        self.addParameter(
            QgsProcessingParameterEnum(
                self.METHOD,
                "Method",
                [
                    "Stratified random (to assess accuracy and area)",
                    "Most uncertain pixels (to improve the model)",
                ],
                defaultValue=0,
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.COUNT, "Number of points", QgsProcessingParameterNumber.Integer, 300, minValue=1
            )
        )
        advanced = [
            QgsProcessingParameterNumber(
                self.MIN_PER_CLASS,
                "Minimum points per crop (stratified)",
                QgsProcessingParameterNumber.Integer,
                50,
                minValue=2,
            ),
            QgsProcessingParameterNumber(
                self.MIN_DISTANCE,
                "Minimum distance between points (uncertain; map units, 0: automatic)",
                QgsProcessingParameterNumber.Double,
                0.0,
                minValue=0.0,
            ),
            QgsProcessingParameterNumber(self.SEED, "Random seed", QgsProcessingParameterNumber.Integer, 0),
        ]
        for parameter in advanced:
            parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
            self.addParameter(parameter)
        self.addParameter(
            QgsProcessingParameterVectorDestination(
                self.OUTPUT, "Points to label", QgsProcessing.TypeVectorPoint
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
        method = self.parameterAsEnum(parameters, self.METHOD, context)
        args = [
            "--map",
            str(crop_map),
            METHOD_FLAGS[method],
            str(self.parameterAsInt(parameters, self.COUNT, context)),
        ]
        if method == 0:
            args += ["--min-per-class", str(self.parameterAsInt(parameters, self.MIN_PER_CLASS, context))]
        else:
            distance = self.parameterAsDouble(parameters, self.MIN_DISTANCE, context)
            if distance > 0:
                args += ["--min-distance", f"{distance:g}"]
        args += ["--seed", str(self.parameterAsInt(parameters, self.SEED, context))]
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        out = output_path(output, suffixes=(".gpkg",), label=label["out"], kind="a GeoPackage")
        args += ["--out", output]
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
        self.written(output, "points")
        classes = map_classes(call.values["map"])
        load_vector_on_completion(context, output, name="Points to label", field="map_class", classes=classes)
        return {self.OUTPUT: output}
