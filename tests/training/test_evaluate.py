"""The paper's protocol: Eq. 2 win-matrix and relative gain by hand, and a resumable tiny evaluation."""

from __future__ import annotations

import datetime as dt
import json
import warnings
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from geocrop.core.progress import ProgressEvent
from geocrop.data.labelled import LabelSource
from geocrop.data.splits import SamplingWarning
from geocrop.errors import BundleError, InputError
from geocrop.training.evaluate import JOURNAL, EvaluateJob, evaluate, read_journal
from geocrop.training.fit import TrainConfig
from geocrop.training.protocol import GainSummary, matched_scores, relative_gain, table_row, win_matrix
from tests.training.heads_synth import write_backbone, write_table


@pytest.fixture(autouse=True)
def _quiet_one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)
        yield
    torch.set_num_threads(before)


SUP = [0.60, 0.50, 0.70, 0.40]
BI = [0.66, 0.55, 0.63, 0.40]
UNI = [0.30, 0.60, 0.80, 0.50]


def test_win_matrix_by_hand() -> None:
    names, w = win_matrix({"supervised": SUP, "bi-modal": BI, "uni-modal": UNI})
    assert names == ["supervised", "bi-modal", "uni-modal"]
    # bi beats sup in experiments 0 and 1, loses 2, ties 3 (a tie is no win): 2/4
    assert w[1, 0] == pytest.approx(2 / 4)
    assert w[0, 1] == pytest.approx(1 / 4)
    # sup vs uni: 0.6>0.3 yes, 0.5>0.6 no, 0.7>0.8 no, 0.4>0.5 no
    assert w[0, 2] == pytest.approx(1 / 4)
    assert w[2, 0] == pytest.approx(3 / 4)
    # bi vs uni: yes, no, no, no
    assert w[1, 2] == pytest.approx(1 / 4)
    assert np.diag(w).tolist() == [0.0, 0.0, 0.0]


def test_win_matrix_needs_matched_experiments() -> None:
    with pytest.raises(InputError):
        win_matrix({"a": [0.1, 0.2], "b": [0.3]})


def test_relative_gain_by_hand() -> None:
    gains = relative_gain(BI, SUP)
    assert gains == pytest.approx([0.1, 0.1, -0.1, 0.0])
    summary = GainSummary.of(gains)
    assert (summary.mean, summary.min, summary.max, summary.n) == pytest.approx((0.025, -0.1, 0.1, 4))
    assert summary.percent() == "2.50% (-10.00%, 10.00%)"
    assert np.isnan(relative_gain([0.5], [0.0])[0])


def test_table_row_and_matched_scores() -> None:
    sup = np.array([0.5, 0.6])
    bi = np.array([[0.55, 0.5], [0.66, 0.72]])  # two bundles (e.g. corruption 20 % and 60 %)
    row = table_row("lstm", sup, {"bimodal": bi})
    assert row.supervised_mean == pytest.approx(0.55)
    assert row.supervised_std == pytest.approx(0.05)  # population std over configurations
    assert row.gains["bimodal"].mean == pytest.approx(np.mean([0.1, 0.0, 0.1, 0.2]))
    assert row.gains["bimodal"].n == 4
    scores = matched_scores(sup, {"bimodal": bi, "unimodal": np.array([[0.4], [0.7]])})
    assert scores["supervised"].tolist() == [0.5, 0.5, 0.6, 0.6]
    assert scores["bimodal"].tolist() == [0.55, 0.5, 0.66, 0.72]
    assert scores["unimodal"].tolist() == [0.4, 0.4, 0.7, 0.7]


def _job(tmp_path: Path, **kw: object) -> EvaluateJob:
    table = tmp_path / "samples.csv"
    if not table.exists():
        write_table(table, parcels=5, pixels=4)
    args: dict[str, object] = {
        "source": LabelSource(table, "crop", group_column="parcel", steps=12),
        "out": tmp_path / "eval",
        "bimodal": (write_backbone(tmp_path / "bi.safetensors", seed=1),),
        "unimodal": (write_backbone(tmp_path / "uni.safetensors", seed=2, mode="unimodal"),),
        "families": ("lstm",),
        "baselines": ("rf",),
        "n_configs": 2,
        "folds": 2,
        "config": TrainConfig(epochs=1, batch_size=16, device="cpu"),
        "n_train": 8,
        "n_val": 4,
        "data_note": "> test data",
    }
    args.update(kw)
    return EvaluateJob(**args)  # type: ignore[arg-type]


