"""`GeocropAlgorithm`: what every geocrop Processing algorithm shares.

A subclass names its `geocrop` command and reads that command's declared parameters (`DECLARED`, from
`declared.json`: parameters, arguments, outputs and what is loaded after the run), adding only what is
QGIS's own: its name and help, a parameter geocrop does not declare (the map's area, train's head), an
output besides the declared ones (`EXTRA`). The base adds the advanced 'geocrop executable' parameter,
the group/id/icon/help plumbing, the season check (the library's own rule and words), finding and
running geocrop with progress in the dialog (cancel ends its process group and removes partial
outputs), and turns a geocrop error into a `QgsProcessingException` that names the algorithm's own
parameter labels instead of CLI flags.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingOutputFile,
    QgsProcessingOutputHtml,
    QgsProcessingOutputNumber,
    QgsProcessingOutputRasterLayer,
    QgsProcessingParameterDateTime,
)
from qgis.PyQt.QtCore import QDate, Qt
from qgis.PyQt.QtGui import QIcon

from .common import EXECUTABLE_PARAMETER, executable_parameter, prepare_geocrop, run_with_feedback
from .declared import SEASON_RULE, DeclaredParameters, GeocropCall, output_path, short
from .runner import RunResult, in_labels

__all__ = [
    "Extra",
    "GeocropAlgorithm",
    "GeocropCall",
    "date_parameter",
    "given",
    "iso",
    "output_path",
    "short_label",
]
#: The label of a parameter as a sentence names it (the name algorithms have imported it by).
short_label = short

#: Outputs besides the declared ones: QGIS name -> (the key of geocrop's `done` event that gives its
#: path, or "" when `GeocropAlgorithm.computed` gives it; label; kind: raster, html, file or number).
Extra = Mapping[str, tuple[str, str, str]]

ICON = Path(__file__).resolve().parent / "icon.svg"
HELP_URL = "https://github.com/geocrop/geocrop/blob/main/docs/qgis.md"
#: The outputs an algorithm may add besides its declared ones (`GeocropAlgorithm.EXTRA`).
_EXTRA_OUTPUTS = {
    "raster": QgsProcessingOutputRasterLayer,
    "html": QgsProcessingOutputHtml,
    "file": QgsProcessingOutputFile,
    "number": QgsProcessingOutputNumber,
}


class GeocropAlgorithm(QgsProcessingAlgorithm):
    """A Processing algorithm that runs one `geocrop` command out of process (see `runner.py`)."""

    #: The geocrop subcommand (`geocrop map`, `geocrop fields`...); default: the one `DECLARED` reads.
    COMMAND: ClassVar[str] = ""
    NAME: ClassVar[str] = ""
    DISPLAY_NAME: ClassVar[str] = ""
    HELP: ClassVar[str] = ""
    #: Ends every help but the one that says how to install geocrop.
    HELP_END: ClassVar[str] = (
        "<p>geocrop runs as a separate program (see <i>Map crops in area</i> for installing it).</p>"
    )
    TAGS: ClassVar[tuple[str, ...]] = ()
    GROUP: ClassVar[str] = "Crop mapping"
    GROUP_ID: ClassVar[str] = "cropmapping"
    #: Flags after `--progress json` (e.g. `--yes`).
    TRAILING_FLAGS: ClassVar[tuple[str, ...]] = ()
    #: Library argument name -> the parameter it comes from, for the parameters the algorithm builds
    #: itself (the declared ones come with `DECLARED`); a geocrop error about `end` then names the
    #: 'End date' parameter (see `argument_labels`).
    ARGUMENTS: ClassVar[Mapping[str, str]] = {}
    #: The parameters of `COMMAND` read from geocrop's declarations (`declared.py`); an algorithm without
    #: them implements `declare`, `prepare` and `finish` itself.
    DECLARED: ClassVar[DeclaredParameters | None] = None
    #: Outputs besides the declared ones (`Extra`).
    EXTRA: ClassVar[Extra] = {}
    #: (start, end) parameter names when the algorithm takes a season it builds itself (a declared
    #: season is found in `DECLARED`: see `season_parameters`).
    SEASON: ClassVar[tuple[str, str] | None] = None

    # -- identity -------------------------------------------------------------------------------------
    @property
    def declared(self) -> DeclaredParameters:
        if self.DECLARED is None:
            raise NotImplementedError(f"{type(self).__name__} implements declare, prepare and finish itself")
        return self.DECLARED

    @property
    def command(self) -> str:
        return self.COMMAND or self.declared.command

    def name(self) -> str:
        return self.NAME

    def displayName(self) -> str:
        return self.DISPLAY_NAME

    def group(self) -> str:
        return self.GROUP

    def groupId(self) -> str:
        return self.GROUP_ID

    def shortHelpString(self) -> str:
        return self.HELP + self.HELP_END

    def helpUrl(self) -> str:
        """docs/qgis.md at the heading named like the algorithm ('Smooth crop map' -> #smooth-crop-map)."""
        anchor = getattr(self, "HELP_ANCHOR", "") or "-".join(self.DISPLAY_NAME.lower().split())
        return f"{HELP_URL}#{anchor}"

    def tags(self) -> list[str]:
        return list(self.TAGS)

    def icon(self) -> QIcon:
        return QIcon(str(ICON))

    def svgIconPath(self) -> str:
        return str(ICON)

    def createInstance(self) -> GeocropAlgorithm:
        return type(self)()

    # -- parameters -----------------------------------------------------------------------------------
    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:
        self.declare()
        self.addParameter(executable_parameter())
        for name, (_key, label, kind) in self.EXTRA.items():
            self.addOutput(_EXTRA_OUTPUTS[kind](name, label))

    def declare(self) -> None:
        """Add this algorithm's parameters (the executable parameter is added after them): the declared
        ones; an algorithm with parameters of its own adds them around these."""
        self.declared.add(self.addParameter)

    def arguments(self) -> dict[str, str]:
        """Library argument -> the parameter it comes from: the declared ones and the algorithm's own."""
        return {**(self.DECLARED.arguments() if self.DECLARED else {}), **self.ARGUMENTS}

    def argument_labels(self) -> dict[str, str]:
        """Library argument -> this algorithm's label for it (`end` -> 'End date', `out` -> 'Crop map')."""
        labels = {}
        for argument, parameter in self.arguments().items():
            definition = self.parameterDefinition(parameter)
            if definition is not None:
                labels[argument] = short(definition.description())
        return labels

    def in_labels(self, text: str, *, fallback: str | None = None) -> str:
        """A library-terms message (`` `end` ``) in this algorithm's labels ('End date')."""
        return in_labels(fallback or text, text, self.argument_labels())

    def checkParameterValues(
        self, parameters: dict[str, Any], context: QgsProcessingContext
    ) -> tuple[bool, str]:
        # Layer checks first, so an unreadable layer gets the plugin's message rather than Processing's.
        problem = self.check_layers(parameters, context)
        if problem:
            return False, problem
        ok, message = super().checkParameterValues(parameters, context)
        if not ok:
            return ok, message
        problem = self.season_problem(parameters, context) or self.check(parameters, context)
        return (False, problem) if problem else (True, "")

    def check_layers(self, parameters: dict[str, Any], context: QgsProcessingContext) -> str | None:
        """Why an input layer cannot be used (checked before Processing's own checks), or None."""
        return None

    def check(self, parameters: dict[str, Any], context: QgsProcessingContext) -> str | None:
        """Why the values cannot be run (after Processing's checks and the season's), or None."""
        return None

    def season_parameters(self) -> tuple[str, str] | None:
        """The (start, end) parameters of the algorithm's season, or None when it takes none."""
        return self.SEASON or (self.DECLARED.season() if self.DECLARED else None)

    def season(self, parameters: dict[str, Any], context: QgsProcessingContext) -> tuple[QDate, QDate]:
        names = self.season_parameters()
        assert names is not None
        start, end = names
        return (
            self.parameterAsDateTime(parameters, start, context).date(),
            self.parameterAsDateTime(parameters, end, context).date(),
        )

    def season_problem(self, parameters: dict[str, Any], context: QgsProcessingContext) -> str | None:
        """geocrop's season rule (start < end) in its words, with this algorithm's labels."""
        if self.season_parameters() is None:
            return None
        start, end = self.season(parameters, context)
        if not (start.isValid() and end.isValid()):
            labels = self.argument_labels()
            first, last = labels.get("start", "Start date"), labels.get("end", "End date")
            return f"Give '{first}' and '{last}' as dates (YYYY-MM-DD)."
        if end <= start:
            return self.in_labels(SEASON_RULE.format(start=iso(start), end=iso(end)))
        return None

    def season_args(self, parameters: dict[str, Any], context: QgsProcessingContext) -> list[str]:
        """`--start S --end E`, checked again (a script may call processAlgorithm directly)."""
        problem = self.season_problem(parameters, context)
        if problem:
            raise QgsProcessingException(problem)
        start, end = self.season(parameters, context)
        return ["--start", iso(start), "--end", iso(end)]

    # -- running --------------------------------------------------------------------------------------
    def prepare(
        self, parameters: dict[str, Any], context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> GeocropCall:
        """The command's arguments from the parameters: the season's, then the declared ones (layers
        written to temporary files, output paths checked: `DeclaredParameters.call`)."""
        season = self.season_args(parameters, context) if self.season_parameters() else []
        call = self.declared.call(self, parameters, context, feedback)
        return GeocropCall([*season, *call.args], call.cleanup, call.values)

    def finish(
        self,
        parameters: dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
        call: GeocropCall,
        result: RunResult,
    ) -> dict[str, Any]:
        """The algorithm's results after a successful run (and which outputs QGIS loads, styled): the
        declared outputs (`DeclaredParameters.finish`), the algorithm's own output parameters (each
        checked written), each `EXTRA` output geocrop says it wrote, and the `computed` ones."""
        results = self.declared.finish(self, context, call.values, result.outputs)
        for argument, name in self.ARGUMENTS.items():  # an output of the algorithm's own (a bundle)
            definition = self.parameterDefinition(name)
            if definition is not None and definition.isDestination() and argument in call.values:
                self.written(call.values[argument], short(definition.description()).lower())
                results[name] = call.values[argument]
        for name, (key, _label, _kind) in self.EXTRA.items():
            path = result.outputs.get(key) if key else None
            results[name] = path if path and Path(path).exists() else None
        return {**results, **self.computed(call.values, feedback)}

    def computed(self, values: dict[str, Any], feedback: QgsProcessingFeedback) -> dict[str, Any]:
        """The `EXTRA` outputs the algorithm computes from what geocrop wrote (``values``: the run's
        paths by argument name), after a successful run."""
        return {}

    @staticmethod
    def written(path: str | Path, what: str) -> None:
        """`QgsProcessingException` when geocrop succeeded without writing ``path`` (``what`` names it)."""
        if not Path(path).is_file():
            raise QgsProcessingException(f"geocrop finished but wrote no {what} at '{path}'.")

    def processAlgorithm(
        self, parameters: dict[str, Any], context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> dict[str, Any]:
        call = self.prepare(parameters, context, feedback)
        command = prepare_geocrop(self.parameterAsString(parameters, EXECUTABLE_PARAMETER, context), feedback)
        # every command speaks `--progress json`: progress events, errors with `param` and `text`
        args = [self.command, *call.args, "--progress", "json", *self.TRAILING_FLAGS]
        try:
            result = run_with_feedback(
                command, args, feedback, outputs=call.cleanup, labels=self.argument_labels()
            )
        except QgsProcessingException as exc:
            if f"No such command '{self.command}'" not in str(exc):
                raise
            raise QgsProcessingException(
                f"{self.DISPLAY_NAME} needs `geocrop {self.command}`, which the geocrop at '{command}' does "
                "not have; upgrade it (`pip install --upgrade path/to/geocrop`)."
            ) from None
        results = self.finish(parameters, context, feedback, call, result)
        feedback.setProgress(100.0)
        return results


def given(value: Any) -> bool:
    """Processing passes an unset optional parameter as None, '' or an invalid QVariant."""
    if value is None:
        return False
    if hasattr(value, "isNull") and callable(value.isNull) and value.isNull():
        return False
    return not (isinstance(value, str) and not value.strip())


def iso(date: QDate) -> str:
    return str(date.toString(Qt.ISODate))


def date_parameter(name: str, label: str, default: QDate) -> QgsProcessingParameterDateTime:
    return QgsProcessingParameterDateTime(
        name, label, QgsProcessingParameterDateTime.Date, defaultValue=default
    )
