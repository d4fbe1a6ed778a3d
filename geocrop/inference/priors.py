"""Which class shares `map` and `predict` correct a model's logits for, read and checked before any work.

A head trained with class-balanced weights decides as if every class were equally common; the logits
are corrected to the shares expected where the model is applied by adding ``log(share)`` per class, and
in general ``log(share / head prior)`` (`geocrop.training.calibration` derives it; the tree heads' outputs
follow the training frequencies, so their default is their raw output; a deep head records the partial
prior fitted with its temperature, so its default adds only part of ``log(share)``).
`read_class_priors` turns what a caller gives into a `PriorChoice`:

- None (the default): the shares of the model's training series before class balancing, recorded in the
  bundle (``class_frequencies``); a bundle written before geocrop recorded them maps uncorrected, silently;
- ``"train"``: the same, with a warning when the bundle cannot do it;
- ``"uniform"``: every class equally common (the balanced decision: no correction for the heads trained
  with a balanced loss; rare classes found more often, their areas over-estimated);
- a mapping ``{class name: share}`` or a CSV (``class,share`` rows, a header allowed) or JSON
  (``{"maize": 0.3, ...}``) file: the area's expected shares, every class of the model named, shares
  non-negative (normalised to sum 1; 0 means the class is never predicted).

`check_priors` checks a choice against a model's classes (before anything is written); `target_shares`
gives the (K,) shares to correct for, `prior_correction` the shares whose log the engine adds to the
logits (None: nothing to add).
"""

from __future__ import annotations

import csv
import json
import math
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from geocrop.core.params import param
from geocrop.errors import GeocropWarning, InputError
from geocrop.inference.schema import BundleSpec
from geocrop.training.calibration import correction

__all__ = [
    "ClassPriors",
    "PriorChoice",
    "check_priors",
    "prior_correction",
    "read_class_priors",
    "target_shares",
]

#: What a caller may give as ``class_priors``.
ClassPriors = Literal["train", "uniform"] | str | os.PathLike[str] | Mapping[str, float] | None

_FIX = "give 'train', 'uniform', or a CSV/JSON file of class name -> share"


def priors_param(**edges: Any) -> Any:
    """The declared ``class_priors`` option of a stage config (`geocrop.core.params`): a caller's value
    read into a `PriorChoice` (None: the training frequencies); ``edges``: a QGIS label, ``advanced``."""
    return param(
        None,
        help="Class shares to correct the probabilities for: train (default: the training frequencies, "
        "best for areas), uniform (all classes equally common: favours rare ones) or a CSV/JSON of shares",
        convert=lambda value, name: read_class_priors(value),
        metavar="train|uniform|FILE",
        kind="text",
        **edges,
    )


@dataclass(frozen=True)
class PriorChoice:
    """A checked ``class_priors``: ``mode`` ``train``/``uniform``/``shares``; ``shares`` (class name, share)
    pairs for ``shares``; ``source`` where they came from; ``explicit``: the caller asked for it."""

    mode: Literal["train", "uniform", "shares"] = "train"
    shares: tuple[tuple[str, float], ...] = ()
    source: str = ""
    explicit: bool = False

    def describe(self) -> str:
        """One line for a map's metadata: which correction was asked for."""
        if self.mode == "shares":
            return f"class shares from {self.source}"
        return "training class frequencies" if self.mode == "train" else "uniform class shares"


def _fail(problem: str) -> InputError:
    return InputError(f"`class_priors` {problem}", param="class_priors")


