"""The metadata of a classifier bundle (what `geocrop train` writes and `map`/`predict` read), typed.

One dataclass, `ClassifierMetadata`, with one spelling of every key; `read_classifier_metadata` reads
every bundle written so far, and `ClassifierMetadata.to_dict` writes the current form:

==========================  =========================================================================
key                         meaning
==========================  =========================================================================
``kind``                    ``"classifier"``
``classifier_schema``       this schema's version (`CLASSIFIER_SCHEMA`); absent in bundles before it
``backbone``                the per-pixel encoder's spec, or ``{"name": "none"}`` (raw bands)
``head``                    the temporal head's spec (``name`` + constructor keywords)
``bands``                   the model's input band order
``normalization``           ``{"mean": [...], "std": [...]}`` per band (older: ``normalisation``)
``classes``                 ``[{"value", "name", "color"}]`` in logit order (older: ``class_names`` +
                            ``class_colors``/``class_colours``)
``temporal_grid``           ``{"start", "end", "steps"}``
``missing_bands``           bands filled by the band rule when the training data lacked them
``backbone_source``         where the encoder came from: ``path``, ``mode``, ``loss``,
                            ``corruption_rate`` (older: ``corruption``)
``training``/``provenance`` free-form records of the training run and its data (`geocrop.io.provenance`)
==========================  =========================================================================

Other keys are kept in ``extra`` and written back unchanged. The file format around it (safetensors
header, ``format_version``) is `geocrop.io.bundle`'s. Numpy-free and torch-free.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from geocrop.errors import BundleError
from geocrop.io.classes import ClassInfo, check_classes

__all__ = [
    "CLASSIFIER_SCHEMA",
    "DEFAULT_COLOURS",
    "ClassifierMetadata",
    "Normalization",
    "read_classifier_metadata",
    "read_normalization",
]

#: Version of the classifier metadata schema this module writes (and the newest it reads).
CLASSIFIER_SCHEMA = 1
#: Colours given to classes a bundle lists without one (qualitative, distinguishable on a map).
DEFAULT_COLOURS: tuple[str, ...] = (
    "#e6ab02", "#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#a6761d", "#666666",
    "#1f78b4", "#b2df8a", "#fb9a99", "#cab2d6",
)  # fmt: skip
#: Keys this module reads into fields (everything else goes to ``extra``), with their older spellings.
_KNOWN = {
    "kind", "classifier_schema", "format_version", "backbone", "head", "bands", "normalization",
    "normalisation", "classes", "class_names", "class_colors", "class_colours", "temporal_grid",
    "missing_bands", "backbone_source", "training", "provenance", "name",
}  # fmt: skip


@dataclass(frozen=True)
class Normalization:
    """Per-band ``(reflectance - mean) / std`` applied before the backbone."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": list(self.mean), "std": list(self.std)}


@dataclass(frozen=True)
class ClassifierMetadata:
    """A map-ready bundle's metadata (see the module docstring for the keys)."""

    head: dict[str, Any]
    bands: tuple[str, ...]
    normalization: Normalization
    classes: tuple[ClassInfo, ...]
    steps: int
    backbone: dict[str, Any] | None = None
    grid_start: dt.date | None = None
    grid_end: dt.date | None = None
    missing_bands: tuple[str, ...] = ()
    backbone_source: dict[str, Any] | None = None
    training: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    name: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: The schema version the metadata was read from (0: written before `CLASSIFIER_SCHEMA` existed).
    schema: int = CLASSIFIER_SCHEMA

    def to_dict(self) -> dict[str, Any]:
        """The metadata in the current spelling, for `geocrop.io.bundle.save_bundle`."""
        grid: dict[str, Any] = {"steps": self.steps}
        if self.grid_start is not None:
            grid["start"] = self.grid_start.isoformat()
        if self.grid_end is not None:
            grid["end"] = self.grid_end.isoformat()
        out: dict[str, Any] = {
            **self.extra,
            "kind": "classifier",
            "classifier_schema": CLASSIFIER_SCHEMA,
            "backbone": dict(self.backbone) if self.backbone is not None else {"name": "none"},
            "head": dict(self.head),
            "bands": list(self.bands),
            "normalization": self.normalization.to_dict(),
            "classes": [{"value": c.value, "name": c.name, "color": c.color} for c in self.classes],
            "temporal_grid": grid,
            "missing_bands": list(self.missing_bands),
        }
        if self.backbone_source is not None:
            out["backbone_source"] = dict(self.backbone_source)
        for key in ("training", "provenance"):
            if getattr(self, key):
                out[key] = dict(getattr(self, key))
        if self.name is not None:
            out["name"] = self.name
        return out


