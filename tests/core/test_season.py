"""The one season rule (`Season`): each path settles a season once, from its config to `TemporalGrid`."""

from __future__ import annotations

import datetime as dt
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from geocrop.core.temporal import Season, SeasonDate, TemporalGrid, check_season
from geocrop.errors import InputError
from geocrop.inference.map_config import MapConfig
from geocrop.inference.predict_config import PredictConfig
from geocrop.training.labelled_options import LabelledOptions
from geocrop.training.pretrain_config import PretrainConfig
from geocrop.training.pretrain_options import PretrainOptions
from geocrop.viz.inspect_config import InspectConfig

START, END = "2023-03-01", "2023-10-01"


@pytest.fixture
def settlements(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, Any]]:
    """Every season settled (parsed and checked) from here on, as the (start, end) it was given."""
    seen: list[tuple[Any, Any]] = []
    rule = Season.__post_init__

    def counted(self: Season) -> None:
        seen.append((self.start, self.end))
        rule(self)

    monkeypatch.setattr(Season, "__post_init__", counted)
    return seen


def test_the_rule_its_words_and_its_dates() -> None:
    season = Season("2023-03-01", dt.datetime(2023, 10, 1, 8))
    assert (season.start, season.end) == (dt.date(2023, 3, 1), dt.date(2023, 10, 1))
    assert isinstance(season.start, SeasonDate) and season.start.season is season
    assert repr(season.start) == "datetime.date(2023, 3, 1)" and str(season.end) == "2023-10-01"
    for start, end in (("2023-03-01", "2023-03-01"), ("2023-06-01", "2023-03-01")):
        rule = rf"^`end` {end} is not after `start` {start}; give start < end$"
        with pytest.raises(InputError, match=rule):
            Season(start, end)
    with pytest.raises(InputError, match="`start` 'March' is not a date") as caught:
        Season("March", END)
    assert caught.value.param == "start"
    copied = pickle.loads(pickle.dumps(season.start))
    assert type(copied) is dt.date and copied == season.start  # a copy carries no settled season
    assert not hasattr(season.start + dt.timedelta(days=1), "season")  # a date computed from it: unsettled


def test_check_season_takes_one_date_alone_but_still_parses_it() -> None:
    assert check_season(START, None) is None and check_season(None, None) is None
    with pytest.raises(InputError, match="`end` 'soon' is not a date"):
        check_season(None, "soon")
    season = Season(START, END)
    assert check_season(season.start, season.end) is season


def test_a_grid_built_directly_is_still_checked(settlements: list[tuple[Any, Any]]) -> None:
    with pytest.raises(InputError, match="`end` 2021-01-01 is not after `start` 2021-02-01") as caught:
        TemporalGrid(dt.date(2021, 2, 1), dt.date(2021, 1, 1))
    assert caught.value.param == "end"
    one, other = Season(START, END), Season("2023-04-01", "2023-11-01")
    settlements.clear()
    grid = TemporalGrid(one.start, other.end, 10)  # two seasons' dates: a new pair, settled here
    assert len(settlements) == 1 and grid.season is not one and grid.season is not other


def _map(tmp: Path) -> MapConfig:
    return MapConfig(
        aoi=(5.0, 50.0, 5.1, 50.1), start=START, end=END, out=tmp / "map.tif", model=tmp / "m.safetensors",
        stac=str(tmp / "catalog.json"),
    )  # fmt: skip


def _predict(tmp: Path) -> PredictConfig:
    return PredictConfig(
        model=tmp / "m.safetensors", samples=tmp / "s.parquet", out=tmp / "p.csv", start=START, end=END
    )


def _labelled(tmp: Path) -> Any:
    return LabelledOptions(labels=tmp / "t.csv", class_column="crop", start=START, end=END).source()


def _inspect(tmp: Path) -> InspectConfig:
    return InspectConfig(labels=tmp / "t.csv", class_column="crop", out=tmp / "page", start=START, end=END)


@pytest.mark.parametrize("build", [_map, _predict, _labelled, _inspect], ids=lambda f: f.__name__[1:])
def test_each_config_settles_its_season_once_and_the_grid_takes_it(
    build: Callable[[Path], Any], settlements: list[tuple[Any, Any]], tmp_path: Path
) -> None:
    config = build(tmp_path)
    assert len(settlements) == 1  # the config's one stop
    assert isinstance(config.start, SeasonDate) and config.start.season is config.end.season
    grid = TemporalGrid(config.start, config.end, 36)
    assert grid.season is config.start.season and len(settlements) == 1  # no second parse or check


def test_pretraining_settles_its_season_once_from_the_options_or_directly(
    settlements: list[tuple[Any, Any]], tmp_path: Path
) -> None:
    options = PretrainOptions(out=tmp_path / "run", s2="s2.parquet", mode="unimodal", start=START, end=END)
    config = options.contrastive_config()
    assert len(settlements) == 1 and config.start is options.start and config.end is options.end
    settlements.clear()
    direct = PretrainConfig(out=tmp_path / "run", s2="s2.parquet", mode="unimodal", start=START, end=END)
    assert len(settlements) == 1 and str(direct.start) == START and str(direct.end) == END
    with pytest.raises(InputError, match="`end` 2023-03-01 is not after `start` 2023-06-01") as caught:
        PretrainConfig(out=tmp_path / "run", s2="s2.parquet", mode="unimodal", start="2023-06-01", end=START)
    assert caught.value.param == "end"
    with pytest.raises(InputError, match="`start` '2023-13-01' is not a date"):
        PretrainConfig(out=tmp_path / "run", s2="s2.parquet", mode="unimodal", start="2023-13-01")