def test_evaluate_writes_the_report_and_resumes(tmp_path: Path) -> None:
    job = _job(tmp_path)
    events: list[ProgressEvent] = []
    result = evaluate(job, progress=events.append)
    # per fold: 2 configs x (supervised, uni, bi) + rf; the majority class is counted, not trained
    assert (result.trained, result.reused) == (14, 0)
    _check_events(events)
    out = job.out
    expected = ["report.md", "table1.csv", "runs.csv", "per_class_f1.csv", "scores.png", JOURNAL]
    expected += ["win_matrix_lstm.csv", "win_matrix_lstm.png", "relative_gain_lstm.png"]
    expected += ["confusion_rf.png", "confusion_lstm.png", "confusion_lstm_bi_modal.csv"]
    for name in expected:
        assert (out / name).stat().st_size > 0, name
    assert not (out / "checkpoints").exists()
    runs = pd.read_csv(out / "runs.csv")
    assert sorted(set(runs["method"])) == ["lstm", "lstm (bi-modal)", "lstm (uni-modal)", "majority", "rf"]
    assert sorted(set(runs["fold"])) == [0, 1]
    # the same two configurations for every variant and fold (same draw, same seeds)
    lstm = runs[runs.family == "lstm"]
    assert lstm.groupby("config_index")["config"].nunique().tolist() == [1, 1]
    table = pd.read_csv(out / "table1.csv").set_index("method")
    assert table.loc["lstm", "macro_f1_mean"] == pytest.approx(
        lstm[lstm.variant == "supervised"]["macro_f1"].mean(), abs=1e-4
    )
    assert (
        table.loc["lstm", "runs"] == 4 and table.loc["rf", "runs"] == 2 and table.loc["majority", "runs"] == 2
    )
    assert table.loc["majority", "kappa_mean"] == pytest.approx(0.0)
    sup = lstm[lstm.variant == "supervised"].sort_values(["fold", "config_index"])["macro_f1"].to_numpy()
    bi = lstm[lstm.variant == "bimodal"].sort_values(["fold", "config_index"])["macro_f1"].to_numpy()
    win = pd.read_csv(out / "win_matrix_lstm.csv", index_col=0)
    assert win.loc["lstm (bi-modal)", "supervised"] == pytest.approx(np.mean(bi > sup), abs=1e-4)
    report = (out / "report.md").read_text()
    assert report.startswith("# geocrop evaluation\n\n> test data")
    assert "| majority |" in report and "| rf |" in report and "2 grouped, stratified folds" in report

    events.clear()
    again = evaluate(job, progress=events.append)
    assert (again.trained, again.reused) == (0, 14)
    assert {r.status for r in events[0].runs} == {"reused"} and events[0].fraction == 1.0  # nothing to fit
    assert all(r.seconds is not None for r in events[0].runs)  # the journal's timings, for an ETA

    # an interrupted run: the last journal line is torn, and one run is missing
    journal = out / JOURNAL
    lines = journal.read_text().splitlines(keepends=True)
    journal.write_text("".join(lines[:-2]) + lines[-2][:40])
    assert len(read_journal(journal)) == len(lines) - 2
    resumed = evaluate(job)
    assert (resumed.trained, resumed.reused) == (2, 12)
    assert len(journal.read_text().splitlines()) == len(lines)
    assert all(json.loads(line)["key"] for line in journal.read_text().splitlines())


def test_folds_are_grouped_and_stratified() -> None:
    from geocrop.data.splits import grouped_folds

    groups = np.repeat([f"p{i}" for i in range(20)], 3)  # 20 parcels of 3 pixels
    labels = np.repeat(np.arange(20) % 2, 3)
    folds = grouped_folds(labels, groups, k=5, seed=0)
    for g in np.unique(groups):
        assert len(set(folds[groups == g])) == 1  # a parcel never straddles two folds
    for f in range(5):
        assert sorted(set(labels[folds == f])) == [0, 1]  # every class in every fold
        assert (folds == f).sum() == 12


