"""Head training: schedule, learning, exact resumption, and `train_model`'s map-ready bundle."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from geocrop.core.bands import S2_BANDS
from geocrop.data.labelled import LabelSource
from geocrop.data.splits import SamplingWarning
from geocrop.errors import BundleError
from geocrop.io.bundle import load_bundle
from geocrop.io.bundle_metadata import CLASSIFIER_SCHEMA, read_classifier_metadata
from geocrop.training.fit import EpochStats, TrainConfig, fit_head, linear_lr
from geocrop.training.hparams import FAMILIES, HeadConfig, sample_configs
from geocrop.training.train import TrainJob, checkpoint_path, train_model
from tests.training.heads_synth import write_backbone, write_table

LSTM = {"name": "lstm", "in_features": 12, "n_classes": 3, "hidden": 16, "layers": 2}


@pytest.fixture(autouse=True)
def _quiet_one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)
        yield
    torch.set_num_threads(before)


def _data(n: int = 48, t: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three classes told apart by where in time a bump sits."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = rng.normal(0, 0.3, size=(n, t, 12)).astype(np.float32)
    for i, c in enumerate(y):
        x[i, 2 + 4 * c : 4 + 4 * c, :] += 2.0
    return x, y.astype(np.int64)


def test_linear_schedule_runs_from_initial_to_final() -> None:
    assert linear_lr(0, 11, initial=1e-3, final=1e-5) == pytest.approx(1e-3)
    assert linear_lr(10, 11, initial=1e-3, final=1e-5) == pytest.approx(1e-5)
    assert linear_lr(5, 11, initial=1e-3, final=1e-5) == pytest.approx((1e-3 + 1e-5) / 2)


def test_fit_head_learns_and_reports_each_epoch() -> None:
    seen: list[EpochStats] = []
    result = fit_head(
        LSTM,
        _data(),
        _data(seed=1),
        config=TrainConfig(epochs=6, batch_size=8, initial_lr=1e-2, device="cpu"),
        progress=seen.append,
    )
    assert [s.epoch for s in seen] == [1, 2, 3, 4, 5, 6]
    assert result.history == seen
    assert seen[-1].train_loss < seen[0].train_loss
    assert result.val_accuracy >= 0.9
    assert result.val_pred.shape == (48,)
    assert seen[-1].lr < seen[0].lr  # the linear schedule decays


def test_fit_head_resumes_to_the_same_weights(tmp_path: Path) -> None:
    config = TrainConfig(epochs=4, batch_size=8, device="cpu", seed=3)
    reference = fit_head(LSTM, _data(), _data(seed=1), config=config)

    ckpt = tmp_path / "head.safetensors"

    def stop_after_two(stats: EpochStats) -> None:
        if stats.epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit_head(LSTM, _data(), _data(seed=1), config=config, checkpoint=ckpt, progress=stop_after_two)
    assert ckpt.exists()
    resumed = fit_head(LSTM, _data(), _data(seed=1), config=config, checkpoint=ckpt)
    assert resumed.resumed_from == 2  # epoch 2 was checkpointed before its progress report was interrupted
    assert [h.epoch for h in resumed.history] == [1, 2, 3, 4]
    for (name, a), b in zip(
        reference.head.state_dict().items(), resumed.head.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    assert np.array_equal(reference.val_pred, resumed.val_pred)


def test_fit_head_ignores_a_checkpoint_of_another_run(tmp_path: Path) -> None:
    ckpt = tmp_path / "head.safetensors"
    fit_head(
        LSTM,
        _data(),
        _data(seed=1),
        config=TrainConfig(epochs=1, batch_size=8, device="cpu"),
        checkpoint=ckpt,
    )
    other = fit_head(
        LSTM,
        _data(seed=5),
        _data(seed=1),
        config=TrainConfig(epochs=1, batch_size=8, device="cpu"),
        checkpoint=ckpt,
    )
    assert other.resumed_from == 0


def test_hparam_draws_are_seeded_and_inside_the_paper_spaces() -> None:
    for family in FAMILIES:
        configs = sample_configs(family, 6, seed=4)
        assert configs == sample_configs(family, 6, seed=4)
        assert configs[:3] == sample_configs(family, 3, seed=4)
        assert configs != sample_configs(family, 6, seed=5)
        for c in configs:
            assert 1e-5 <= c.lr <= 1e-3
            p = c.params
            if family == "lstm":
                assert p["hidden"] in (32, 64, 128, 256) and 2 <= p["layers"] <= 6
            elif family == "inception":
                assert p["layers"] in (2, 4, 8) and p["hidden"] in (128, 256, 512, 1024)
                assert p["kernel_size"] in (40, 80, 120, 136)
            elif family == "tempcnn":  # geocrop's addition (Pelletier et al. 2019)
                assert p["hidden"] in (32, 64, 128) and p["kernel_size"] in (3, 5, 7)
            else:
                assert p["d_model"] in (32, 64, 128) and p["heads"] in (2, 4, 8) and 2 <= p["layers"] <= 6


def _job(tmp_path: Path, **kw: object) -> TrainJob:
    table = write_table(tmp_path / "samples.csv")
    args: dict[str, object] = {
        "source": LabelSource(table, "crop", group_column="parcel", steps=16),
        "out": tmp_path / "model.safetensors",
        "head": HeadConfig("transformer", {"d_model": 16, "heads": 2, "layers": 1}, 1e-4),
        "config": TrainConfig(epochs=3, batch_size=16, device="cpu"),
        "n_train": 12,
        "n_val": 6,
    }
    args.update(kw)
    return TrainJob(**args)  # type: ignore[arg-type]


def test_train_model_writes_a_map_ready_bundle(tmp_path: Path) -> None:
    from geocrop.inference.engine import Predictor

    job = _job(tmp_path)
    result = train_model(job)
    assert result.bundle == job.out and job.out.exists()
    assert not checkpoint_path(job.out).exists()
    bundle = load_bundle(job.out)
    meta = bundle.metadata
    assert [c["name"] for c in meta["classes"]] == ["maize", "rapeseed", "wheat"]
    assert all(c["color"].startswith("#") and len(c["color"]) == 7 for c in meta["classes"])
    assert meta["backbone"] == {"name": "none"}
    assert meta["head"]["name"] == "transformer" and meta["head"]["in_features"] == 12
    assert meta["temporal_grid"]["steps"] == 16
    assert len(meta["normalization"]["mean"]) == 12
    assert len(meta["training"]["history"]) == 3
    # written through the typed metadata: versioned, one spelling, and it reads back to the same dict
    assert meta["classifier_schema"] == CLASSIFIER_SCHEMA and "normalisation" not in meta
    typed = read_classifier_metadata(meta, source=str(job.out), default_bands=S2_BANDS)
    assert typed.to_dict() == {k: v for k, v in meta.items() if k != "format_version"}
    predictor = Predictor(job.out, device="cpu")
    block = np.full((16, 12, 2, 2), 0.1, dtype=np.float32)
    assert predictor.predict_block(block).classes.shape == (2, 2)


def test_train_model_with_a_pretrained_backbone(tmp_path: Path) -> None:
    backbone = write_backbone(tmp_path / "bb.safetensors", width=8)
    job = _job(tmp_path, backbone=backbone, head=HeadConfig("lstm", {"hidden": 8, "layers": 2}, 1e-4))
    train_model(job)
    bundle = load_bundle(job.out)
    assert bundle.metadata["backbone"]["name"] == "resmlp"
    assert bundle.metadata["head"]["in_features"] == 8  # the backbone's width, not the 12 bands
    assert bundle.metadata["normalization"]["mean"] == pytest.approx([0.1] * 12)
    assert any(k.startswith("backbone.") for k in bundle.tensors)
    assert bundle.metadata["backbone_source"]["mode"] == "bimodal"


def test_an_old_encoder_spelling_reaches_the_classifier_in_the_new_one(tmp_path: Path) -> None:
    """A pretraining bundle written before (``corruption``, ``normalisation``) still trains a head, and
    the classifier records ``corruption_rate``."""
    backbone = write_backbone(tmp_path / "bb.safetensors", width=8, old_spelling=True)
    train_model(_job(tmp_path, backbone=backbone, head=HeadConfig("lstm", {"hidden": 8, "layers": 2}, 1e-4)))
    meta = load_bundle(tmp_path / "model.safetensors").metadata
    assert meta["normalization"]["mean"] == pytest.approx([0.1] * 12)
    assert meta["backbone_source"]["corruption_rate"] == 0.3 and "corruption" not in meta["backbone_source"]


def test_a_backbone_with_other_bands_is_refused_before_writing(tmp_path: Path) -> None:
    planet = write_backbone(tmp_path / "planet.safetensors", bands=("blue", "green", "red", "nir"))
    job = _job(tmp_path, backbone=planet)
    with pytest.raises(BundleError, match=r"pretrained on bands \['blue'"):
        train_model(job)
    assert not job.out.exists() and not checkpoint_path(job.out).exists()


def test_class_colours_never_look_alike() -> None:
    """Known crop colours stay; palette colours close to one already used are skipped (maize's orange)."""
    from itertools import combinations

    from geocrop.io.classes import CROP_COLOURS, class_colours, look_alike

    names = (
        "barley",
        "dry_pulses_legumes",
        "grass",
        "maize",
        "other",
        "rapeseed",
        "soy",
        "sunflower",
        "wheat",
    )
    colours = class_colours(names)
    assert colours[names.index("maize")] == CROP_COLOURS["maize"]
    assert not any(look_alike(a, b) for a, b in combinations(colours, 2)), colours