def _read_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise _fail(f"{path} is neither 'train', 'uniform' nor an existing file; {_FIX}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(f"{path} cannot be read ({exc}); {_FIX}") from exc
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _fail(f'{path} is not valid JSON ({exc.msg}); write {{"maize": 0.3, ...}}') from exc
        if not isinstance(data, dict):
            raise _fail(f'{path} holds a JSON {type(data).__name__}; write an object {{"maize": 0.3, ...}}')
        return data
    rows = [r for r in csv.reader(text.splitlines()) if any(cell.strip() for cell in r)]
    if rows and len(rows[0]) >= 2 and not _is_number(rows[0][1]):
        rows = rows[1:]  # a header row such as "class,share"
    if not rows or any(len(r) != 2 for r in rows):
        raise _fail(f"{path} is not a table of 'class,share' rows (two columns); write one row per class")
    return {r[0].strip(): r[1].strip() for r in rows}


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_class_priors(value: ClassPriors) -> PriorChoice:
    """A `PriorChoice` from what a caller gave (see the module docstring); `InputError` naming the fix."""
    if value is None:
        return PriorChoice()
    if isinstance(value, str) and value.strip().lower() in ("train", "uniform"):
        return PriorChoice(value.strip().lower(), explicit=True)  # type: ignore[arg-type]
    if isinstance(value, Mapping):
        raw, source = dict(value), "the `class_priors` mapping"
    elif isinstance(value, (str, os.PathLike)):
        path = Path(value).expanduser()
        raw, source = _read_file(path), path.name
    else:
        raise _fail(f"{value!r} is a {type(value).__name__}; {_FIX}")
    shares: list[tuple[str, float]] = []
    for name, share in raw.items():
        try:
            number = float(share)
        except (TypeError, ValueError):
            raise _fail(f"{source}: share of {name!r} is {share!r}, not a number; give shares >= 0") from None
        if not math.isfinite(number) or number < 0:
            raise _fail(f"{source}: share of {name!r} is {share!r}; give shares >= 0 (normalised to sum 1)")
        shares.append((str(name), number))
    if not shares or not sum(s for _, s in shares) > 0:
        raise _fail(f"{source} gives no positive share; give each class its expected share of the area")
    return PriorChoice("shares", tuple(shares), source, explicit=True)


def check_priors(choice: PriorChoice, spec: BundleSpec) -> None:
    """`InputError` when explicit shares do not name exactly the model's classes."""
    if choice.mode != "shares":
        return
    names = [c.name for c in spec.classes]
    given = [n for n, _ in choice.shares]
    unknown = [n for n in given if n not in names]
    missing = [n for n in names if n not in given]
    if unknown:
        raise _fail(
            f"{choice.source} names class(es) {', '.join(map(repr, unknown))} that model {spec.name} does "
            f"not have; use its classes: {', '.join(names)}"
        )
    if missing:
        raise _fail(
            f"{choice.source} gives no share for class(es) {', '.join(map(repr, missing))}; give every "
            "class of the model a share (0 to never predict it)"
        )


def target_shares(choice: PriorChoice | None, spec: BundleSpec) -> np.ndarray | None:
    """(K,) class shares (logit order, sum 1) the outputs are meant for, or None: no correction possible.

    A bundle without recorded training frequencies cannot be corrected (what its head was balanced
    against is unknown): None, with a warning when the caller asked for a correction explicitly.
    """
    choice = choice or PriorChoice()
    check_priors(choice, spec)
    if spec.class_frequencies is None:
        if choice.explicit:
            warnings.warn(
                f"model {spec.name} records no training class frequencies (trained before geocrop kept "
                "them), so its outputs are not corrected for class priors; retrain it to correct them",
                GeocropWarning,
                stacklevel=3,
            )
        return None
    if choice.mode == "uniform":
        shares = np.ones(len(spec.classes))
    elif choice.mode == "train":
        shares = np.asarray(spec.class_frequencies, dtype=np.float64)
    else:
        by_name = dict(choice.shares)
        shares = np.array([by_name[c.name] for c in spec.classes], dtype=np.float64)
    return shares / shares.sum()


def prior_correction(choice: PriorChoice | None, spec: BundleSpec) -> np.ndarray | None:
    """(K,) shares whose log the engine adds to the temperature-scaled logits so the model's head, which
    decides under its ``head_prior``, decides under `target_shares`; None when there is nothing to add."""
    target = target_shares(choice, spec)
    if target is None or spec.class_frequencies is None:
        return None
    return correction(target, frequencies=spec.class_frequencies, head_prior=spec.head_prior)
