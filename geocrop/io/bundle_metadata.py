"""The metadata of classifier bundles, typed, read and written here (pretrained encoders:
`geocrop.io.encoder_metadata`, which shares `Normalization` and `read_normalization`).

A classifier bundle is what `geocrop train` writes and `map`/`predict` read.

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
``class_frequencies``       each class's share of the training series before class balancing, in logit
                            order (sums to 1); absent in bundles before schema 2: no prior correction
``temperature``             the temperature T fitted on the inner validation split (logits / T); absent:
                            1 (uncalibrated). See `geocrop.training.calibration`
``head_prior``              the prior the head's raw outputs decide under: ``uniform`` (a class-balanced
                            loss), ``training`` (the training frequencies: the tree heads) or a number
                            ``s`` in [0, 1]: the frequencies to the power ``s``, fitted with T
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
from geocrop.io.classes import CLASS_PALETTE, ClassInfo, check_classes

__all__ = [
    "CLASSIFIER_SCHEMA",
    "ClassifierMetadata",
    "Normalization",
    "read_backbone_source",
    "read_classifier_metadata",
    "read_normalization",
]

#: Version of the classifier metadata schema this module writes (and the newest it reads).
CLASSIFIER_SCHEMA = 2
#: Keys this module reads into fields (everything else goes to ``extra``), with their older spellings.
_KNOWN = {
    "kind", "classifier_schema", "format_version", "backbone", "head", "bands", "normalization",
    "normalisation", "classes", "class_names", "class_colors", "class_colours", "temporal_grid",
    "missing_bands", "backbone_source", "training", "provenance", "name", "class_frequencies",
    "temperature", "head_prior",
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
    #: Each class's share of the training series before class balancing (logit order; None: not
    #: recorded, so `map`/`predict` cannot correct for class priors).
    class_frequencies: tuple[float, ...] | None = None
    #: Temperature fitted on held-out logits (None: not fitted, read as 1).
    temperature: float | None = None
    #: ``uniform``, ``training`` or ``s`` in [0, 1] (frequencies ** s): the prior the head decides under
    #: (None: not recorded, read as uniform).
    head_prior: str | float | None = None

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
        if self.class_frequencies is not None:
            out["class_frequencies"] = list(self.class_frequencies)
        if self.temperature is not None:
            out["temperature"] = self.temperature
        if self.head_prior is not None:
            out["head_prior"] = self.head_prior
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
        colour = entry.get("color") or entry.get("colour") or CLASS_PALETTE[i % len(CLASS_PALETTE)]
        out.append(ClassInfo(int(entry.get("value", i)), str(entry.get("name", f"class {i}")), str(colour)))
    return check_classes(out)


def _frequencies(meta: Mapping[str, Any], n_classes: int, source: str) -> tuple[float, ...] | None:
    """The training class shares as written (users normalise them), None when absent; `BundleError` when
    they are not one non-negative number per class with a positive sum."""
    raw = meta.get("class_frequencies")
    if raw is None:
        return None
    try:
        values = tuple(float(v) for v in raw)
    except (TypeError, ValueError):
        values = ()
    total = sum(values)
    if len(values) != n_classes or not all(0 <= v < float("inf") for v in values) or not total > 0:
        raise _fail(source, f"its class_frequencies {raw!r} are not {n_classes} non-negative shares")
    return values


def _temperature(meta: Mapping[str, Any], source: str) -> float | None:
    raw = meta.get("temperature")
    if raw is None:
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = float("nan")
    if not 0 < value < float("inf"):
        raise _fail(source, f"its temperature {raw!r} is not a positive number")
    return value


def _head_prior(meta: Mapping[str, Any], source: str) -> str | float | None:
    raw = meta.get("head_prior")
    if isinstance(raw, (int, float)) and not isinstance(raw, bool) and 0 <= raw <= 1:
        return float(raw)  # a partial prior: the training frequencies to this power
    if raw is not None and raw not in ("uniform", "training"):
        raise _fail(source, f"its head_prior {raw!r} is neither 'uniform', 'training' nor a number in [0, 1]")
    return None if raw is None else str(raw)


def _date(value: Any) -> dt.date | None:
    return None if value is None else dt.date.fromisoformat(str(value)[:10])


def read_backbone_source(raw: Any) -> dict[str, Any] | None:
    """Where a classifier's encoder came from (``path``, ``mode``, ``loss``, ``corruption_rate``), the older
    ``corruption`` read as ``corruption_rate``; None when ``raw`` is not a mapping."""
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
    classes = _classes(meta, source)
    return ClassifierMetadata(
        head=dict(head),
        bands=bands,
        normalization=norm,
        classes=classes,
        steps=steps,
        backbone=dict(backbone) if backbone is not None else None,
        grid_start=start,
        grid_end=end,
        missing_bands=tuple(str(b) for b in meta.get("missing_bands") or ()),
        backbone_source=read_backbone_source(meta.get("backbone_source")),
        training=dict(meta.get("training") or {}),
        provenance=dict(meta.get("provenance") or {}),
        name=None if meta.get("name") is None else str(meta["name"]),
        extra={k: v for k, v in meta.items() if k not in _KNOWN},
        schema=schema,
        class_frequencies=_frequencies(meta, len(classes), source),
        temperature=_temperature(meta, source),
        head_prior=_head_prior(meta, source),
    )
