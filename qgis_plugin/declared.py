"""QGIS parameters read from geocrop's declarations (`declared.json`), so an algorithm does not restate them.

geocrop declares each option once, in its stage config (`geocrop.core.params`); ``python -m
geocrop.cli.declared`` writes this plugin's ``declared.json`` from those declarations (a test keeps the
file current), because the plugin runs geocrop out of process and cannot import it. For each option: its
flag, QGIS parameter name, label, type, default, bounds and whether it is optional or advanced.

An algorithm says only what is QGIS's own (`Shown`): an input that is a layer of the project rather than
a path (the crop map as a raster layer, parcels as a polygon layer), a label or default that reads better
in a dialog, the words of a choice. `DeclaredParameters` then builds the QGIS parameters (`add`), the
command's arguments from a dialog's values (`call`: a value is passed only when it differs from the
default), the argument -> parameter map that words geocrop's errors in labels (`arguments`), and checks,
loads and returns the outputs after the run (`finish`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qgis.core import (
    QgsProcessing,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDateTime,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorDestination,
    QgsWkbTypes,
)
from qgis.PyQt.QtCore import QDate, Qt

from .layers import (
    load_styled_on_completion,
    load_vector_on_completion,
    map_classes,
    map_file,
    write_layer_gpkg,
)

TABLE = Path(__file__).resolve().with_name("declared.json")
#: Types whose value is an output path (the algorithm's results).
OUTPUTS = ("raster_out", "page_out", "table_out", "vector_out", "folder_out")
_FILTERS = {
    "bundle": "geocrop bundles (*.safetensors);;All files (*.*)",
    "page_out": "HTML files (*.html)",
    "table_out": "GeoPackage (*.gpkg);;GeoParquet (*.parquet)",
}
#: A layer input or output: its Processing type and the geometry geocrop needs.
_LAYERS = {
    "polygon": (QgsProcessing.TypeVectorPolygon, QgsWkbTypes.PolygonGeometry),
    "point": (QgsProcessing.TypeVectorPoint, QgsWkbTypes.PointGeometry),
}
#: What an output file must end with, and how a message names the format.
_SUFFIXES = {"raster_out": ((".tif", ".tiff"), "GeoTIFF"), "vector_out": ((".gpkg",), "a GeoPackage")}


#: What a parameter label loses to name an argument in a sentence: "…or " and a trailing "(…)".
_LABEL_NOISE = re.compile(r"^…or\s+|\s*\([^()]*\)\s*$")


def _table() -> dict[str, Any]:
    return dict(json.loads(TABLE.read_text(encoding="utf-8")))


def table(command: str) -> list[dict[str, Any]]:
    """The declared parameters of one geocrop command."""
    return list(_table()["commands"][command])


#: geocrop's season rule in its own words (`geocrop.core.temporal.SEASON_RULE`): argument names in
#: backticks, which an algorithm turns into its labels.
SEASON_RULE: str = _table()["season_rule"]


@dataclass(frozen=True)
class GeocropCall:
    """One `geocrop COMMAND ARGS` run: `args` after the command name (without `--progress`); `cleanup`
    the outputs whose partial files a cancelled or failed run removes; `values` for `finish`."""

    args: list[str]
    cleanup: list[Path] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Shown:
    """How one algorithm shows a declared argument where the declaration's own form does not fit a dialog.

    ``name``: the QGIS parameter's name where an older algorithm spelled it otherwise; ``layer``:
    ``raster`` (an input crop map: a raster layer, passed as its GeoTIFF), ``polygon`` or ``point`` (an
    input written to a temporary GeoPackage; an output of that geometry); ``fix`` ends the message
    about a wrong layer; ``parent``: the argument whose layer this field belongs to; ``style``:
    the field an output layer is coloured by, in the input map's class colours; ``choices``: the dialog's
    words for the declared choices, in their order; ``default`` (not None) the dialog's where geocrop
    has none (a number of points); ``unset`` a dialog value (and default) that leaves the argument to
    geocrop (``epochs`` 0: geocrop adapts them); ``required`` where the command needs what the library
    may leave out (`geocrop assess` writes its report into a folder)."""

    name: str | None = None
    label: str | None = None
    layer: str | None = None
    fix: str = ""
    parent: str | None = None
    style: str | None = None
    choices: tuple[str, ...] = ()
    default: Any = None
    unset: Any = None
    required: bool = False
    advanced: bool = False


#: How every algorithm shows an argument of this name unless it says otherwise: geocrop's `map` input
#: is a crop map of the project; a season's dialog opens on a whole season, as an example.
CONVENTIONS = {
    "map": Shown(label="Crop map", layer="raster"),
    "start": Shown(label="Start date", default="2021-03-01", required=True),
    "end": Shown(label="End date", default="2021-10-31", required=True),
}


@dataclass(frozen=True)
class DeclaredParameters:
    """The declared parameters of one command as an algorithm shows them: ``own`` the ones it builds
    itself, ``hidden`` the ones its dialog leaves to geocrop's defaults, ``shown`` what differs in QGIS."""

    command: str
    own: tuple[str, ...] = ()
    hidden: tuple[str, ...] = ()
    shown: Mapping[str, Shown] = field(default_factory=dict)

    @property
    def entries(self) -> list[dict[str, Any]]:
        """The algorithm's declared parameters, each with its `Shown` merged in (``shown`` key)."""
        return [self._merged(e) for e in table(self.command) if e["name"] not in (*self.own, *self.hidden)]

    def _merged(self, entry: dict[str, Any]) -> dict[str, Any]:
        shown = self.shown.get(entry["name"]) or CONVENTIONS.get(entry["name"], Shown())
        merged = {**entry, "shown": shown, "label": shown.label or entry["label"]}
        merged["qgis"] = shown.name or entry["qgis"]
        merged["optional"] = entry["optional"] and not shown.required
        merged["advanced"] = entry["advanced"] or shown.advanced
        if shown.layer in _LAYERS and entry["type"] == "table_out":
            merged["type"] = "vector_out"  # a layer of the project, so a GeoPackage
        dialog = next((v for v in (shown.default, shown.unset) if v is not None), entry.get("default"))
        merged["dialog_default"] = dialog
        return merged

    def entry(self, name: str) -> dict[str, Any]:
        return self._merged(next(e for e in table(self.command) if e["name"] == name))

    def season(self) -> tuple[str, str] | None:
        """The (start, end) parameters where the algorithm shows a declared season, else None."""
        dates = {e["name"]: e["qgis"] for e in self.entries if e["type"] == "date"}
        return (dates["start"], dates["end"]) if {"start", "end"} <= dates.keys() else None

    def arguments(self) -> dict[str, str]:
        """geocrop argument -> QGIS parameter name (errors about `end` then name 'End date')."""
        return {
            e["name"]: self._merged(e)["qgis"] for e in table(self.command) if e["name"] not in self.hidden
        }

    def add(self, add: Callable[[QgsProcessingParameterDefinition], Any], skip: tuple[str, ...] = ()) -> None:
        """Add the parameters in declaration order (``skip``: the types the algorithm adds itself)."""
        for entry in self.entries:
            if entry["type"] in skip:
                continue
            parameter = _parameter(entry, self)
            if entry["advanced"]:
                parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
            add(parameter)

    def args(self, algorithm: Any, parameters: dict[str, Any], context: QgsProcessingContext) -> list[str]:
        """``--flag value`` for each plain declared parameter given a value other than its default (dates,
        layers and outputs are `call`'s, and the season's: `GeocropAlgorithm.season_args`)."""
        args: list[str] = []
        for entry in self.entries:
            if entry["type"] in ("date", *OUTPUTS) or entry["shown"].layer or entry["shown"].parent:
                continue
            value = _value(algorithm, entry, parameters, context)
            if value in (None, "", entry.get("default")) or value == entry["shown"].unset:
                continue
            if entry["type"] == "boolean":
                args += [entry["flag"]] if value else []
            elif entry["type"] in ("numbers", "strings"):
                for part in str(value).replace(",", " ").split():
                    args += [entry["flag"], part]
            else:
                args += [entry["flag"], f"{value:g}" if isinstance(value, float) else str(value)]
        return args

    def call(
        self,
        algorithm: Any,
        parameters: dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
    ) -> GeocropCall:
        """The run: layers given as files, fields checked against their layer, output paths checked (their
        folders made), then the plain arguments (`args`)."""
        args: list[str] = []
        cleanup: list[Path] = []
        values: dict[str, Any] = {}
        for entry in self.entries:
            path = _input(algorithm, entry, parameters, context, feedback, self)
            if path is None and entry["type"] in OUTPUTS:
                path, written = _output(algorithm, entry, parameters, context)
                cleanup += written
            if path:
                values[entry["name"]] = path
                args += [entry["flag"], str(path)]
        return GeocropCall([*args, *self.args(algorithm, parameters, context)], cleanup, values)

    def results(self, values: dict[str, Any]) -> dict[str, Any]:
        """The algorithm's results: each output parameter's path (None where not asked for)."""
        return {e["qgis"]: _text(values.get(e["name"])) for e in self.entries if e["type"] in OUTPUTS}

    def finish(
        self, algorithm: Any, context: QgsProcessingContext, values: dict[str, Any], outputs: dict[str, Any]
    ) -> dict[str, Any]:
        """After a run: each map or layer output written (else `QgsProcessingException`) and loaded with
        the style geocrop wrote beside it (``outputs["qml"]``, else NAME.qml) or the input map's class
        colours; the `results`. ``values``: the paths of the run (`call`), by argument name."""
        for entry in self.entries:
            path, kind = values.get(entry["name"]), entry["type"]
            if kind not in ("raster_out", "vector_out") or not path:
                continue
            algorithm.written(path, entry["label"].lower())
            if kind == "raster_out":
                qml = Path(outputs.get("qml") or Path(outputs.get("cog", path)).with_suffix(".qml"))
                load_styled_on_completion(context, str(path), qml=qml, name=entry["label"])
            elif entry["shown"].style:
                classes = map_classes(values["map"]) if values.get("map") else []
                load_vector_on_completion(
                    context, str(path), name=entry["label"], field=entry["shown"].style, classes=classes
                )
        return self.results(values)


