"""`map_aoi` end to end: a real STAC API on loopback (rustac), a valid COG, resume after interruption."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rio_cogeo.cogeo import cog_validate

from geocrop.inference.mapping import MapConfig, map_aoi
from geocrop.inference.tiles import Tile
from tests.inference.map_fixtures import END, START, TinyArea, tiny_area
from tests.io.stac_fixtures import rustac_executable, rustac_server, write_api_inputs


@pytest.fixture(scope="module")
def area(tmp_path_factory: pytest.TempPathFactory) -> TinyArea:
    return tiny_area(tmp_path_factory.mktemp("area"))


def config(area: TinyArea, out: Path, **kwargs: object) -> MapConfig:
    fields = dict(aoi=area.bbox, start=START, end=END, out=out, model=area.bundle, stac=str(area.catalog),
                  chunk_size=16)  # fmt: skip
    fields.update(kwargs)
    return MapConfig(**fields)  # type: ignore[arg-type]


def read_bands(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return np.asarray(src.read())


@pytest.mark.skipif(rustac_executable() is None, reason="rustac is not installed (pip install rustac)")
def test_map_from_a_stac_api_on_loopback_writes_a_valid_cog(area: TinyArea, tmp_path: Path) -> None:
    coll, items = write_api_inputs(tmp_path / "api", area.items, collection="sentinel-2-l2a")
    out = tmp_path / "map.tif"
    with rustac_server(coll, items) as url:
        result = map_aoi(
            config(area, out, stac=url, probabilities=True, chunk_size=32, allow_any_asset_href=True)
        )
    is_valid, errors, _ = cog_validate(str(out))
    assert is_valid, errors
    assert result.confidence is not None and cog_validate(str(result.confidence))[0]
    with rasterio.open(out) as src:
        assert src.count == 1 and src.dtypes[0] == "uint8" and src.nodata == 255
        assert src.colorinterp[0].name == "palette"  # the colour table is inside the COG
        classes = src.read(1)
        assert src.tags()["scene_ids"] and json.loads(src.tags()["scene_ids"]) == list(result.scene_ids)
    with rasterio.open(result.confidence) as src:
        assert src.count == 2 + 3 and src.descriptions[:2] == ("confidence", "uncertainty")
        confidence, uncertainty = src.read(1), src.read(2)
    inside = classes != 255
    assert inside.sum() == result.valid_pixels == 16 * 16  # the AOI 2 px inside the 20 px tile
    assert set(np.unique(classes[inside])) <= {0, 1, 2}
    assert ((confidence[inside] >= 33) & (confidence[inside] <= 100)).all()  # max of 3 probabilities
    assert (uncertainty[inside] <= 100).all() and (uncertainty[~inside] == 255).all()
    assert result.qml.exists() and "paletteEntry" in result.qml.read_text()
    item = json.loads(result.stac_item.read_text())
    names = [c["title"] for c in item["assets"]["data"]["classification:classes"]]
    assert names[:3] == ["wheat", "maize", "rapeseed"]
    assert item["properties"]["geocrop:model"]["file"] == area.bundle.name
    assert len(item["properties"]["geocrop:model"]["sha256"]) == 64
    assert str(tmp_path) not in result.stac_item.read_text()  # no absolute local path
    assert not Path(f"{out}.parts").exists()
    # The same map from the static catalog: the source does not change the result.
    static = map_aoi(config(area, tmp_path / "static.tif", probabilities=True, chunk_size=32))
    np.testing.assert_array_equal(read_bands(static.cog), read_bands(out))
    assert static.confidence is not None and result.confidence is not None
    np.testing.assert_array_equal(read_bands(static.confidence), read_bands(result.confidence))
    static_item = json.loads(static.stac_item.read_text())
    derived = [link["href"] for link in static_item["links"] if link["rel"] == "derived_from"]
    assert len(derived) == len(static.scene_ids) and not any(h.startswith("/") for h in derived)


def test_interrupted_map_resumes_and_matches_an_uninterrupted_run(area: TinyArea, tmp_path: Path) -> None:
    reference = map_aoi(config(area, tmp_path / "ref.tif"))
    out = tmp_path / "map.tif"
    done: list[str] = []

    def interrupt(tile: Tile) -> None:
        done.append(tile.key)
        if len(done) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        map_aoi(config(area, out, scheduler="sync"), after_tile=interrupt)
    assert not out.exists()  # the COG appears only when complete
    parts = sorted(p.stem for p in Path(f"{out}.parts").glob("*.npz"))
    assert parts == sorted(done)
    recomputed: list[str] = []
    resumed = map_aoi(config(area, out), after_tile=lambda t: recomputed.append(t.key))
    assert resumed.tiles_resumed == 2 and not set(recomputed) & set(done)
    assert len(recomputed) == resumed.tiles - 2
    np.testing.assert_array_equal(read_bands(out), read_bands(reference.cog))
    assert not Path(f"{out}.parts").exists()


def test_real_sentinel2_worldcereal_cube_maps_end_to_end(realdata: Path, tmp_path: Path) -> None:
    """Real reflectances (10 of 12 bands, monthly, some months empty) through search, load, regrid, engine."""
    import pystac

    from tests.inference.inference_helpers import write_tiny_bundle
    from tests.io.stac_fixtures import write_worldcereal_catalog

    nc = realdata / "worldcereal" / "worldcereal_preprocessed_inputs.nc"
    if not nc.exists():
        pytest.skip(f"{nc} is absent")
    catalog = write_worldcereal_catalog(nc, tmp_path / "wc")
    items = list(pystac.Catalog.from_file(str(catalog)).get_items(recursive=True))
    minx, miny, maxx, maxy = items[0].bbox
    dx, dy = (maxx - minx) * 0.3, (maxy - miny) * 0.3  # the middle 40 % of the cube
    bbox = f"{minx + dx},{miny + dy},{maxx - dx},{maxy - dy}"
    bundle = write_tiny_bundle(tmp_path / "m.safetensors", steps=12, season=("2020-11-01", "2021-10-31"))
    with pytest.warns(UserWarning, match="lacks bands"):
        result = map_aoi(
            MapConfig(
                aoi=bbox,
                start=dt.date(2020, 11, 1),
                end=dt.date(2021, 10, 31),
                out=tmp_path / "wc.tif",
                model=bundle,
                stac=str(catalog),
                max_cloud=None,
                chunk_size=32,
            )
        )
    assert cog_validate(str(result.cog))[0]
    with rasterio.open(result.cog) as src:
        tags = src.tags()
        classes = src.read(1)
    assert set(json.loads(tags["missing_bands"])) == {"B01", "B09", "B8A"}
    # Monthly composites: nearly every pixel inside the AOI (a lon/lat box, skewed on the UTM grid) has data.
    assert result.valid_pixels == int((classes != 255).sum()) > 0.8 * classes.size


def test_geocrop_map_on_the_tiny_simulated_sample_area(tmp_path: Path) -> None:
    """`geocrop map` on the simulator's tiny sample catalog (24 x 24 px, SIMULATED): COG, page, style."""
    from click.testing import CliRunner

    from geocrop.cli.main import cli
    from geocrop.sim import SimulationConfig, write_sample_area
    from tests.inference.inference_helpers import write_tiny_bundle

    area = write_sample_area(tmp_path / "sample", SimulationConfig.tiny())
    bundle = write_tiny_bundle(tmp_path / "m.safetensors", steps=24, season=("2021-03-01", "2021-10-31"))
    out, html = tmp_path / "map.tif", tmp_path / "map.html"
    args = ["map", "--aoi", str(area.field), "--start", "2021-03-01", "--end", "2021-10-31"]
    args += ["--stac", str(area.catalog), "--model", str(bundle), "--out", str(out), "--html", str(html)]
    result = CliRunner().invoke(cli, [*args, "--progress", "none"])
    assert result.exit_code == 0, result.output
    assert f"crop map: {out}" in result.output
    is_valid, errors, _ = cog_validate(str(out))
    assert is_valid, errors
    assert html.exists() and out.with_suffix(".qml").exists() and out.with_suffix(".json").exists()
    with rasterio.open(out) as src:
        classes = src.read(1)
        assert src.descriptions[0] is not None
    assert (classes != 255).any() and (classes == 255).any()  # the field polygon, masked outside


