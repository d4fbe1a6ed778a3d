"""The exception tree. Every message names the input, what was wrong with it, and how to fix it.

The CLI turns a `GeocropError` into one line on stderr and exit code 2; the QGIS plugin turns the same line
into a `QgsProcessingException`. Built-in bases are mixed in so callers can catch what they already know.

Library terms: an error about one argument carries its name in ``param`` (as a Python caller writes it:
``"end"``, ``"out"``) and writes argument names in its message between backticks (`` `end` ``); no message
below `geocrop.cli` spells a command-line flag (``tests/test_messages.py`` holds this). Each edge
translates the names (`translate_arguments`): the CLI to the running command's flags
(`geocrop.cli.flags.in_flags`: `` `end` `` -> ``--end``), the QGIS plugin to its parameter labels.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable

#: An argument name inside a library message: `` `name` ``.
_PARAM = re.compile(r"`([A-Za-z_][A-Za-z0-9_]*)`")


class GeocropError(Exception):
    """Root of every error geocrop raises on purpose.

    ``param``: the argument the error is about, as the Python caller wrote it (None when it is not about
    one argument).
    """

    def __init__(self, *args: object, param: str | None = None) -> None:
        super().__init__(*args)
        self.param = param


def as_flag(name: str) -> str:
    """The CLI flag of a library argument name: ``max_cloud`` -> ``--max-cloud``."""
    return "--" + name.replace("_", "-")


def translate_arguments(text: str, name_for: Callable[[str], str]) -> str:
    """``text`` with every `` `argument` `` replaced by ``name_for(argument)`` (a flag, a label)."""
    return _PARAM.sub(lambda m: name_for(m.group(1)), text)


class InputError(GeocropError, ValueError):
    """A user-supplied value or file is invalid (bad AOI, unknown column, wrong option)."""


class SourceError(GeocropError, OSError):
    """A data source is missing, unreadable, unreachable or corrupt."""


class NoDataError(GeocropError):
    """The sources are readable but hold nothing usable (no overlap, no dates, every pixel clouded)."""


class BundleError(GeocropError):
    """A model bundle is missing, corrupt, or does not fit the data or the requested use."""


class OutputError(GeocropError, OSError):
    """The output location cannot be written."""


class GeocropWarning(UserWarning):
    """Root of every warning geocrop gives on purpose: a degraded but usable result, in library terms.

    Shown as one line, ``geocrop: warning: <message>``, without the file path and source line Python
    prints by default (they point inside geocrop, not at the user's problem): `format_warning` is
    installed as `warnings.formatwarning` when this module is imported and handles this class alone,
    leaving other warnings to the formatter that was there before. A `UserWarning`, so filters and
    ``pytest.warns(UserWarning)`` still catch it.
    """


def format_warning(
    message: Warning | str, category: type[Warning], filename: str, lineno: int, line: str | None = None
) -> str:
    """`warnings.formatwarning` for a `GeocropWarning`: ``geocrop: warning: <message>``, one line."""
    if issubclass(category, GeocropWarning):
        return f"geocrop: warning: {message}\n"
    return _chained(message, category, filename, lineno, line)


#: The formatter that was installed before geocrop's: every other warning still goes through it.
_chained: Callable[..., str] = warnings.formatwarning
if getattr(_chained, "__module__", "") == __name__:  # a reload: keep the original chain
    _chained = warnings._formatwarning_orig  # type: ignore[attr-defined]
warnings.formatwarning = format_warning
