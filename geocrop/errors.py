"""The exception tree. Every message names the input, what was wrong with it, and how to fix it.

The CLI turns a `GeocropError` into one line on stderr and exit code 2; the QGIS plugin turns the same line
into a `QgsProcessingException`. Built-in bases are mixed in so callers can catch what they already know.
"""

from __future__ import annotations


class GeocropError(Exception):
    """Root of every error geocrop raises on purpose."""


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
