"""``--head auto``: the choice rule, the budget, the record, resumption, and a bundle that maps.

The series here are synthetic (a bump whose position in time tells the class): a test instrument for
the code paths, not evidence of which head is better (docs/evaluation/README.md has that, on real data).
"""

from __future__ import annotations

import datetime as dt
import json
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

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
from geocrop.training.any_head import fit_any_head
from geocrop.training.auto import choose, fit_auto, journal_path, plan_auto
from geocrop.training.fit import TrainConfig
from geocrop.training.hparams import AUTO, HeadConfig, check_family, default_config, sample_configs
from geocrop.training.train import TrainJob, train_model
from tests.training.heads_synth import write_table

FAST = TrainConfig(epochs=2, batch_size=16, device="cpu")
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


def test_the_plan_is_two_folds_capped_in_series_and_trees_need_small_inputs() -> None:
    small, large = plan_auto(300, steps=52, features=12), plan_auto(3000, steps=52, features=12)
    assert small.candidates == ("tempcnn", "inception", "gbm") and small.n_series == 300
    assert small.folds == large.folds == 2 and large.n_series == 3000
    assert plan_auto(10**6, steps=52, features=12).n_series == auto.MAX_INNER_SERIES
    # 52 steps x 64 backbone features is too wide for the trees: the deep candidates remain
    assert plan_auto(300, steps=52, features=64).candidates == ("tempcnn", "inception")


def _probas(pred: np.ndarray, k: int = 3) -> np.ndarray:
    out = np.full((len(pred), k), 0.1)
    out[np.arange(len(pred)), pred] = 0.8
    return out


def test_choose_ranks_by_macro_f1_but_never_below_the_majority_oa() -> None:
    y = np.array([0] * 8 + [1, 1, 2, 2])
    good_f1_bad_oa = np.array([1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 2, 2])  # rare classes right, OA 0.67
    fair = np.array([0] * 8 + [1, 0, 0, 0])  # OA 0.75
    probas = {"tempcnn": _probas(good_f1_bad_oa), "gbm": _probas(fair)}
    from geocrop.training.metrics import scores

    table = {c: scores(y, p.argmax(axis=1), 3) for c, p in probas.items()}
    assert table["tempcnn"]["macro_f1"] > table["gbm"]["macro_f1"]
    choice, reason = choose(table, probas, y, majority_oa=0.7, n_classes=3)
    assert choice == "gbm" and "tempcnn left out" in reason
    assert choose(table, probas, y, majority_oa=0.6, n_classes=3)[0] == "tempcnn"
    choice, reason = choose(table, probas, y, majority_oa=0.8, n_classes=3)
    assert choice == "gbm" and reason.startswith("no candidate reached")


def test_choose_takes_the_mean_of_two_only_when_it_wins() -> None:
    y = np.array([0, 1, 2, 0, 1, 2])
    a = np.array([[0.6, 0.4, 0.0], [0.0, 0.6, 0.4], [0.4, 0.0, 0.6], [0.4, 0.6, 0.0], [0, 1, 0], [0, 0, 1]])
    b = np.array([[0.6, 0.0, 0.4], [0.4, 0.6, 0.0], [0.0, 0.4, 0.6], [1, 0, 0], [0.6, 0.4, 0.0], [0, 0, 1]])
    from geocrop.training.metrics import scores

    probas = {"tempcnn": a, "gbm": b}
    table = {c: scores(y, p.argmax(axis=1), 3) for c, p in probas.items()}
    choice, reason = choose(table, probas, y, majority_oa=0.3, n_classes=3)
    assert choice == "tempcnn+gbm" and "mean of tempcnn's and gbm's" in reason
    same = {"tempcnn": a, "gbm": a.copy()}
    choice, reason = choose({c: table["tempcnn"] for c in same}, same, y, majority_oa=0.3, n_classes=3)
    assert choice == "tempcnn" and "reaches only" in reason


