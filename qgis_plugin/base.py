"""`GeocropAlgorithm`: what every geocrop Processing algorithm shares.

A subclass declares its parameters (`declare`), maps them to the flags of one `geocrop` command
(`prepare` -> `GeocropCall`) and says what to return and load (`finish`). The base adds the advanced
'geocrop executable' parameter, the group/id/icon/help plumbing, the season check (the library's own
rule and words), finding and running geocrop with progress in the dialog (cancel ends its process group
and removes partial outputs), and turns a geocrop error into a `QgsProcessingException` that names the
algorithm's own parameter labels instead of CLI flags.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingParameterDateTime,
)
from qgis.PyQt.QtCore import QDate, Qt
from qgis.PyQt.QtGui import QIcon

from .common import EXECUTABLE_PARAMETER, executable_parameter, prepare_geocrop, run_with_feedback
from .declared import SEASON_RULE, DeclaredParameters
from .runner import RunResult, in_labels

ICON = Path(__file__).resolve().parent / "icon.svg"
HELP_URL = "https://github.com/geocrop/geocrop/blob/main/docs/qgis.md"


#: What a parameter label loses to name an argument in a sentence: "…or " and a trailing "(…)".
_LABEL_NOISE = re.compile(r"^…or\s+|\s*\([^()]*\)\s*$")


@dataclass(frozen=True)
class GeocropCall:
    """One `geocrop COMMAND ARGS` run: `args` after the command name (without `--progress`); `cleanup`
    the outputs whose partial files a cancelled or failed run removes; `values` for `finish`."""

    args: list[str]
    cleanup: list[Path] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)


class GeocropAlgorithm(QgsProcessingAlgorithm):
    """A Processing algorithm that runs one `geocrop` command out of process (see `runner.py`)."""

    #: The geocrop subcommand (`geocrop map`, `geocrop fields`...).
    COMMAND: ClassVar[str] = ""
    NAME: ClassVar[str] = ""
    DISPLAY_NAME: ClassVar[str] = ""
    HELP: ClassVar[str] = ""
    #: The heading of this algorithm in docs/qgis.md (its anchor), for the dialog's help button.
    HELP_ANCHOR: ClassVar[str] = ""
    TAGS: ClassVar[tuple[str, ...]] = ()
    GROUP: ClassVar[str] = "Crop mapping"
    GROUP_ID: ClassVar[str] = "cropmapping"
    #: Flags after `--progress json` (e.g. `--yes`).
    TRAILING_FLAGS: ClassVar[tuple[str, ...]] = ()
    #: Library argument name -> the parameter it comes from; a geocrop error about `end` then names the
    #: 'End date' parameter (see `argument_labels`).
    ARGUMENTS: ClassVar[Mapping[str, str]] = {}
    #: The parameters of `COMMAND` read from geocrop's declarations (`declared.py`), if built from them.
    DECLARED: ClassVar[DeclaredParameters | None] = None
    #: (start, end) parameter names when the algorithm takes a season.
    SEASON: ClassVar[tuple[str, str] | None] = None

    # -- identity -------------------------------------------------------------------------------------
    def name(self) -> str:
        return self.NAME

    def displayName(self) -> str:
        return self.DISPLAY_NAME

    def group(self) -> str:
        return self.GROUP

    def groupId(self) -> str:
        return self.GROUP_ID

    def shortHelpString(self) -> str:
        return self.HELP

    def helpUrl(self) -> str:
        return f"{HELP_URL}#{self.HELP_ANCHOR}" if self.HELP_ANCHOR else HELP_URL

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

    def declare(self) -> None:
        """Add this algorithm's parameters (the executable parameter is added after them)."""
        raise NotImplementedError

    def argument_labels(self) -> dict[str, str]:
        """Library argument -> this algorithm's label for it (`end` -> 'End date', `out` -> 'Crop map')."""
        labels = {}
        for argument, parameter in self.ARGUMENTS.items():
            definition = self.parameterDefinition(parameter)
            if definition is not None:
                labels[argument] = short_label(definition.description())
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

    def season(self, parameters: dict[str, Any], context: QgsProcessingContext) -> tuple[QDate, QDate]:
        assert self.SEASON is not None
        start, end = self.SEASON
        return (
            self.parameterAsDateTime(parameters, start, context).date(),
            self.parameterAsDateTime(parameters, end, context).date(),
        )

    def season_problem(self, parameters: dict[str, Any], context: QgsProcessingContext) -> str | None:
        """geocrop's season rule (start < end) in its words, with this algorithm's labels."""
        if self.SEASON is None:
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
        """The command's arguments from the parameters (temporary input files written here)."""
        raise NotImplementedError

    def finish(
        self,
        parameters: dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
        call: GeocropCall,
        result: RunResult,
    ) -> dict[str, Any]:
        """The algorithm's results after a successful run (and which outputs QGIS loads, styled); an
        algorithm built from geocrop's declarations (`DECLARED`) gets them from there."""
        if self.DECLARED is None:
            raise NotImplementedError
        return self.DECLARED.finish(self, context, call.values, result.outputs)

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
        args = [self.COMMAND, *call.args, "--progress", "json", *self.TRAILING_FLAGS]
        try:
            result = run_with_feedback(
                command, args, feedback, outputs=call.cleanup, labels=self.argument_labels()
            )
        except QgsProcessingException as exc:
            if f"No such command '{self.COMMAND}'" not in str(exc):
                raise
            raise QgsProcessingException(
                f"{self.DISPLAY_NAME} needs `geocrop {self.COMMAND}`, which the geocrop at '{command}' does "
                "not have; upgrade it (`pip install --upgrade path/to/geocrop`)."
            ) from None
        results = self.finish(parameters, context, feedback, call, result)
        feedback.setProgress(100.0)
        return results


def short_label(description: str) -> str:
    """A parameter's label as a sentence names it: 'Maximum scene cloud cover (%)' -> 'Maximum scene
    cloud cover', '…or area of interest (extent)' -> 'Area of interest'."""
    text = _LABEL_NOISE.sub("", description.strip()).strip()
    return text[:1].upper() + text[1:]


def given(value: Any) -> bool:
    """Processing passes an unset optional parameter as None, '' or an invalid QVariant."""
    if value is None:
        return False
    if hasattr(value, "isNull") and callable(value.isNull) and value.isNull():
        return False
    return not (isinstance(value, str) and not value.strip())


def iso(date: QDate) -> str:
    return str(date.toString(Qt.ISODate))


def output_path(path: str, *, suffixes: Sequence[str], label: str, kind: str) -> Path:
    """An output file name geocrop accepts (one of `suffixes`), its folder created."""
    out = Path(path)
    if out.suffix.lower() not in suffixes:
        raise QgsProcessingException(
            f"{label} '{path}': geocrop writes {kind}; use a {suffixes[0]} file name."
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def date_parameter(name: str, label: str, default: QDate) -> QgsProcessingParameterDateTime:
    return QgsProcessingParameterDateTime(
        name, label, QgsProcessingParameterDateTime.Date, defaultValue=default
    )
