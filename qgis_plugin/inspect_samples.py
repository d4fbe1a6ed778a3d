"""Processing algorithm `geocrop:inspectsamples` ("Look at labelled samples"): runs `geocrop inspect`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingOutputHtml,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterString,
)

from .base import GeocropAlgorithm, GeocropCall, given
from .runner import RunResult

_HELP = "".join(
    [
        "<p>Before training, look at what the model will learn from: for every crop class of a labelled "
        "samples table (Parquet, GeoParquet or CSV, e.g. an ESA WorldCereal point extraction), the median "
        "of its series over the season with the band where 80 % of them lie (10th to 90th percentile), one "
        "panel per class, for NDVI and each Sentinel-2 band; and how many series and parcels each class "
        "has.</p>",
        "<p>The series are read exactly as <i>Train crop classifier</i> and <code>geocrop train</code> read "
        "them (same temporal grid, gaps filled), so a class whose band is wide, or two classes whose "
        "profiles overlap, are what the model will confuse. The <b>Profiles folder</b> receives "
        "<code>index.html</code> (opened in the Results Viewer), the PNG figures and their numbers as "
        "CSV.</p>",
        "<p>Coded labels (WorldCereal's <code>ewoc_code</code>) need a <b>Class table</b>: "
        "<code>class_mappings.json:CROPTYPE28</code> picks one table of a JSON file.</p>",
        "<p>geocrop runs as a separate program (see <i>Map crops in area</i> for installing it).</p>",
    ]
)


class InspectSamplesAlgorithm(GeocropAlgorithm):
    """Samples table -> per-class temporal profiles, counts and a page."""

    LABELS = "LABELS"
    CLASS_FIELD = "CLASS_FIELD"
    GROUP_FIELD = "GROUP_FIELD"
    CLASS_MAP = "CLASS_MAP"
    DROP_UNMAPPED = "DROP_UNMAPPED"
    OUTPUT = "OUTPUT"
    PAGE = "PAGE"

    COMMAND = "inspect"
    NAME = "inspectsamples"
    DISPLAY_NAME = "Look at labelled samples"
    HELP = _HELP
    HELP_ANCHOR = "look-at-labelled-samples"
    TAGS = ("crop", "samples", "profiles", "ndvi", "time series", "training data", "labels")
    ARGUMENTS: ClassVar[Mapping[str, str]] = {
        "labels": LABELS,
        "class_column": CLASS_FIELD,
        "group_column": GROUP_FIELD,
        "class_map": CLASS_MAP,
        "drop_unmapped": DROP_UNMAPPED,
        "out": OUTPUT,
    }

    def declare(self) -> None:
        self.addParameter(
            QgsProcessingParameterFile(
                self.LABELS,
                "Labelled samples table",
                fileFilter="Samples tables (*.parquet *.geoparquet *.csv);;All files (*)",
            )
        )
        self.addParameter(QgsProcessingParameterString(self.CLASS_FIELD, "Class column", defaultValue="crop"))
        self.addParameter(
            QgsProcessingParameterString(self.GROUP_FIELD, "Parcel id column (optional)", optional=True)
        )
        self.addParameter(
            QgsProcessingParameterString(
                self.CLASS_MAP, "Class table for coded labels (file.json:KEY or CSV; optional)", optional=True
            )
        )
        self.addParameter(
            QgsProcessingParameterBoolean(
                self.DROP_UNMAPPED, "Leave out samples whose code the class table lacks", defaultValue=False
            )
        )
        self.addParameter(QgsProcessingParameterFolderDestination(self.OUTPUT, "Profiles folder"))
        self.addOutput(QgsProcessingOutputHtml(self.PAGE, "Profiles page"))

    def prepare(
        self, parameters: dict[str, Any], context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> GeocropCall:
        labels = self.parameterAsFile(parameters, self.LABELS, context)
        if not labels or not Path(labels).is_file():
            raise QgsProcessingException(f"'Labelled samples table' {labels or '(empty)'}: choose a file.")
        folder = self.parameterAsString(parameters, self.OUTPUT, context)
        args = [
            "--labels",
            labels,
            "--class-column",
            self.parameterAsString(parameters, self.CLASS_FIELD, context),
        ]
        for parameter, flag in ((self.GROUP_FIELD, "--group-column"), (self.CLASS_MAP, "--class-map")):
            value = parameters.get(parameter)
            if given(value):
                args += [flag, self.parameterAsString(parameters, parameter, context)]
        if self.parameterAsBoolean(parameters, self.DROP_UNMAPPED, context):
            args.append("--drop-unmapped")
        args += ["--out", folder]
        page = Path(folder) / "index.html"
        return GeocropCall(args, [page], {"folder": folder, "page": page})

    def finish(
        self,
        parameters: dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
        call: GeocropCall,
        result: RunResult,
    ) -> dict[str, Any]:
        page = call.values["page"]
        self.written(page, "profiles page")
        feedback.pushInfo(f"Profiles page: {page}")
        return {self.OUTPUT: call.values["folder"], self.PAGE: str(page)}
