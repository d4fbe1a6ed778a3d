"""Temporal pretraining: hidden dates are real observations only, the loss reads them alone, a run resumes
bit for bit, the bundle says what it learned, and `train` starts from it (fine-tuned or frozen)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from geocrop.errors import InputError
from geocrop.models.registry import build_head
from geocrop.training.fit import TrainConfig, fit_head
from geocrop.training.head_bundle import read_pretrained_head
from geocrop.training.head_init import apply_init, check_init
from geocrop.training.temporal_config import TemporalPretrainConfig, plan_pretraining
from geocrop.training.temporal_data import bin_to_grid, load_series
from geocrop.training.temporal_pretrain import hide_dates, masked_loss, pretrain_temporal
from tests.io.cube_fixtures import write_cube, write_long_table

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny(out: Path, s2: Path, **kw: Any) -> TemporalPretrainConfig:
    args: dict[str, Any] = {"out": out, "s2": str(s2), "epochs": 2, "batch_size": 16, "device": "cpu",
                            "head_params": {"d_model": 16, "heads": 2, "layers": 1}}  # fmt: skip
    args.update(kw)
    return TemporalPretrainConfig(**args)


def test_hidden_dates_are_observed_at_least_one_never_all() -> None:
    gen = torch.Generator().manual_seed(0)
    observed = torch.rand(500, 30, generator=gen) < 0.4
    observed[0] = False
    observed[1, :] = False
    observed[1, [4, 9]] = True
    hidden = hide_dates(observed, 0.15, gen)
    assert not (hidden & ~observed).any()  # cloud-masked or missing dates are never targets
    enough = observed.sum(1) >= 2
    assert (hidden.sum(1)[enough] >= 1).all() and (hidden.sum(1) < observed.sum(1).clamp(min=1)).all()
    assert not hidden[0].any() and hidden[1].sum() == 1
    share = hidden.sum() / observed.sum()
    assert 0.12 < float(share) < 0.25


def test_the_loss_reads_hidden_dates_only() -> None:
    target = torch.randn(3, 10, 4)
    target[:, 0] = float("nan")  # a gap, never hidden
    where = torch.zeros(3, 10, dtype=torch.bool)
    where[:, 4] = True
    pred = torch.randn(3, 10, 4)
    base = masked_loss(pred, target, where)
    other = pred.clone()
    other[:, 5:] += 10
    assert torch.isfinite(base) and torch.equal(base, masked_loss(other, target, where))
    assert torch.isclose(base, ((pred[:, 4] - target[:, 4]) ** 2).mean())
    bands = torch.tensor([True, False, True, True])
    assert torch.isclose(
        masked_loss(pred, target, where, bands), ((pred[:, 4] - target[:, 4])[:, bands] ** 2).mean()
    )


def test_binning_keeps_gaps_empty() -> None:
    from geocrop.core.temporal import TemporalGrid

    grid = TemporalGrid("2021-01-01", "2021-01-10", 10)
    values = np.full((2, 3, 1), np.nan, np.float32)
    values[0, :, 0] = [1.0, 2.0, 4.0]
    values[1, 1, 0] = 5.0
    dates = np.array(["2021-01-01", "2021-01-05", "2021-01-05"], "datetime64[D]")
    binned = bin_to_grid(values, dates, grid)
    assert binned[0, 0, 0] == 1 and binned[0, 4, 0] == 3  # two on one step: averaged
    assert binned[1, 4, 0] == 5 and np.isnan(binned[1, 0, 0]) and np.isnan(binned[0, 1:4]).all()


def test_defaults_adapt_to_the_number_of_series(tmp_path: Path) -> None:
    config = TemporalPretrainConfig(out=tmp_path / "r", s2="x.parquet")
    few, many = plan_pretraining(config, 450), plan_pretraining(config, 100_000)
    assert (few.batch_size, few.epochs) == (32, 143)  # ~2,000 steps on the France table
    assert (many.batch_size, many.epochs) == (256, 10)


def test_a_table_pretrains_resumes_exactly_and_writes_the_head(tmp_path: Path) -> None:
    table = write_long_table(tmp_path / "t.parquet", samples=60, dates=12)
    straight = pretrain_temporal(tiny(tmp_path / "a", table), progress=False)
    pre = read_pretrained_head(straight.bundle)
    assert pre.family == "transformer" and pre.steps == 12 and pre.objective["second"] == "sentinel-1"
    assert pre.objective["target_bands"] == [b for b in pre.bands if b not in ("B01", "B8A", "B09")]
    assert not any(k.startswith("classifier.") for k in pre.tensors)
    assert len(pre.history) == 2 and pre.training["series"] == {"train": 54, "heldout": 6}
    assert all(np.isfinite(h["loss"]) and np.isfinite(h["heldout_second_loss"]) for h in pre.history)
    assert json.loads((tmp_path / "a" / "head.json").read_text())["kind"] == "pretrained_head"

    def kill(epoch: int, record: Any) -> None:
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pretrain_temporal(tiny(tmp_path / "b", table), progress=False, on_epoch_end=kill)
    assert not (tmp_path / "b" / "head.safetensors").exists()
    resumed = pretrain_temporal(tiny(tmp_path / "b", table), progress=False)
    assert resumed.resumed_from == 1
    again = read_pretrained_head(resumed.bundle)
    assert all(np.array_equal(pre.tensors[k], again.tensors[k]) for k in pre.tensors)
    with pytest.raises(Exception, match="another `out`"):
        pretrain_temporal(tiny(tmp_path / "b", table, mask_ratio=0.3), progress=False)


@pytest.mark.parametrize("head", ["tempcnn", "inception"])
def test_convolutional_heads_pretrain_with_augmentation(tmp_path: Path, head: str) -> None:
    table = write_long_table(tmp_path / "t.parquet", samples=40, dates=10, s1=False)
    params = (
        {"hidden": 8, "dense": 16} if head == "tempcnn" else {"hidden": 16, "layers": 3, "kernel_size": 5}
    )
    config = tiny(
        tmp_path / head, table, head=head, head_params=params, date_dropout=0.2, resample_dates=True
    )
    pre = read_pretrained_head(pretrain_temporal(config, progress=False).bundle)
    assert pre.family == head and pre.objective["second"] is None
    assert pre.augment == {"date_dropout": 0.2, "resample_dates": True}
    assert pre.head.get("steps") == (10 if head == "tempcnn" else None)


def test_single_date_and_disjoint_sensors_are_refused(tmp_path: Path) -> None:
    single = write_long_table(tmp_path / "one.parquet", samples=20, dates=1)
    with pytest.raises(InputError, match="single date") as err:
        load_series(str(single))
    assert err.value.param == "s2"
    frame = pd.read_parquet(write_long_table(tmp_path / "t.parquet", samples=20, dates=8))
    s2_clear = frame["S2-L2A-B02"] != 65535
    frame.loc[s2_clear, ["S1-SIGMA0-VV", "S1-SIGMA0-VH"]] = 65535  # S1 only where S2 is clouded
    frame.to_parquet(tmp_path / "apart.parquet")
    with pytest.raises(InputError, match="share no date") as err:
        load_series(str(tmp_path / "apart.parquet"))
    assert err.value.param == "second_modality"
    assert load_series(str(tmp_path / "apart.parquet"), second="none").second is None


def test_train_starts_from_the_pretrained_body(tmp_path: Path) -> None:
    table = write_long_table(tmp_path / "t.parquet", samples=40, dates=10)
    bundle = pretrain_temporal(tiny(tmp_path / "p", table, epochs=1), progress=False).bundle
    pre = read_pretrained_head(bundle)
    spec = {**pre.head, "n_classes": 3}
    head = apply_init(build_head(spec), pre)
    state = head.state_dict()
    assert all(np.array_equal(state[k].numpy(), pre.tensors[k]) for k in pre.tensors)
    with pytest.raises(InputError, match="pretrained transformer head, not tempcnn") as err:
        check_init(pre, family="tempcnn")
    assert err.value.param == "init"
    with pytest.raises(InputError, match=r"10-step grid .* 12 steps"):
        check_init(pre, family="transformer", steps=12)

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 10, 12)).astype(np.float32), rng.integers(0, 3, 40)
    frozen = fit_head(
        spec,
        (x, y),
        (x[:8], y[:8]),
        config=TrainConfig(  # a linear layer trained by epochs
            epochs=3, init=str(bundle), freeze_init=True, frozen_classifier="mlp", frozen_hidden=0
        ),
    )
    tuned = fit_head(spec, (x, y), (x[:8], y[:8]), config=TrainConfig(epochs=3, init=str(bundle)))
    for key, value in pre.tensors.items():  # the frozen body (weights and statistics) did not move
        assert np.array_equal(frozen.head.state_dict()[key].numpy(), value), key
    assert not np.array_equal(
        frozen.head.state_dict()["classifier.weight"].numpy(), state["classifier.weight"].numpy()
    )
    assert any(not np.array_equal(tuned.head.state_dict()[k].numpy(), v) for k, v in pre.tensors.items())
    # a body learning at a tenth of the classifier's rate moves less from the pretrained weights
    gentle = fit_head(
        spec, (x, y), (x[:8], y[:8]), config=TrainConfig(epochs=3, init=str(bundle), body_lr=0.1)
    )

    def moved(result: Any) -> float:
        now = result.head.state_dict()
        return sum(
            float(np.abs(now[k].numpy() - v).sum()) for k, v in pre.tensors.items() if v.dtype.kind == "f"
        )

    assert 0 < moved(gentle) < 0.5 * moved(tuned)
    # a linear probe first: while it lasts (here the whole run) the body stays as pretrained
    probed = fit_head(spec, (x, y), (x[:8], y[:8]), config=TrainConfig(epochs=3, init=str(bundle), probe=0.9))
    assert moved(probed) == 0
    assert not np.array_equal(
        probed.head.state_dict()["classifier.weight"].numpy(), state["classifier.weight"].numpy()
    )
    short = fit_head(spec, (x, y), (x[:8], y[:8]), config=TrainConfig(epochs=3, init=str(bundle), probe=0.3))
    assert moved(short) > 0  # one epoch of probe, then the body trains too
    with pytest.raises(InputError, match="0 < body_lr <= 1"):
        TrainConfig(init=str(bundle), body_lr=0)
    with pytest.raises(InputError, match="10-step grid"):
        fit_head(spec, (x[:, :8], y), (x[:8, :8], y[:8]), config=TrainConfig(epochs=1, init=str(bundle)))
    with pytest.raises(InputError, match="`freeze_init` needs"):
        TrainConfig(freeze_init=True)


def test_the_contrastive_objective_matches_augmented_views(tmp_path: Path) -> None:
    table = write_long_table(tmp_path / "t.parquet", samples=60, dates=12)
    config = tiny(tmp_path / "c", table, objective="contrastive", head="tempcnn", head_params={"hidden": 8})
    assert config.augment().to_dict() == {"date_dropout": 0.2, "resample_dates": True}  # its defaults
    result = pretrain_temporal(config, progress=False)
    pre = read_pretrained_head(result.bundle)
    assert pre.objective == {"name": "contrastive", "loss": "nt_xent", "temperature": 0.07}
    last = result.history[-1]
    assert 0 <= last["heldout_retrieval_top1"] <= 1 and last["chance"] == pytest.approx(1 / 6)
    assert not any(k.startswith(("projector.", "classifier.")) for k in pre.tensors)
    with pytest.raises(InputError, match="two augmented views") as err:
        tiny(tmp_path / "d", table, objective="contrastive", date_dropout=0.0, resample_dates=False)
    assert err.value.param == "objective"
    # masked: date resampling by default (the label-scarce evaluation's best), no date dropout
    assert tiny(tmp_path / "e", table).augment().to_dict() == {"date_dropout": 0.0, "resample_dates": True}
    assert tiny(tmp_path / "f", table, resample_dates=False).augment().active is False


@pytest.mark.slow  # odc-stac loading of a NetCDF cube: ~10 s alone, minutes on a busy machine
def test_a_cube_gives_one_series_per_pixel_with_its_s1(tmp_path: Path) -> None:
    cube = write_cube(tmp_path / "c.nc", size=8, months=4)
    data = load_series(str(cube), steps=4)
    n = data.provenance["pixels"]
    assert data.values.shape == (n - data.provenance["left_out"], 4, 12) and n >= 64
    assert data.second is not None and data.second.shape == (*data.values.shape[:2], 2)
    assert data.provenance["source_kind"] == "imagery" and data.observed.mean() > 0.9


def test_the_python_verb_speaks_argument_names(tmp_path: Path) -> None:
    import geocrop

    table = write_long_table(tmp_path / "t.parquet", samples=30, dates=6)
    result = geocrop.pretrain(mode="temporal", s2=table, out=tmp_path / "r", head="lstm",
                              head_params={"hidden": 8, "layers": 1}, epochs=1, device="cpu")  # fmt: skip
    assert read_pretrained_head(result.bundle).head["hidden"] == 8
    bad: list[tuple[dict[str, Any], str]] = [
        ({"mode": "temporal", "planet": table}, "planet"),
        ({"mode": "temporal", "second_modality": "planetscope"}, "second_modality"),
        ({"mode": "temporal", "head": "rf"}, "head"),
        ({"mode": "bimodal", "date_dropout": 0.2}, "date_dropout"),
        ({"mode": "unimodal", "resample_dates": True}, "resample_dates"),
    ]
    for kwargs, param in bad:
        with pytest.raises(InputError) as err:
            geocrop.pretrain(s2=table, out=tmp_path / "bad", **kwargs)
        assert err.value.param == param and "--" not in str(err.value), kwargs
    assert not (tmp_path / "bad").exists()