def _text(value: Any) -> str | None:
    return str(value) if value else None


def _input(
    algorithm: Any,
    entry: dict[str, Any],
    parameters: dict[str, Any],
    context: QgsProcessingContext,
    feedback: QgsProcessingFeedback,
    declared: DeclaredParameters,
) -> Any:
    """The file behind a layer input, a checked field name, or None for any other parameter."""
    shown, name, label = entry["shown"], entry["qgis"], short(entry["label"])
    if shown.layer == "raster":
        layer = algorithm.parameterAsRasterLayer(parameters, name, context)
        return map_file(layer, label=label, value=parameters.get(name))
    if shown.layer in _LAYERS and entry["type"] not in OUTPUTS:
        return write_layer_gpkg(
            algorithm.parameterAsSource(parameters, name, context),
            context=context,
            feedback=feedback,
            label=label,
            geometry=_LAYERS[shown.layer][1],
            fix=shown.fix or f"choose a {shown.layer} layer",
            stem=entry["name"],
            value=parameters.get(name),
        )
    if shown.parent:
        chosen = algorithm.parameterAsString(parameters, name, context).strip() or entry.get("default")
        owner = declared.entry(shown.parent)
        source = algorithm.parameterAsSource(parameters, owner["qgis"], context)
        if chosen and source is not None and source.fields().indexOf(chosen) < 0:
            names = ", ".join(source.fields().names()) or "none"
            raise QgsProcessingException(
                f"{label}: '{chosen}' is not a field of '{short(owner['label'])}'; choose one of {names}."
            )
        return chosen
    return None