def _check_events(events: list[ProgressEvent]) -> None:
    """The first event lists every run (2 folds x 8), later ones the run that changed; the training
    lines show the initial learning rate; epochs are structured; the share done only grows."""
    grid = events[0].runs
    assert len(grid) == 16 and {r.status for r in grid} == {"left"} and {r.fold for r in grid} == {0, 1}
    assert [r.method for r in grid[:8]] == [
        "majority",
        "lstm",
        "lstm",
        "rf",
        "lstm unimodal",
        "lstm unimodal",
        "lstm bimodal",
        "lstm bimodal",
    ]
    starts = [e for e in events if e.runs and e.runs[0].status == "running"]
    assert len(starts) == 14 and all(e.initial_lr == 1e-3 for e in starts)
    deep = [e for e in starts if e.runs[0].method.startswith("lstm")]
    assert len(deep) == 12 and all("lr=1.00e-03->" in e.message for e in deep)
    epochs = [e for e in events if e.epoch is not None]
    assert len(epochs) == 12 and all(e.epoch == e.epochs == 1 and not e.log for e in epochs)
    finished = [e for e in events if e.runs and e.runs[0].status == "done" and e.runs[0].method != "majority"]
    assert [e.step for e in finished] == list(range(1, 15)) and finished[-1].fraction == 1.0
    assert all(e.runs[0].seconds is not None and e.runs[0].macro_f1 is not None for e in finished)
    fractions = [e.fraction for e in events if e.fraction is not None]
    assert fractions == sorted(fractions) and {e.stage for e in events} == {"evaluate"}


def test_evaluate_refuses_a_folder_of_another_evaluation(tmp_path: Path) -> None:
    only_rf = {"families": (), "n_configs": 1}  # a whole evaluation in its cheapest form: two forests
    evaluate(_job(tmp_path, **only_rf))
    with pytest.raises(InputError, match="different evaluation"):
        evaluate(_job(tmp_path, **only_rf, n_train=6))


@pytest.mark.parametrize(
    ("kw", "error", "message"),
    [
        ({"families": (), "baselines": ()}, InputError, "nothing to evaluate"),
        ({"families": ("gru",)}, InputError, "head family 'gru'"),
        ({"families": ("rf",)}, InputError, "give them with `baselines`"),
        ({"n_configs": 0}, InputError, "`configs` 0"),
        ({"folds": 0}, InputError, "`folds` 0"),
    ],
)
def test_bad_evaluations_write_nothing(
    tmp_path: Path, kw: dict[str, object], error: type, message: str
) -> None:
    job = _job(tmp_path, **kw)
    with pytest.raises(error, match=message):
        evaluate(job)
    assert not job.out.exists()


def test_a_backbone_with_other_bands_writes_nothing(tmp_path: Path) -> None:
    planet = write_backbone(tmp_path / "planet.safetensors", bands=("blue", "green", "red", "nir"))
    job = _job(tmp_path, bimodal=(planet,))
    with pytest.raises(BundleError, match="pretrained on bands"):
        evaluate(job)
    assert not job.out.exists()


@pytest.mark.slow
def test_evaluate_every_family_with_two_bundles_per_variant(tmp_path: Path) -> None:
    """The paper's layout in miniature: 3 families, 2 configs, 2 bundles per pretrained variant."""
    job = _job(
        tmp_path,
        families=("lstm", "inception", "transformer"),
        bimodal=(
            write_backbone(tmp_path / "b1.safetensors", seed=1),
            write_backbone(tmp_path / "b2.safetensors", seed=3),
        ),
        unimodal=(
            write_backbone(tmp_path / "u1.safetensors", seed=2),
            write_backbone(tmp_path / "u2.safetensors", seed=4),
        ),
        config=TrainConfig(epochs=2, batch_size=16, device="cpu"),
        folds=1,
        baselines=(),
    )
    result = evaluate(job)
    assert result.trained == 3 * 2 * 5
    win = pd.read_csv(job.out / "win_matrix_inception.csv", index_col=0)
    assert win.shape == (5, 5)  # supervised, two uni-modal and two bi-modal bundles
    table = pd.read_csv(job.out / "table1.csv").set_index("method")
    assert table.loc["inception (bi-modal 2)", "runs"] == 2


