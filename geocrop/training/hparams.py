"""The paper's hyperparameter spaces (section 5.1) and seeded random draws of N configurations per family.

The paper draws 10 configurations per head family with Optuna's random sampler and keeps all of them (the
tuner is a sampler here, not an optimiser). Spaces, as printed:

- Bi-LSTM: hidden in {32, 64, 128, 256}, layers 2..6, learning rate 1e-5..1e-3.
- InceptionTime: layers in {2, 4, 8}, hidden in {128, 256, 512, 1024}, kernel in {40, 80, 120, 136},
  learning rate 1e-5..1e-3.
- Transformer: d_model in {32, 64, 128}, heads in {2, 4, 8}, layers 2..6, learning rate 1e-5..1e-3.

geocrop adds TempCNN (Pelletier et al., 2019; not in the paper): hidden in {32, 64, 128}, dense in {128,
256, 512}, kernel in {3, 5, 7}, the same learning-rate range. The families, their defaults and these
spaces are declared once, in `geocrop.models.head_families.HEAD_FAMILIES`; this module draws from them.

The paper also says training starts at 1e-3 with a linear schedule. Both are honoured: the learning rate
starts at 1e-3 and decays linearly to the sampled value (``lr``, a floor) at the last step; see
`geocrop.training.train.linear_lr`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import optuna

from geocrop.errors import InputError
from geocrop.models.head_families import HEAD_FAMILIES, deep_families, tree_families

FAMILIES: tuple[str, ...] = deep_families()
#: Families whose spec needs the series length (they flatten time instead of pooling it).
NEEDS_STEPS: frozenset[str] = frozenset({"tempcnn"})
#: Tree-ensemble baselines (`geocrop.training.trees`): no hyperparameter space, one fixed configuration.
TREE_FAMILIES: tuple[str, ...] = tree_families()
#: The family that picks one of `AUTO_CANDIDATES` (or the mean of gbm and a deep head) on a held-out
#: selection split of the training parcels (`geocrop.training.auto`); `geocrop train`'s default.
AUTO = "auto"
#: What ``auto`` chooses among, each at its default configuration: the heads that led on real tables
#: (docs/evaluation): TempCNN and InceptionTime, and gradient boosting (trees: raw bands only).
AUTO_CANDIDATES: tuple[str, ...] = ("tempcnn", "inception", "gbm")
#: The configuration `geocrop train` uses for each deep family when no option is given.
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {f: dict(HEAD_FAMILIES[f].defaults) for f in FAMILIES}
#: Where the linear learning-rate schedule of a default configuration ends.
DEFAULT_FINAL_LR = 1e-5
LR_RANGE = (1e-5, 1e-3)


@dataclass(frozen=True)
class HeadConfig:
    """One head configuration: the family (registry name), its constructor keywords and the final lr."""

    family: str
    params: Mapping[str, Any] = field(default_factory=dict)
    lr: float = 1e-3

    def spec(self, *, in_features: int, n_classes: int, steps: int | None = None) -> dict[str, Any]:
        """The registry spec (``build_head`` input) for this config on a given input width, class count
        and (for heads that flatten time, `NEEDS_STEPS`) series length."""
        spec = {"name": self.family, "in_features": in_features, "n_classes": n_classes, **dict(self.params)}
        if self.family in NEEDS_STEPS:
            if steps is None:
                raise InputError(f"head {self.family} needs the series length (steps) to be built")
            spec["steps"] = steps
        return spec

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, "params": dict(self.params), "lr": self.lr}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HeadConfig:
        return cls(str(data["family"]), dict(data.get("params", {})), float(data.get("lr", 1e-3)))

    def describe(self, initial_lr: float | None = None) -> str:
        """``lstm(hidden=128, layers=2, lr=1.00e-03->1.00e-05)``: the schedule from ``initial_lr`` (the
        fit's `TrainConfig.initial_lr`) to this configuration's final lr; trees have no learning rate."""
        args = [f"{k}={v}" for k, v in sorted(self.params.items())]
        if self.family not in (*TREE_FAMILIES, AUTO):
            args.append(
                f"final lr={self.lr:.2e}" if initial_lr is None else f"lr={initial_lr:.2e}->{self.lr:.2e}"
            )
        return f"{self.family}({', '.join(args)})"


def _draw(trial: optuna.Trial, family: str) -> dict[str, Any]:
    """One configuration of ``family`` from its registry space, in the space's order (the order of the
    sampler's calls decides the draw)."""
    params: dict[str, Any] = {}
    for name, values in HEAD_FAMILIES[family].space.items():
        if isinstance(values, range):
            params[name] = trial.suggest_int(name, values.start, values.stop - 1)
        else:
            params[name] = trial.suggest_categorical(name, list(values))
    return params


def check_family(family: str) -> str:
    if family not in HEAD_FAMILIES:
        known = ", ".join((*FAMILIES, *TREE_FAMILIES, AUTO))
        raise InputError(f"head family {family!r} is unknown; choose one of {known}")
    return family


def family_list(text: str, *, param: str = "families") -> list[str]:
    """Comma-separated head families (``"lstm,tempcnn"``) as a list; ``none`` means no deep head.

    A text that names nothing (``""``, ``","``) is refused rather than read as "none": an empty value
    is more often a shell variable left unset than a wish to skip every deep head.
    """
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise InputError(
            f"`{param}` {text!r} names no head family; give families such as lstm,tempcnn "
            "(or none to run the tree baselines only)",
            param=param,
        )
    return [name for name in names if name != "none"]


def default_config(family: str) -> HeadConfig:
    """The configuration `geocrop train --head family` uses without further options."""
    check_family(family)
    if family == AUTO:
        return HeadConfig(AUTO, {"candidates": list(AUTO_CANDIDATES)}, DEFAULT_FINAL_LR)
    return HeadConfig(family, dict(DEFAULT_PARAMS.get(family, {})), DEFAULT_FINAL_LR)


def sample_configs(family: str, n: int, *, seed: int = 0) -> list[HeadConfig]:
    """``n`` configurations of ``family`` drawn by Optuna's `RandomSampler` seeded with ``seed``.

    Same family, n and seed -> the same list (the first k of a longer draw equal a draw of k).
    """
    check_family(family)
    if n < 1:
        raise InputError(f"number of configurations must be >= 1, got {n}")
    if family in (*TREE_FAMILIES, AUTO):  # no space to draw from: its one configuration, n times
        return [default_config(family)] * n
    optuna.logging.set_verbosity(logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed), direction="maximize")
    configs = []
    for _ in range(n):
        trial = study.ask()
        params = _draw(trial, family)
        lr = trial.suggest_float("lr", *LR_RANGE, log=True)
        configs.append(HeadConfig(family, params, lr))
    return configs
