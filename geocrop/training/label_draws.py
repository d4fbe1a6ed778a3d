"""Which labelled parcels each run of `geocrop evaluate` may train on: the folds, and label-scarce draws.

`fold_splits` gives each fold's training and validation rows (grouped, stratified folds, or one split).

For every fold and every count in ``labels_per_class``, ``draws`` seeded draws (one number, or one per
count) of that many parcels per class are taken from the fold's training part
(`geocrop.data.splits.draw_parcels_per_class`; nested, so the parcels of 5 per class are among those of
10). A draw depends only on (seed, fold, draw number):
every method, every input variant and every rerun trains on the same parcels. ``None`` stands for all
labels (the fold's whole training part, one "draw"). Validation always uses the full held-out fold, and
a deep head's inner validation (early stopping) is cut from the drawn parcels only, so no run sees more
labels than its count.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from geocrop.data.labelled import LabelledSeries, split_series
from geocrop.data.splits import (
    draw_parcels_per_class,
    fold_pixels,
    grouped_folds,
    parcels_per_class,
)
from geocrop.errors import InputError

#: Draws per count when the caller gives none (a count of all labels draws nothing: one run).
DEFAULT_DRAWS = 3


@dataclass(frozen=True)
class LabelDraw:
    """The training rows of one run: ``labels`` per class (None: all), draw number ``draw``."""

    labels: int | None
    draw: int
    rows: np.ndarray


def check_labels_per_class(values: Sequence[object]) -> tuple[int | None, ...]:
    """The counts as whole numbers >= 1 in rising order, all labels (``None`` or ``"all"``) last.

    Refuses 0, negative numbers, fractions, words and an empty list, naming the argument.
    """
    if isinstance(values, (str, int)) or not len(values):
        raise InputError(
            f"`labels_per_class` {values!r}: give a list of counts such as [5, 10, 20, 'all']",
            param="labels_per_class",
        )
    counts: set[int] = set()
    everything = False
    for value in values:
        if value is None or value == "all":
            everything = True
        elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            if value < 1:
                raise InputError(
                    f"`labels_per_class` {value}: a run needs at least 1 labelled parcel per class",
                    param="labels_per_class",
                )
            counts.add(int(value))
        else:
            raise InputError(
                f"`labels_per_class` {value!r} is not a whole number; give counts such as 5,10,20 or all",
                param="labels_per_class",
            )
    return (*sorted(counts), *((None,) if everything else ()))


def check_draws(draws: int | Sequence[int], counts: Sequence[int | None]) -> dict[int, int]:
    """Draws per numeric count: one number for every count, or one per count in order (fewer draws
    where labels are many: their draws share most parcels). Refuses numbers < 1 and a list of another
    length."""
    numbers = [c for c in counts if c is not None]
    given: list[object] = list(draws) if isinstance(draws, Sequence) else [draws]
    per: list[int] = []
    for d in given:
        if not isinstance(d, (int, np.integer)) or isinstance(d, bool) or d < 1:
            raise InputError(f"`draws` {draws!r}: give a whole number >= 1 (e.g. 3)", param="draws")
        per.append(int(d))
    if not isinstance(draws, Sequence):
        per = per * len(numbers)
    elif len(per) != len(numbers):
        raise InputError(
            f"`draws` {per} gives {len(per)} numbers for {len(numbers)} label counts {numbers}; "
            "give one number, or one per count",
            param="draws",
        )
    return dict(zip(numbers, per, strict=True))


def fold_splits(
    series: LabelledSeries, *, folds: int, scheme: str, n_train: int, n_val: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(training, validation) rows of each fold: ``folds`` grouped, stratified folds (each parcel
    validates once), or with ``folds`` 1 one ``scheme`` split by parcel; class-balanced pixel samples."""
    if folds == 1:
        return [split_series(series, scheme=scheme, n_train=n_train, n_val=n_val, seed=seed)]
    fold_of = grouped_folds(series.labels, series.groups, k=folds, seed=seed)
    return [
        fold_pixels(
            series.labels,
            fold_of,
            f,
            class_names=series.class_names,
            n_train=n_train,
            n_val=n_val,
            seed=seed + f,
        )
        for f in range(folds)
    ]


def available(series: LabelledSeries, splits: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """(folds, classes) number of training parcels of each class in each fold."""
    k = len(series.class_names)
    rows = []
    for train_idx, _ in splits:
        counts = parcels_per_class(series.labels, series.groups, train_idx)
        rows.append(np.pad(counts, (0, k - len(counts))))
    return np.array(rows, dtype=np.int64)


def check_counts_fit(counts: Sequence[int | None], parcels: np.ndarray) -> None:
    """Refuse a count above what the largest class has in the leanest fold (it would draw nothing).

    ``parcels`` is `available`'s table. A count between the smallest and the largest class is fine: the
    classes with fewer parcels keep all of theirs (`shortfalls` lists them for the report).
    """
    usable = int(parcels.max(axis=1).min())
    too_many = [c for c in counts if c is not None and c > usable]
    if too_many:
        raise InputError(
            f"`labels_per_class` {too_many[0]} is more than any class has: the largest class has "
            f"{usable} training parcels in the smallest fold; give at most {usable}, or 'all'",
            param="labels_per_class",
        )


def shortfalls(
    counts: Sequence[int | None], parcels: np.ndarray, class_names: Sequence[str]
) -> dict[int, dict[str, tuple[int, int]]]:
    """For each count, the classes with fewer training parcels in some fold, as (fewest, most) over
    the folds: those runs train on all of that class's parcels, so the set is not balanced."""
    out: dict[int, dict[str, tuple[int, int]]] = {}
    for c in counts:
        if c is None:
            continue
        short = {
            name: (int(parcels[:, i].min()), int(parcels[:, i].max()))
            for i, name in enumerate(class_names)
            if parcels[:, i].min() < c
        }
        if short:
            out[c] = short
    return out


def fold_draws(
    series: LabelledSeries,
    train_idx: np.ndarray,
    *,
    fold: int,
    counts: Sequence[int | None],
    draws: Mapping[int, int],
    seed: int,
) -> list[LabelDraw]:
    """Every (count, draw) of one fold, in the order of ``counts``; all labels is one draw (number 0)."""
    out: list[LabelDraw] = []
    for count in counts:
        if count is None:
            out.append(LabelDraw(None, 0, np.asarray(train_idx)))
            continue
        for d in range(draws[count]):
            rows = draw_parcels_per_class(
                series.labels, series.groups, train_idx, n_per_class=count, seed=(seed % 2**32, fold, d)
            )
            out.append(LabelDraw(count, d, rows))
    return out