@pytest.mark.slow
def test_evaluate_on_the_simulated_sample_area(tmp_path: Path) -> None:
    """`geocrop simulate` -> `pretrain` (bi- and uni-modal) -> `evaluate`, small settings, every output file.

    Simulated data: this proves the pipeline runs, not that the method works.
    """
    import geopandas as gpd

    from geocrop.sim import SimulationConfig, write_sample_area
    from geocrop.training.pretrain import PretrainConfig, pretrain

    area = write_sample_area(tmp_path / "area", SimulationConfig.tiny())
    bundles = {}
    for mode in ("bimodal", "unimodal"):
        config = PretrainConfig(
            out=tmp_path / mode, s2=str(area.catalog),
            planet=str(area.catalog) if mode == "bimodal" else None,
            mode=mode, epochs=1, batch_size=256, width=16, depth=2, device="cpu", pixels_per_date=200,
            fields=str(area.labels),
        )  # fmt: skip
        bundles[mode] = pretrain(config, progress=False).bundle
    # the tiny area has crops with a single parcel; a parcel split needs two, so keep the others
    parcels = gpd.read_file(area.labels)
    counts = parcels["crop"].value_counts()
    labels = tmp_path / "labels.geojson"
    parcels[parcels["crop"].isin(counts[counts >= 2].index)].to_file(labels)
    year = area.config.year
    job = EvaluateJob(
        source=LabelSource(
            labels, "crop", id_column="parcel_id", s2=str(area.catalog),
            start=dt.date(year, 3, 1), end=dt.date(year, 10, 31), steps=144,
        ),
        out=tmp_path / "eval", bimodal=(bundles["bimodal"],), unimodal=(bundles["unimodal"],), n_configs=1,
        config=TrainConfig(epochs=2, batch_size=32, device="cpu"), n_train=20, n_val=10,
        data_note="> simulated", folds=1, baselines=("rf",), families=("lstm", "inception", "transformer"),
    )  # fmt: skip
    result = evaluate(job)
    assert result.trained == 3 * 3 + 1
    files = {p.name for p in job.out.iterdir()}
    for family in ("lstm", "inception", "transformer"):
        assert {
            f"win_matrix_{family}.csv",
            f"win_matrix_{family}.png",
            f"relative_gain_{family}.png",
            f"confusion_{family}_bi_modal.png",
        } <= files
    assert {"report.md", "table1.csv", "runs.csv", "per_class_f1.csv", "confusion_rf.png"} <= files


