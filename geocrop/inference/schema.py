"""What the mapper needs from a model bundle's metadata, read once into a typed `BundleSpec`.

Keys read (written by `geocrop train`; typed and read in every older spelling by
`geocrop.io.bundle_metadata`; see `geocrop.io.bundle` for the file format):

* ``backbone``: architecture spec (``{"name": "resmlp", "in_features": 12, ...}``) or ``None`` /
  ``"none"`` / ``{"name": "none"}`` for the supervised raw-band head;
* ``head``: the temporal head's spec (required for mapping);
* ``bands``: band order of the model's input (default: the 12 S2 bands);
* ``normalization`` (or ``normalisation``): ``{"mean": [...], "std": [...]}`` per band, applied to
  reflectance before the backbone (default 0 / 1);
* ``classes``: ``[{"value", "name", "color"}, ...]`` in logit order, or ``class_names`` (+ ``class_colors``);
* ``temporal_grid``: ``{"start", "end", "steps"}`` (steps default 144);
* ``class_frequencies``, ``temperature``, ``head_prior``: the training class shares, the fitted
  temperature and the prior the head decides under, that
  `geocrop.inference.priors` applies to the logits (absent in older bundles: no correction).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from geocrop.core.bands import S2_BANDS
from geocrop.io.bundle_metadata import read_classifier_metadata
from geocrop.io.classes import ClassInfo

__all__ = ["BundleSpec", "parse_bundle_metadata"]


@dataclass(frozen=True)
class BundleSpec:
    """The parts of a bundle the engine and the mapper use."""

    bands: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    classes: tuple[ClassInfo, ...]
    steps: int
    head: dict[str, Any]
    backbone: dict[str, Any] | None = None
    grid_start: dt.date | None = None
    grid_end: dt.date | None = None
    name: str = "model"
    metadata: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    #: Training class shares before class balancing (logit order), None when the bundle has none.
    class_frequencies: tuple[float, ...] | None = None
    #: Temperature fitted on held-out logits; 1.0 when the bundle has none.
    temperature: float = 1.0
    #: The prior the head decides under: ``uniform`` (class-balanced loss), ``training`` or ``s`` in [0, 1].
    head_prior: str | float = "uniform"


def parse_bundle_metadata(meta: Mapping[str, Any], *, source: str) -> BundleSpec:
    """Validate a bundle's metadata for mapping; `BundleError` naming ``source`` and the missing part.

    Reading (every spelling written so far) is `geocrop.io.bundle_metadata.read_classifier_metadata`'s.
    """
    typed = read_classifier_metadata(meta, source=source, default_bands=S2_BANDS)
    return BundleSpec(
        bands=typed.bands,
        mean=typed.normalization.mean,
        std=typed.normalization.std,
        classes=typed.classes,
        steps=typed.steps,
        head=typed.head,
        backbone=typed.backbone,
        grid_start=typed.grid_start,
        grid_end=typed.grid_end,
        name=typed.name or source,
        metadata=dict(meta),
        class_frequencies=typed.class_frequencies,
        temperature=1.0 if typed.temperature is None else typed.temperature,
        head_prior="uniform" if typed.head_prior is None else typed.head_prior,
    )


def spec_for_modules(
    *,
    bands: Sequence[str],
    classes: Sequence[Mapping[str, Any]] | Sequence[str],
    steps: int,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> BundleSpec:
    """A `BundleSpec` for modules built in memory (tests, benchmarks): unit statistics by default."""
    n = len(bands)
    entries = [c if isinstance(c, Mapping) else {"name": c} for c in classes]
    return parse_bundle_metadata(
        {
            "bands": list(bands),
            "normalization": {"mean": list(mean or [0.0] * n), "std": list(std or [1.0] * n)},
            "classes": entries,
            "temporal_grid": {"steps": steps},
            "backbone": None,
            "head": {"name": "in-memory"},
        },
        source="in-memory model",
    )
