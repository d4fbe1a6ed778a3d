"""Parcel-level splits and class-balanced pixel sampling (the paper's section 4.2).

Pixels of one parcel are strongly correlated, so splitting by pixel would leak: splits are drawn over
parcel (field) ids and a pixel goes wherever its parcel goes. With per-field labels the split is stratified
by class (each class's parcels are shuffled and cut by the fractions), so every class with enough parcels
appears in every split. Inside a split, `balanced_sample` draws the same number of pixels per class (the
paper's 5,000 for training and 1,000 for validation) and warns when a class has fewer.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from geocrop.errors import GeocropWarning, InputError

#: Named split schemes of the paper: 70-21-9 (task 1: the 70 % is pretraining's, 21 % trains the head,
#: 9 % validates it) and 70-30 (task 2: train / validation).
SPLIT_SCHEMES: dict[str, tuple[float, ...]] = {"70-30": (0.7, 0.3), "70-21-9": (0.7, 0.21, 0.09)}
#: Which parts of each scheme hold the (training, validation) pixels of a downstream head.
SCHEME_PARTS: dict[str, tuple[int, int]] = {"70-30": (0, 1), "70-21-9": (1, 2)}


class SamplingWarning(GeocropWarning):
    """A class had fewer pixels than asked for; all of them were used."""


def _cut(ids: np.ndarray, fractions: Sequence[float]) -> list[np.ndarray]:
    """Cut shuffled ``ids`` into len(fractions) consecutive parts by largest-remainder rounding."""
    n = len(ids)
    raw = np.asarray(fractions, dtype=float) / float(sum(fractions)) * n
    counts = np.floor(raw).astype(int)
    order = np.argsort(-(raw - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    # With at least as many ids as parts, give every part one id before the rounding does.
    if n >= len(fractions):
        for k in np.flatnonzero(counts == 0):
            donor = int(np.argmax(counts))
            counts[donor] -= 1
            counts[k] += 1
    bounds = np.concatenate([[0], np.cumsum(counts)])
    return [ids[bounds[k] : bounds[k + 1]] for k in range(len(fractions))]


def split_fields(
    field_ids: npt.ArrayLike,
    *,
    fractions: Sequence[float] = (0.7, 0.21, 0.09),
    seed: int = 0,
    labels: npt.ArrayLike | None = None,
) -> tuple[np.ndarray, ...]:
    """Split unique field ids into disjoint parts by ``fractions``; returns the ids of each part.

    ``field_ids`` may repeat (one entry per pixel); only unique ids are split. ``labels`` (same length as
    ``field_ids``) stratifies the split by each field's (majority) class. Same inputs and seed, same split.
    """
    ids = np.asarray(field_ids)
    if ids.ndim != 1 or len(ids) == 0:
        raise InputError("split_fields got no field ids; give at least one parcel id per part")
    if any(f <= 0 for f in fractions) or len(fractions) < 2:
        raise InputError(f"split fractions {tuple(fractions)} must be two or more positive numbers")
    rng = np.random.default_rng(seed)
    if labels is None:
        unique = np.unique(ids)
        return tuple(_cut(rng.permutation(unique), fractions))
    lab = np.asarray(labels)
    if lab.shape != ids.shape:
        raise InputError(f"split_fields got {len(lab)} labels for {len(ids)} field ids; give one per entry")
    field_label = _majority_label(ids, lab)
    parts: list[list[np.ndarray]] = [[] for _ in fractions]
    for cls in sorted(set(field_label.values()), key=str):
        fields = np.array(sorted((f for f, c in field_label.items() if c == cls), key=str), dtype=ids.dtype)
        for k, part in enumerate(_cut(rng.permutation(fields), fractions)):
            parts[k].append(part)
    return tuple(np.sort(np.concatenate(p)) if p else np.array([], dtype=ids.dtype) for p in parts)


def _majority_label(ids: np.ndarray, labels: np.ndarray) -> dict[object, object]:
    out: dict[object, object] = {}
    uniq, inverse = np.unique(ids, return_inverse=True)
    for k, field in enumerate(uniq):
        vals, counts = np.unique(labels[inverse == k], return_counts=True)
        out[field.item() if hasattr(field, "item") else field] = vals[np.argmax(counts)].item()
    return out


def balanced_sample(
    labels: npt.ArrayLike,
    *,
    n_per_class: int,
    seed: int = 0,
    mask: npt.ArrayLike | None = None,
    what: str = "training",
    names: Sequence[str] | None = None,
) -> np.ndarray:
    """Indices of up to ``n_per_class`` random entries of each class among ``labels[mask]``, sorted.

    A class with fewer candidates than ``n_per_class`` contributes all of them and a `SamplingWarning`
    names it (the set is then not balanced). A class with no candidates is left out silently here: callers
    check for empty classes where they can name the cause. ``what`` names the split in the warning and
    ``names`` maps class indices to names there.
    """
    lab = np.asarray(labels)
    if n_per_class < 1:
        raise InputError(f"pixels per class for {what} must be >= 1, got {n_per_class}")
    keep = np.ones(len(lab), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    rng = np.random.default_rng(seed)
    chosen: list[np.ndarray] = []
    short: list[str] = []
    for cls in np.unique(lab[keep]):
        candidates = np.flatnonzero(keep & (lab == cls))
        if len(candidates) < n_per_class:
            short.append(f"{names[int(cls)] if names is not None else cls} ({len(candidates)})")
            chosen.append(candidates)
        else:
            chosen.append(rng.choice(candidates, size=n_per_class, replace=False))
    if short:
        warnings.warn(
            f"{what} set: {len(short)} class(es) have fewer than {n_per_class} pixels and are used whole, "
            f"so the set is not balanced: {', '.join(short)}; add parcels or lower the pixels per class",
            SamplingWarning,
            stacklevel=2,
        )
    return np.sort(np.concatenate(chosen)) if chosen else np.array([], dtype=np.int64)


def split_pixels(
    labels: npt.ArrayLike,
    groups: npt.ArrayLike,
    *,
    class_names: Sequence[str],
    scheme: str = "70-30",
    n_train: int = 5000,
    n_val: int = 1000,
    seed: int = 0,
    warn_unbalanced: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel indices (training, validation) for a downstream head: parcel split, then balanced sampling.

    ``warn_unbalanced`` False: no `SamplingWarning` for classes under ``n_train``/``n_val`` (a samples
    table has one series per point: its classes are used whole, and pixels per class mean nothing there).

    ``labels`` are class indices into ``class_names``; ``groups`` the parcel id of each pixel. The parcels are
    split by `SPLIT_SCHEMES[scheme]` stratified by class, the parts `SCHEME_PARTS[scheme]` give the training
    and validation parcels, and `balanced_sample` draws ``n_train`` / ``n_val`` pixels per class in each.
    Raises `InputError` when a class ends up with no pixels in either set (too few parcels).
    """
    if scheme not in SPLIT_SCHEMES:
        raise InputError(f"split scheme {scheme!r} is unknown; choose one of {', '.join(SPLIT_SCHEMES)}")
    lab = np.asarray(labels)
    grp = np.asarray(groups)
    parts = split_fields(grp, fractions=SPLIT_SCHEMES[scheme], seed=seed, labels=lab)
    train_part, val_part = SCHEME_PARTS[scheme]
    in_train = np.isin(grp, parts[train_part])
    in_val = np.isin(grp, parts[val_part])
    for what, mask in (("training", in_train), ("validation", in_val)):
        missing = sorted(set(range(len(class_names))) - set(np.unique(lab[mask]).tolist()))
        if missing:
            shown = ", ".join(repr(class_names[i]) for i in missing)
            n_fields = {class_names[i]: len(np.unique(grp[lab == i])) for i in missing}
            raise InputError(
                f"class(es) {shown} have no {what} pixels after the {scheme} parcel split "
                f"(parcels per class: {n_fields}); add parcels of those classes, or leave out classes "
                "with few parcels (`min_parcels` 3)",
                param="min_parcels",
            )
    names = list(class_names)
    with warnings.catch_warnings():
        if not warn_unbalanced:
            warnings.simplefilter("ignore", SamplingWarning)
        train_idx = balanced_sample(
            lab, n_per_class=n_train, seed=seed, mask=in_train, what="training", names=names
        )
        val_idx = balanced_sample(
            lab, n_per_class=n_val, seed=seed + 1, mask=in_val, what="validation", names=names
        )
    return train_idx, val_idx