@pytest.mark.slow
def test_label_scarce_evaluation_draws_the_same_parcels_and_resumes(tmp_path: Path) -> None:
    """Learning curves: every method on the same seeded draws, scored on the whole held-out fold."""
    from geocrop.training.label_draws import fold_draws

    table = tmp_path / "samples.csv"
    write_table(table, parcels=8, pixels=2)
    job = _job(
        tmp_path, unimodal=(), n_configs=None, families=("tempcnn",), labels_per_class=(3, 1, None), draws=2,
        config=TrainConfig(epochs=2, batch_size=8, device="cpu"),
    )  # fmt: skip
    result = evaluate(job)
    # per fold: (1 + 3) x 2 draws + all = 5 label sets; raw tempcnn, bi-modal tempcnn and rf on each
    assert (result.trained, result.reused) == (2 * 5 * 3, 0)
    runs = {r.key: r for r in result.records}
    assert "tempcnn-000-supervised-raw-f1-n3-d1" in runs and "rf-000-supervised-raw-f0" in runs
    assert "majority-f0-n1-d0" in runs
    for rec in result.records:
        # validation is the whole held-out fold, whatever the labels
        assert len(rec.val_true) == len(runs[f"majority-f{rec.fold}"].val_true)
    by_cell: dict[tuple[int, int | None, int], set[str]] = {}
    for rec in result.records:
        by_cell.setdefault((rec.fold, rec.labels_per_class, rec.draw), set()).add(rec.method)
    assert set(map(len, by_cell.values())) == {4}  # majority, rf, tempcnn, tempcnn (bi-modal) everywhere
    # the draws the runs trained on: whole parcels, k per class, different between draws
    from geocrop.data.labelled import load_labelled
    from geocrop.data.splits import grouped_folds

    series = load_labelled(job.source, max_per_class=4 * (job.n_train + job.n_val), seed=0)
    folds = grouped_folds(series.labels, series.groups, k=2, seed=0)
    train_idx = np.flatnonzero(folds != 0)
    draws = fold_draws(series, train_idx, fold=0, counts=(1, 3), draws={1: 2, 3: 2}, seed=0)
    for d in draws:
        per_class = {c: len(np.unique(series.groups[d.rows][series.labels[d.rows] == c])) for c in range(3)}
        assert set(per_class.values()) == {d.labels}
    assert draws[0].rows.tolist() != draws[1].rows.tolist()
    out = job.out
    curves = pd.read_csv(out / "learning_curves.csv")
    row = curves[(curves.method == "tempcnn") & (curves.labels_per_class == "3")].iloc[0]
    f1 = [r.scores["macro_f1"] for r in result.records if r.method == "tempcnn" and r.labels_per_class == 3]
    assert row["runs"] == 4 and row["macro_f1_mean"] == pytest.approx(np.mean(f1), abs=1e-4)
    paired = pd.read_csv(out / "learning_curves_paired.csv")
    assert {"tempcnn (bi-modal)"} <= set(paired.method) and {"tempcnn", "gbm"} & set(paired.against)
    assert (out / "learning_curves.png").stat().st_size > 0
    report = (out / "report.md").read_text()
    assert "## Learning curves" in report and "| tempcnn (bi-modal) | tempcnn |" in report
    # Table 1 keeps the all-label runs only: one per fold
    assert pd.read_csv(out / "table1.csv").set_index("method").loc["tempcnn", "runs"] == 2

    again = evaluate(job)
    assert (again.trained, again.reused) == (0, 30)
    fewer = evaluate(replace(job, labels_per_class=(1,), draws=1))  # a subset: nothing new to train
    assert fewer.trained == 0 and "| method | 1 |" in (out / "report.md").read_text()
    more = evaluate(replace(job, draws=(3, 2), report_only=True))  # a third draw at 1: not run here
    # 2 folds x 6 label sets x 4 methods wanted; 2 x 1 x 3 trained runs missing (the majority is counted)
    assert more.trained == 0 and len(more.records) == 42
    assert "Report of the runs finished so far: 42 of 48." in (out / "report.md").read_text()


@pytest.mark.parametrize(
    ("counts", "message"),
    [
        ((0,), "`labels_per_class` 0: a run needs at least 1"),
        ((5, -1), "`labels_per_class` -1"),
        ((2.5,), "not a whole number"),
        (("ten",), "not a whole number"),
        ((), "give a list of counts"),
        ((500,), "`labels_per_class` 500 is more than any class has"),
    ],
)
def test_bad_label_counts_write_nothing(tmp_path: Path, counts: tuple[object, ...], message: str) -> None:
    job = _job(tmp_path, labels_per_class=counts)
    with pytest.raises(InputError, match=message) as info:
        evaluate(job)
    assert info.value.param == "labels_per_class"
    assert not job.out.exists()


def test_the_largest_usable_count_is_named(tmp_path: Path) -> None:
    # 5 parcels per class dealt to 2 folds: each fold trains on 2 or 3 parcels of a class, 3 at most
    with pytest.raises(InputError, match="3 training parcels in the smallest fold; give at most 3, or 'all'"):
        evaluate(_job(tmp_path, labels_per_class=(4,)))
    assert not (tmp_path / "eval").exists()