def test_fit_auto_records_what_it_tried_and_its_head_maps(tmp_path: Path) -> None:
    series = _series()
    train_idx, val_idx = _split(series)
    lines: list[ProgressEvent] = []
    fitted = fit_any_head(
        TWO,
        series,
        lambda idx: series.values[idx],
        train_idx,
        val_idx,
        config=FAST,
        checkpoint=tmp_path / ".m.checkpoint.safetensors",
        note=lines.append,
    )
    sel = fitted.selection
    assert sel is not None and sel["candidates"] == ["tempcnn", "gbm"] and sel["folds_run"] == 2
    assert sel["inner_series"] == len(train_idx) and 0 < sel["majority_oa"] < 1
    for c in ("tempcnn", "gbm"):
        assert set(sel["scores"][c]) >= {"macro_f1", "oa", "fold_macro_f1"}
        assert len(sel["scores"][c]["fold_macro_f1"]) == 2
    assert sel["chosen"] in ("tempcnn", "gbm", "tempcnn+gbm", "gbm+tempcnn") and sel["reason"]
    inner = [e for e in lines if e.message.startswith("inner validation ")]
    assert len(inner) == 4 and [e.step for e in inner] == [1, 2, 3, 4] and {e.total for e in inner} == {4}
    assert fitted.val_proba.shape == (len(val_idx), 3)
    # the head is rebuilt from its spec alone and gives the same probabilities
    from geocrop.models.registry import state_to_numpy

    rebuilt = load_state(build_head(fitted.spec), state_to_numpy(fitted.module, "head"), "head")
    with torch.inference_mode():
        proba = torch.softmax(rebuilt.eval()(torch.from_numpy(series.values[val_idx])), dim=1).numpy()
    np.testing.assert_allclose(proba, fitted.val_proba, atol=1e-5)
    assert not journal_path(tmp_path / ".m.checkpoint.safetensors").exists()


def test_the_choice_does_not_depend_on_the_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """A slow machine (every clock reading an hour later than the last) runs every inner fold and
    chooses as a fast one does: the choice depends on the data and the seed only."""
    series = _series()
    train_idx, val_idx = _split(series)
    fast = fit_auto(TWO, series, _values(series), train_idx, val_idx, fit=fit_any_head, config=FAST)
    ticks = iter(range(0, 10**9, 3600))
    monkeypatch.setattr(auto.time, "perf_counter", lambda: float(next(ticks)))
    slow = fit_auto(TWO, series, _values(series), train_idx, val_idx, fit=fit_any_head, config=FAST)
    assert fast.selection is not None and slow.selection is not None
    assert slow.selection["folds_run"] == fast.selection["folds_run"] == auto.INNER_FOLDS
    assert slow.selection["chosen"] == fast.selection["chosen"]
    assert slow.selection["scores"] == fast.selection["scores"]


def test_an_interrupted_choice_resumes_without_refitting_the_inner_folds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    series = _series()
    train_idx, val_idx = _split(series)
    ckpt = tmp_path / ".m.checkpoint.safetensors"

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(auto, "_refit", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fit_auto(
            TWO, series, _values(series), train_idx, val_idx, fit=fit_any_head, config=FAST, checkpoint=ckpt
        )
    journal = json.loads(journal_path(ckpt).read_text())
    assert sorted(journal["runs"]) == sorted(
        f"{c}-f{f}" for c in ("tempcnn", "gbm") for f in range(auto.INNER_FOLDS)
    )
    monkeypatch.undo()
    calls: list[str] = []

    def counting(head: HeadConfig, *args: object, **kwargs: object) -> object:
        calls.append(head.family)
        return fit_any_head(head, *args, **kwargs)  # type: ignore[arg-type]

    fitted = fit_auto(
        TWO, series, _values(series), train_idx, val_idx, fit=counting, config=FAST, checkpoint=ckpt
    )
    assert fitted.selection is not None and len(calls) == len(fitted.selection["members"])  # the refit only
    assert not journal_path(ckpt).exists()


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
    assert "chosen by" in meta["provenance"]["accuracy"]["protocol"]
    block = np.full((16, 12, 2, 2), 0.1, dtype=np.float32)
    assert Predictor(job.out, device="cpu").predict_block(block).classes.shape == (2, 2)


def test_an_ensemble_bundle_predicts_what_training_scored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mean of two heads, through the bundle and the engine (temperatures, class priors): the same
    validation accuracy as training recorded."""
    from geocrop.inference.engine import Predictor
    from geocrop.training.train import prepare_data

    monkeypatch.setattr(auto, "choose", lambda *args, **kwargs: ("tempcnn+gbm", "forced by the test"))
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
