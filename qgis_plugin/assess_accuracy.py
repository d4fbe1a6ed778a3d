"""Processing algorithm `geocrop:assessaccuracy` ("Assess accuracy and area"): runs `geocrop assess`."""

from __future__ import annotations

import csv
import html
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from qgis.core import (
    QgsProcessing,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingOutputFile,
    QgsProcessingOutputHtml,
    QgsProcessingOutputNumber,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterRasterLayer,
    QgsWkbTypes,
)

from .base import GeocropAlgorithm, GeocropCall
from .layers import map_file, write_layer_gpkg
from .runner import RunResult

#: The column `geocrop sample` leaves empty for the interpreter (geocrop.post.sampling.REFERENCE_COLUMN).
REFERENCE_COLUMN = "reference"
_POINTS_FIX = "choose the labelled points ('Points to label', stratified, with their reference column filled)"

_HELP = "".join(
    [
        "<p>Checks a crop map against points whose true crop you know, and estimates the area of each crop "
        "with a 95 % confidence interval, correcting the map's pixel counts for its errors (the "
        "good-practice estimators of Olofsson et al. 2014).</p>",
        "<h3>Reference points</h3>",
        "<p>A point layer with the true crop of each point in the <b>reference class field</b> (a crop name "
        "of the map's legend, any case, or its value). Make it with <i>Points to label</i>, method "
        "<i>Stratified random</i>, and label the points: the estimates assume a stratified random sample "
        "of the map. Points left without a class are set aside with a warning.</p>",
        "<h3>Report</h3>",
        "<p>The <b>report folder</b> receives <code>report.md</code>, <code>assessment.json</code> (every "
        "number), <code>per_class.csv</code> (user's and producer's accuracy, areas with their intervals), "
        "the error matrix as counts and proportions (CSV) and two charts. The overall accuracy is returned "
        "as an output, and a summary opens in the Results Viewer.</p>",
        "<p>geocrop runs as a separate program (see <i>Map crops in area</i> for installing it).</p>",
    ]
)