@pytest.mark.slow
def test_pretrained_temporal_heads_are_variants_of_their_family(tmp_path: Path) -> None:
    """`temporal` / `temporal_frozen`: the family's head starts from the pretrained body (its own
    architecture and band statistics); other families and the trees are not run on it."""
    from geocrop.training.head_bundle import read_pretrained_head
    from geocrop.training.temporal_config import TemporalPretrainConfig
    from geocrop.training.temporal_pretrain import pretrain_temporal

    table = tmp_path / "samples.csv"
    write_table(table, parcels=6, pixels=2)
    params = {"hidden": 8, "dense": 16, "kernel_size": 3}
    config = TemporalPretrainConfig(
        out=tmp_path / "tp", s2=str(table), head="tempcnn", head_params=params, steps=12, epochs=1,
        batch_size=16, device="cpu",
    )  # fmt: skip
    head = pretrain_temporal(config, progress=False).bundle
    assert read_pretrained_head(head).steps == 12
    job = _job(
        tmp_path, bimodal=(), unimodal=(), n_configs=None, families=("tempcnn", "lstm"), baselines=(),
        temporal=(head,), temporal_frozen=(head,), labels_per_class=(2, None), draws=1,
    )  # fmt: skip
    result = evaluate(job)
    methods = {r.method for r in result.records}
    assert {"tempcnn (temporal)", "tempcnn (temporal, frozen, logistic)", "tempcnn", "lstm"} <= methods
    assert not any("temporal" in m for m in methods if m.startswith("lstm"))
    tuned = [r for r in result.records if r.variant == "temporal"]
    assert len(tuned) == 2 * 2 and all(r.config["params"] == params for r in tuned)  # 2 folds x (2, all)
    paired = pd.read_csv(job.out / "learning_curves_paired.csv")
    assert {"tempcnn (temporal)", "tempcnn (temporal, frozen, logistic)"} <= set(paired.method)
    # another fine-tuning recipe joins the same folder: its own runs, named, the others reused
    gentle = evaluate(replace(job, config=replace(job.config, body_lr=0.1), temporal_frozen=()))
    assert gentle.trained == 2 * 2 and gentle.reused >= 2 * 2
    assert "tempcnn (temporal, body lr 0.1)" in {r.method for r in gentle.records}

    with pytest.raises(InputError, match="pretrained tempcnn head; add tempcnn to `families`") as err:
        evaluate(replace(job, out=tmp_path / "other", families=("lstm",)))
    assert err.value.param == "temporal" and not (tmp_path / "other").exists()


def test_a_training_setting_added_later_at_its_default_keeps_the_folder() -> None:
    from geocrop.training.journal import same_setup

    before = {"data": "x", "train": {"epochs": None, "seed": 0}}  # written before `init` existed
    assert same_setup(before, {"data": "x", "train": {"epochs": None, "seed": 0, "init": None}})
    assert not same_setup(before, {"data": "x", "train": {"epochs": None, "seed": 0, "init": "h.st"}})
    assert not same_setup(before, {"data": "y", "train": {"epochs": None, "seed": 0}})


def test_a_training_recipe_names_and_keys_the_deep_runs_it_changes() -> None:
    from geocrop.training.evaluate import _recipe
    from geocrop.training.records import RunRecord

    both = TrainConfig(resample_dates=True, date_dropout=0.2, body_lr=0.1, probe=0.1)
    assert _recipe(both, "temporal", "tempcnn") == (
        "body lr 0.1, probe 0.1, resampled dates, date dropout 0.2",
        "-body0.1-probe0.1-resample-dropout0.2",
    )
    assert _recipe(both, "supervised", "tempcnn") == (
        "resampled dates, date dropout 0.2",
        "-resample-dropout0.2",
    )
    assert _recipe(both, "supervised", "gbm") == ("", "")  # the trees train on no batches
    assert _recipe(TrainConfig(), "temporal", "tempcnn") == ("", "")
    record = RunRecord(
        "k", "tempcnn", 0, {}, "supervised", "", 0, 0, {}, [], [], 0.0, recipe="resampled dates"
    )
    assert record.method == "tempcnn (resampled dates)"
