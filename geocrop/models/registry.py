"""The head families, name -> builder registries for backbones and temporal heads, and bundle <-> module
state conversion.

`HEAD_FAMILIES` is the one list of head families (deep heads, tree baselines, ``auto``): their labels,
what they are, the options that shape each (`HEAD_OPTIONS`, with their defaults) and the paper's
section 5.1 search space. The CLI's ``--head`` choices and head options, the API's `HeadName` /
`DeepFamily` / `TreeFamily` (spelled out for type checkers, checked against the table at import), the
training defaults and drawn configurations (`geocrop.training.hparams`), the QGIS algorithm's list and
docs/training.md's table (`head_table`) all come from it; `check_head_options` is the one check of
which options apply to which head. Importing this module imports neither numpy nor torch (the builders
and the state conversion do, when called).

A bundle's metadata stores each module as a JSON spec ``{"name": "resmlp", "in_features": 12, ...}``; the
``name`` picks a registered builder and the other keys are its keyword arguments. Heads register
themselves with ``@register_head("lstm")``; the built-in head modules are imported on first lookup so
``build_head`` works without the caller importing them. No file I/O here: bundles are read and written by
`geocrop.io.bundle` as numpy; `state_to_numpy` / `load_state` convert between those and modules.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar, get_args

from geocrop.errors import BundleError, InputError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from torch import nn

__all__ = [
    "DEEP_SETTINGS",
    "HEAD_FAMILIES",
    "HEAD_OPTIONS",
    "DeepFamily",
    "HeadFamilySpec",
    "HeadName",
    "HeadOption",
    "TreeFamily",
    "build_backbone",
    "build_head",
    "check_head_options",
    "deep_families",
    "describe_spec",
    "head_table",
    "load_state",
    "register_backbone",
    "register_head",
    "registered_heads",
    "state_to_numpy",
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


Builder = Callable[..., "nn.Module"]
B = TypeVar("B", bound=Builder)

_BACKBONES: dict[str, Builder] = {}
_HEADS: dict[str, Builder] = {}
# Modules whose import registers the built-in heads (imported lazily to avoid an import cycle).
_BUILTIN_HEAD_MODULES = (
    "geocrop.models.lstm",
    "geocrop.models.inception",
    "geocrop.models.transformer",
    "geocrop.models.forest",
    "geocrop.models.tempcnn",
    "geocrop.models.ensemble",
)


def register_backbone(name: str) -> Callable[[B], B]:
    """Decorator: make ``build_backbone({"name": name, ...})`` call the decorated class or function."""

    def deco(builder: B) -> B:
        _BACKBONES[name] = builder
        return builder

    return deco


def register_head(name: str) -> Callable[[B], B]:
    """Decorator: make ``build_head({"name": name, ...})`` call the decorated class or function."""

    def deco(builder: B) -> B:
        _HEADS[name] = builder
        return builder

    return deco


def _load_builtin_backbones() -> None:
    if "resmlp" not in _BACKBONES:  # registered ones may already be there
        from geocrop.models.projector import Projector
        from geocrop.models.resmlp import ResMLP

        _BACKBONES.setdefault("resmlp", ResMLP)
        _BACKBONES.setdefault("projector", Projector)


def _load_builtin_heads() -> None:
    for module in _BUILTIN_HEAD_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:  # a real missing dependency inside the module: surface it
                raise


def registered_heads() -> tuple[str, ...]:
    """Names ``build_head`` accepts."""
    _load_builtin_heads()
    return tuple(sorted(_HEADS))


def describe_spec(spec: Mapping[str, Any]) -> str:
    """One-line description of an architecture spec, e.g. ``resmlp(depth=8, in_features=12, width=256)``."""
    args = ", ".join(f"{k}={v!r}" for k, v in sorted(spec.items()) if k != "name")
    return f"{spec.get('name', '?')}({args})"


def _build(kind: str, registry: Mapping[str, Builder], spec: Mapping[str, Any]) -> nn.Module:
    if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str):
        raise BundleError(f"{kind} spec {spec!r} has no 'name'; expected e.g. {{'name': 'resmlp', ...}}")
    name = spec["name"]
    builder = registry.get(name)
    if builder is None:
        known = ", ".join(sorted(registry)) or "none"
        raise BundleError(
            f"unknown {kind} architecture {name!r} (known: {known}); the bundle needs a newer geocrop "
            "or was not written by geocrop"
        )
    kwargs = {k: v for k, v in spec.items() if k != "name"}
    try:
        return builder(**kwargs)
    except (TypeError, ValueError) as exc:
        raise BundleError(
            f"cannot build {kind} {describe_spec(spec)} ({exc}); the spec does not fit this geocrop"
        ) from exc


def build_backbone(spec: Mapping[str, Any]) -> nn.Module:
    """Build a per-pixel module (``resmlp``, ``projector`` or a registered one) from its spec."""
    _load_builtin_backbones()
    return _build("backbone", _BACKBONES, spec)


def build_head(spec: Mapping[str, Any]) -> nn.Module:
    """Build a temporal head ``(batch, T, features) -> (batch, n_classes)`` from its spec."""
    if isinstance(spec, Mapping) and spec.get("name") not in _HEADS:
        _load_builtin_heads()
    return _build("head", _HEADS, spec)


def _prefix(prefix: str) -> str:
    return prefix if not prefix or prefix.endswith(".") else prefix + "."


def state_to_numpy(module: nn.Module, prefix: str) -> dict[str, npt.NDArray[Any]]:
    """``module.state_dict()`` as numpy arrays (on the CPU) named ``<prefix>.<key>``."""
    pre = _prefix(prefix)
    return {pre + k: v.detach().cpu().numpy().copy() for k, v in module.state_dict().items()}


def _expected_architecture(module: nn.Module) -> str:
    spec = getattr(module, "spec", None)
    if isinstance(spec, Mapping):
        return describe_spec(spec)
    return type(module).__name__


def _refuse_metadata_mismatch(
    module: nn.Module, spec: Mapping[str, Any], state: Mapping[str, np.ndarray], pre: str
) -> None:
    """Raise `BundleError` naming how the tensors under ``pre`` differ from the metadata's ``spec``
    (`geocrop.models.arch_diff`), when ``module`` is what ``spec`` describes (so "expected" and "found"
    would read the same); returns otherwise, or when no simple difference explains it."""
    from geocrop.models.arch_diff import describe_mismatch

    _load_builtin_backbones()
    is_backbone = spec.get("name") in _BACKBONES
    builder = build_backbone if is_backbone else build_head
    try:
        described = builder(spec).state_dict()
    except BundleError:
        return
    own = module.state_dict()
    if {k: tuple(v.shape) for k, v in described.items()} != {k: tuple(v.shape) for k, v in own.items()}:
        return  # the module is not the metadata's: "expected ..., found ..." below names two specs
    families = list(_BACKBONES) if is_backbone else list(registered_heads())
    difference = describe_mismatch(
        spec,
        state,
        build=builder,
        families=families,
        kind="backbone" if is_backbone else "head",
    )
    if difference is not None:
        raise BundleError(
            f"bundle weights '{pre}*' do not match the bundle's metadata ({difference}): the metadata was "
            "edited or belongs to other weights; retrain, or re-export the bundle so that its metadata "
            "describes its weights"
        )


def load_state(
    module: nn.Module,
    tensors: Mapping[str, np.ndarray],
    prefix: str,
    *,
    found: str | Mapping[str, Any] | None = None,
) -> nn.Module:
    """Load the ``<prefix>.*`` entries of ``tensors`` into ``module`` (strictly: every key, every shape).

    ``found`` is the architecture the bundle says it holds (a spec or a description), used in the error
    message. Raises `BundleError` naming the expected and found architectures when keys or shapes differ.
    Returns ``module``.
    """
    pre = _prefix(prefix)
    state = {k[len(pre) :]: v for k, v in tensors.items() if k.startswith(pre)}
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(
        f"{k} {tuple(state[k].shape)} vs {tuple(expected[k].shape)}"
        for k in set(expected) & set(state)
        if tuple(state[k].shape) != tuple(expected[k].shape)
    )
    if missing or unexpected or wrong:
        if state and isinstance(found, Mapping) and isinstance(found.get("name"), str):
            _refuse_metadata_mismatch(module, found, state, pre)
        if isinstance(found, Mapping):
            found_text = describe_spec(found)
        elif found:
            found_text = found
        else:
            found_text = f"{len(state)} tensors under '{pre}'" if state else f"no tensors under '{pre}'"
        problems = []
        if missing:
            problems.append(f"missing {missing[:3]}{'...' if len(missing) > 3 else ''}")
        if unexpected:
            problems.append(f"unexpected {unexpected[:3]}{'...' if len(unexpected) > 3 else ''}")
        if wrong:
            problems.append(f"shape {wrong[:3]}{'...' if len(wrong) > 3 else ''}")
        raise BundleError(
            f"bundle weights '{pre}*' are for another architecture: "
            f"expected {_expected_architecture(module)}, "
            f"found {found_text} ({'; '.join(problems)}); use a bundle made for this model or retrain"
        )
    import numpy as np
    import torch

    with torch.no_grad():
        module.load_state_dict({k: torch.from_numpy(np.array(v, copy=True)) for k, v in state.items()})
    return module
