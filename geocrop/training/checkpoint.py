"""Training checkpoints as one safetensors file: model, optimiser and RNG states, never a pickle.

A checkpoint holds every tensor of the model (``model.<key>``), every tensor of the optimiser state
(``optim.<param index>.<key>``), the torch RNG states (``rng.torch``, ``rng.generator``) and, in the
safetensors header metadata, one JSON document with the scalars: epoch, optimiser ``param_groups`` and
non-tensor state, numpy and Python RNG states, the run's config fingerprint and its history. It is written
to a temporary file in the same folder and renamed over the previous one, so a kill at any moment leaves
either the old or the new checkpoint, never half of one. A JSON copy of the scalars is written beside it
for people.

Loading reads tensors with ``safetensors`` and the header as JSON: nothing is unpickled, so a checkpoint
cannot execute code.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from geocrop.errors import BundleError
from geocrop.io.atomic import atomic_path, write_json_atomic

META_KEY = "geocrop_checkpoint"
FORMAT = "geocrop-checkpoint/1"


@dataclass(frozen=True)
class Checkpoint:
    """What `load_checkpoint` found: ``epoch`` completed epochs, the ``fingerprint`` and ``extra`` JSON."""

    epoch: int
    fingerprint: dict[str, Any]
    extra: dict[str, Any]
    tensors: dict[str, torch.Tensor]
    scalars: dict[str, Any]


def _python_rng_state() -> list[Any]:
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]


def _set_python_rng_state(state: list[Any]) -> None:
    random.setstate((state[0], tuple(state[1]), state[2]))


def save_checkpoint(
    path: Path,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    epoch: int,
    fingerprint: Mapping[str, Any],
    generator: torch.Generator | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Atomically write the training state after ``epoch`` completed epochs to ``path`` (.safetensors)."""
    tensors: dict[str, torch.Tensor] = {
        f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()
    }
    opt_state = optimizer.state_dict()
    scalar_state: dict[str, dict[str, Any]] = {}
    for index, entry in opt_state["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalar_state.setdefault(str(index), {})[key] = value
    tensors["rng.torch"] = torch.get_rng_state()
    if generator is not None:
        tensors["rng.generator"] = generator.get_state().cpu()
    scalars = {
        "format": FORMAT,
        "epoch": int(epoch),
        "fingerprint": dict(fingerprint),
        "param_groups": opt_state["param_groups"],
        "optim_scalars": scalar_state,
        "optim_indices": sorted(int(i) for i in opt_state["state"]),
        "rng_numpy": _numpy_state_to_json(np.random.get_state()),
        "rng_python": _python_rng_state(),
        "extra": dict(extra or {}),
    }
    text = json.dumps(scalars)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, what="checkpoint") as tmp:
        save_file(tensors, str(tmp), metadata={META_KEY: text})
    side = path.with_suffix(".json")
    write_json_atomic(side, {k: v for k, v in scalars.items() if k != "rng_numpy"})
    return path


def load_checkpoint(path: Path) -> Checkpoint:
    """Read a checkpoint written by `save_checkpoint` (tensors on the CPU); BundleError if it is not one."""
    try:
        tensors = load_file(str(path))
        with safe_open(str(path), framework="pt") as fh:
            scalars = json.loads((fh.metadata() or {})[META_KEY])
    except (OSError, ValueError, KeyError, TypeError, SafetensorError) as exc:
        raise BundleError(
            f"checkpoint {path} is unreadable or not a geocrop checkpoint ({exc}); delete it to start over"
        ) from exc
    if scalars.get("format") != FORMAT:
        raise BundleError(f"checkpoint {path} has format {scalars.get('format')!r}, expected {FORMAT!r}")
    return Checkpoint(
        epoch=int(scalars["epoch"]),
        fingerprint=dict(scalars["fingerprint"]),
        extra=dict(scalars.get("extra", {})),
        tensors=tensors,
        scalars=scalars,
    )


def restore_checkpoint(
    ckpt: Checkpoint,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator | None = None,
) -> None:
    """Put model, optimiser and every RNG back exactly as `save_checkpoint` saw them."""
    prefix = "model."
    state = {k[len(prefix) :]: v for k, v in ckpt.tensors.items() if k.startswith(prefix)}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise BundleError(f"checkpoint does not fit this model ({str(exc).splitlines()[0]})") from exc
    opt_state: dict[int, dict[str, Any]] = {}
    for index in ckpt.scalars["optim_indices"]:
        entry: dict[str, Any] = dict(ckpt.scalars["optim_scalars"].get(str(index), {}))
        tag = f"optim.{index}."
        entry.update({k[len(tag) :]: v for k, v in ckpt.tensors.items() if k.startswith(tag)})
        opt_state[int(index)] = entry
    optimizer.load_state_dict({"state": opt_state, "param_groups": ckpt.scalars["param_groups"]})
    torch.set_rng_state(ckpt.tensors["rng.torch"])
    if generator is not None and "rng.generator" in ckpt.tensors:
        generator.set_state(ckpt.tensors["rng.generator"])
    np.random.set_state(_numpy_state_from_json(ckpt.scalars["rng_numpy"]))
    _set_python_rng_state(ckpt.scalars["rng_python"])


def _numpy_state_to_json(state: Any) -> list[Any]:
    name, keys, pos, has_gauss, cached = state
    return [name, np.asarray(keys).tolist(), int(pos), int(has_gauss), float(cached)]


def _numpy_state_from_json(state: list[Any]) -> tuple[Any, ...]:
    return (state[0], np.asarray(state[1], dtype=np.uint32), state[2], state[3], state[4])
