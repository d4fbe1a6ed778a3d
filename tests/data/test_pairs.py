"""Pairing (date matching, the 3x3 window, sampling, splits) and the resumable shard format."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from geocrop.core.bands import PLANET_FEATURES
from geocrop.data.pair_sampling import (
    feature_names,
    match_dates,
    planet_windows,
    pseudo_fields,
    sample_pairs,
    split_field_raster,
)
from geocrop.data.pairs import MANIFEST, PairSet, build_pairs_from_arrays
from geocrop.data.shards import ShardSet, ShardWriter, feature_stats
from geocrop.errors import BundleError, NoDataError

H, W = 16, 16


def _days(*days: str) -> np.ndarray:
    return np.array(days, dtype="datetime64[D]")


def _stacks(t: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """S2 (t, 12, H, W) and Planet (t, 4, 3H, 3W) where S2 band 0 encodes the pixel index (to trace rows)."""
    rng = np.random.default_rng(seed)
    s2 = rng.random((t, 12, H, W), dtype=np.float32)
    s2[:, 0] = np.arange(H * W, dtype=np.float32).reshape(H, W)
    planet = rng.random((t, 4, 3 * H, 3 * W), dtype=np.float32)
    return s2, planet


def test_match_dates_same_day_tolerance_and_ties() -> None:
    s2 = _days("2021-05-01", "2021-05-06", "2021-05-11")
    planet = _days("2021-05-01", "2021-05-05", "2021-05-07", "2021-05-13")
    assert match_dates(s2, planet) == [(0, 0)]
    # 05-06 is 1 day from both 05-05 and 05-07: the earlier wins; 05-11 -> 05-13 needs 2 days.
    assert match_dates(s2, planet, tolerance_days=1) == [(0, 0), (1, 1)]
    assert match_dates(s2, planet, tolerance_days=2) == [(0, 0), (1, 1), (2, 3)]
    assert match_dates(s2, _days()) == []


def test_planet_window_order_is_row_col_band() -> None:
    b, r, c = np.meshgrid(np.arange(4), np.arange(3 * H), np.arange(3 * W), indexing="ij")
    planet = (b * 1_000_000 + r * 1000 + c).astype(np.float32)
    win = planet_windows(planet)
    assert win.shape == (H, W, PLANET_FEATURES)
    i, j = 5, 7
    for rr in range(3):
        for cc in range(3):
            for band in range(4):
                assert win[i, j, (rr * 3 + cc) * 4 + band] == planet[band, 3 * i + rr, 3 * j + cc]
    assert feature_names()[12 + (1 * 3 + 2) * 4 + 3] == "planet.r1c2.nir"


def test_sample_pairs_drops_pairs_masked_in_either_sensor() -> None:
    s2, planet = _stacks(1)
    s2 = s2[0]
    planet = planet[0]
    s2[3, 0, 0] = np.nan  # S2 pixel (0, 0) clouded
    planet[2, 4, 5] = np.nan  # Planet pixel under S2 (1, 1) clouded
    mask = np.ones((H, W), bool)
    rows = sample_pairs(s2, planet, mask=mask, n=None, rng=np.random.default_rng(0))
    assert rows.shape == (H * W - 2, 48)
    assert np.isfinite(rows).all()
    assert not {0.0, float(W + 1)} & set(rows[:, 0].tolist())
    some = sample_pairs(s2, planet, mask=mask, n=10, rng=np.random.default_rng(0))
    assert some.shape == (10, 48) and len(set(some[:, 0].tolist())) == 10
    windows = planet_windows(planet)
    for row in some:
        i, j = divmod(int(row[0]), W)
        assert np.array_equal(row[:12], s2[:, i, j]) and np.array_equal(row[12:], windows[i, j])


def test_pseudo_fields_and_split_are_disjoint_and_seeded() -> None:
    fields = pseudo_fields(H, W, block=4)
    assert fields.min() == 1 and len(np.unique(fields)) == 16
    train, held = split_field_raster(fields, seed=1)
    assert not set(train) & set(held)
    assert len(train) > len(held) > 0
    again = split_field_raster(fields, seed=1)
    assert np.array_equal(train, again[0]) and np.array_equal(held, again[1])
    with pytest.raises(NoDataError):
        split_field_raster(np.ones((4, 4), np.int64), seed=0)


def _build(out: Path, **kw: Any) -> PairSet:
    s2, planet = _stacks(4)
    args: dict[str, Any] = {
        "s2": s2,
        "s2_dates": _days("2021-05-01", "2021-05-06", "2021-05-11", "2021-05-16"),
        "planet": planet,
        "planet_dates": _days("2021-05-01", "2021-05-06", "2021-05-10", "2021-05-16"),
        "out_dir": out,
        "fields": pseudo_fields(H, W, block=4),
        "pixels_per_date": 50,
        "heldout_per_date": 20,
        "shard_rows": 64,
        "seed": 3,
        "provenance": {"s2_source": "test"},
    }
    args.update(kw)
    return build_pairs_from_arrays(**args)


def test_build_pairs_writes_shards_stats_and_respects_split(tmp_path: Path) -> None:
    pairs = _build(tmp_path)
    m = pairs.manifest
    assert m["complete"] and [d["s2_date"] for d in m["dates"]] == ["2021-05-01", "2021-05-06", "2021-05-16"]
    assert m["counts"] == {"train": 150, "heldout": 60}
    train = pairs.train.read_all()
    held = pairs.heldout.read_all()
    assert train.shape == (150, 48) and held.shape == (60, 48)
    assert len(pairs.train.files) == 3  # 64 + 64 + 22 rows
    fields = pseudo_fields(H, W, block=4).ravel()
    tr_ids, ho_ids = split_field_raster(pseudo_fields(H, W, block=4), seed=3)
    assert set(fields[train[:, 0].astype(int)]) <= set(tr_ids.tolist())
    assert set(fields[held[:, 0].astype(int)]) <= set(ho_ids.tolist())
    mean, std = pairs.stats()
    np.testing.assert_allclose(mean, train.mean(0), rtol=1e-5)
    np.testing.assert_allclose(std, train.std(0), rtol=1e-4)
    # Rebuilding into the same folder is a no-op returning the same data.
    assert np.array_equal(_build(tmp_path).train.read_all(), train)


class _Crash:
    """A time stack that fails when date ``at`` is read, like a killed process."""

    def __init__(self, data: np.ndarray, at: int) -> None:
        self.data, self.at = data, at

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> np.ndarray:
        if i == self.at:
            raise KeyboardInterrupt
        return self.data[i]


def test_build_pairs_resumes_to_identical_shards(tmp_path: Path) -> None:
    straight = _build(tmp_path / "a")
    s2, _ = _stacks(4)
    with pytest.raises(KeyboardInterrupt):
        _build(tmp_path / "b", s2=_Crash(s2, at=3))
    partial = json.loads((tmp_path / "b" / MANIFEST).read_text())
    assert not partial["complete"] and len(partial["dates"]) == 2
    resumed = _build(tmp_path / "b")
    assert np.array_equal(resumed.train.read_all(), straight.train.read_all())
    assert np.array_equal(resumed.heldout.read_all(), straight.heldout.read_all())
    assert resumed.manifest["splits"]["train"]["sum"] == straight.manifest["splits"]["train"]["sum"]
    assert not list((tmp_path / "b").glob("*pending*"))


def test_build_pairs_refuses_other_settings_and_unmatched_dates(tmp_path: Path) -> None:
    _build(tmp_path)
    with pytest.raises(BundleError, match="pixels_per_date"):
        _build(tmp_path, pixels_per_date=10)
    with pytest.raises(NoDataError, match="tolerance"):
        _build(tmp_path / "x", planet_dates=_days("2020-01-01", "2020-01-02", "2020-01-03", "2020-01-04"))
    all_nan = np.full((4, 4, 3 * H, 3 * W), np.nan, np.float32)
    with pytest.raises(NoDataError, match="masked"):
        _build(tmp_path / "y", planet=all_nan)


def test_unimodal_pairs_hold_s2_only(tmp_path: Path) -> None:
    pairs = _build(tmp_path, planet=None, planet_dates=None)
    assert not pairs.bimodal and pairs.train.read_all().shape == (200, 12)


def test_shard_stream_is_seeded_bounded_and_complete(tmp_path: Path) -> None:
    rows = np.arange(1000, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
    writer = ShardWriter(tmp_path, "t", n_features=3, shard_rows=300)
    writer.add(rows[:450])
    state = writer.checkpoint()
    writer = ShardWriter(tmp_path, "t", n_features=3, shard_rows=300, state=state)  # resume mid-way
    writer.add(rows[450:])
    shards = ShardSet.from_state(tmp_path, writer.checkpoint(final=True))
    assert shards.rows == (300, 300, 300, 100)
    mean, _ = feature_stats(writer.state())
    assert mean[0] == pytest.approx(499.5)
    kw = {"seed": 7, "block_rows": 32, "window_blocks": 4}
    e0 = list(shards.iter_batches(64, epoch=0, **kw))
    assert len(e0) == 1000 // 64 == shards.batches_per_epoch(64)
    seen = np.concatenate(e0)[:, 0]
    assert len(np.unique(seen)) == len(seen)  # no row twice in an epoch
    assert np.array_equal(np.concatenate(list(shards.iter_batches(64, epoch=0, **kw))), np.concatenate(e0))
    e1 = np.concatenate(list(shards.iter_batches(64, epoch=1, **kw)))
    assert not np.array_equal(e1, np.concatenate(e0))
    skipped = list(shards.iter_batches(64, epoch=0, start_batch=5, **kw))
    assert np.array_equal(np.concatenate(skipped), np.concatenate(e0[5:]))
