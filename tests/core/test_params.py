"""One declaration per parameter: the verbs' signatures, the CLI's options and the checks come from it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import click
import pytest
from click.testing import CliRunner

import geocrop
from geocrop.cli.declared import declared_options, flag_for
from geocrop.core.params import (
    as_path,
    config_args,
    declared,
    param,
    settle,
    signature_from,
    within,
)
from geocrop.core.temporal import as_date
from geocrop.errors import InputError
from geocrop.inference.map_config import MapConfig
from geocrop.inference.predict_config import PredictConfig
from geocrop.post.configs import (
    AssessConfig,
    FieldsConfig,
    SmoothConfig,
    StratifiedSampleConfig,
    UncertainSampleConfig,
)
from geocrop.training.labelled_options import EvaluateOptions, TrainOptions
from geocrop.training.pretrain_options import PretrainOptions

#: Each public verb, the config that declares its arguments, and the verb's own keywords (not settings).
VERBS: list[tuple[Any, type, set[str]]] = [
    (geocrop.map_aoi, MapConfig, {"tune_process", "progress"}),
    (geocrop.plan_map, MapConfig, {"tune_process", "progress"}),
    (geocrop.field_results, FieldsConfig, {"progress"}),
    (geocrop.smooth_map, SmoothConfig, {"progress"}),
    (geocrop.assess, AssessConfig, {"progress"}),
    (geocrop.stratified_sample, StratifiedSampleConfig, {"progress"}),
    (geocrop.uncertain_sample, UncertainSampleConfig, {"progress"}),
    (geocrop.predict, PredictConfig, {"tune_process", "progress"}),
    (geocrop.train, TrainOptions, {"progress"}),
    (geocrop.evaluate, EvaluateOptions, {"progress"}),
    (geocrop.pretrain, PretrainOptions, {"bars", "progress"}),
]


@pytest.mark.parametrize(("verb", "config", "own"), VERBS, ids=lambda v: getattr(v, "__name__", ""))
def test_each_verb_takes_its_configs_fields_with_their_defaults(
    verb: Any, config: type, own: set[str]
) -> None:
    signature = inspect.signature(verb)
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in signature.parameters.values())
    taken = {name: p.default for name, p in signature.parameters.items() if name not in own}
    fields = {d.name: d.default for d in declared(config) if d.param.api}
    assert list(taken) == list(fields), "the verb lists the config's fields in the config's order"
    for name, default in fields.items():
        want = inspect.Parameter.empty if default is dataclasses.MISSING else default
        if isinstance(want, tuple):
            assert tuple(taken[name]) == want, name
        else:
            assert taken[name] == want, f"{verb.__name__}({name}=...) default {taken[name]!r} != {want!r}"


def test_the_map_config_converts_what_callers_give_and_checks_in_library_terms() -> None:
    cfg = MapConfig(aoi=[0, 0, 1, 1], start="2021-03-01", end=dt.datetime(2021, 10, 1, 9), out="~/m.tif",
                    mask_values=[1, 2], max_cloud=40)  # fmt: skip
    assert cfg.start == dt.date(2021, 3, 1) and cfg.end == dt.date(2021, 10, 1)
    assert cfg.out == Path("~/m.tif").expanduser() and cfg.mask_values == (1.0, 2.0)
    assert cfg.aoi == (0.0, 0.0, 1.0, 1.0) and cfg.max_cloud == 40.0 and isinstance(cfg.max_cloud, float)
    base = dict(aoi=(0, 0, 1, 1), start="2021-03-01", end="2021-10-01", out="m.tif")
    for bad, name, words in [
        ({"max_cloud": 150}, "max_cloud", "`max_cloud` 150 is not a percentage"),
        ({"device": "gpu"}, "device", "`device` 'gpu' is not auto, cpu or cuda[:N]"),
        ({"end": "2021-01-01"}, "end", "`end` 2021-01-01 is not after `start` 2021-03-01"),
        ({"start": "soon"}, "start", "`start` 'soon' is not a date"),
        ({"read_threads": 0}, "read_threads", "`read_threads` 0 is outside 1..256"),
    ]:
        with pytest.raises(InputError) as caught:
            MapConfig(**{**base, **bad})
        assert caught.value.param == name and str(caught.value).startswith(words)
        assert "--" not in str(caught.value)


@dataclass(frozen=True, kw_only=True)
class _Example:
    size: int = param(8, help="How big", unit="px", check=within(1, 64))
    mode: Literal["fast", "exact"] = param("fast", help="How to do it")
    out: Path = param(help="Where it goes", convert=as_path)
    weights: tuple[float, ...] = param((), help="Repeatable `size` weights")
    hidden: float = param(1.0, help="Internal", api=False)

    def __post_init__(self) -> None:
        settle(self)


def test_a_literal_is_checked_against_its_choices_and_config_args_picks_the_fields() -> None:
    with pytest.raises(InputError, match=r"`mode` 'slow' is not one of fast, exact") as caught:
        _Example(mode="slow", out="x")  # type: ignore[arg-type]
    assert caught.value.param == "mode"
    assert config_args(_Example, {"size": 3, "out": "x", "hidden": 2.0, "other": 1}) == {
        "size": 3,
        "out": "x",
    }


def test_click_options_are_derived_from_the_declarations_and_map_back_to_flags() -> None:
    seen: dict[str, Any] = {}

    @click.command()
    @declared_options(_Example, after={"mode": [click.option("--dry-run", is_flag=True)]})
    def command(dry_run: bool, **values: Any) -> None:
        seen.update(_Example(**config_args(_Example, values)).__dict__, dry_run=dry_run)

    names = [p.name for p in command.params]
    assert names == ["size", "mode", "dry_run", "out", "weights"]  # field order; internal ones left out
    by_name = {p.name: p for p in command.params}
    assert isinstance(by_name["mode"].type, click.Choice) and by_name["size"].default == 8
    assert by_name["out"].required and by_name["weights"].multiple
    assert "(px)" in (by_name["size"].help or "") and "--size" in (by_name["weights"].help or "")
    result = CliRunner().invoke(
        command, ["--out", "o", "--weights", "1", "--weights", "2", "--mode", "exact"]
    )
    assert result.exit_code == 0, result.output
    assert seen["weights"] == (1.0, 2.0) and seen["mode"] == "exact" and seen["out"] == Path("o")
    assert CliRunner().invoke(command, ["--out", "o", "--mode", "slow"]).exit_code == 2
    assert flag_for(command, "dry_run") == "--dry-run" and flag_for(command, "nothing") is None


def test_the_map_command_takes_every_declared_map_option() -> None:
    from geocrop.cli.map import map_command

    flags = {flag_for(map_command, d.name) for d in declared(MapConfig) if d.param.cli and d.param.api}
    assert None not in flags and "--max-cloud" in flags and "--read-cache-mb" in flags


def test_the_qgis_plugins_table_is_the_declarations() -> None:
    """The plugin cannot import geocrop: its parameters come from a generated table, kept current here
    (regenerate with ``python -m geocrop.cli.declared``)."""
    from geocrop.cli.declared import QGIS_TABLE, qgis_table, qgis_table_text

    assert QGIS_TABLE.read_text(encoding="utf-8") == qgis_table_text()
    entries = {e["name"]: e for e in qgis_table()["commands"]["map"]}
    assert entries["max_cloud"]["default"] == 60.0 and (
        entries["max_cloud"]["min"],
        entries["max_cloud"]["max"],
    ) == (0, 100)
    assert entries["out"]["qgis"] == "OUTPUT" and entries["out"]["type"] == "raster_out"
    assert "aoi" not in entries and "max_pixels" not in entries  # the plugin's own area; an internal limit


def test_a_keyword_group_must_name_the_configs_arguments_in_order_and_require_the_required() -> None:
    """`signature_from` (train's and evaluate's shared keywords, stated once as a `TypedDict`) refuses a
    `TypedDict` that drifted from the config: a field missing or out of order, or a required one optional."""
    from typing import Required, TypedDict

    class Right(TypedDict, total=False):
        size: int
        mode: str
        out: Required[str]
        weights: tuple[float, ...]

    class Missing(TypedDict, total=False):
        size: int
        out: Required[str]
        weights: tuple[float, ...]

    class Optional(TypedDict, total=False):
        size: int
        mode: str
        out: str
        weights: tuple[float, ...]

    @signature_from(_Example, Right)
    def verb(*, progress: object = None, **arguments: Any) -> None: ...

    signature = inspect.signature(verb)
    assert list(signature.parameters) == ["size", "mode", "out", "weights", "progress"]
    assert signature.parameters["size"].default == 8 and signature.parameters["size"].annotation == "int"
    assert signature.parameters["out"].default is inspect.Parameter.empty
    for wrong in (Missing, Optional):
        with pytest.raises(TypeError):
            signature_from(_Example, wrong)


@dataclass(frozen=True, kw_only=True)
class _Season:
    start: dt.date | None = param(None, help="First date", convert=lambda v, n: as_date(v, n))
    end: dt.date | None = param(None, help="Last date", convert=lambda v, n: as_date(v, n))

    def __post_init__(self) -> None:
        settle(self, season=("start", "end"))


def test_settle_holds_the_named_dates_to_the_one_season_rule() -> None:
    assert _Season(start="2021-03-01", end="2021-10-01").end == dt.date(2021, 10, 1)
    assert _Season(start="2021-03-01").end is None  # one date alone: nothing to compare
    with pytest.raises(InputError, match=r"`end` 2021-03-01 is not after `start` 2021-03-01") as caught:
        _Season(start="2021-03-01", end="2021-03-01")
    assert caught.value.param == "end"
