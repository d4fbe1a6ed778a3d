"""The metadata of pretrained-encoder bundles, typed: what `geocrop pretrain` writes (`EncoderMetadata`,
`read_encoder_metadata`: ``kind: pretrained_encoder``, ``encoder_schema``, ``normalization``,
``corruption_rate``, the second view's keys under its sensor's prefix ``planet_`` or ``s1_``; the older
``normalisation`` and ``corruption`` spellings still read). Classifier bundles:
`geocrop.io.bundle_metadata`. Numpy-free and torch-free.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from geocrop.errors import BundleError
from geocrop.io.bundle_metadata import Normalization, read_normalization

__all__ = ["ENCODER_SCHEMA", "EncoderMetadata", "SecondView", "read_encoder_metadata"]

#: Version of the pretrained-encoder metadata schema this module writes (and the newest it reads).
ENCODER_SCHEMA = 1


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