def grouped_folds(labels: npt.ArrayLike, groups: npt.ArrayLike, *, k: int, seed: int = 0) -> np.ndarray:
    """(N,) fold number in [0, k) of every entry: K-fold cross-validation by group, stratified by class.

    Each group (parcel) lies in exactly one fold, so pixels of one field never sit on both sides. The
    groups of each class (by majority label) are shuffled and dealt to the folds in turn, continuing
    where the previous class stopped, so every fold gets each class's groups as evenly as possible and
    the folds have about the same size.
    """
    lab = np.asarray(labels)
    grp = np.asarray(groups)
    if k < 2:
        raise InputError(f"folds={k} is too few for cross-validation; give 2 or more (or one split)")
    field_label = _majority_label(grp, lab)
    rng = np.random.default_rng(seed)
    fold_of: dict[object, int] = {}
    turn = 0
    for cls in sorted(set(field_label.values()), key=str):
        fields = sorted((f for f, c in field_label.items() if c == cls), key=str)
        for f in rng.permutation(len(fields)):
            fold_of[fields[f]] = turn % k
            turn += 1
    uniq, inverse = np.unique(grp, return_inverse=True)
    folds = np.array([fold_of[g.item() if hasattr(g, "item") else g] for g in uniq], dtype=np.int64)
    return folds[inverse]


