"""Processing algorithm `geocrop:trainclassifier` ("Train crop classifier"): runs `geocrop train`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from qgis.core import (
    QgsProcessing,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)
from qgis.PyQt.QtCore import QDate

from .base import GeocropAlgorithm, GeocropCall, date_parameter
from .common import aoi_problem, write_aoi_geojson
from .map_crops import DEFAULT_STAC
from .runner import RunResult

# (value of --head, label), first the default: the same families `geocrop train --head` offers.
HEADS = (
    ("auto", "Automatic (best of TempCNN, InceptionTime, gradient boosting on inner validation)"),
    ("tempcnn", "TempCNN"),
    ("inception", "InceptionTime"),
    ("transformer", "Transformer"),
    ("lstm", "Bi-LSTM"),
    ("gbm", "Gradient boosting"),
    ("rf", "RandomForest"),
)
#: Heads trained by epochs; the others (auto's own choice, the trees) take no epoch count.
_EPOCH_HEADS = ("tempcnn", "inception", "transformer", "lstm")
_LABEL = "Labelled parcels"
_FIX = "choose a polygon layer of parcels with a crop-type field"

_HELP = "".join(
    [
        "<p>Trains a crop classifier from your own labelled fields and writes a model bundle that "
        "<i>Map crops in area</i> can use.</p>",
        "<h3>Labels</h3>",
        "<p>A <b>polygon layer of parcels</b> (any CRS; tick <i>Selected features only</i> to train on a "
        "subset) and the <b>field holding the crop type</b> (text or codes). Every 10 m pixel inside a "
        "parcel becomes one training sample; train/validation splits are drawn by parcel, so pixels of one "
        "field never end up on both sides. A few parcels per crop are the minimum; dozens are better.</p>",
        "<h3>Imagery</h3>",
        "<p><b>Sentinel-2 source</b>: a STAC API address (default: Earth Search, needs internet) or a "
        "local <code>catalog.json</code>. <b>Start/end date</b>: the season; use the same season length "
        "when you map with the bundle.</p>",
        "<h3>Model</h3>",
        "<p><b>Temporal model</b>: <i>Automatic</i> (default) compares TempCNN, InceptionTime and "
        "gradient boosting on parcels held out of the training part and keeps the best (the log says "
        "which and why); or choose one family. "
        "<b>Pretrained backbone</b> (optional): a bundle from <code>geocrop pretrain</code>; without it "
        "the model learns from the raw bands. <b>Epochs</b>: 0 (default) adapts them to the data; a "
        "number applies to TempCNN, InceptionTime, Transformer and Bi-LSTM only.</p>",
        "<p>geocrop runs as a separate program (see <i>Map crops in area</i> for installing it). "
        "<b>Cancel</b> stops it; rerunning the same training resumes from the last finished epoch.</p>",
    ]
)


class TrainClassifierAlgorithm(GeocropAlgorithm):
    """Labelled parcel layer + class field + Sentinel-2 source + season -> map-ready model bundle."""

    PARCELS = "PARCELS"
    CLASS_FIELD = "CLASS_FIELD"
    S2 = "S2"
    START = "START"
    END = "END"
    HEAD = "HEAD"
    BACKBONE = "BACKBONE"
    EPOCHS = "EPOCHS"
    TRAIN_PIXELS = "TRAIN_PIXELS"
    STEPS = "STEPS"
    OUTPUT = "OUTPUT"

    COMMAND = "train"
    NAME = "trainclassifier"
    DISPLAY_NAME = "Train crop classifier"
    HELP = _HELP
    HELP_ANCHOR = "train-crop-classifier"
    TAGS = ("crop", "classification", "training", "sentinel-2", "lstm", "transformer", "model")
    ARGUMENTS: ClassVar[Mapping[str, str]] = {
        "labels": PARCELS,
        "class_column": CLASS_FIELD,
        "s2": S2,
        "start": START,
        "end": END,
        "head": HEAD,
        "backbone": BACKBONE,
        "epochs": EPOCHS,
        "train_pixels": TRAIN_PIXELS,
        "steps": STEPS,
        "out": OUTPUT,
    }
    SEASON = (START, END)

    def declare(self) -> None:
        self.addParameter(
            QgsProcessingParameterFeatureSource(self.PARCELS, _LABEL, [QgsProcessing.TypeVectorPolygon])
        )
        self.addParameter(
            QgsProcessingParameterField(
                self.CLASS_FIELD, "Crop type field", parentLayerParameterName=self.PARCELS
            )
        )
        self.addParameter(
            QgsProcessingParameterString(
                self.S2, "Sentinel-2 source (STAC API URL or catalog.json)", DEFAULT_STAC
            )
        )
        self.addParameter(date_parameter(self.START, "Start date", QDate(2021, 3, 1)))
        self.addParameter(date_parameter(self.END, "End date", QDate(2021, 10, 31)))
        self.addParameter(
            QgsProcessingParameterEnum(
                self.HEAD, "Temporal model", [label for _, label in HEADS], defaultValue=0
            )
        )
        self.addParameter(
            QgsProcessingParameterFile(
                self.BACKBONE,
                "Pretrained backbone bundle",
                optional=True,
                fileFilter="geocrop bundles (*.safetensors);;All files (*.*)",
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.EPOCHS,
                "Epochs (0: adapt to the data)",
                QgsProcessingParameterNumber.Integer,
                0,
                minValue=0,
                maxValue=1000,
            )
        )
        for name, label, default, low in (
            (self.TRAIN_PIXELS, "Training pixels per crop", 5000, 10),
            (self.STEPS, "Temporal grid steps", 144, 4),
        ):
            parameter = QgsProcessingParameterNumber(
                name, label, QgsProcessingParameterNumber.Integer, default, minValue=low
            )
            parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
            self.addParameter(parameter)
        self.addParameter(
            QgsProcessingParameterFileDestination(
                self.OUTPUT, "Model bundle", "geocrop bundles (*.safetensors)"
            )
        )

    def check_layers(self, parameters: dict[str, Any], context: QgsProcessingContext) -> str | None:
        source = self.parameterAsSource(parameters, self.PARCELS, context)
        return aoi_problem(source, label=_LABEL, value=parameters.get(self.PARCELS), fix=_FIX)

    def prepare(
        self, parameters: dict[str, Any], context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> GeocropCall:
        source = self.parameterAsSource(parameters, self.PARCELS, context)
        field = self.parameterAsString(parameters, self.CLASS_FIELD, context)
        if source is not None and source.fields().indexOf(field) < 0:
            raise QgsProcessingException(f"Crop type field: '{field}' is not a field of the parcel layer.")
        labels = write_aoi_geojson(
            source, context=context, feedback=feedback, label=_LABEL, attributes=[field], fix=_FIX
        )
        season = self.season_args(parameters, context)
        output = self.parameterAsFileOutput(parameters, self.OUTPUT, context)
        if Path(output).suffix.lower() != ".safetensors":
            output = str(Path(output).with_suffix(".safetensors"))
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        s2 = self.parameterAsString(parameters, self.S2, context).strip() or DEFAULT_STAC
        head = HEADS[self.parameterAsEnum(parameters, self.HEAD, context)][0]
        n_epochs = self.parameterAsInt(parameters, self.EPOCHS, context)
        if n_epochs and head not in _EPOCH_HEADS:
            raise QgsProcessingException(
                f"Epochs {n_epochs}: the chosen temporal model takes no epoch count; set Epochs to 0 or "
                "choose TempCNN, InceptionTime, Transformer or Bi-LSTM."
            )
        epochs = ["--epochs", str(n_epochs)] if n_epochs else []
        args = [
            "--labels",
            str(labels),
            "--class-column",
            field,
            "--id-column",
            "qgis_fid",
            "--s2",
            s2,
            *season,
            "--head",
            head,
            *epochs,
            "--train-pixels",
            str(self.parameterAsInt(parameters, self.TRAIN_PIXELS, context)),
            "--steps",
            str(self.parameterAsInt(parameters, self.STEPS, context)),
            "--out",
            output,
        ]
        backbone = self.parameterAsFile(parameters, self.BACKBONE, context)
        if backbone:
            if not Path(backbone).is_file():
                raise QgsProcessingException(
                    f"Pretrained backbone '{backbone}' does not exist; choose a bundle."
                )
            args += ["--backbone", backbone]
        # No cleanup on cancel: geocrop keeps a per-epoch checkpoint so that a rerun resumes; the bundle
        # itself is written atomically, so a stopped run never leaves a partial one.
        return GeocropCall(args, values={"output": output})

    def finish(
        self,
        parameters: dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
        call: GeocropCall,
        result: RunResult,
    ) -> dict[str, Any]:
        output = call.values["output"]
        self.written(output, "bundle")
        return {self.OUTPUT: output}