def _output(
    algorithm: Any, entry: dict[str, Any], parameters: dict[str, Any], context: QgsProcessingContext
) -> tuple[str, list[Path]]:
    """An output's path (its folder made) and the files a cancelled run removes."""
    name, kind = entry["qgis"], entry["type"]
    if kind in ("raster_out", "vector_out"):
        path = algorithm.parameterAsOutputLayer(parameters, name, context)
    elif kind == "folder_out":
        path = algorithm.parameterAsString(parameters, name, context)
    else:
        path = algorithm.parameterAsFileOutput(parameters, name, context)
    if not path:
        return "", []
    suffixes, kind_text = _SUFFIXES.get(kind, ((), ""))
    out = output_path(path, suffixes=suffixes, label=short(entry["label"]), kind=kind_text)
    if kind == "folder_out":
        return path, []
    siblings = [out.with_name(f"{out.stem}_confidence.tif"), Path(f"{path}.aux.xml")]
    return path, [out, *(siblings if kind == "raster_out" else [])]


def output_path(path: str, *, suffixes: Sequence[str] = (), label: str, kind: str = "") -> Path:
    """An output file name geocrop accepts (one of `suffixes`, if any), its folder created."""
    out = Path(path)
    if suffixes and out.suffix.lower() not in suffixes:
        raise QgsProcessingException(
            f"{label} '{path}': geocrop writes {kind}; use a {suffixes[0]} file name."
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def short(description: str) -> str:
    """A parameter's label as a sentence names it: 'Maximum scene cloud cover (%)' -> 'Maximum scene
    cloud cover', '…or area of interest (extent)' -> 'Area of interest'."""
    text = _LABEL_NOISE.sub("", description.strip()).strip()
    return text[:1].upper() + text[1:]


def _value(algorithm: Any, entry: dict[str, Any], parameters: dict[str, Any], context: Any) -> Any:
    name, kind = entry["qgis"], entry["type"]
    if name not in parameters or parameters[name] is None:
        return None
    if kind == "boolean":
        return algorithm.parameterAsBoolean(parameters, name, context)
    if kind == "integer":
        return algorithm.parameterAsInt(parameters, name, context)
    if kind == "number":
        return algorithm.parameterAsDouble(parameters, name, context)
    if kind == "enum":
        return entry["choices"][algorithm.parameterAsEnum(parameters, name, context)]
    if kind in ("bundle", "file", "folder"):
        return algorithm.parameterAsFile(parameters, name, context)
    return algorithm.parameterAsString(parameters, name, context).strip()


def _parameter(entry: dict[str, Any], declared: DeclaredParameters) -> QgsProcessingParameterDefinition:
    name, label, kind, shown = entry["qgis"], entry["label"], entry["type"], entry["shown"]
    optional, default = entry["optional"], entry["dialog_default"]
    if shown.layer == "raster":
        parameter = QgsProcessingParameterRasterLayer(name, label, optional=optional)
    elif shown.layer in _LAYERS:
        types = [_LAYERS[shown.layer][0]]
        parameter = (
            QgsProcessingParameterVectorDestination(name, label, types[0], optional=optional)
            if kind in OUTPUTS
            else QgsProcessingParameterFeatureSource(name, label, types, optional=optional)
        )
    elif shown.parent:
        parent = declared.entry(shown.parent)["qgis"]
        # optional where geocrop has a default: qgis_process 3.22 asks for a field even when it has one
        parameter = QgsProcessingParameterField(
            name, label, defaultValue=default, parentLayerParameterName=parent, optional=default is not None
        )
    elif kind == "date":
        value = QDate.fromString(default, Qt.ISODate) if default else None
        parameter = QgsProcessingParameterDateTime(
            name, label, QgsProcessingParameterDateTime.Date, defaultValue=value, optional=optional
        )
    elif kind == "boolean":
        parameter = QgsProcessingParameterBoolean(name, label, bool(default))
    elif kind in ("integer", "number"):
        number = (
            QgsProcessingParameterNumber.Integer if kind == "integer" else QgsProcessingParameterNumber.Double
        )
        parameter = QgsProcessingParameterNumber(name, label, number, defaultValue=default, optional=optional)
        if "min" in entry:
            parameter.setMinimum(entry["min"])
        if "max" in entry:
            parameter.setMaximum(entry["max"])
    elif kind == "enum":
        choices = entry["choices"]
        parameter = QgsProcessingParameterEnum(
            name,
            label,
            list(shown.choices or choices),
            defaultValue=choices.index(default) if default in choices else 0,
        )
    elif kind in ("bundle", "file"):
        parameter = QgsProcessingParameterFile(
            name, label, optional=optional, fileFilter=_FILTERS.get(kind, "All files (*.*)")
        )
    elif kind == "folder":
        parameter = QgsProcessingParameterFile(
            name, label, QgsProcessingParameterFile.Folder, optional=optional
        )
    elif kind == "raster_out":
        parameter = QgsProcessingParameterRasterDestination(name, label, optional=optional)
    elif kind == "vector_out":
        parameter = QgsProcessingParameterVectorDestination(name, label, optional=optional)
    elif kind == "folder_out":
        parameter = QgsProcessingParameterFolderDestination(name, label, optional=optional)
    elif kind in ("page_out", "table_out"):
        parameter = QgsProcessingParameterFileDestination(
            name, label, _FILTERS[kind], optional=optional, createByDefault=not optional
        )
    else:
        parameter = QgsProcessingParameterString(name, label, default, optional=optional)
    parameter.setHelp(entry["help"])
    return parameter
