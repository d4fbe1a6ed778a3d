"""Processing algorithm `geocrop:assessaccuracy` ("Assess accuracy and area"): runs `geocrop assess`."""

from __future__ import annotations

import csv
import html
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from qgis.core import QgsProcessingException, QgsProcessingFeedback

from .base import Extra, GeocropAlgorithm
from .declared import DeclaredParameters, Shown

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
    ]
)


class AssessAccuracyAlgorithm(GeocropAlgorithm):
    """Crop map + labelled reference points -> accuracy and area estimates with 95 % CIs (a report); its
    parameters are `geocrop assess`'s declared options (`declared.json`)."""

    NAME, DISPLAY_NAME, HELP = "assessaccuracy", "Assess accuracy and area", _HELP
    TAGS = ("crop", "accuracy", "area", "confidence interval", "error matrix", "validation", "olofsson")
    DECLARED = DeclaredParameters(
        "assess",
        shown={
            "reference": Shown(label="Reference points", layer="point", fix=_POINTS_FIX),
            "class_column": Shown(label="Reference class field", parent="reference"),
            "out": Shown(label="Report folder", required=True),
        },
    )
    EXTRA: ClassVar[Extra] = {
        "REPORT": ("report", "Report (markdown)", "file"),
        "SUMMARY": ("", "Accuracy and area summary", "html"),
        "OVERALL_ACCURACY": ("", "Overall accuracy", "number"),
        "OVERALL_ACCURACY_CI95": ("", "Overall accuracy, 95 % CI half-width", "number"),
    }

    def computed(self, values: dict[str, Any], feedback: QgsProcessingFeedback) -> dict[str, Any]:
        """The report's paths, and from its numbers the overall accuracy and a summary page."""
        folder = Path(values["out"])
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
            "REPORT": str(report),
            "SUMMARY": str(summary),
            "OVERALL_ACCURACY": accuracy,
            "OVERALL_ACCURACY_CI95": ci95,
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
