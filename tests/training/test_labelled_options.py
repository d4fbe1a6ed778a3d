"""`train` and `evaluate` share one declaration of their labelled-data and training options: the verbs'
signatures and the CLI's shared options follow it, and it checks what callers give in library terms."""

from __future__ import annotations

import dataclasses
import datetime as dt
import inspect
from pathlib import Path

import click
import pytest

import geocrop
from geocrop.cli.evaluate import evaluate as evaluate_command
from geocrop.cli.train import train as train_command
from geocrop.core.params import declared
from geocrop.errors import InputError
from geocrop.training.labelled_options import LabelledOptions

FIELDS = {d.name: d.default for d in declared(LabelledOptions)}


@pytest.mark.parametrize("verb", [geocrop.train, geocrop.evaluate], ids=["train", "evaluate"])
def test_the_verbs_take_the_declared_options_with_their_defaults(verb: object) -> None:
    signature = inspect.signature(verb)  # type: ignore[arg-type]
    taken = {name: p.default for name, p in signature.parameters.items() if name in FIELDS}
    assert set(taken) == set(FIELDS)
    for name, default in FIELDS.items():
        want = inspect.Parameter.empty if default is dataclasses.MISSING else default
        assert taken[name] == want, f"{name}: {taken[name]!r} != {want!r}"


@pytest.mark.parametrize("command", [train_command, evaluate_command], ids=["train", "evaluate"])
def test_the_cli_lists_the_declared_options_in_order(command: click.Command) -> None:
    options = [p for p in command.params if isinstance(p, click.Option) and p.name in FIELDS]
    assert [p.name for p in options] == list(FIELDS)  # first, in declaration order
    for option in options:
        default = FIELDS[str(option.name)]
        if default is dataclasses.MISSING:
            assert option.required, option.name
        elif option.is_flag:
            assert default is False, option.name  # a flag is off unless given
        elif option.multiple:
            assert default == (), option.name  # a repeatable option given no times is ()
        else:
            assert option.default == default, option.name


def test_values_are_converted_and_the_helpers_carry_them() -> None:
    options = LabelledOptions(
        labels="~/t.csv", class_column="crop", start="2023-03-01", end=dt.datetime(2023, 10, 1, 8),
        nodata=[0, 65535], steps=36, epochs=5, seed=3, allow_any_asset_href=True,
    )  # fmt: skip
    source = options.source()
    assert source.path == Path("~/t.csv").expanduser() and source.nodata == (0.0, 65535.0)
    assert (source.start, source.end, source.steps) == (dt.date(2023, 3, 1), dt.date(2023, 10, 1), 36)
    assert source.allow_any_asset_href is True
    config = options.train_config(1e-2)
    assert (config.initial_lr, config.epochs, config.seed, config.device) == (1e-2, 5, 3, "auto")


@pytest.mark.parametrize(
    ("bad", "param", "words"),
    [
        ({"class_column": " "}, "class_column", "`class_column` ' ' is not a column name"),
        ({"steps": 1}, "steps", "`steps` 1 is neither 'auto' nor a whole number >= 2"),
        ({"min_parcels": -1}, "min_parcels", "`min_parcels` -1 is neither 'auto'"),
        ({"train_pixels": 0}, "train_pixels", "`train_pixels` 0 is below 1"),
        ({"batch_size": 1}, "batch_size", "`batch_size` 1 is below 2"),
        ({"scale": 0}, "scale", "`scale` 0 is not positive"),
        ({"split": "50-50"}, "split", "`split` '50-50' is not one of 70-30, 70-21-9"),
        ({"device": "gpu"}, "device", "`device` 'gpu' is not auto, cpu or cuda[:N]"),
        ({"start": "2023-06-01", "end": "2023-03-01"}, "end", "`end` 2023-03-01 is not after `start`"),
    ],
)
def test_bad_values_are_refused_in_library_terms(bad: dict, param: str, words: str) -> None:
    with pytest.raises(InputError) as caught:
        LabelledOptions(**{"labels": "t.csv", "class_column": "crop", **bad})
    assert caught.value.param == param and str(caught.value).startswith(words)
    assert "--" not in str(caught.value)
