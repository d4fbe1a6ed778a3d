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
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
)

from .base import GeocropAlgorithm, GeocropCall
from .common import aoi_problem, write_aoi_geojson
from .declared import DeclaredParameters, Shown
from .map_crops import DEFAULT_STAC

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
#: `geocrop train`'s other options for labelled parcels, shown among the advanced parameters.
_ADVANCED = (
    "class_map",
    "drop_unmapped",
    "min_parcels",
    "split",
    "val_pixels",
    "batch_size",
    "seed",
    "device",
    "allow_any_asset_href",
)
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
        "<p><b>Sentinel-2 source</b>: a STAC API address (default: Earth Search, needs internet), a "
        "local <code>catalog.json</code>, a folder of GeoTIFFs or a NetCDF/Zarr cube. <b>Start/end "
        "date</b>: the season; use the same season length when you map with the bundle.</p>",
        "<h3>Model</h3>",
        "<p><b>Temporal model</b>: <i>Automatic</i> (default) compares TempCNN, InceptionTime and "
        "gradient boosting on parcels held out of the training part and keeps the best (the log says "
        "which and why); or choose one family. "
        "<b>Pretrained backbone</b> (optional): a bundle from <code>geocrop pretrain</code>; without it "
        "the model learns from the raw bands. <b>Epochs</b>: 0 (default) adapts them to the data; a "
        "number applies to TempCNN, InceptionTime, Transformer and Bi-LSTM only.</p>",
        "<p><b>Cancel</b> stops geocrop; rerunning the same training resumes from the last finished "
        "epoch.</p>",
    ]
)


class TrainClassifierAlgorithm(GeocropAlgorithm):
    """Labelled parcel layer + class field + Sentinel-2 source + season -> map-ready model bundle; its
    labelled-data and training parameters are `geocrop train`'s declared options (`declared.json`)."""

    PARCELS = "PARCELS"
    HEAD = "HEAD"
    BACKBONE = "BACKBONE"
    OUTPUT = "OUTPUT"

    NAME, DISPLAY_NAME, HELP = "trainclassifier", "Train crop classifier", _HELP
    TAGS = ("crop", "classification", "training", "sentinel-2", "lstm", "transformer", "model")
    DECLARED = DeclaredParameters(
        "train",
        own=("labels",),
        # samples-table settings (a layer drawn in QGIS is parcels) and the parcel id (the feature id)
        hidden=("group_column", "id_column", "nodata", "scale"),
        shown={
            "labels": Shown(name=PARCELS, label=_LABEL),
            "class_column": Shown(label="Crop type field", parent="labels"),
            "s2": Shown(
                label="Sentinel-2 source (STAC API URL, catalog.json, GeoTIFF folder or .nc/.zarr cube)",
                default=DEFAULT_STAC,
                required=True,
            ),
            "epochs": Shown(label="Epochs (0: adapt to the data)", unset=0),
            "train_pixels": Shown(label="Training pixels per crop", advanced=True),
            "steps": Shown(label="Temporal grid steps", advanced=True),
            **{name: Shown(advanced=True) for name in _ADVANCED},
        },
    )
    ARGUMENTS: ClassVar[Mapping[str, str]] = {
        "head": HEAD,
        "backbone": BACKBONE,
        "out": OUTPUT,
    }

    def declare(self) -> None:
        self.addParameter(
            QgsProcessingParameterFeatureSource(self.PARCELS, _LABEL, [QgsProcessing.TypeVectorPolygon])
        )
        self.DECLARED.add(self.addParameter)
        heads = [label for _, label in HEADS]
        self.addParameter(QgsProcessingParameterEnum(self.HEAD, "Temporal model", heads, defaultValue=0))
        self.addParameter(
            QgsProcessingParameterFile(
                self.BACKBONE,
                "Pretrained backbone bundle",
                optional=True,
                fileFilter="geocrop bundles (*.safetensors);;All files (*.*)",
            )
        )
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
        """The declared arguments, then the parcels (with their crop field and feature id as the parcel
        id), the head and backbone, and the bundle."""
        call = super().prepare(parameters, context, feedback)
        source = self.parameterAsSource(parameters, self.PARCELS, context)
        field = call.values["class_column"]
        labels = write_aoi_geojson(
            source, context=context, feedback=feedback, label=_LABEL, attributes=[field], fix=_FIX
        )
        output = self.parameterAsFileOutput(parameters, self.OUTPUT, context)
        if Path(output).suffix.lower() != ".safetensors":
            output = str(Path(output).with_suffix(".safetensors"))
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        head = HEADS[self.parameterAsEnum(parameters, self.HEAD, context)][0]
        if "--epochs" in call.args and head not in _EPOCH_HEADS:
            epochs = call.args[call.args.index("--epochs") + 1]
            raise QgsProcessingException(
                f"Epochs {epochs}: the chosen temporal model takes no epoch count; set Epochs to 0 or "
                "choose TempCNN, InceptionTime, Transformer or Bi-LSTM."
            )
        args = [
            "--labels",
            str(labels),
            "--id-column",
            "qgis_fid",
            *call.args,
            "--head",
            head,
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
        return GeocropCall(args, values={"out": output})
