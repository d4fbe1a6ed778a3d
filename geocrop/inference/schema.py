"""What the mapper needs from a model bundle's metadata, read once into a typed `BundleSpec`.

Keys read (written by `geocrop train`; see `geocrop.io.bundle` for the file format):

* ``backbone``: architecture spec (``{"name": "resmlp", "in_features": 12, ...}``) or ``None`` /
  ``"none"`` / ``{"name": "none"}`` for the supervised raw-band head;
* ``head``: the temporal head's spec (required for mapping);
* ``bands``: band order of the model's input (default: the 12 S2 bands);
* ``normalization`` (or ``normalisation``): ``{"mean": [...], "std": [...]}`` per band, applied to
  reflectance before the backbone (default 0 / 1);
* ``classes``: ``[{"value", "name", "color"}, ...]`` in logit order, or ``class_names`` (+ ``class_colors``);
* ``temporal_grid``: ``{"start", "end", "steps"}`` (steps default 144).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from geocrop.data.bands import S2_BANDS
from geocrop.errors import BundleError
from geocrop.io.classes import ClassInfo, check_classes

__all__ = ["DEFAULT_COLOURS", "BundleSpec", "parse_bundle_metadata"]

#: Colours given to classes a bundle lists without one (qualitative, distinguishable on a map).
DEFAULT_COLOURS: tuple[str, ...] = (
    "#e6ab02", "#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#a6761d", "#666666",
    "#1f78b4", "#b2df8a", "#fb9a99", "#cab2d6",
)  # fmt: skip


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


def _fail(source: str, problem: str) -> BundleError:
    return BundleError(
        f"model bundle {source}: {problem}; use a map-ready bundle from `geocrop train` "
        "(backbone + head + classes + normalisation + temporal grid)"
    )


def _classes(meta: Mapping[str, Any], source: str) -> tuple[ClassInfo, ...]:
    raw = meta.get("classes")
    if raw is None and "class_names" in meta:
        names = list(meta["class_names"])
        colours = list(meta.get("class_colors") or meta.get("class_colours") or [])
        raw = [{"name": n, "color": colours[i] if i < len(colours) else None} for i, n in enumerate(names)]
    if not isinstance(raw, Sequence) or isinstance(raw, str) or not raw:
        raise _fail(source, "it lists no classes (a pretrained backbone alone cannot map)")
    out = []
    for i, entry in enumerate(raw):
        if isinstance(entry, str):
            entry = {"name": entry}
        if not isinstance(entry, Mapping):
            raise _fail(source, f"class entry {entry!r} is neither a name nor an object")
        colour = entry.get("color") or entry.get("colour") or DEFAULT_COLOURS[i % len(DEFAULT_COLOURS)]
        out.append(ClassInfo(int(entry.get("value", i)), str(entry.get("name", f"class {i}")), str(colour)))
    return check_classes(out)


def _stats(meta: Mapping[str, Any], n: int, source: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    norm = meta.get("normalization", meta.get("normalisation")) or {}
    mean = [float(v) for v in norm.get("mean", [0.0] * n)]
    std = [float(v) for v in norm.get("std", [1.0] * n)]
    if len(mean) != n or len(std) != n:
        raise _fail(source, f"normalisation has {len(mean)} means and {len(std)} stds for {n} bands")
    if any(s <= 0 for s in std):
        raise _fail(source, "a normalisation std is not positive")
    return tuple(mean), tuple(std)


def _date(value: Any) -> dt.date | None:
    if value is None:
        return None
    return dt.date.fromisoformat(str(value)[:10])


def parse_bundle_metadata(meta: Mapping[str, Any], *, source: str) -> BundleSpec:
    """Validate a bundle's metadata for mapping; `BundleError` naming ``source`` and the missing part."""
    head = meta.get("head")
    if not isinstance(head, Mapping) or not head.get("name"):
        raise _fail(source, "it has no temporal head")
    backbone = meta.get("backbone")
    if isinstance(backbone, str) or (isinstance(backbone, Mapping) and backbone.get("name") == "none"):
        backbone = None
    if backbone is not None and not isinstance(backbone, Mapping):
        raise _fail(source, f"backbone spec {backbone!r} is not an object")
    bands = tuple(str(b) for b in meta.get("bands") or S2_BANDS)
    if backbone is not None and "in_features" in backbone and int(backbone["in_features"]) != len(bands):
        raise _fail(
            source,
            f"its backbone takes {backbone['in_features']} features but it lists {len(bands)} bands",
        )
    mean, std = _stats(meta, len(bands), source)
    grid = meta.get("temporal_grid") or {}
    try:
        steps = int(grid.get("steps", 144))
        start, end = _date(grid.get("start")), _date(grid.get("end"))
    except (TypeError, ValueError) as exc:
        raise _fail(source, f"its temporal grid {grid!r} is unreadable ({exc})") from exc
    return BundleSpec(
        bands=bands,
        mean=mean,
        std=std,
        classes=_classes(meta, source),
        steps=steps,
        head=dict(head),
        backbone=dict(backbone) if backbone is not None else None,
        grid_start=start,
        grid_end=end,
        name=str(meta.get("name") or source),
        metadata=dict(meta),
    )