@pytest.mark.slow
def test_geocrop_map_on_the_default_sample_area(tmp_path: Path) -> None:
    """The full simulated sample area (96 x 96 px, a year of 5-day revisits) with a 144-step model."""
    from click.testing import CliRunner

    from geocrop.cli.main import cli
    from geocrop.sim import SimulationConfig, write_sample_area
    from tests.inference.inference_helpers import write_tiny_bundle

    area = write_sample_area(tmp_path / "sample", SimulationConfig())
    bundle = write_tiny_bundle(tmp_path / "m.safetensors", steps=144, season=("2021-03-01", "2021-10-31"))
    out, html = tmp_path / "map.tif", tmp_path / "map.html"
    args = ["map", "--aoi", str(area.field), "--start", "2021-03-01", "--end", "2021-10-31"]
    args += ["--stac", str(area.catalog), "--model", str(bundle), "--out", str(out), "--html", str(html)]
    args.append("--probabilities")
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert cog_validate(str(out))[0] and html.exists()
    with rasterio.open(out) as src:
        assert src.count == 1
        classes = src.read(1)
    with rasterio.open(out.with_name("map_confidence.tif")) as src:
        assert src.count == 2 + 3
    inside = classes != 255
    assert 0.2 * classes.size < inside.sum() < classes.size  # the polygon covers part of its bbox
