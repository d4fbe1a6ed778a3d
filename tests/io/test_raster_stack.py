"""Raster stacks as QGIS users hold them (a multi-band GeoTIFF + band-date CSV, or a folder of date-named
GeoTIFFs) read into the cube the STAC path builds: same values as the catalog of the same scenes, the
same map from `geocrop map --stac`, and one-line errors for a stack that cannot be read."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from click.testing import CliRunner

from geocrop.cli import main as main_module
from geocrop.core.bands import S2_BANDS
from geocrop.errors import InputError, SourceError
from geocrop.io.aoi import read_aoi
from geocrop.io.cube import load_s2
from geocrop.io.cube_file import cube_items, open_cube
from geocrop.io.raster_stack import is_stack_path, stack_band_name
from geocrop.io.sources import detect_source
from tests.inference.map_fixtures import DATES, END, SIZE, START, TinyArea, tiny_area
from tests.io.stac_fixtures import EPSG, ORIGIN, tile_bbox

TRANSFORM = Affine(10.0, 0, ORIGIN[0], 0, -10.0, ORIGIN[1])
BANDS = ("B02", "B03", "B04", "B08", "B11")


def reflectance_dn(band: str, t: int) -> np.ndarray:
    """The tiny catalog's DN less its -0.1 offset: reflectance x 1e4, as a stack holds it."""
    ii, jj = np.mgrid[0:SIZE, 0:SIZE]
    return (100 * S2_BANDS.index(band) + 10 * t + ii + jj).astype(np.uint16)


def write_tif(
    path: Path, layers: list[np.ndarray], *, names: list[str] | None = None, **profile: object
) -> Path:
    meta = {
        "driver": "GTiff", "width": SIZE, "height": SIZE, "count": len(layers), "dtype": "uint16",
        "crs": f"EPSG:{EPSG}", "transform": TRANSFORM, "nodata": 65535,
    } | profile  # fmt: skip
    with rasterio.open(path, "w", **meta) as dst:
        for i, layer in enumerate(layers, start=1):
            dst.write(layer, i)
            if names:
                dst.set_band_description(i, names[i - 1])
    return path