def _fail(source: str, problem: str) -> BundleError:
    return BundleError(
        f"model bundle {source}: {problem}; use a map-ready bundle from `geocrop train` "
        "(backbone + head + classes + normalisation + temporal grid)"
    )


def read_normalization(meta: Mapping[str, Any], n: int) -> Normalization | None:
    """The per-band statistics under either spelling (``normalization``/``normalisation``); 0/1 when the
    bundle has none; None when the counts do not match ``n`` bands or a std is not positive."""
    norm = meta.get("normalization") or meta.get("normalisation") or {}
    try:
        mean = tuple(float(v) for v in norm.get("mean", [0.0] * n))
        std = tuple(float(v) for v in norm.get("std", [1.0] * n))
    except (AttributeError, TypeError, ValueError):
        return None
    if len(mean) != n or len(std) != n or any(not s > 0 for s in std):
        return None
    return Normalization(mean, std)


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


def _date(value: Any) -> dt.date | None:
    return None if value is None else dt.date.fromisoformat(str(value)[:10])


def _backbone_source(raw: Any) -> dict[str, Any] | None:
    if not isinstance(raw, Mapping):
        return None
    out = {k: v for k, v in raw.items() if k != "corruption"}
    if "corruption_rate" not in out and "corruption" in raw:
        out["corruption_rate"] = raw["corruption"]
    return out


def read_classifier_metadata(
    meta: Mapping[str, Any], *, source: str, default_bands: Sequence[str]
) -> ClassifierMetadata:
    """Validate and type a classifier bundle's metadata, any spelling written so far.

    ``default_bands``: the band order of bundles that do not record one (the 12 Sentinel-2 bands,
    `geocrop.core.bands.S2_BANDS`, for every bundle written so far).

    `BundleError` naming ``source`` and the missing or broken part (no head, no classes, statistics or
    grid that do not fit, a schema newer than this geocrop reads).
    """
    schema = meta.get("classifier_schema", 0)
    if not isinstance(schema, int) or schema > CLASSIFIER_SCHEMA:
        raise BundleError(
            f"model bundle {source} has classifier_schema {schema!r} but this geocrop reads up to "
            f"{CLASSIFIER_SCHEMA}; upgrade geocrop"
        )
    head = meta.get("head")
    if not isinstance(head, Mapping) or not head.get("name"):
        raise _fail(source, "it has no temporal head")
    backbone = meta.get("backbone")
    if isinstance(backbone, str) or (isinstance(backbone, Mapping) and backbone.get("name") == "none"):
        backbone = None
    if backbone is not None and not isinstance(backbone, Mapping):
        raise _fail(source, f"backbone spec {backbone!r} is not an object")
    bands = tuple(str(b) for b in meta.get("bands") or default_bands)
    if backbone is not None and "in_features" in backbone and int(backbone["in_features"]) != len(bands):
        raise _fail(
            source,
            f"its backbone takes {backbone['in_features']} features but it lists {len(bands)} bands",
        )
    norm = read_normalization(meta, len(bands))
    if norm is None:
        raise _fail(source, f"its normalisation does not give {len(bands)} means and positive stds")
    grid = meta.get("temporal_grid") or {}
    try:
        steps = int(grid.get("steps", 144))
        start, end = _date(grid.get("start")), _date(grid.get("end"))
    except (AttributeError, TypeError, ValueError) as exc:
        raise _fail(source, f"its temporal grid {grid!r} is unreadable ({exc})") from exc
    return ClassifierMetadata(
        head=dict(head),
        bands=bands,
        normalization=norm,
        classes=_classes(meta, source),
        steps=steps,
        backbone=dict(backbone) if backbone is not None else None,
        grid_start=start,
        grid_end=end,
        missing_bands=tuple(str(b) for b in meta.get("missing_bands") or ()),
        backbone_source=_backbone_source(meta.get("backbone_source")),
        training=dict(meta.get("training") or {}),
        provenance=dict(meta.get("provenance") or {}),
        name=None if meta.get("name") is None else str(meta["name"]),
        extra={k: v for k, v in meta.items() if k not in _KNOWN},
        schema=schema,
    )
