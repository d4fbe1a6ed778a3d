"""Starting a temporal head from a pretrained one (`geocrop train --init HEAD.safetensors`).

`TrainConfig.init` names a pretrained-head bundle (`geocrop.training.head_bundle`); `fit_head` builds the
head from its spec as usual, then `apply_init` copies every pretrained weight into it except the
classifier layer, which keeps its fresh initialisation for the labelled classes. Two ways to train on:

- **fine-tuning** (default): every weight trains, from the pretrained values;
- **frozen body** (``TrainConfig.freeze_init``): only the classifier trains; the body's weights and
  its batch-norm statistics stay as pretrained (`freeze_body`, `hold_body_eval`). The classifier is an
  MLP of ``TrainConfig.frozen_hidden`` units (`geocrop.models.mlp_classifier`; 0: the family's linear
  layer): `trained_spec` puts it in the head's spec, so the trained bundle rebuilds it. A frozen
  InceptionTime body's classifier reads the means of a few season parts instead of one mean over time
  (`geocrop.models.season_parts`; the number from the series length), also in the spec.

Inputs must be standardised as in pretraining, so `init_backbone` gives the raw-bands "backbone" with the
bundle's own band statistics (not the labelled training pixels'). A head of another family, another
number of grid steps or other architecture keywords is refused with one `InputError` naming the fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from geocrop.errors import InputError
from geocrop.models.mlp_classifier import with_classifier
from geocrop.models.season_parts import PART_POOLED, PARTS_KEY, season_parts
from geocrop.training.features import FrozenBackbone
from geocrop.training.head_bundle import CLASSIFIER_PREFIX, PretrainedHead, read_pretrained_head

__all__ = [
    "apply_init",
    "check_init",
    "freeze_body",
    "hold_body_eval",
    "init_backbone",
    "read_init",
    "trained_spec",
]


def read_init(path: str | Path) -> PretrainedHead:
    """The pretrained head at ``path`` (`read_pretrained_head`), or `InputError` when the file is absent."""
    if not Path(path).exists():
        raise InputError(
            f"`init` {path} does not exist; give a head.safetensors from `geocrop pretrain` with `mode` "
            "temporal",
            param="init",
        )
    return read_pretrained_head(path)


def check_init(
    pre: PretrainedHead, *, family: str, steps: int | None = None, in_features: int | None = None
) -> None:
    """`InputError` unless a ``family`` head on ``steps`` grid steps of ``in_features`` inputs can start
    from ``pre`` (checks that need no data pass ``steps``/``in_features`` None)."""
    name = pre.path.name if pre.path is not None else "the pretrained head"
    if family != pre.family:
        raise InputError(
            f"`init` {name} is a pretrained {pre.family} head, not {family}; train `head` {pre.family} "
            f"or pretrain a {family} head with `mode` temporal",
            param="init",
        )
    if steps is not None and steps != pre.steps:
        raise InputError(
            f"`init` {name} was pretrained on a {pre.steps}-step grid but the labelled series have "
            f"{steps} steps; give `steps` {pre.steps} or pretrain on a grid of {steps} steps",
            param="init",
        )
    pre_in = pre.head.get("in_features")
    if in_features is not None and pre_in is not None and int(pre_in) != in_features:
        raise InputError(
            f"`init` {name} takes {pre_in} inputs per date (the {len(pre.bands)} bands) but the head gets "
            f"{in_features}; drop `backbone` when starting from a pretrained head",
            param="init",
        )


def check_params(pre: PretrainedHead, params: Mapping[str, Any]) -> None:
    """`InputError` when ``params`` (head keywords) differ from the pretrained head's architecture."""
    ours = pre.head_params()
    differ = sorted(k for k, v in params.items() if k in ours and ours[k] != v)
    if differ:
        shown = ", ".join(f"{k}={params[k]!r} (pretrained: {ours[k]!r})" for k in differ)
        raise InputError(
            f"`head_params` {shown} differ from the pretrained head in `init`; drop them to use its "
            "architecture",
            param="head_params",
        )


def apply_init(head: nn.Module, pre: PretrainedHead) -> nn.Module:
    """Copy ``pre``'s weights into ``head`` (built from a matching spec), leaving ``classifier.*`` as is.

    Raises `InputError` when a weight is missing or has another shape (another architecture).
    """
    own = head.state_dict()
    body = {k: v for k, v in own.items() if not k.startswith(CLASSIFIER_PREFIX)}
    missing = sorted(set(body) - set(pre.tensors))
    wrong = sorted(
        k for k in set(body) & set(pre.tensors) if tuple(pre.tensors[k].shape) != tuple(body[k].shape)
    )
    if missing or wrong:
        shown = (missing + wrong)[:3]
        raise InputError(
            f"`init` holds a {pre.family} head of another architecture ({pre.head_params()}; "
            f"mismatched weights {shown}); train with the pretrained head's options",
            param="init",
        )
    with torch.no_grad():
        for key, value in body.items():
            value.copy_(torch.from_numpy(np.array(pre.tensors[key], copy=True)).to(value.dtype))
    return head


class FrozenSettings(Protocol):
    """The settings of `geocrop.training.fit.TrainConfig` that say which classifier a head trains."""

    @property
    def init(self) -> str | None: ...
    @property
    def freeze_init(self) -> bool: ...
    @property
    def frozen_hidden(self) -> int: ...
    @property
    def frozen_classifier(self) -> str: ...


def trained_spec(spec: Mapping[str, Any], config: FrozenSettings) -> dict[str, Any]:
    """The spec of the head ``config`` trains from ``spec``: with a frozen pretrained body, its classifier
    is an MLP of ``config.frozen_hidden`` units (0: the family's linear layer) and, in a family that can
    (`PART_POOLED`), reads the means of `season_parts` of the pretrained grid's steps unless ``spec`` sets
    ``parts``; else ``spec`` as given."""
    if config.init is None or not config.freeze_init:
        return dict(spec)
    # a logistic classifier is fitted into the family's own linear layer (`geocrop.training.frozen_logistic`)
    out = with_classifier(spec, 0 if config.frozen_classifier == "logistic" else config.frozen_hidden)
    if out.get("name") in PART_POOLED and PARTS_KEY not in out:  # a frozen body cannot learn *when*
        out[PARTS_KEY] = season_parts(read_init(config.init).steps)
    return out


def freeze_body(head: nn.Module) -> list[nn.Parameter]:
    """Stop gradients everywhere but the classifier layer; returns the parameters left to train."""
    trainable = []
    for name, param in head.named_parameters():
        keep = name.startswith(CLASSIFIER_PREFIX)
        param.requires_grad_(keep)
        if keep:
            trainable.append(param)
    return trainable


def hold_body_eval(head: nn.Module) -> None:
    """Put every submodule but the classifier in eval mode (frozen batch-norm statistics, no dropout)."""
    for name, module in head.named_children():
        if name != CLASSIFIER_PREFIX.rstrip("."):
            module.eval()


def init_backbone(pre: PretrainedHead) -> FrozenBackbone:
    """The raw-bands input of a head started from ``pre``: identity, with the bundle's band statistics."""
    mean = np.asarray(pre.normalization.mean, dtype=np.float32)
    std = np.maximum(np.asarray(pre.normalization.std, dtype=np.float32), 1e-6)
    return FrozenBackbone(None, None, tuple(pre.bands), mean, std, {})
