"""QGIS parameters read from geocrop's declarations (`declared.json`), so an algorithm does not restate them.

geocrop declares each option once, in its stage config (`geocrop.core.params`); ``python -m
geocrop.cli.declared`` writes this plugin's ``declared.json`` from those declarations (a test keeps the
file current), because the plugin runs geocrop out of process and cannot import it. For each option: its
flag, QGIS parameter name, label, type, default, bounds and whether it is optional or advanced.

`DeclaredParameters` builds the QGIS parameters (`add`), the command's arguments from a dialog's values
(`args`: a value is passed only when it differs from geocrop's own default), the argument -> parameter
map that words geocrop's errors in labels (`arguments`), and the results of the output parameters
(`results`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorDestination,
)

from .common import load_styled_on_completion

TABLE = Path(__file__).resolve().with_name("declared.json")
#: Types whose value is an output path (the algorithm's results).
OUTPUTS = ("raster_out", "page_out", "table_out", "vector_out", "folder_out")
_FILTERS = {
    "bundle": "geocrop bundles (*.safetensors);;All files (*.*)",
    "page_out": "HTML files (*.html)",
    "table_out": "GeoPackage (*.gpkg);;GeoParquet (*.parquet)",
}


def _table() -> dict[str, Any]:
    return dict(json.loads(TABLE.read_text(encoding="utf-8")))


def table(command: str) -> list[dict[str, Any]]:
    """The declared parameters of one geocrop command."""
    return list(_table()["commands"][command])


#: geocrop's season rule in its own words (`geocrop.core.temporal.SEASON_RULE`): argument names in
#: backticks, which an algorithm turns into its labels.
SEASON_RULE: str = _table()["season_rule"]


@dataclass(frozen=True)
class DeclaredParameters:
    """The declared parameters of one command, less the ones an algorithm builds itself (`own`)."""

    command: str
    own: tuple[str, ...] = ()

    @property
    def entries(self) -> list[dict[str, Any]]:
        return [e for e in table(self.command) if e["name"] not in self.own]

    def entry(self, name: str) -> dict[str, Any]:
        return next(e for e in table(self.command) if e["name"] == name)

    def arguments(self) -> dict[str, str]:
        """geocrop argument -> QGIS parameter name (errors about `end` then name 'End date')."""
        return {e["name"]: e["qgis"] for e in table(self.command)}

    def add(self, add: Callable[[QgsProcessingParameterDefinition], Any], skip: Iterable[str] = ()) -> None:
        """Add the parameters in declaration order (``skip``: the types the algorithm adds itself)."""
        for entry in self.entries:
            if entry["type"] in skip:
                continue
            parameter = _parameter(entry)
            if entry["advanced"]:
                parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
            add(parameter)

    def args(self, algorithm: Any, parameters: dict[str, Any], context: QgsProcessingContext) -> list[str]:
        """``--flag value`` for each declared parameter given a value other than geocrop's default
        (dates and outputs are the algorithm's: `GeocropAlgorithm.season_args`, its output checks)."""
        args: list[str] = []
        for entry in self.entries:
            if entry["type"] in ("date", *OUTPUTS):
                continue
            value = _value(algorithm, entry, parameters, context)
            if value is None or value == "" or value == entry.get("default"):
                continue
            if entry["type"] == "boolean":
                args += [entry["flag"]] if value else []
            elif entry["type"] in ("numbers", "strings"):
                for part in str(value).replace(",", " ").split():
                    args += [entry["flag"], part]
            else:
                args += [entry["flag"], f"{value:g}" if isinstance(value, float) else str(value)]
        return args

    def results(self, values: dict[str, Any]) -> dict[str, Any]:
        """The algorithm's results: each output parameter's path (None where not asked for)."""
        return {e["qgis"]: values.get(e["name"]) or None for e in table(self.command) if e["type"] in OUTPUTS}

    def finish(
        self, algorithm: Any, context: QgsProcessingContext, values: dict[str, Any], outputs: dict[str, Any]
    ) -> dict[str, Any]:
        """After a run: each raster output written (else `QgsProcessingException`) and loaded with the
        style geocrop wrote beside it (``outputs["qml"]``, else NAME.qml); the `results`. ``values``:
        the output paths the algorithm asked for, by argument name."""
        for entry in table(self.command):
            path = values.get(entry["name"])
            if entry["type"] == "raster_out" and path:
                algorithm.written(path, entry["label"].lower())
                qml = Path(outputs.get("qml") or Path(outputs.get("cog", path)).with_suffix(".qml"))
                load_styled_on_completion(context, path, qml=qml, name=entry["label"])
        return self.results(values)


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


def _parameter(entry: dict[str, Any]) -> QgsProcessingParameterDefinition:
    name, label, kind = entry["qgis"], entry["label"], entry["type"]
    optional, default = entry["optional"], entry.get("default")
    if kind == "boolean":
        parameter = QgsProcessingParameterBoolean(name, label, bool(default))
    elif kind in ("integer", "number"):
        number = (
            QgsProcessingParameterNumber.Integer if kind == "integer" else QgsProcessingParameterNumber.Double
        )
        parameter = QgsProcessingParameterNumber(name, label, number, defaultValue=default, optional=optional)
        if "min" in entry:
            parameter.setMinimum(entry["min"])
            parameter.setMaximum(entry["max"])
    elif kind == "enum":
        choices = entry["choices"]
        parameter = QgsProcessingParameterEnum(
            name, label, choices, defaultValue=choices.index(default) if default in choices else 0
        )
    elif kind in ("bundle", "file"):
        parameter = QgsProcessingParameterFile(
            name, label, optional=optional, fileFilter=_FILTERS.get(kind, "All files (*.*)")
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
