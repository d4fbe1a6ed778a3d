"""What every geocrop algorithm shares: finding the executable, running it with feedback, styling outputs.

Imports only qgis and the standard library (and QGIS's own `processing` plugin when present).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsFeatureRequest,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeatureSource,
    QgsProcessingFeedback,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterString,
    QgsProcessingUtils,
    QgsSettings,
    QgsWkbTypes,
)
from qgis.PyQt.QtCore import Qt

from .layers import load_styled_on_completion as load_styled_on_completion  # (its old home)
from .runner import (
    GeocropCanceled,
    GeocropCommand,
    GeocropRunError,
    RunResult,
    check_version,
    error_in_labels,
    resolve_command,
    run_geocrop,
)

#: Settings > Options > Processing > Providers > geocrop (stored under Processing/Configuration/).
PROCESSING_SETTING = "GEOCROP_EXECUTABLE"
#: Plain QgsSettings key, for scripted set-ups: `QgsSettings().setValue("geocrop/executable", path)`.
SETTINGS_KEY = "geocrop/executable"
EXECUTABLE_PARAMETER = "GEOCROP_EXECUTABLE"


def executable_parameter() -> QgsProcessingParameterString:
    """The advanced 'geocrop executable' parameter every algorithm has (empty: use the plugin setting)."""
    parameter = QgsProcessingParameterString(
        EXECUTABLE_PARAMETER,
        "geocrop executable (empty: plugin setting, else 'geocrop' on PATH)",
        defaultValue="",
        optional=True,
    )
    parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
    return parameter


def configured_executable(override: str | None = None) -> str:
    """The executable setting in force: the algorithm parameter, else Processing option, else QgsSettings."""
    if override and override.strip():
        return override.strip()
    try:
        from processing.core.ProcessingConfig import ProcessingConfig

        value = ProcessingConfig.getSetting(PROCESSING_SETTING)
    except (ImportError, KeyError, AttributeError):
        value = None
    if value and str(value).strip():
        return str(value).strip()
    return str(QgsSettings().value(SETTINGS_KEY, "", type=str) or "").strip()


def prepare_geocrop(override: str | None, feedback: QgsProcessingFeedback) -> GeocropCommand:
    """Find geocrop and check its version; a missing or old one raises QgsProcessingException."""
    try:
        command = resolve_command(configured_executable(override))
        version = check_version(command)
    except GeocropRunError as exc:
        raise QgsProcessingException(str(exc)) from None
    feedback.pushInfo(f"Using geocrop {'.'.join(map(str, version))}: {command.prefix[0]}")
    return command


def run_with_feedback(
    command: GeocropCommand,
    args: Sequence[str],
    feedback: QgsProcessingFeedback,
    *,
    outputs: Sequence[Path] = (),
    labels: Mapping[str, str] | None = None,
) -> RunResult:
    """Run geocrop (with `--progress json` in `args`), streaming progress into `feedback`; errors and
    cancel become QgsProcessingException.

    `labels` (library argument -> parameter label) words geocrop's errors and warnings in the algorithm's
    labels ('End date' rather than `--end`) where geocrop reports them in library terms.
    """
    last_message = [""]

    def on_progress(fraction: float, message: str) -> None:
        feedback.setProgress(fraction * 100.0)
        if message and message != last_message[0]:
            last_message[0] = message
            # an info line, not setProgressText too: the dialog and qgis_process log a progress text
            # themselves, so the two showed each line twice; an info line also reaches qgis_process's JSON
            feedback.pushInfo(message)

    def on_log(line: str) -> None:
        if line.startswith("WARNING"):
            feedback.pushWarning(line)
        else:
            feedback.pushConsoleInfo(line)

    feedback.pushCommandInfo(" ".join(_quote(part) for part in (*command.prefix, *args)))
    try:
        return run_geocrop(
            command,
            args,
            on_progress=on_progress,
            on_log=on_log,
            on_warning=feedback.pushWarning,
            labels=labels,
            is_canceled=feedback.isCanceled,
            cleanup=list(outputs),
        )
    except GeocropCanceled as exc:
        raise QgsProcessingException(str(exc)) from None
    except GeocropRunError as exc:
        raise QgsProcessingException(_strip_prefix(error_in_labels(exc, labels or {}))) from None


def write_aoi_geojson(
    source: QgsProcessingFeatureSource,
    *,
    context: QgsProcessingContext,
    feedback: QgsProcessingFeedback,
    label: str,
    attributes: Sequence[str] = (),
    fix: str = "choose a polygon layer or draw an extent",
) -> Path:
    """Write the polygons of `source` (selected ones only if so chosen) to a temporary EPSG:4326 GeoJSON.

    `attributes` are copied as properties; the QGIS feature id goes along as `qgis_fid` (a parcel id).
    """
    problem = aoi_problem(source, label=label, fix=fix)
    if problem:
        raise QgsProcessingException(problem)
    wgs84 = QgsCoordinateReferenceSystem("EPSG:4326")
    transform = QgsCoordinateTransform(source.sourceCrs(), wgs84, context.transformContext())
    features: list[dict[str, Any]] = []
    request = QgsFeatureRequest()
    if attributes:
        request.setSubsetOfAttributes(list(attributes), source.fields())
    else:
        request.setNoAttributes()
    for feature in source.getFeatures(request):
        if feedback.isCanceled():
            raise QgsProcessingException(f"canceled while reading {label}.")
        geometry = feature.geometry()
        if geometry is None or geometry.isNull() or geometry.isEmpty():
            continue
        geometry.transform(transform)
        properties: dict[str, Any] = {name: _json_value(feature[name]) for name in attributes}
        if attributes:
            properties["qgis_fid"] = int(feature.id())
        features.append(
            {"type": "Feature", "properties": properties, "geometry": json.loads(geometry.asJson(8))}
        )
    if not features:
        raise QgsProcessingException(
            f"{label}: the layer has no polygon to map (it is empty, has only empty geometries, or no "
            "feature is selected while 'Selected features only' is ticked); choose polygons or an extent."
        )
    path = Path(QgsProcessingUtils.generateTempFilename("geocrop_aoi.geojson"))
    path.parent.mkdir(parents=True, exist_ok=True)
    collection = {"type": "FeatureCollection", "features": features}
    path.write_text(json.dumps(collection), encoding="utf-8")
    feedback.pushInfo(f"{label}: {len(features)} polygon(s) written to {path}")
    return path


def _json_value(value: Any) -> Any:
    """A field value as JSON: NULL (a null QVariant) -> None, dates and other Qt types -> text."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "isNull") and value.isNull():
        return None
    return str(value.toString(Qt.ISODate)) if hasattr(value, "toString") else str(value)


