"""Parcel-level splits and balanced sampling."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from geocrop.data.splits import SamplingWarning, balanced_sample, split_fields, split_pixels
from geocrop.errors import InputError


def _pixels(n_fields: int = 40, per_field: int = 7, n_classes: int = 4) -> tuple[np.ndarray, np.ndarray]:
    groups = np.repeat([f"F{i}" for i in range(n_fields)], per_field)
    labels = np.repeat(np.arange(n_fields) % n_classes, per_field)
    return labels, groups


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_split_fields_is_a_partition_of_the_ids(seed: int) -> None:
    ids = np.repeat(np.arange(100), 3)
    parts = split_fields(ids, fractions=(0.7, 0.21, 0.09), seed=seed)
    assert [len(p) for p in parts] == [70, 21, 9]
    joined = np.concatenate(parts)
    assert len(np.unique(joined)) == len(joined) == 100  # disjoint and complete
    again = split_fields(ids, fractions=(0.7, 0.21, 0.09), seed=seed)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=True))


def test_split_fields_depends_on_the_seed() -> None:
    ids = np.arange(50)
    assert not np.array_equal(split_fields(ids, seed=0)[0], split_fields(ids, seed=1)[0])


def test_stratified_split_puts_every_class_in_every_part() -> None:
    labels, groups = _pixels(n_fields=30, n_classes=3)
    parts = split_fields(groups, fractions=(0.7, 0.21, 0.09), seed=3, labels=labels)
    field_class = {g: c for g, c in zip(groups, labels, strict=True)}
    for part in parts:
        assert {field_class[f] for f in part} == {0, 1, 2}
    assert len(np.unique(np.concatenate(parts))) == 30


@pytest.mark.parametrize("scheme", ["70-30", "70-21-9"])
@pytest.mark.parametrize("seed", [0, 5])
def test_split_pixels_never_shares_a_parcel(scheme: str, seed: int) -> None:
    labels, groups = _pixels()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)
        train, val = split_pixels(
            labels, groups, class_names=["a", "b", "c", "d"], scheme=scheme, n_train=20, n_val=5, seed=seed
        )
    assert set(groups[train]).isdisjoint(set(groups[val]))
    assert len(np.intersect1d(train, val)) == 0


def test_split_pixels_refuses_a_class_with_a_single_parcel() -> None:
    labels, groups = _pixels(n_fields=12, n_classes=3)
    labels = np.where(groups == "F0", 3, labels)  # class 3 lives in one parcel only
    with pytest.raises(InputError, match=r"'lonely'.*no (validation|training) pixels"):
        split_pixels(labels, groups, class_names=["a", "b", "c", "lonely"], n_train=5, n_val=5)


def test_balanced_sample_draws_exactly_n_per_class() -> None:
    labels = np.array([0] * 50 + [1] * 30 + [2] * 80)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning when every class has enough
        idx = balanced_sample(labels, n_per_class=20, seed=0)
    assert np.bincount(labels[idx]).tolist() == [20, 20, 20]
    assert len(np.unique(idx)) == 60
    assert np.array_equal(idx, balanced_sample(labels, n_per_class=20, seed=0))


def test_balanced_sample_respects_the_mask() -> None:
    labels = np.array([0, 1] * 20)
    mask = np.arange(40) < 20
    idx = balanced_sample(labels, n_per_class=5, seed=1, mask=mask)
    assert (idx < 20).all()


def test_balanced_sample_warns_and_uses_all_when_a_class_is_short() -> None:
    labels = np.array([0] * 50 + [1] * 3)
    with pytest.warns(SamplingWarning, match=r"training set.*fewer than 10 pixels.*rye \(3\)"):
        idx = balanced_sample(labels, n_per_class=10, seed=0, what="training", names=["wheat", "rye"])
    assert np.bincount(labels[idx]).tolist() == [10, 3]


def test_bad_split_arguments() -> None:
    with pytest.raises(InputError):
        split_fields([], fractions=(0.7, 0.3))
    with pytest.raises(InputError):
        split_fields([1, 2], fractions=(0.7, -0.3))
    with pytest.raises(InputError):
        balanced_sample([0, 1], n_per_class=0)
    with pytest.raises(InputError, match="scheme"):
        split_pixels([0], ["a"], class_names=["x"], scheme="50-50")


def test_parcel_draws_are_whole_parcels_nested_and_seeded() -> None:
    from geocrop.data.splits import draw_parcels_per_class, parcels_per_class

    # class 0: 10 parcels of 3 pixels; class 1: 3 parcels of 2 pixels
    groups = np.array(
        [f"a{i}" for i in range(10) for _ in range(3)] + [f"b{i}" for i in range(3) for _ in range(2)]
    )
    labels = np.array([0] * 30 + [1] * 6)
    rows = np.arange(len(labels))
    assert parcels_per_class(labels, groups, rows).tolist() == [10, 3]
    five = draw_parcels_per_class(labels, groups, rows, n_per_class=5, seed=(0, 1, 0))
    assert parcels_per_class(labels, groups, five).tolist() == [5, 3]  # class 1 keeps all 3 it has
    for g in np.unique(groups[five]):  # every pixel of a drawn parcel, none of the others
        assert set(np.flatnonzero(groups == g)) <= set(five.tolist())
    eight = draw_parcels_per_class(labels, groups, rows, n_per_class=8, seed=(0, 1, 0))
    assert set(five.tolist()) < set(eight.tolist())  # nested: more labels add parcels
    again = draw_parcels_per_class(labels, groups, rows, n_per_class=5, seed=(0, 1, 0))
    other = draw_parcels_per_class(labels, groups, rows, n_per_class=5, seed=(0, 1, 1))
    assert five.tolist() == again.tolist() and five.tolist() != other.tolist()
    only_some = np.arange(15)  # candidates limited to the first 5 parcels of class 0
    assert set(draw_parcels_per_class(labels, groups, only_some, n_per_class=2).tolist()) <= set(range(15))
    with pytest.raises(InputError, match="at least 1"):
        draw_parcels_per_class(labels, groups, rows, n_per_class=0)
