"""The Python API (`geocrop.api`): one import, keyword-only verbs, like-inputs, one progress type, errors
in the caller's argument names."""

from __future__ import annotations

import datetime as dt
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

import geocrop
from geocrop.api_types import ProgressEvent, as_aoi, as_bundle, as_date, emit
from geocrop.errors import GeocropError, InputError, as_flag, translate_arguments


def test_import_geocrop_is_light_and_lists_the_verbs() -> None:
    code = (
        "import sys, geocrop; assert 'torch' not in sys.modules and 'numpy' not in sys.modules; "
        "names = set(geocrop.__all__); "
        "assert {'map_aoi', 'train', 'pretrain', 'evaluate', 'predict'} <= names; "
        "assert callable(geocrop.train) and 'torch' not in sys.modules; assert 'map_aoi' in dir(geocrop)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_verbs_are_keyword_only() -> None:
    import inspect

    for name in ("map_aoi", "train", "pretrain", "evaluate", "predict"):
        params = inspect.signature(getattr(geocrop, name)).parameters.values()
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params), name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        geocrop.nope  # noqa: B018


def test_like_inputs_are_normalised() -> None:
    day = dt.date(2023, 3, 1)
    assert as_date("2023-03-01", "start") == as_date(dt.datetime(2023, 3, 1, 12), "start") == day
    assert as_date("2023-03-01T08:00:00", "start") == day
    assert as_aoi(Path("f.geojson")) == Path("f.geojson")
    assert as_aoi([1, 2, 3, 4]) == (1.0, 2.0, 3.0, 4.0)
    square = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}
    assert as_aoi(square).__geo_interface__ == square

    class Result:
        bundle = Path("m.safetensors")

    assert as_bundle(Result(), "model") == as_bundle("m.safetensors", "model") == Path("m.safetensors")


def test_errors_name_the_argument_and_the_cli_translates_it(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        geocrop.map_aoi(
            aoi=(10, 50, 10.1, 50.1), start="2023-05-01", end=dt.date(2023, 4, 1), out=tmp_path / "m.tif"
        )
    assert caught.value.param == "end" and str(caught.value).startswith(
        "`end` 2023-04-01 is not after `start`"
    )
    assert _in_flags(caught.value).startswith("--end 2023-04-01 is not after --start")
    with pytest.raises(InputError) as caught:
        geocrop.map_aoi(
            aoi=(10, 50, 10.1, 50.1), start="2023-03-01", end="2023-04-01", out="m.tif", chunk_size=5
        )
    assert caught.value.param == "chunk_size" and "`chunk_size` 5" in str(caught.value)
    with pytest.raises(InputError, match="`start` 'soon' is not a date"):
        as_date("soon", "start")
    with pytest.raises(InputError) as caught:
        geocrop.predict(model=tmp_path / "m.safetensors", samples=tmp_path / "s.csv", out=tmp_path / "p.txt")
    assert caught.value.param == "out" and _in_flags(caught.value).startswith("--out ")
    again = pickle.loads(pickle.dumps(caught.value))
    assert isinstance(again, GeocropError) and again.param == "out"


def _in_flags(exc: GeocropError) -> str:
    """The message as the CLI words it for an argument its command spells ``--name``."""
    return translate_arguments(str(exc), as_flag)


def test_a_deeper_message_names_the_argument(tmp_path: Path) -> None:
    """The STAC reader's refusal of an asset outside its catalog names `allow_any_asset_href`, as both map
    verbs take it (and the CLI turns it into the flag)."""
    from tests.cli.test_bad_inputs import _catalog_with_red_at
    from tests.inference.map_fixtures import END, START, tiny_area

    area = tiny_area(tmp_path / "area")
    red = next(area.catalog.parent.rglob("assets/*/red.tif"))
    escaping = os.path.relpath(red, tmp_path / "escaping" / "sentinel-2-l2a" / "x")  # leaves the catalog
    _catalog_with_red_at(area, tmp_path / "escaping", escaping)
    catalog = tmp_path / "escaping" / "catalog.json"
    for verb in (geocrop.map_aoi, geocrop.plan_map):
        with pytest.raises(InputError) as caught:
            verb(aoi=area.bbox, start=START, end=END, stac=catalog, model=area.bundle, out=tmp_path / "m.tif")
        assert caught.value.param == "allow_any_asset_href" and "`allow_any_asset_href`" in str(caught.value)
        assert "--allow-any-asset-href" in _in_flags(caught.value)
        assert not (tmp_path / "m.tif").exists()


def test_one_progress_event_type() -> None:
    seen: list[ProgressEvent] = []
    emit(seen.append, "map", 1.5, "done")
    emit(seen.append, "evaluate", None, "training lstm")
    emit(None, "map", 0.5, "nobody listens")
    assert seen == [ProgressEvent("map", 1.0, "done"), ProgressEvent("evaluate", None, "training lstm")]
    assert seen[0].percent == "100%" and seen[1].percent == "   ?"
    with pytest.raises(AttributeError):
        seen[0].fraction = 0.2  # type: ignore[misc]


def _table(path: Path) -> Path:
    """A small long-layout samples table: three crops, each greening at its own time of year."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    rows = []
    for c, crop in enumerate(("maize", "wheat", "sunflower")):
        for s in range(12):
            for t, day in enumerate(pd.date_range("2022-03-01", periods=18, freq="10D")):
                green = np.exp(-(((t - 3 - 5 * c) / 3.0) ** 2))
                bands = {b: 0.05 + 0.02 * k + 0.3 * green * (b == "B08") + rng.normal(0, 0.01)
                         for k, b in enumerate(("B02", "B03", "B04", "B08", "B11", "B12"))}  # fmt: skip
                rows.append(
                    {
                        "sample_id": f"{crop}{s}",
                        "date": day,
                        "crop": crop,
                        "field": f"{crop}{s // 2}",
                        **bands,
                    }
                )
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.mark.filterwarnings("ignore::UserWarning")  # filled bands, an unbalanced tiny table
def test_train_then_predict_with_the_result(tmp_path: Path) -> None:
    table = _table(tmp_path / "samples.csv")
    events: list[ProgressEvent] = []
    model = geocrop.train(
        labels=table, class_column="crop", group_column="field", head="rf", out=tmp_path / "rf.safetensors",
        min_parcels=0, progress=events.append,
    )  # fmt: skip
    assert model.bundle.exists() and set(model.class_names) == {"maize", "wheat", "sunflower"}
    assert {e.stage for e in events} == {"train"} and events[-1].fraction == 1.0
    fractions = [e.fraction for e in events if e.fraction is not None]
    assert fractions == sorted(fractions)
    result = geocrop.predict(model=model, samples=str(table), out=tmp_path / "p.csv", progress=events.append)
    assert result.n_samples == 36 and result.out.exists() and events[-1].stage == "predict"
