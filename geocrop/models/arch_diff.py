"""What differs between a bundle's metadata and its tensors, said in the metadata's own terms.

When a bundle's tensors do not fit the module its metadata describes, the plain list of missing keys and
wrong shapes names no cause. `describe_mismatch` looks for the spec the tensors were made with:

* the same family with one or two whole-number settings changed: ``width: metadata says 128, tensors
  are 256``;
* another family: ``metadata says lstm, the tensors are a transformer head``.

It rebuilds candidate modules (small builds, at most `MAX_BUILDS`, only on this error path) and compares
their state-dict keys and shapes with the tensors'. Candidate values are the sizes that occur in the
tensors' shapes and small counts (layers, depth); settings are changed one at a time, keeping the change
that brings the shapes closest.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from torch import nn

__all__ = ["MAX_BUILDS", "describe_mismatch", "spec_difference"]

#: Most candidate modules built to explain one mismatch.
MAX_BUILDS = 200
_COUNTS = range(1, 17)  # layers, depth, modules: small whole numbers
_INDEX = re.compile(r"(\.|_l)\d+(?=[._]|$)")  # "layers.3." and torch LSTM's "weight_ih_l3"

Shapes = dict[str, tuple[int, ...]]


def _shapes_of(module: nn.Module) -> Shapes:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def _pattern(keys: Iterable[str]) -> frozenset[str]:
    """State keys with layer indices blanked (``layers.3.weight`` -> ``layers.#.weight``): a family's
    signature, whatever its depth."""
    return frozenset(_INDEX.sub(r"\1#", k) for k in keys)


def spec_difference(expected: Mapping[str, Any], found: Mapping[str, Any], *, said: str, are: str) -> str:
    """``"width: <said> 128, <are> 256"`` for every setting that differs between two specs."""
    if expected.get("name") != found.get("name"):
        return f"{said} {expected.get('name')}, {are} {found.get('name')}"
    keys = sorted(set(expected) | set(found))
    parts = [
        f"{k}: {said} {expected.get(k)!r}, {are} {found.get(k)!r}"
        for k in keys
        if expected.get(k) != found.get(k)
    ]
    return "; ".join(parts)


class _Builder:
    """Builds candidate modules, counting them, and says whether one fits the tensors' shapes."""

    def __init__(self, build: Callable[[Mapping[str, Any]], nn.Module], target: Shapes) -> None:
        self.build = build
        self.target = target
        self.builds = 0

    def shapes(self, spec: Mapping[str, Any]) -> Shapes | None:
        if self.builds >= MAX_BUILDS:
            return None
        self.builds += 1
        try:
            return _shapes_of(self.build(spec))
        except Exception:  # a candidate the builder refuses (odd heads, too large): not the answer
            return None

    def fits(self, spec: Mapping[str, Any]) -> bool:
        return self.shapes(spec) == self.target


def _candidates(target: Shapes) -> list[int]:
    sizes = {d for shape in target.values() for d in shape}
    return sorted(sizes | set(_COUNTS))


def _score(shapes: Shapes | None, target: Shapes) -> int:
    """How close a candidate's shapes are to the tensors': keys of equal shape, less keys only one has."""
    if shapes is None:
        return -(10**9)
    return sum(shapes.get(k) == v for k, v in target.items()) - len(set(shapes) ^ set(target))


def _same_family(spec: Mapping[str, Any], builder: _Builder) -> dict[str, Any] | None:
    """``spec`` with whole-number settings changed, one at a time, until it fits the tensors: each round
    keeps the single change that brings the shapes closest (so width and depth both wrong are found in
    two rounds)."""
    keys = [k for k, v in spec.items() if k != "name" and isinstance(v, int) and not isinstance(v, bool)]
    values = _candidates(builder.target)
    current = dict(spec)
    best_score = _score(builder.shapes(current), builder.target)
    for _ in range(3):
        best: tuple[int, dict[str, Any]] | None = None
        for key in keys:
            for value in values:
                if value == current[key]:
                    continue
                trial = {**current, key: value}
                shapes = builder.shapes(trial)
                if shapes == builder.target:
                    return trial
                score = _score(shapes, builder.target)
                if score > best_score and (best is None or score > best[0]):
                    best = (score, trial)
        if best is None:
            return None
        best_score, current = best
    return None


def _other_family(spec: Mapping[str, Any], families: Iterable[str], builder: _Builder) -> str | None:
    """The registered family whose state keys look like the tensors' (its sizes aside)."""
    want = _pattern(builder.target)
    shared = {k: spec[k] for k in ("in_features", "n_classes") if k in spec}
    # the series length shapes no key name: whatever the spec says, or 12, for families that need it
    tries = (shared, {**shared, "steps": spec.get("steps", 12)})
    for family in sorted(families):
        if family == spec.get("name"):
            continue
        for args in tries:
            shapes = builder.shapes({"name": family, **args})
            if shapes is not None:
                if _pattern(shapes) == want:
                    return family
                break
    return None


def describe_mismatch(
    spec: Mapping[str, Any],
    tensors: Mapping[str, Any],
    *,
    build: Callable[[Mapping[str, Any]], nn.Module],
    families: Iterable[str],
    kind: str,
) -> str | None:
    """How the tensors differ from ``spec`` (the metadata's), or None when no simple change explains it.

    ``tensors``: the module's state by key (arrays with ``.shape``); ``build``: spec -> module (the
    registry's builder for ``kind``, "backbone" or "head"); ``families``: the registered names of that kind.
    None too when ``spec`` cannot be built or fits the tensors.
    """
    target = {k: tuple(v.shape) for k, v in tensors.items()}
    builder = _Builder(build, target)
    expected = builder.shapes(spec)
    if expected is None or expected == target:
        return None
    if _pattern(expected) != _pattern(target):
        family = _other_family(spec, families, builder)
        if family is not None:
            return f"metadata says {spec.get('name')}, the tensors hold {family} {kind} weights"
    fitted = _same_family(spec, builder)
    if fitted is not None:
        return spec_difference(spec, fitted, said="metadata says", are="tensors are")
    return None