def write_single(folder: Path, *, rows: list[str] | None = None, bands: tuple[str, ...] = BANDS) -> Path:
    """One GeoTIFF, dates x bands interleaved date-major, and its band-date table beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    layers, table = [], ["band,date,name"]
    for t, day in enumerate(DATES):
        for band in bands:
            layers.append(reflectance_dn(band, t))
            table.append(f"{len(layers)},{day.isoformat()},{band.lower() if band == 'B08' else band}")
    path = write_tif(folder / "stack.tif", layers)
    (folder / "stack.csv").write_text("\n".join(rows or table) + "\n", encoding="utf-8")
    return path


def write_folder(folder: Path) -> Path:
    """One GeoTIFF per date named by its date, band names in the band descriptions."""
    folder.mkdir(parents=True, exist_ok=True)
    for t, day in enumerate(DATES):
        write_tif(folder / f"S2_{day:%Y%m%d}.tif", [reflectance_dn(b, t) for b in BANDS], names=list(BANDS))
    return folder


@pytest.fixture(scope="module")
def area(tmp_path_factory: pytest.TempPathFactory) -> TinyArea:
    return tiny_area(tmp_path_factory.mktemp("area"))


def test_band_names_and_detection(tmp_path: Path) -> None:
    assert [stack_band_name(n) for n in ("B2", "s2-l2a-b08", "NIR", "swir16", "B8A", "ndvi")] == [
        "B02", "B08", "B08", "B11", "B8A", None,
    ]  # fmt: skip
    single, folder = write_single(tmp_path / "one"), write_folder(tmp_path / "dates")
    assert is_stack_path(single) and is_stack_path(folder)
    assert detect_source(single) == detect_source(folder) == "cube"
    (tmp_path / "provider").mkdir()
    write_tif(tmp_path / "provider" / "T33UUU_20210401T103021_B02_10m.tif", [reflectance_dn("B02", 0)])
    assert (
        not is_stack_path(tmp_path / "provider") and detect_source(tmp_path / "provider") == "geotiff-folder"
    )


@pytest.mark.parametrize("layout", ["single", "folder"])
def test_a_stack_gives_the_catalog_cube(area: TinyArea, tmp_path: Path, layout: str) -> None:
    stack = write_single(tmp_path / "s") if layout == "single" else write_folder(tmp_path / "f")
    ds = open_cube(stack)
    assert sorted(ds.data_vars) == sorted(BANDS) and ds["B02"].chunks is not None  # lazy: dask chunks
    aoi = read_aoi(tile_bbox(SIZE, 2))
    items = cube_items(stack, collection="sentinel-2-l2a")
    assert [it.datetime.date() for it in items] == list(DATES)
    from_stack = load_s2(items, aoi=aoi, bands=BANDS, chunks={"x": 8, "y": 8})
    from_catalog = load_s2(area.items, aoi=aoi, bands=BANDS)
    a, b = from_stack.values, from_catalog.values
    assert a.shape == b.shape and from_stack.dims == from_catalog.dims
    clear = np.isfinite(b)  # outside the AOI polygon and under the catalog's SCL clouds: NaN
    assert clear.mean() > 0.75 and np.isfinite(a[clear]).all()
    assert np.allclose(a[clear], b[clear], atol=1e-6)
    clouds = (a != a) != (b != b)  # NaN only in the catalog: its clouds (odd dates, top-left corner)
    assert clouds[::2].sum() == 0 and clouds[1::2].any()


def test_geocrop_map_from_a_stack_equals_the_map_from_the_catalog(area: TinyArea, tmp_path: Path) -> None:
    stack = write_single(tmp_path / "s", bands=S2_BANDS)  # every band the model reads, as the catalog has
    maps = {}
    for name, source in (("catalog", area.catalog), ("stack", stack)):
        out = tmp_path / f"{name}.tif"
        args = ["map", "--bbox", area.bbox, "--start", str(START), "--end", str(END), "--stac", str(source)]
        args += ["--model", str(area.bundle), "--out", str(out), "--chunk-size", "16", "--progress", "none"]
        result = CliRunner().invoke(main_module.cli, args)
        assert result.exit_code == 0, result.output
        with rasterio.open(out) as src:
            maps[name] = src.read(1)
    corner = np.zeros(maps["stack"].shape, bool)
    corner[:2, :2] = True  # the catalog's clouds of odd dates (SCL 9) lie under the AOI's top-left pixels
    assert np.array_equal(maps["stack"][~corner], maps["catalog"][~corner])


def _problem(path: Path) -> str:
    with pytest.raises((InputError, SourceError)) as caught:
        cube_items(path, collection="sentinel-2-l2a")
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_clear_errors(tmp_path: Path) -> None:
    single = write_single(tmp_path / "a")
    (tmp_path / "a" / "stack.csv").unlink()
    assert "needs its band-date table stack.csv beside it" in _problem(single)
    rows = ["band,date,name", *[f"{i + 1},2021-04-01,{b}" for i, b in enumerate(BANDS)]]
    rows += [f"{i + 6},2021-04-21,{b}" for i, b in enumerate(BANDS[:-1])]
    assert "2021-04-21 lacks B11, which other dates have" in _problem(write_single(tmp_path / "b", rows=rows))
    rows = ["band,date,name", "1,2021-04-01,ndvi"]
    assert "band name 'ndvi' is not a Sentinel-2 band" in _problem(write_single(tmp_path / "c", rows=rows))
    rows = ["band,date,name", "99,2021-04-01,B02"]
    assert "band 99, but stack.tif has bands 1..30" in _problem(write_single(tmp_path / "d", rows=rows))
    rows = ["layer,when", "1,2021-04-01"]
    assert "has columns layer, when; give the columns band, date, name" in _problem(
        write_single(tmp_path / "e", rows=rows)
    )
    folder = write_folder(tmp_path / "f")
    shifted = Affine(10.0, 0, ORIGIN[0] + 10, 0, -10.0, ORIGIN[1])
    write_tif(
        folder / "2021-08-01.tif", [reflectance_dn(b, 0) for b in BANDS], names=list(BANDS), transform=shifted
    )
    assert "2021-08-01.tif" in (msg := _problem(folder)) and "is not on the grid of" in msg
    plain = tmp_path / "g"
    plain.mkdir()
    write_tif(plain / "2021-04-01.tif", [reflectance_dn("B02", 0)])
    assert "has no band names; set its band descriptions" in _problem(plain)


def test_map_refuses_a_stack_without_its_table_with_one_line(area: TinyArea, tmp_path: Path) -> None:
    stack = write_single(tmp_path / "s")
    stack.with_suffix(".csv").unlink()
    out = tmp_path / "m.tif"
    args = ["map", "--bbox", area.bbox, "--start", str(START), "--end", str(END), "--stac", str(stack)]
    result = CliRunner().invoke(main_module.cli, [*args, "--model", str(area.bundle), "--out", str(out)])
    assert result.exit_code == 2 and "needs its band-date table stack.csv" in result.output
    assert "Traceback" not in result.output and not out.exists()
    assert dt.date(2021, 4, 1) == DATES[0]
