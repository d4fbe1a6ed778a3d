"""The metadata of model bundles, typed, read and written here: classifiers and pretrained encoders.

A classifier bundle is what `geocrop train` writes and `map`/`predict` read; a pretrained encoder is what
`geocrop pretrain` writes (`EncoderMetadata`, `read_encoder_metadata`: ``kind: pretrained_encoder``,
``encoder_schema``, ``normalization``, ``corruption_rate``, the second view's keys under its sensor's
prefix ``planet_`` or ``s1_``; the older ``normalisation`` and ``corruption`` spellings still read).

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
    "ENCODER_SCHEMA",
    "ClassifierMetadata",
    "EncoderMetadata",
    "Normalization",
    "SecondView",
    "read_backbone_source",
    "read_classifier_metadata",
    "read_encoder_metadata",
    "read_normalization",
]

#: Version of the classifier metadata schema this module writes (and the newest it reads).
CLASSIFIER_SCHEMA = 2
#: Version of the pretrained-encoder metadata schema this module writes (and the newest it reads).
ENCODER_SCHEMA = 1
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


@dataclass(frozen=True)
class SecondView:
    """The second encoder of a bi-modal pretraining bundle: PlanetScope's 3x3 window or Sentinel-1 VV/VH.

    Its keys carry the sensor's prefix (``planet_backbone``, ``s1_normalization``...), as its tensors do.
    """

    sensor: str  # "planetscope" or "sentinel-1"
    backbone: dict[str, Any]
    projector: dict[str, Any]
    bands: tuple[str, ...]
    normalization: Normalization
    #: How the inputs are laid out (Planet: ``planet_window``) or scaled (Sentinel-1: ``s1_units``).
    layout: str

    @property
    def prefix(self) -> str:
        return "s1" if self.sensor == "sentinel-1" else "planet"

    def to_dict(self) -> dict[str, Any]:
        p = self.prefix
        return {
            f"{p}_backbone": dict(self.backbone),
            f"{p}_projector": dict(self.projector),
            f"{p}_bands": list(self.bands),
            f"{p}_{'units' if p == 's1' else 'window'}": self.layout,
            f"{p}_normalization": self.normalization.to_dict(),
        }


@dataclass(frozen=True)
class EncoderMetadata:
    """A pretraining bundle's metadata (`geocrop pretrain`): the S2 encoder and projector, how it was
    trained, and the second view's encoder when bi-modal. Written as ``kind: pretrained_encoder`` with
    ``encoder_schema``, ``normalization`` and ``corruption_rate`` (older bundles: ``normalisation``,
    ``corruption``, ``planet_normalisation``/``s1_normalisation``, still read)."""

    mode: str
    backbone: dict[str, Any]
    projector: dict[str, Any]
    bands: tuple[str, ...]
    normalization: Normalization
    corruption_rate: float
    loss: str
    temperature: float
    lr: float
    batch_size: int
    seed: int
    epochs: int
    world_size: int = 1
    final: dict[str, Any] | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    #: Bands the pretraining source lacked, filled by the band rule (not observed).
    filled_bands: tuple[str, ...] = ()
    second_modality: str | None = None
    second: SecondView | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    schema: int = ENCODER_SCHEMA

    def to_dict(self) -> dict[str, Any]:
        """The metadata in the current spelling, for `geocrop.io.bundle.save_bundle`."""
        out: dict[str, Any] = {
            **self.extra,
            "kind": "pretrained_encoder",
            "encoder_schema": ENCODER_SCHEMA,
            "mode": self.mode,
            "backbone": dict(self.backbone),
            "projector": dict(self.projector),
            "bands": list(self.bands),
            "normalization": self.normalization.to_dict(),
            "corruption_rate": self.corruption_rate,
            "loss": self.loss,
            "temperature": self.temperature,
            "lr": self.lr,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "epochs": self.epochs,
            "world_size": self.world_size,
            "final": self.final,
            "provenance": dict(self.provenance),
            "filled_bands": list(self.filled_bands),
            "second_modality": self.second_modality,
        }
        if self.second is not None:
            out |= self.second.to_dict()
        return out


#: Keys `read_encoder_metadata` reads into fields (the second view's are found by prefix).
_ENCODER_KNOWN = {
    "kind", "encoder_schema", "format_version", "mode", "backbone", "projector", "bands", "normalization",
    "normalisation", "corruption_rate", "corruption", "loss", "temperature", "lr", "batch_size", "seed",
    "epochs", "world_size", "final", "provenance", "filled_bands", "second_modality",
}  # fmt: skip
_SECOND_VIEWS = (("planet", "planetscope", "planet_window"), ("s1", "sentinel-1", "s1_units"))


def _encoder_fail(source: str, problem: str) -> BundleError:
    return BundleError(f"pretrained bundle {source}: {problem}; re-export it with `geocrop pretrain`")


def _second_view(meta: Mapping[str, Any], source: str) -> SecondView | None:
    for prefix, sensor, layout in _SECOND_VIEWS:
        if f"{prefix}_backbone" not in meta:
            continue
        bands = tuple(str(b) for b in meta.get(f"{prefix}_bands") or ())
        spelled = {
            "normalization": meta.get(f"{prefix}_normalization") or meta.get(f"{prefix}_normalisation")
        }
        backbone = dict(meta[f"{prefix}_backbone"])
        n = int(backbone.get("in_features", len(bands)))  # Planet: 36 = a 3x3 window of 4 bands
        norm = read_normalization(spelled, n)
        if norm is None:
            raise _encoder_fail(source, f"its {prefix} normalisation does not fit {n} inputs")
        return SecondView(
            sensor=sensor,
            backbone=backbone,
            projector=dict(meta.get(f"{prefix}_projector") or {}),
            bands=bands,
            normalization=norm,
            layout=str(meta.get(layout, "")),
        )
    return None


def read_encoder_metadata(meta: Mapping[str, Any], *, source: str) -> EncoderMetadata:
    """Type a pretraining bundle's metadata, any spelling written so far; `BundleError` naming ``source``
    when it is not a pretrained encoder, is newer than this geocrop reads, or its statistics do not fit."""
    schema = meta.get("encoder_schema", 0)
    if not isinstance(schema, int) or schema > ENCODER_SCHEMA:
        raise BundleError(
            f"pretrained bundle {source} has encoder_schema {schema!r} but this geocrop reads up to "
            f"{ENCODER_SCHEMA}; upgrade geocrop"
        )
    if meta.get("kind") != "pretrained_encoder" or not isinstance(meta.get("backbone"), Mapping):
        raise _encoder_fail(source, f"it is a {meta.get('kind')!r} bundle, not a pretrained encoder")
    bands = tuple(str(b) for b in meta.get("bands") or ())
    norm = read_normalization(meta, len(bands))
    if norm is None:
        raise _encoder_fail(source, f"its normalisation does not give {len(bands)} means and positive stds")
    second = _second_view(meta, source)
    prefixes = tuple(f"{p}_" for p, _, _ in _SECOND_VIEWS)
    return EncoderMetadata(
        mode=str(meta.get("mode")),
        backbone=dict(meta["backbone"]),
        projector=dict(meta.get("projector") or {}),
        bands=bands,
        normalization=norm,
        corruption_rate=float(meta.get("corruption_rate", meta.get("corruption", 0.0))),
        loss=str(meta.get("loss")),
        temperature=float(meta.get("temperature", 0.0)),
        lr=float(meta.get("lr", 0.0)),
        batch_size=int(meta.get("batch_size", 0)),
        seed=int(meta.get("seed", 0)),
        epochs=int(meta.get("epochs", 0)),
        world_size=int(meta.get("world_size", 1)),
        final=dict(meta["final"]) if isinstance(meta.get("final"), Mapping) else None,
        provenance=dict(meta.get("provenance") or {}),
        filled_bands=tuple(str(b) for b in meta.get("filled_bands") or ()),
        second_modality=None if meta.get("second_modality") is None else str(meta["second_modality"]),
        second=second,
        extra={
            k: v
            for k, v in meta.items()
            if k not in _ENCODER_KNOWN and not (second is not None and k.startswith(prefixes))
        },
        schema=schema,
    )