def fold_pixels(
    labels: npt.ArrayLike,
    folds: np.ndarray,
    fold: int,
    *,
    class_names: Sequence[str],
    n_train: int,
    n_val: int,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """(training, validation) indices of one fold: the fold validates, the others train; each side is
    class-balanced by `balanced_sample`. A class absent from the training side is an `InputError`."""
    lab = np.asarray(labels)
    in_val = folds == fold
    missing = sorted(set(range(len(class_names))) - set(np.unique(lab[~in_val]).tolist()))
    if missing:
        shown = ", ".join(repr(class_names[i]) for i in missing)
        raise InputError(
            f"class(es) {shown} have no training series in fold {fold + 1}; add parcels of those classes, "
            "or leave out classes with few parcels (`min_parcels`)",
            param="min_parcels",
        )
    names = list(class_names)
    with warnings.catch_warnings():  # small real tables are never balanced: that is what folds are for
        warnings.simplefilter("ignore", SamplingWarning)
        train_idx = balanced_sample(lab, n_per_class=n_train, seed=seed, mask=~in_val, names=names)
        val_idx = balanced_sample(
            lab, n_per_class=n_val, seed=seed + 1, mask=in_val, what="validation", names=names
        )
    return train_idx, val_idx


def parcels_per_class(labels: npt.ArrayLike, groups: npt.ArrayLike, rows: npt.ArrayLike) -> np.ndarray:
    """(n_classes,) number of distinct parcels of each class among ``rows`` (indices into labels/groups).

    n_classes is ``labels.max() + 1``; a class absent from ``rows`` counts 0.
    """
    lab = np.asarray(labels)
    idx = np.asarray(rows, dtype=np.int64)
    counts = np.zeros(int(lab.max()) + 1 if lab.size else 0, dtype=np.int64)
    for cls in np.unique(lab[idx]):
        counts[int(cls)] = len(np.unique(np.asarray(groups)[idx[lab[idx] == cls]]))
    return counts


def draw_parcels_per_class(
    labels: npt.ArrayLike,
    groups: npt.ArrayLike,
    rows: npt.ArrayLike,
    *,
    n_per_class: int,
    seed: int | Sequence[int] = 0,
) -> np.ndarray:
    """The entries of ``rows`` that belong to ``n_per_class`` randomly drawn parcels of each class, sorted.

    Label-scarce training: a user who labels 10 parcels of each crop gets every pixel of those parcels,
    so parcels (groups) are drawn, not pixels. A class with fewer parcels than asked keeps all of them
    (callers report it, see `parcels_per_class`). Draws are **nested**: with the same ``seed`` the parcels
    drawn for 5 per class are among those drawn for 10, so a learning curve adds labels instead of
    swapping them. ``seed`` may be a sequence (e.g. ``(seed, fold, draw)``) so each draw is its own
    stream, the same for every method that uses it.
    """
    if n_per_class < 1:
        raise InputError(
            f"`n_per_class` {n_per_class}: give at least 1 parcel per class", param="n_per_class"
        )
    lab = np.asarray(labels)
    grp = np.asarray(groups)
    idx = np.asarray(rows, dtype=np.int64)
    rng = np.random.default_rng(list(seed) if isinstance(seed, Sequence) else seed)
    chosen: list[np.ndarray] = []
    for cls in np.unique(lab[idx]):
        mine = idx[lab[idx] == cls]
        # a parcel's class is the class of its entries here; sorted ids make the draw order-independent
        parcels = np.unique(grp[mine])
        picked = parcels[rng.permutation(len(parcels))[:n_per_class]]
        chosen.append(mine[np.isin(grp[mine], picked)])
    return np.sort(np.concatenate(chosen)) if chosen else np.array([], dtype=np.int64)
