"""Warnings that mean something: one `geocrop: warning:` line without internal paths from Python, no
pixels-per-class warning for a table of points, a wrong class column lists the columns that can hold
classes, and `geocrop -q` leaves errors only (no epoch lines)."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from geocrop.data.samples import read_samples
from geocrop.data.splits import SamplingWarning, split_pixels
from geocrop.errors import GeocropWarning, InputError
from geocrop.io.extent import OutsideTrainingWarning
from geocrop.training.fit import UnderfitWarning
from tests.data.worldcereal_synth import write_class_map, write_extraction


def test_geocrop_warnings_format_as_one_line() -> None:
    # the formatter `import geocrop` installs (the CLI, once it runs in this process, installs its own for
    # every warning, so the process-wide one depends on which tests ran before; a subprocess test below
    # checks what a plain `import geocrop` does)
    from geocrop.errors import format_warning

    assert format_warning("too few points", GeocropWarning, "/x/geocrop/a.py", 3) == (
        "geocrop: warning: too few points\n"
    )
    other = format_warning("not ours", UserWarning, "/x/y.py", 7)
    assert other.startswith("/x/y.py:7: UserWarning: not ours")  # others keep Python's format
    for kind in (SamplingWarning, OutsideTrainingWarning, UnderfitWarning):
        assert issubclass(kind, GeocropWarning) and issubclass(kind, UserWarning)


def test_a_warning_from_python_shows_no_internal_path() -> None:
    code = "from geocrop.data.splits import balanced_sample; balanced_sample([0, 0, 1], n_per_class=5)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stderr == (
        "geocrop: warning: training set: 2 class(es) have fewer than 5 pixels and are used whole, so the "
        "set is not balanced: 0 (2), 1 (1); add parcels or lower the pixels per class\n"
    )


def test_no_pixels_per_class_warning_for_points() -> None:
    labels, groups = [0, 1] * 10, [f"p{i}" for i in range(20)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        split_pixels(labels, groups, class_names=("a", "b"), n_train=50, n_val=50, warn_unbalanced=False)
    with pytest.warns(SamplingWarning, match="fewer than 50 pixels"):
        split_pixels(labels, groups, class_names=("a", "b"), n_train=50, n_val=50)  # parcels: warned


def test_a_wrong_class_column_lists_every_other_column_first(tmp_path: Path) -> None:
    table = write_extraction(tmp_path / "s.parquet")
    with pytest.raises(InputError) as info:
        read_samples(table, label_column="crop")
    assert str(info.value).endswith(
        "no class column 'crop'; choose one of: sample_id, timestamp, ewoc_code (besides 12 band column(s))"
    )


def _train(tmp_path: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    tmp_path.mkdir()
    table = write_extraction(tmp_path / "s.parquet")
    classes = write_class_map(tmp_path / "c.json")
    argv = [*flags, "train", "--labels", str(table), "--class-column", "ewoc_code", "--class-map",
            f"{classes}:CROPTYPE", "--head", "tempcnn", "--epochs", "2", "--device", "cpu",
            "--out", str(tmp_path / "m.safetensors")]  # fmt: skip
    env = {"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "geocrop.cli.main", *argv], capture_output=True, text=True, env=env
    )


def test_quiet_reporter_writes_no_bar_and_no_log_lines(capsys: pytest.CaptureFixture[str]) -> None:
    from geocrop.cli import progress

    quiet = progress.Output(quiet=True)  # what `geocrop -q` sets for its run
    reporter = progress.Reporter("rich", state=quiet)
    reporter(0.5, "training")
    reporter.note("epoch 1/2: train loss 0.9")
    json_reporter = progress.Reporter("json", state=quiet)
    json_reporter.note("epoch 1/2")  # JSON events are the protocol: unchanged
    assert not progress.Reporter("rich").state.quiet  # outside a command nothing is hidden
    out = capsys.readouterr()
    assert out.out == '{"event": "log", "message": "epoch 1/2"}\n' and out.err == ""


@pytest.mark.slow
def test_training_on_a_table_has_no_pixel_warning_and_quiet_has_no_epochs(tmp_path: Path) -> None:
    loud = _train(tmp_path / "loud")
    assert loud.returncode == 0, loud.stderr
    assert "epoch 1/2" in loud.stdout and "pixels" not in loud.stderr
    assert all(line.startswith("geocrop: warning: ") for line in loud.stderr.splitlines())
    quiet = _train(tmp_path / "quiet", "-q")
    assert quiet.returncode == 0, quiet.stderr
    assert "epoch" not in quiet.stdout.replace("epoch 2 kept", "") and quiet.stderr == ""


def test_geocrop_warning_is_exported() -> None:
    import geocrop

    assert geocrop.GeocropWarning is GeocropWarning and "GeocropWarning" in geocrop.__all__
