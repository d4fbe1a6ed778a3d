"""The head families: the one list of them (`HEAD_FAMILIES`: deep heads, tree baselines, ``auto``), their
labels, what they are, the options that shape each (`HEAD_OPTIONS`, with their defaults) and the paper's
section 5.1 search space.

The CLI's ``--head`` choices and head options, the API's `HeadName` / `DeepFamily` / `TreeFamily`
(spelled out for type checkers, checked against the table at import), the training defaults and drawn
configurations (`geocrop.training.hparams`), the QGIS algorithm's list and docs/training.md's table
(`head_table`) all come from it; `check_head_options` is the one check of which options apply to which
head. Imports neither numpy nor torch. `geocrop.models.registry` re-exports it beside the builders.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from geocrop.errors import InputError

__all__ = [
    "DEEP_SETTINGS",
    "HEAD_FAMILIES",
    "HEAD_OPTIONS",
    "DeepFamily",
    "HeadFamilySpec",
    "HeadName",
    "HeadOption",
    "TreeFamily",
    "check_head_options",
    "deep_families",
    "head_table",
    "tree_families",
]

#: The family names, spelled out for type checkers (the table below is checked against them at import).
HeadName = Literal["auto", "lstm", "inception", "transformer", "tempcnn", "rf", "gbm"]
DeepFamily = Literal["lstm", "inception", "transformer", "tempcnn"]
TreeFamily = Literal["rf", "gbm"]


@dataclass(frozen=True)
class HeadOption:
    """An option that shapes a deep head: a constructor keyword of the families whose defaults name it."""

    name: str
    type: type
    #: What it means, per family where the meaning differs.
    help: str
    choices: tuple[str, ...] = ()


#: Every head option, in the order the CLI lists them.
HEAD_OPTIONS: dict[str, HeadOption] = {
    o.name: o
    for o in (
        HeadOption("hidden", int, "lstm: hidden size; inception, tempcnn: convolution channels"),
        HeadOption("layers", int, "layers (lstm, transformer) or modules (inception)"),
        HeadOption("kernel_size", int, "inception: longest kernel; tempcnn: kernel"),
        HeadOption("dense", int, "tempcnn: width of the dense layer"),
        HeadOption("d_model", int, "transformer: model width"),
        HeadOption("heads", int, "transformer: attention heads"),
        HeadOption("pooling", str, "transformer: pooling over time", ("mean", "cls")),
    )
}
#: Training settings that mean something to deep heads only (trees are fitted, not trained by epochs).
DEEP_SETTINGS = ("epochs", "batch_size", "lr", "final_lr")


@dataclass(frozen=True)
class HeadFamilySpec:
    """One head family: ``kind`` deep (a temporal network), tree (a baseline) or auto (a choice among
    others); ``defaults`` are the options that apply to it with `geocrop train`'s values; ``space`` the
    paper's section 5.1 space `evaluate --configs N` draws from, in drawing order (a tuple: one of its
    values; a range: an integer in it)."""

    name: str
    kind: Literal["deep", "tree", "auto"]
    label: str
    what: str
    defaults: Mapping[str, Any] = field(default_factory=dict)
    space: Mapping[str, tuple[Any, ...] | range] = field(default_factory=dict)
    #: ``head_params`` keys it takes besides head options (``auto``: its ``candidates``).
    params: tuple[str, ...] = ()


#: The head families, in the order the CLI offers them (``auto``, the default, first).
HEAD_FAMILIES: dict[str, HeadFamilySpec] = {
    f.name: f
    for f in (
        HeadFamilySpec(
            "auto",
            "auto",
            "Automatic (best of TempCNN, InceptionTime, gradient boosting on inner validation)",
            "one of `tempcnn`, `inception`, `gbm`, or the mean of `gbm` and a deep head (the default), "
            "chosen on held-out training parcels (below)",
            params=("candidates",),
        ),
        HeadFamilySpec(
            "lstm",
            "deep",
            "Bi-LSTM",
            "Bi-LSTM, mean over time of both directions",
            {"hidden": 128, "layers": 2},
            {"hidden": (32, 64, 128, 256), "layers": range(2, 7)},
        ),
        HeadFamilySpec(
            "inception",
            "deep",
            "InceptionTime",
            "InceptionTime: bottleneck, kernels k, k/2, k/4 + max-pool branch, residual every 3 modules",
            {"layers": 4, "hidden": 128, "kernel_size": 40},
            {"layers": (2, 4, 8), "hidden": (128, 256, 512, 1024), "kernel_size": (40, 80, 120, 136)},
        ),
        HeadFamilySpec(
            "transformer",
            "deep",
            "Transformer",
            "encoder, sinusoidal positions, mean pooling (or `--pooling cls`)",
            {"d_model": 64, "heads": 4, "layers": 2, "pooling": "mean"},
            {"d_model": (32, 64, 128), "heads": (2, 4, 8), "layers": range(2, 7)},
        ),
        HeadFamilySpec(
            "tempcnn",
            "deep",
            "TempCNN",
            "TempCNN (Pelletier et al. 2019; not in the paper): 3 convolutions over time, then the whole map "
            "flattened into a dense layer, so *when* a crop greens up counts",
            {"hidden": 64, "dense": 256, "kernel_size": 5},
            {"hidden": (32, 64, 128), "dense": (128, 256, 512), "kernel_size": (3, 5, 7)},
        ),
        HeadFamilySpec(
            "rf",
            "tree",
            "RandomForest",
            'scikit-learn RandomForest, 500 trees, `class_weight="balanced_subsample"`',
        ),
        HeadFamilySpec(
            "gbm", "tree", "Gradient boosting", 'scikit-learn HistGradientBoosting, `class_weight="balanced"`'
        ),
    )
}


def deep_families() -> tuple[str, ...]:
    return tuple(f.name for f in HEAD_FAMILIES.values() if f.kind == "deep")


def tree_families() -> tuple[str, ...]:
    return tuple(f.name for f in HEAD_FAMILIES.values() if f.kind == "tree")


if (get_args(HeadName), get_args(DeepFamily), get_args(TreeFamily)) != (
    tuple(HEAD_FAMILIES),
    deep_families(),
    tree_families(),
):  # pragma: no cover - a family added to the table but not to the Literals (or the other way)
    raise ImportError("geocrop.models.registry: HeadName/DeepFamily/TreeFamily disagree with HEAD_FAMILIES")


def check_head_options(family: str, given: Mapping[str, Any]) -> None:
    """Refuse options that do not apply to ``family``: ``given`` maps head options (`HEAD_OPTIONS`, the
    keys of ``head_params``) and deep-only training settings (`DEEP_SETTINGS`) to the values a caller set
    (None: not set). The one place that says which option applies to which head."""
    spec = HEAD_FAMILIES[family]
    named = [name for name, value in given.items() if value is not None]
    for name in named:
        if name not in HEAD_OPTIONS and name not in DEEP_SETTINGS and name not in spec.params:
            known = ", ".join((*spec.defaults, *spec.params)) or "none"
            raise InputError(
                f"`head_params` {name!r} is not an option of `head` {family} (its options: {known}); drop it",
                param="head_params",
            )
    if spec.kind == "tree":
        wrong = [n for n in named if n in HEAD_OPTIONS or n in DEEP_SETTINGS]
        if wrong:
            shown = ", ".join(f"`{n}`" for n in wrong)
            it = "it" if len(wrong) == 1 else "them"
            raise InputError(
                f"{shown} only apply to deep heads, not `head` {family}; drop {it}", param=wrong[0]
            )
    wrong = [n for n in named if n in HEAD_OPTIONS and n not in spec.defaults]
    if wrong and spec.kind == "auto":
        raise InputError(
            f"`{wrong[0]}` does not apply to `head` auto; drop it (each candidate keeps its defaults)",
            param=wrong[0],
        )
    if wrong:
        known = ", ".join(f"`{k}`" for k in spec.defaults)
        raise InputError(
            f"`{wrong[0]}` does not apply to `head` {family} (its options: {known}); drop it", param=wrong[0]
        )


def _values(space: tuple[Any, ...] | range) -> str:
    if isinstance(space, range):
        return f"{space.start}-{space.stop - 1}"
    return "{" + ", ".join(str(v) for v in space) + "}"


def head_table() -> str:
    """docs/training.md's table of head families (a test keeps the page equal to it)."""
    rows = ["| `--head` | what | defaults (`geocrop train`) | section 5.1 space (`evaluate --configs N`) |"]
    rows.append("|---|---|---|---|")
    for spec in sorted(HEAD_FAMILIES.values(), key=lambda f: f.kind == "auto"):
        name = f"`{spec.name}`" + (" (default)" if spec.kind == "auto" else "")
        defaults = ", ".join(f"{k} {v}" for k, v in spec.defaults.items())
        if spec.kind == "auto":
            defaults = "each candidate at its defaults"
        space = ", ".join(f"{k} {_values(v)}" for k, v in spec.space.items())
        rows.append(
            "|" + "|".join(f" {cell} " if cell else " " for cell in (name, spec.what, defaults, space)) + "|"
        )
    return "\n".join(rows) + "\n"