def aoi_problem(
    source: QgsProcessingFeatureSource | None,
    *,
    label: str,
    value: Any = None,
    fix: str = "choose a polygon layer or draw an extent",
) -> str | None:
    """Why `source` cannot be used as polygons (unreadable, empty, not polygons), or None if it can.

    The message names the parameter (`label`), the problem and the `fix`.
    """
    if source is None:
        return (
            f"{label}: could not open {_describe(value)} as a polygon layer (GeoJSON, GeoPackage, "
            f"Shapefile); {fix}."
        )
    if source.featureCount() == 0:
        return (
            f"{label}: the layer has no features (or none is selected while 'Selected features only' is "
            f"ticked); {fix}."
        )
    geometry_type = QgsWkbTypes.geometryType(source.wkbType())
    if geometry_type != QgsWkbTypes.PolygonGeometry:
        kind = QgsWkbTypes.geometryDisplayString(geometry_type).lower()
        if geometry_type in (QgsWkbTypes.NullGeometry, QgsWkbTypes.UnknownGeometry):
            kind = "no"
        return f"{label}: the layer has {kind} geometries, but geocrop needs polygons; {fix}."
    return None


def _describe(value: Any) -> str:
    """A layer parameter value as the user gave it (a path, a layer id or a selection definition)."""
    source = getattr(value, "source", None)
    text = source.staticValue() if source is not None and hasattr(source, "staticValue") else value
    return f"'{text}'"


def _strip_prefix(message: str) -> str:
    return message.removeprefix("geocrop: error: ")


def _quote(part: str) -> str:
    return f'"{part}"' if (" " in part or not part) else part
