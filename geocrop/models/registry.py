"""Name -> builder registries for backbones and temporal heads, and bundle <-> module state conversion (the
one list of head families, `HEAD_FAMILIES`: `geocrop.models.head_families`). Importing this module
imports neither numpy nor torch (the builders and the state conversion do, when called).

A bundle's metadata stores each module as a JSON spec ``{"name": "resmlp", "in_features": 12, ...}``; the
``name`` picks a registered builder and the other keys are its keyword arguments. Heads register
themselves with ``@register_head("lstm")``; the built-in head modules are imported on first lookup so
``build_head`` works without the caller importing them. No file I/O here: bundles are read and written by
`geocrop.io.bundle` as numpy; `state_to_numpy` / `load_state` convert between those and modules.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from geocrop.errors import BundleError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from torch import nn

__all__ = [
    "build_backbone",
    "build_head",
    "describe_spec",
    "load_state",
    "register_backbone",
    "register_head",
    "registered_heads",
    "state_to_numpy",
]

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
    if isinstance(spec, Mapping) and "classifier" in spec:  # `geocrop.models.mlp_classifier`
        from geocrop.models.mlp_classifier import CLASSIFIER_KEY, attach_classifier

        head = _build("head", _HEADS, {k: v for k, v in spec.items() if k != CLASSIFIER_KEY})
        try:
            return attach_classifier(head, spec[CLASSIFIER_KEY])
        except (TypeError, ValueError, KeyError) as exc:
            raise BundleError(
                f"cannot build head {describe_spec(spec)} ({exc}); the spec does not fit this geocrop"
            ) from exc
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
