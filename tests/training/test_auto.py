"""``--head auto``: the choice rule, the budget, the record, resumption, and a bundle that maps.

The series here are synthetic (a bump whose position in time tells the class): a test instrument for
the code paths, not evidence of which head is better (docs/evaluation/README.md has that, on real data).
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from geocrop.core.progress import ProgressEvent
from geocrop.core.temporal import TemporalGrid
from geocrop.data.labelled import LabelledSeries, LabelSource
from geocrop.data.splits import SamplingWarning
from geocrop.io.bundle import load_bundle
from geocrop.models.registry import build_head, load_state
from geocrop.training import auto
from geocrop.training.any_head import FittedHead, fit_any_head, head_logits, inner_split
from geocrop.training.auto import choose, fit_auto, paired_se, plan_auto
from geocrop.training.calibration import correction, softmax
from geocrop.training.fit import TrainConfig
from geocrop.training.hparams import AUTO, HeadConfig, check_family, default_config, sample_configs
from geocrop.training.train import TrainJob, train_model
from tests.training.heads_synth import write_table

FAST = TrainConfig(epochs=2, batch_size=16, device="cpu")
#: Adaptive settings (early stopping on the selection split), few steps: what `auto` runs at defaults.
ADAPTIVE = TrainConfig(device="cpu")
TWO = HeadConfig(AUTO, {"candidates": ["tempcnn", "gbm"]}, 1e-4)


@pytest.fixture(autouse=True)
def _quiet_one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)
        yield
    torch.set_num_threads(before)


def _series(n_groups: int = 30, per_group: int = 2, t: int = 10, seed: int = 0) -> LabelledSeries:
    """Three classes told apart by where in time a bump sits; ``per_group`` series per parcel."""
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(n_groups), per_group).astype(str)
    labels = np.repeat(np.arange(n_groups) % 3, per_group).astype(np.int64)
    values = rng.normal(0, 0.3, size=(len(labels), t, 12)).astype(np.float32)
    for i, c in enumerate(labels):
        values[i, 1 + 3 * c : 3 + 3 * c, :] += 2.0
    grid = TemporalGrid(dt.date(2021, 3, 1), dt.date(2021, 10, 31), t)
    return LabelledSeries(values, labels, groups, ("a", "b", "c"), grid)


def _values(series: LabelledSeries) -> Callable[[np.ndarray], np.ndarray]:
    return lambda idx: series.values[idx]


def _split(series: LabelledSeries) -> tuple[np.ndarray, np.ndarray]:
    val = np.isin(series.groups, [str(g) for g in range(0, 30, 5)])
    return np.flatnonzero(~val), np.flatnonzero(val)


def test_auto_is_a_family_with_one_configuration() -> None:
    assert check_family(AUTO) == AUTO
    assert default_config(AUTO).params["candidates"] == ["tempcnn", "inception", "gbm"]
    assert sample_configs(AUTO, 3) == [default_config(AUTO)] * 3


def test_the_plan_pairs_a_tree_with_each_deep_head_and_trees_need_small_inputs() -> None:
    plan = plan_auto(steps=52, features=12)
    assert plan.candidates == ("tempcnn", "inception", "gbm")
    assert plan.pairs == (("gbm", "tempcnn"), ("gbm", "inception"))
    # 52 steps x 64 backbone features is too wide for the trees: the deep candidates and their mean remain
    wide = plan_auto(steps=52, features=64)
    assert wide.candidates == ("tempcnn", "inception") and wide.pairs == (("tempcnn", "inception"),)


def _probas(pred: np.ndarray, k: int = 3) -> np.ndarray:
    out = np.full((len(pred), k), 0.1)
    out[np.arange(len(pred)), pred] = 0.8
    return out


def test_choose_never_takes_an_option_below_the_majority_oa() -> None:
    y = np.array([0] * 8 + [1, 1, 2, 2])
    good_f1_bad_oa = np.array([1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 2, 2])  # rare classes right, OA 0.67
    fair = np.array([0] * 8 + [1, 0, 0, 0])  # OA 0.75
    options = {"tempcnn": _probas(good_f1_bad_oa), "gbm": _probas(fair)}
    choice, reason, table = choose(options, y, majority_oa=0.7, n_classes=3)
    assert table["tempcnn"]["macro_f1"] > table["gbm"]["macro_f1"]
    assert choice == "gbm" and "tempcnn left out" in reason
    assert choose(options, y, majority_oa=0.6, n_classes=3)[0] == "tempcnn"
    choice, reason, _ = choose(options, y, majority_oa=0.8, n_classes=3)
    assert choice == "gbm" and reason.startswith("no option reached")


def _noisy(y: np.ndarray, wrong: float, seed: int, k: int = 3) -> np.ndarray:
    """Predictions of ``y`` with a share ``wrong`` replaced by the next class."""
    rng = np.random.default_rng(seed)
    pred = y.copy()
    flip = rng.random(len(y)) < wrong
    pred[flip] = (y[flip] + 1) % k
    return _probas(pred, k)


def test_choose_keeps_the_mean_of_two_unless_one_head_wins_beyond_the_noise() -> None:
    y = np.arange(300) % 3
    mean = _noisy(y, 0.30, seed=1)
    close = _noisy(y, 0.27, seed=2)  # a little better: within the noise of 300 series
    clear = _noisy(y, 0.05, seed=3)  # far better
    pairs = ["gbm+tempcnn"]
    choice, reason, _ = choose({"tempcnn": close, "gbm": mean, "gbm+tempcnn": mean}, y, 0.3, 3, pairs=pairs)
    assert choice == "gbm+tempcnn" and "within 2 paired SE" in reason
    choice, reason, _ = choose({"tempcnn": clear, "gbm": mean, "gbm+tempcnn": mean}, y, 0.3, 3, pairs=pairs)
    assert choice == "tempcnn" and "more than 2 paired SE" in reason
    worse = _noisy(y, 0.5, seed=4)
    choice, reason, _ = choose({"tempcnn": worse, "gbm": worse, "gbm+tempcnn": mean}, y, 0.3, 3, pairs=pairs)
    assert choice == "gbm+tempcnn" and "no candidate alone beats it" in reason


def test_the_paired_se_resamples_parcels_and_is_zero_for_identical_predictions() -> None:
    y = np.arange(60) % 3
    a, b = _noisy(y, 0.3, seed=5).argmax(axis=1), _noisy(y, 0.3, seed=6).argmax(axis=1)
    assert paired_se(y, a, a, 3, np.arange(60)) == 0.0
    by_series = paired_se(y, a, b, 3, np.arange(60))
    assert 0.02 < by_series < 0.3
    # parcels of 10 identical series each: far fewer independent units, a wider spread
    assert paired_se(y, a, b, 3, np.arange(60) // 10) > by_series
    assert paired_se(y, a, b, 3, np.zeros(60)) == 0.0  # one parcel: nothing to resample


def test_fit_auto_records_what_it_tried_and_its_head_maps(tmp_path: Path) -> None:
    series = _series()
    train_idx, val_idx = _split(series)
    events: list[ProgressEvent] = []
    fitted = fit_any_head(
        TWO,
        series,
        lambda idx: series.values[idx],
        train_idx,
        val_idx,
        config=FAST,
        checkpoint=tmp_path / ".m.checkpoint.safetensors",
        note=events.append,
    )
    sel = fitted.selection
    assert sel is not None and sel["candidates"] == ["tempcnn", "gbm"]
    assert 0 < sel["selection_series"] < len(train_idx) and 0 < sel["majority_oa"] < 1
    assert set(sel["scores"]) == {"tempcnn", "gbm", "gbm+tempcnn"}
    assert all(set(v) == {"macro_f1", "oa"} for v in sel["scores"].values())
    assert sel["chosen"] in sel["scores"] and sel["reason"]
    assert any(e.message.startswith("candidate 2/2: fitting gbm") for e in events)
    assert any(e.message.startswith("auto chose") for e in events)
    steps = [e.step for e in events if e.step is not None]
    assert steps == sorted(steps) and all(e.total == events[0].total for e in events if e.step is not None)
    assert fitted.val_proba.shape == (len(val_idx), 3)
    # the head is rebuilt from its spec alone and gives the same probabilities
    from geocrop.models.registry import state_to_numpy

    rebuilt = load_state(build_head(fitted.spec), state_to_numpy(fitted.module, "head"), "head")
    with torch.inference_mode():
        logits = rebuilt.eval()(torch.from_numpy(series.values[val_idx])).double().numpy()
    proba = softmax(logits / (fitted.temperature or 1.0))  # the default: no prior term (see below)
    assert (
        correction(fitted.class_shares, frequencies=fitted.class_shares, head_prior=fitted.head_prior) is None
        or fitted.head_prior == "uniform"
    )
    if fitted.head_prior == "training":
        np.testing.assert_allclose(proba, fitted.val_proba, atol=1e-5)
    assert not list(tmp_path.glob("*.safetensors"))  # the candidates' checkpoints are gone


def test_a_mean_of_two_decides_under_the_training_frequencies_with_its_members_temperatures(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(auto, "choose", _force("gbm+tempcnn"))
    series = _series(seed=3)
    train_idx, val_idx = _split(series)
    members: dict[str, FittedHead] = {}

    def keeping(head: HeadConfig, *args: Any, **kwargs: Any) -> FittedHead:
        members[head.family] = fit_any_head(head, *args, **kwargs)
        return members[head.family]

    fitted = fit_auto(
        TWO, series, _values(series), train_idx, val_idx, fit=keeping, split=inner_split,
        outputs=head_logits, config=ADAPTIVE,
    )  # fmt: skip
    assert fitted.spec["name"] == "ensemble" and fitted.head_prior == "training"
    assert fitted.temperature is None  # its members keep theirs: the mean gets none of its own
    expected = [members[m].temperature or 1.0 for m in ("gbm", "tempcnn")]
    assert fitted.spec["temperatures"] == pytest.approx(expected)
    # the mean of what each member predicts at defaults, exactly
    mean = np.mean([m.val_proba for m in (members["gbm"], members["tempcnn"])], axis=0)
    np.testing.assert_allclose(fitted.val_proba, mean, atol=1e-5)
    assert {"ece_before", "ece_after"} <= set(fitted.calibration)
    np.testing.assert_allclose(fitted.val_proba.sum(axis=1), 1, atol=1e-5)


def test_the_choice_does_not_depend_on_the_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """A slow machine (every clock reading an hour later than the last) chooses as a fast one does: the
    choice depends on the data and the seed only."""
    series = _series()
    train_idx, val_idx = _split(series)
    kwargs = {"fit": fit_any_head, "split": inner_split, "outputs": head_logits, "config": FAST}
    fast = fit_auto(TWO, series, _values(series), train_idx, val_idx, **kwargs)  # type: ignore[arg-type]
    ticks = iter(range(0, 10**9, 3600))
    monkeypatch.setattr(auto.time, "perf_counter", lambda: float(next(ticks)))
    slow = fit_auto(TWO, series, _values(series), train_idx, val_idx, **kwargs)  # type: ignore[arg-type]
    assert fast.selection is not None and slow.selection is not None
    assert slow.selection["chosen"] == fast.selection["chosen"]
    assert slow.selection["scores"] == fast.selection["scores"]


@pytest.mark.slow
def test_an_interrupted_choice_resumes_the_deep_candidate_from_its_checkpoint(tmp_path: Path) -> None:
    series = _series()
    train_idx, val_idx = _split(series)
    ckpt = tmp_path / ".m.checkpoint.safetensors"
    calls: list[str] = []

    def interrupted(head: HeadConfig, *args: object, **kwargs: object) -> object:
        calls.append(head.family)
        if head.family == "gbm":  # the second candidate: the first is fitted and checkpointed
            raise KeyboardInterrupt
        return fit_any_head(head, *args, **kwargs)  # type: ignore[arg-type]

    kwargs = {"split": inner_split, "outputs": head_logits, "config": ADAPTIVE, "checkpoint": ckpt}
    with pytest.raises(KeyboardInterrupt):
        fit_auto(TWO, series, _values(series), train_idx, val_idx, fit=interrupted, **kwargs)  # type: ignore[arg-type]
    assert auto.candidate_checkpoint(ckpt, "tempcnn").exists()  # type: ignore[union-attr]
    first = fit_auto(TWO, series, _values(series), train_idx, val_idx, fit=fit_any_head, **kwargs)  # type: ignore[arg-type]
    assert first.selection is not None
    tempcnn_run = first if first.selection["chosen"] == "tempcnn" else None
    if tempcnn_run is not None:  # the resumed candidate ran no epoch again
        assert tempcnn_run.resumed_from == len(tempcnn_run.history)
    assert not list(tmp_path.glob("*.safetensors"))


def _force(choice: str) -> Callable[..., tuple[str, str, dict[str, dict[str, float]]]]:
    """A `choose` that always picks ``choice``, scoring the options as the real one does."""

    def forced(options: dict[str, np.ndarray], y: np.ndarray, *args: object, **kwargs: object) -> object:
        return choice, "forced by the test", choose(options, y, *args, **kwargs)[2]  # type: ignore[arg-type]

    return forced  # type: ignore[return-value]


def test_train_auto_writes_a_bundle_that_says_why(tmp_path: Path) -> None:
    from geocrop.inference.engine import Predictor

    table = write_table(tmp_path / "samples.csv")
    job = TrainJob(
        source=LabelSource(table, "crop", group_column="parcel", steps=16),
        out=tmp_path / "model.safetensors",
        head=TWO,
        config=FAST,
        n_train=12,
        n_val=6,
    )
    result = train_model(job)
    meta = load_bundle(job.out).metadata
    record = meta["training"]["auto"]
    assert result.selection == record and record["chosen"] in record["scores"]
    head = meta["head"]["name"]
    assert head == (
        "ensemble" if "+" in record["chosen"] else {"gbm": "trees"}.get(record["chosen"], "tempcnn")
    )
    assert "chosen on" in meta["provenance"]["accuracy"]["protocol"]
    block = np.full((16, 12, 2, 2), 0.1, dtype=np.float32)
    assert Predictor(job.out, device="cpu").predict_block(block).classes.shape == (2, 2)


def test_an_ensemble_bundle_predicts_what_training_scored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mean of two heads, through the bundle and the engine (temperatures, class priors): the same
    validation accuracy as training recorded."""
    from geocrop.inference.engine import Predictor
    from geocrop.training.train import prepare_data

    monkeypatch.setattr(auto, "choose", _force("gbm+tempcnn"))
    table = write_table(tmp_path / "samples.csv")
    source = LabelSource(table, "crop", group_column="parcel", steps=16)
    job = TrainJob(source=source, out=tmp_path / "m.safetensors", head=TWO, config=FAST, n_train=12, n_val=6)
    result = train_model(job)
    meta = load_bundle(job.out).metadata
    assert meta["head"]["name"] == "ensemble" and len(meta["head"]["temperatures"]) == 2
    series, _, val_idx = prepare_data(source, scheme="70-30", n_train=12, n_val=6, seed=0)
    block = np.ascontiguousarray(series.values[val_idx].transpose(1, 2, 0))[..., None]
    predicted = Predictor(job.out, device="cpu").predict_block(block).classes[:, 0]
    assert float((predicted == series.labels[val_idx]).mean()) == pytest.approx(result.scores["oa"])


def test_auto_is_the_default_head_and_refuses_one_family_s_options(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from geocrop.cli.main import cli

    table = write_table(tmp_path / "samples.csv")
    out = tmp_path / "m.safetensors"
    args = ["train", "--labels", str(table), "--class-column", "crop", "--hidden", "8", "--out", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and "--hidden does not apply to --head auto; drop it" in result.stderr
    assert not out.exists()
