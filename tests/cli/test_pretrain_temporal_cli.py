"""`geocrop pretrain --mode temporal` and `geocrop train --init` from the shell: the pretrained head feeds a
fine-tuned or frozen classifier, and bad input is one line, exit 2, nothing written."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from geocrop.cli.main import cli
from geocrop.io.bundle import load_bundle
from tests.io.cube_fixtures import write_long_table

SMALL = ["--epochs", "2", "--batch-size", "16", "--d-model", "16", "--heads", "2", "--layers", "1"]


@pytest.fixture(autouse=True)
def _quiet_one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
    torch.set_num_threads(before)


def _run(args: list[str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, args)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("temporal")
    table = write_long_table(folder / "t.parquet", samples=60, dates=10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        args = ["pretrain", "--mode", "temporal", "--s2", str(table), "--out", str(folder / "run"), *SMALL]
        code, out, err = _run([*args, "--date-dropout", "0.1", "--resample-dates"])
    assert code == 0, err
    assert "pretrained 2 epochs" in out and "linear interpolation" in out
    return table, folder / "run" / "head.safetensors"


@pytest.mark.parametrize("freeze", [False, True])
def test_train_starts_from_the_pretrained_head(
    pretrained: tuple[Path, Path], tmp_path: Path, freeze: bool
) -> None:
    table, head = pretrained
    args = ["train", "--labels", str(table), "--class-column", "ewoc_code", "--init", str(head),
            "--head", "transformer", "--epochs", "2", "--out", str(tmp_path / "m.safetensors")]  # fmt: skip
    code, _, err = _run([*args, "--freeze-init"] if freeze else args)
    assert code == 0, err
    meta = load_bundle(tmp_path / "m.safetensors").metadata
    assert (
        meta["head"]["name"] == "transformer" and meta["head"]["d_model"] == 16
    )  # the pretrained architecture
    config = meta["training"]["config"]
    assert config["init"] == str(head) and config["freeze_init"] is freeze
    pre = load_bundle(head).metadata["normalization"]
    assert meta["normalization"] == pre  # inputs standardised as in pretraining


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--head", "tempcnn"], "pretrained transformer head, not tempcnn"),
        (["--head", "transformer", "--steps", "8"], "10-step grid"),
        (["--head", "transformer", "--d-model", "32"], "differ from the pretrained head"),
        (["--head", "transformer", "--backbone", "x.safetensors"], "drop --backbone"),
    ],
)
def test_a_head_that_does_not_fit_is_one_line(
    pretrained: tuple[Path, Path], tmp_path: Path, extra: list[str], message: str
) -> None:
    table, head = pretrained
    out = tmp_path / "m.safetensors"
    code, _, err = _run(["train", "--labels", str(table), "--class-column", "ewoc_code", "--init", str(head),
                         "--epochs", "1", "--out", str(out), *extra])  # fmt: skip
    assert code == 2 and message in err, err
    assert err.startswith("geocrop: error:") and len(err.strip().splitlines()) == 1
    assert not out.exists() and not list(tmp_path.glob("*.safetensors"))


def test_bad_temporal_pretraining_input_writes_nothing(tmp_path: Path) -> None:
    single = write_long_table(tmp_path / "one.parquet", samples=20, dates=1)
    out = tmp_path / "run"
    code, _, err = _run(["pretrain", "--mode", "temporal", "--s2", str(single), "--out", str(out)])
    assert code == 2 and "single date" in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()
    table = write_long_table(tmp_path / "t.parquet", samples=20, dates=4)
    code, _, err = _run(
        ["pretrain", "--mode", "bimodal", "--s2", str(table), "--out", str(out), "--date-dropout", "0.2"]
    )
    assert code == 2 and "--date-dropout" in err and "--mode temporal" in err, err
    assert not out.exists()
