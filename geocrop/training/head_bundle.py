"""The pretrained-head bundle: a temporal head's body after `geocrop pretrain --mode temporal`.

One safetensors file (``head.safetensors``) with a JSON twin, written and read through
`geocrop.io.bundle`. Tensors: ``head.<key>`` for every weight of the head except its classifier layer
(``head.classifier.*``, which pretraining never trains and fine-tuning rebuilds for the labelled classes).
The reconstruction output layers used by the pretext task are not stored: they are dropped after
pretraining. Metadata (`PretrainedHead.to_dict`):

=====================  ==================================================================================
key                    meaning
=====================  ==================================================================================
``kind``               ``"pretrained_head"``
``head_schema``        this schema's version (`HEAD_SCHEMA`)
``head``               the head's registry spec without ``n_classes`` (``name`` + constructor keywords)
``bands``              the input band order (the 12 Sentinel-2 bands)
``normalization``      per-band ``mean``/``std`` the inputs were standardised with (reflectance)
``temporal_grid``      ``{"start", "end", "steps"}``: the grid the series were put on
``objective``          ``name`` (``masked_reconstruction``), ``mask_ratio``, ``second`` (``sentinel-1`` or
                       null), ``second_weight``, ``target_bands``; ``second_normalization`` for S1
``augment``            ``date_dropout``, ``resample_dates``
``training``           ``epochs``, ``batch_size``, ``lr``, ``seed``, ``series`` (train/held-out counts)
``history``            per epoch: training loss, held-out loss, the linear-interpolation baseline's loss
``filled_bands``       bands the source lacked and the band rule filled (never reconstruction targets)
``provenance``         source path and kind
=====================  ==================================================================================
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from geocrop.core.temporal import TemporalGrid
from geocrop.errors import BundleError
from geocrop.io.bundle import load_bundle, save_bundle
from geocrop.io.bundle_metadata import Normalization, read_normalization

__all__ = ["HEAD_KIND", "HEAD_SCHEMA", "PretrainedHead", "read_pretrained_head", "write_head_bundle"]

HEAD_KIND = "pretrained_head"
#: Version of the pretrained-head metadata this module writes (and the newest it reads).
HEAD_SCHEMA = 1
#: The classifier layer every registered head names ``classifier``; it is never part of the bundle.
CLASSIFIER_PREFIX = "classifier."


@dataclass(frozen=True)
class PretrainedHead:
    """A pretrained head's metadata (see the module docstring) and, once read, its body tensors."""

    head: dict[str, Any]
    bands: tuple[str, ...]
    normalization: Normalization
    grid: TemporalGrid
    objective: dict[str, Any]
    augment: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    filled_bands: tuple[str, ...] = ()
    provenance: dict[str, Any] = field(default_factory=dict)
    tensors: dict[str, np.ndarray] = field(default_factory=dict, compare=False, repr=False)
    path: Path | None = field(default=None, compare=False)

    @property
    def family(self) -> str:
        return str(self.head["name"])

    @property
    def steps(self) -> int:
        return self.grid.steps

    def head_params(self) -> dict[str, Any]:
        """The constructor keywords of the head besides its input width, class count and length."""
        return {k: v for k, v in self.head.items() if k not in ("name", "in_features", "n_classes", "steps")}

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": HEAD_KIND,
            "head_schema": HEAD_SCHEMA,
            "head": dict(self.head),
            "bands": list(self.bands),
            "normalization": self.normalization.to_dict(),
            "temporal_grid": self.grid.to_dict(),
            "objective": dict(self.objective),
            "augment": dict(self.augment),
            "training": dict(self.training),
            "history": list(self.history),
            "filled_bands": list(self.filled_bands),
            "provenance": dict(self.provenance),
        }


def write_head_bundle(path: Path, head_state: Mapping[str, np.ndarray], meta: PretrainedHead) -> Path:
    """Save the head's state (keys without prefix; the classifier is left out) and ``meta`` at ``path``."""
    tensors = {f"head.{k}": v for k, v in head_state.items() if not k.startswith(CLASSIFIER_PREFIX)}
    spec = {k: v for k, v in meta.head.items() if k != "n_classes"}
    return save_bundle(path, tensors, {**meta.to_dict(), "head": spec})


def _fail(path: Path, problem: str) -> BundleError:
    return BundleError(
        f"{path} is not a usable pretrained head ({problem}); give a head.safetensors written by "
        "`geocrop pretrain` with `mode` temporal"
    )


def read_pretrained_head(path: str | Path) -> PretrainedHead:
    """Read a pretrained-head bundle (metadata and ``head.*`` tensors); `BundleError` when it is not one."""
    path = Path(path)
    bundle = load_bundle(path)
    meta = bundle.metadata
    if meta.get("kind") != HEAD_KIND:
        what = meta.get("kind") or "no kind"
        raise _fail(path, f"its kind is {what!r}")
    if int(meta.get("head_schema", 0)) > HEAD_SCHEMA:
        raise _fail(path, f"head_schema {meta.get('head_schema')} is newer than this geocrop reads")
    spec = meta.get("head")
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise _fail(path, "no head spec")
    bands = tuple(str(b) for b in meta.get("bands") or ())
    norm = read_normalization(meta, len(bands))
    grid_raw = meta.get("temporal_grid")
    if norm is None or not isinstance(grid_raw, dict):
        raise _fail(path, "no normalisation or temporal grid")
    tensors = {k[len("head.") :]: v for k, v in bundle.tensors.items() if k.startswith("head.")}
    if not tensors:
        raise _fail(path, "no head.* tensors")
    return PretrainedHead(
        head=dict(spec),
        bands=bands,
        normalization=norm,
        grid=TemporalGrid(
            dt.date.fromisoformat(str(grid_raw["start"])),
            dt.date.fromisoformat(str(grid_raw["end"])),
            int(grid_raw["steps"]),
        ),
        objective=dict(meta.get("objective") or {}),
        augment=dict(meta.get("augment") or {}),
        training=dict(meta.get("training") or {}),
        history=list(meta.get("history") or []),
        filled_bands=tuple(meta.get("filled_bands") or ()),
        provenance=dict(meta.get("provenance") or {}),
        tensors=tensors,
        path=path,
    )