class AssessAccuracyAlgorithm(GeocropAlgorithm):
    """Crop map + labelled reference points -> accuracy and area estimates with 95 % CIs (a report)."""

    MAP = "MAP"
    REFERENCE = "REFERENCE"
    CLASS_FIELD = "CLASS_FIELD"
    OUTPUT = "OUTPUT"
    REPORT = "REPORT"
    SUMMARY = "SUMMARY"
    OVERALL_ACCURACY = "OVERALL_ACCURACY"
    OVERALL_ACCURACY_CI95 = "OVERALL_ACCURACY_CI95"

    COMMAND = "assess"
    NAME = "assessaccuracy"
    DISPLAY_NAME = "Assess accuracy and area"
    HELP = _HELP
    HELP_ANCHOR = "assess-accuracy-and-area"
    TAGS = ("crop", "accuracy", "area", "confidence interval", "error matrix", "validation", "olofsson")
    ARGUMENTS: ClassVar[Mapping[str, str]] = {
        "map": MAP,
        "reference": REFERENCE,
        "class_column": CLASS_FIELD,
        "out": OUTPUT,
    }

    def declare(self) -> None:
        self.addParameter(QgsProcessingParameterRasterLayer(self.MAP, "Crop map"))
        self.addParameter(
            QgsProcessingParameterFeatureSource(
                self.REFERENCE, "Reference points", [QgsProcessing.TypeVectorPoint]
            )
        )
        self.addParameter(
            QgsProcessingParameterField(
                self.CLASS_FIELD,
                "Reference class field",
                defaultValue=REFERENCE_COLUMN,
                parentLayerParameterName=self.REFERENCE,
                optional=True,  # qgis_process 3.22 asks for a mandatory field even when it has a default
            )
        )
        self.addParameter(QgsProcessingParameterFolderDestination(self.OUTPUT, "Report folder"))
        self.addOutput(QgsProcessingOutputFile(self.REPORT, "Report (markdown)"))
        self.addOutput(QgsProcessingOutputHtml(self.SUMMARY, "Accuracy and area summary"))
        self.addOutput(QgsProcessingOutputNumber(self.OVERALL_ACCURACY, "Overall accuracy"))
        self.addOutput(
            QgsProcessingOutputNumber(self.OVERALL_ACCURACY_CI95, "Overall accuracy, 95 % CI half-width")
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
        source = self.parameterAsSource(parameters, self.REFERENCE, context)
        field = self.parameterAsString(parameters, self.CLASS_FIELD, context).strip() or REFERENCE_COLUMN
        if source is not None and source.fields().indexOf(field) < 0:
            names = ", ".join(source.fields().names()) or "none"
            raise QgsProcessingException(
                f"{label['class_column']}: '{field}' is not a field of the reference points; choose one of "
                f"{names}."
            )
        points = write_layer_gpkg(
            source,
            context=context,
            feedback=feedback,
            label=label["reference"],
            geometry=QgsWkbTypes.PointGeometry,
            fix=_POINTS_FIX,
            stem="reference_points",
            value=parameters.get(self.REFERENCE),
        )
        folder = Path(self.parameterAsString(parameters, self.OUTPUT, context))
        folder.parent.mkdir(parents=True, exist_ok=True)
        args = [
            "--map",
            str(crop_map),
            "--reference",
            str(points),
            "--class-column",
            field,
            "--out",
            str(folder),
        ]
        return GeocropCall(args, values={"folder": folder})

    def finish(
        self,
        parameters: dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
        call: GeocropCall,
        result: RunResult,
    ) -> dict[str, Any]:
        folder: Path = call.values["folder"]
        report, numbers = folder / "report.md", folder / "assessment.json"
        if not (report.is_file() and numbers.is_file()):
            raise QgsProcessingException(f"geocrop finished but wrote no report in '{folder}'.")
        data = json.loads(numbers.read_text(encoding="utf-8"))
        summary = folder / "summary.html"
        summary.write_text(summary_html(data, folder), encoding="utf-8")
        accuracy, ci95 = data.get("overall_accuracy"), data.get("overall_accuracy_ci95")
        if accuracy is not None:
            feedback.pushInfo(
                f"Overall accuracy {accuracy:.3f} ± {ci95 or 0:.3f} (95 % CI); report: {report}"
            )
        return {
            self.OUTPUT: str(folder),
            self.REPORT: str(report),
            self.SUMMARY: str(summary),
            self.OVERALL_ACCURACY: accuracy,
            self.OVERALL_ACCURACY_CI95: ci95,
        }


def summary_html(data: Mapping[str, Any], folder: Path) -> str:
    """The Results Viewer page: overall accuracy, the per-class table (from per_class.csv) and the charts."""
    parts = ["<html><head><meta charset='utf-8'><title>Accuracy and area</title></head><body>"]
    accuracy, ci95 = data.get("overall_accuracy"), data.get("overall_accuracy_ci95")
    if accuracy is not None:
        parts.append(f"<h2>Overall accuracy {accuracy:.3f} ± {ci95 or 0:.3f}</h2>")
    parts.append(
        f"<p>{int(data.get('n_points', 0))} reference points"
        f"{_unlabelled(data)}; ± is the half-width of the 95 % confidence interval. "
        f"Estimator: {html.escape(str(data.get('estimator', '')))}.</p>"
    )
    table = folder / "per_class.csv"
    if table.is_file():
        with table.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.reader(handle))
        if rows:
            parts.append("<table border='1' cellspacing='0' cellpadding='3'>")
            parts.append("<tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in rows[0]) + "</tr>")
            for row in rows[1:]:
                parts.append("<tr>" + "".join(f"<td>{html.escape(_short(c))}</td>" for c in row) + "</tr>")
            parts.append("</table>")
    for name in ("areas.png", "error_matrix.png"):
        if (folder / name).is_file():
            parts.append(f"<p><img src='{(folder / name).as_uri()}' width='640'></p>")
    parts.append(
        f"<p>Full report: <a href='{(folder / 'report.md').as_uri()}'>{folder / 'report.md'}</a></p>"
    )
    parts.append("</body></html>")
    return "\n".join(parts)


def _unlabelled(data: Mapping[str, Any]) -> str:
    left = int(data.get("n_unlabelled") or 0)
    return f" ({left} without a reference class left out)" if left else ""


def _short(cell: str) -> str:
    """A CSV number with 4 significant digits; text as it is."""
    try:
        return f"{float(cell):.4g}"
    except ValueError:
        return cell
