"""Processing algorithm `geocrop:samplepoints` ("Points to label"): runs `geocrop sample`."""

from __future__ import annotations

from typing import Any

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingParameterEnum,
)

from .base import GeocropAlgorithm, GeocropCall
from .declared import DeclaredParameters, Shown

#: Method index -> the flag that takes the number of points (geocrop's `n`).
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
    ]
)


class SamplePointsAlgorithm(GeocropAlgorithm):
    """Crop map -> points to label (stratified by crop, or the most uncertain pixels), as a GeoPackage;
    its parameters are `geocrop sample`'s declared options (`declared.json`) and the method."""

    METHOD = "METHOD"

    NAME, DISPLAY_NAME, HELP = "samplepoints", "Points to label", _HELP
    TAGS = ("crop", "sample", "reference", "validation", "accuracy", "active learning", "labelling")
    DECLARED = DeclaredParameters(
        "sample",
        shown={
            "n": Shown(name="COUNT", label="Number of points", default=300),
            "out": Shown(label="Points to label", layer="point", style="map_class"),
            "min_per_class": Shown(label="Minimum points per crop (stratified)", advanced=True),
            "seed": Shown(label="Random seed", advanced=True),
            "min_distance": Shown(
                label="Minimum distance between points (uncertain; map units, 0: automatic)",
                unset=0.0,
                advanced=True,
            ),
        },
    )

    def declare(self) -> None:
        methods = [
            "Stratified random (to assess accuracy and area)",
            "Most uncertain pixels (to improve the model)",
        ]
        self.addParameter(QgsProcessingParameterEnum(self.METHOD, "Method", methods, defaultValue=0))
        super().declare()

    def prepare(
        self, parameters: dict[str, Any], context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> GeocropCall:
        """The declared arguments, the number of points under the chosen method's flag."""
        call = super().prepare(parameters, context, feedback)
        method = METHOD_FLAGS[self.parameterAsEnum(parameters, self.METHOD, context)]
        args = [method if part == "--n" else part for part in call.args]
        return GeocropCall(args, call.cleanup, call.values)
