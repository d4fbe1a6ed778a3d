"""Processing algorithm `geocrop:smoothmap` ("Smooth crop map"): runs `geocrop smooth`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingOutputRasterLayer,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)

from .base import GeocropAlgorithm, GeocropCall, output_path
from .common import load_styled_on_completion
from .layers import map_file
from .runner import RunResult

METHODS = ("bayes", "modal")

_HELP = "".join(
    [
        "<p>Removes the salt-and-pepper noise of a pixel-by-pixel crop map (single pixels of another crop "
        "inside a field) while keeping field borders. The result is a new crop map like the input (same "
        "legend and colours, added to your project) with its own <code>NAME_confidence.tif</code>.</p>",
        "<h3>Method</h3>",
        "<p><b>Bayesian</b> (default, as in the <i>sits</i> R package): each pixel's class probabilities "
        "are pulled towards those of its neighbours where the neighbourhood agrees, and left alone across "
        "field borders, where it does not. It needs a map made with <i>Add class probability bands</i> "
        "ticked. <b>Smoothness</b> says how strongly pixels follow their neighbours (larger: smoother); "
        "<b>neighbour fraction</b> which share of the neighbours (those most sure of each crop) count.</p>",
        "<p><b>Majority filter</b> works on any map: each pixel takes the most common crop around it (its "
        "own crop wins ties). Simple, but it also rounds off field corners.</p>",
        "<p><b>Window</b>: the neighbourhood, in pixels (odd, 3 to 21; 7 = 70 m at 10 m). <b>Remove "
        "patches smaller than</b> (pixels, 0 = off): after smoothing, patches smaller than this join their "
        "largest neighbour.</p>",
        "<p>geocrop runs as a separate program (see <i>Map crops in area</i> for installing it).</p>",
    ]
)


class SmoothMapAlgorithm(GeocropAlgorithm):
    """Crop map -> a smoothed crop map (Bayesian smoothing of the probabilities, or a majority filter)."""

    MAP = "MAP"
    METHOD = "METHOD"
    WINDOW = "WINDOW"
    SMOOTHNESS = "SMOOTHNESS"
    NEIGH_FRACTION = "NEIGH_FRACTION"
    SIEVE = "SIEVE"
    OUTPUT = "OUTPUT"
    CONFIDENCE = "CONFIDENCE"

    COMMAND = "smooth"
    NAME = "smoothmap"
    DISPLAY_NAME = "Smooth crop map"
    HELP = _HELP
    HELP_ANCHOR = "smooth-crop-map"
    TAGS = ("crop", "smoothing", "majority filter", "sieve", "bayesian", "noise", "classification")
    ARGUMENTS: ClassVar[Mapping[str, str]] = {
        "map": MAP,
        "method": METHOD,
        "window": WINDOW,
        "smoothness": SMOOTHNESS,
        "neigh_fraction": NEIGH_FRACTION,
        "sieve": SIEVE,
        "out": OUTPUT,
    }

    def declare(self) -> None:
        self.addParameter(QgsProcessingParameterRasterLayer(self.MAP, "Crop map"))
        self.addParameter(
            QgsProcessingParameterEnum(
                self.METHOD,
                "Method",
                ["Bayesian (needs class probability bands)", "Majority filter (any map)"],
                defaultValue=0,
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.WINDOW,
                "Window (pixels)",
                QgsProcessingParameterNumber.Integer,
                7,
                minValue=3,
                maxValue=21,
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.SIEVE,
                "Remove patches smaller than (pixels, 0: off)",
                QgsProcessingParameterNumber.Integer,
                0,
                minValue=0,
                maxValue=10_000,
            )
        )
        for name, label, default, low, high in (
            (self.SMOOTHNESS, "Smoothness (Bayesian)", 10.0, 0.001, 1e6),
            (self.NEIGH_FRACTION, "Neighbour fraction (Bayesian)", 0.5, 0.01, 1.0),
        ):
            parameter = QgsProcessingParameterNumber(
                name, label, QgsProcessingParameterNumber.Double, default, minValue=low, maxValue=high
            )
            parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
            self.addParameter(parameter)
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, "Smoothed crop map"))
        self.addOutput(QgsProcessingOutputRasterLayer(self.CONFIDENCE, "Confidence of the smoothed map"))

    def check(self, parameters: dict[str, Any], context: QgsProcessingContext) -> str | None:
        window = self.parameterAsInt(parameters, self.WINDOW, context)
        if window % 2 == 0:  # geocrop.post.smooth's rule and words
            return self.in_labels(f"`window` {window}: give an odd number of pixels from 3 to 21, e.g. 7")
        return None

    def prepare(
        self, parameters: dict[str, Any], context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> GeocropCall:
        label = self.argument_labels()
        crop_map = map_file(
            self.parameterAsRasterLayer(parameters, self.MAP, context),
            label=label["map"],
            value=parameters.get(self.MAP),
        )
        method = METHODS[self.parameterAsEnum(parameters, self.METHOD, context)]
        args = [
            "--map",
            str(crop_map),
            "--method",
            method,
            "--window",
            str(self.parameterAsInt(parameters, self.WINDOW, context)),
            "--sieve",
            str(self.parameterAsInt(parameters, self.SIEVE, context)),
        ]
        if method == "bayes":
            args += ["--smoothness", f"{self.parameterAsDouble(parameters, self.SMOOTHNESS, context):g}"]
            args += [
                "--neigh-fraction",
                f"{self.parameterAsDouble(parameters, self.NEIGH_FRACTION, context):g}",
            ]
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        out = output_path(output, suffixes=(".tif", ".tiff"), label=label["out"], kind="GeoTIFF")
        args += ["--out", output]
        confidence = out.with_name(f"{out.stem}_confidence.tif")
        return GeocropCall(args, [out, confidence], {"output": output, "confidence": str(confidence)})

    def finish(
        self,
        parameters: dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
        call: GeocropCall,
        result: RunResult,
    ) -> dict[str, Any]:
        output = call.values["output"]
        self.written(output, "smoothed map")
        qml = Path(result.outputs.get("qml") or Path(output).with_suffix(".qml"))
        load_styled_on_completion(context, output, qml=qml, name="Smoothed crop map")
        confidence = result.outputs.get("confidence", call.values["confidence"])
        return {self.OUTPUT: output, self.CONFIDENCE: confidence if Path(confidence).is_file() else None}
