"""The on-disk cache of remote reads: a rerun of a map reads nothing over the network and makes the same
map; the key, the size bound and the off switch (`geocrop.io.read_cache`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from geocrop.errors import InputError
from geocrop.inference.mapping import MapResult
from geocrop.io.cog import confidence_path
from geocrop.io.read_cache import DiskCache, cache_key_href, default_cache_dir, is_remote
from geocrop.io.reading import ReadSettings
from tests.inference.map_fixtures import TinyArea, tiny_area
from tests.inference.remote_fixtures import map_tiny, served_area
from tests.io.stac_fixtures import rustac_executable

needs_rustac = pytest.mark.skipif(
    rustac_executable() is None, reason="rustac is not installed (pip install rustac)"
)


@pytest.fixture(scope="module")
def area(tmp_path_factory: pytest.TempPathFactory) -> TinyArea:
    return tiny_area(tmp_path_factory.mktemp("area"))


def _map(area: TinyArea, stac: str, out: Path, **options: object) -> MapResult:
    return map_tiny(area, out, stac, allow_any_asset_href=True, **options)


def _pixels(cog: Path) -> list[np.ndarray]:
    arrays = []
    for path in (cog, confidence_path(cog)):
        with rasterio.open(path) as src:
            arrays.append(src.read())
    return arrays


def _entries(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.npy")) if folder.is_dir() else []


@needs_rustac
def test_a_rerun_reads_zero_remote_bytes_and_makes_the_same_map(area: TinyArea, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with served_area(area, tmp_path / "api") as (files, url):
        files.reset()
        first = _map(area, url, tmp_path / "first.tif", read_disk_cache=cache)
        served_first = files.stats()
        files.reset()
        second = _map(area, url, tmp_path / "second.tif", read_disk_cache=cache)
        served_second = files.stats()
    assert served_first["bytes"] > 0 and first.stages.read_bytes == served_first["bytes"]
    assert _entries(cache), "the first map kept its reads"
    # the second map opened no file: not one request, not one byte (the STAC search is another server)
    assert served_second["requests"] == 0 and served_second["bytes"] == 0
    assert second.stages.read_bytes == 0 and second.stages.read_requests == 0
    for a, b in zip(_pixels(first.cog), _pixels(second.cog), strict=True):
        assert a.dtype == b.dtype and np.array_equal(a, b)


@needs_rustac
def test_no_disk_cache_when_turned_off_or_for_local_files(area: TinyArea, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with served_area(area, tmp_path / "api") as (files, url):
        _map(area, url, tmp_path / "a.tif", read_disk_cache=cache, read_disk_cache_mb=0)
        assert not cache.exists()
        files.reset()
        _map(area, url, tmp_path / "b.tif", read_disk_cache=cache, read_disk_cache_mb=0)
        assert files.stats()["bytes"] > 0  # nothing kept: read again
    _map(area, str(area.catalog), tmp_path / "local.tif", read_disk_cache=cache)
    assert not cache.exists()  # local files are already on disk


def test_the_size_is_bounded_least_recently_used_first(tmp_path: Path) -> None:
    cache = DiskCache(str(tmp_path / "c"), max_mb=1)
    block = np.ones((256, 256), np.uint16)  # 128 KiB per entry
    roi = (slice(0, 256), slice(0, 256))
    keys = [f"{i:02d}" + "0" * 62 for i in range(8)]
    for i, key in enumerate(keys[:6]):
        cache.put(key, roi, block * i)
    assert cache.get(keys[0]) is not None  # used again: now the most recent
    for key in keys[6:]:  # the eighth entry passes 1 MB: the oldest go, down to 80 %
        cache.put(key, roi, block)
    assert cache.size() <= 1024 * 1024
    assert cache.get(keys[0]) is not None and cache.get(keys[1]) is None  # the least recently used went
    hit = cache.get(keys[0])
    assert hit is not None and hit[0] == roi and np.array_equal(hit[1], block * 0)


def test_entries_keep_the_region_and_a_broken_entry_is_a_miss(tmp_path: Path) -> None:
    cache = DiskCache(str(tmp_path), max_mb=10)
    pixels = np.arange(12, dtype=np.float32).reshape(3, 4)
    cache.put("ab" + "1" * 62, (slice(2, 5), slice(0, 4)), pixels)
    roi, back = cache.get("ab" + "1" * 62)  # type: ignore[misc]
    assert roi == (slice(2, 5), slice(0, 4)) and back.dtype == np.float32 and np.array_equal(back, pixels)
    (tmp_path / "ab" / ("ab" + "1" * 62 + ".npy")).write_bytes(b"truncated")
    assert cache.get("ab" + "1" * 62) is None
    assert cache.get("cd" + "2" * 62) is None


def test_the_key_ignores_url_signatures_and_local_files_are_not_cached() -> None:
    signed = "https://x.blob.core.windows.net/c/B04.tif?st=2026-01-01&se=2026-01-02&sp=r&sig=abc&v=2"
    assert cache_key_href(signed) == "https://x.blob.core.windows.net/c/B04.tif?v=2"
    aws = "https://b.s3.amazonaws.com/B04.tif?X-Amz-Signature=1&X-Amz-Date=2"
    assert cache_key_href(aws) == "https://b.s3.amazonaws.com/B04.tif"
    assert is_remote("https://a/b.tif") and is_remote("/vsis3/b/k.tif") and is_remote("s3://b/k.tif")
    assert not is_remote("/data/B04.tif") and not is_remote("file:///data/B04.tif")


def test_settings_name_the_cache_and_check_its_size(tmp_path: Path) -> None:
    assert ReadSettings(disk_cache_mb=0).disk_cache() is None
    default = ReadSettings().disk_cache()
    assert default is not None and Path(default.folder) == default_cache_dir().absolute()
    placed = ReadSettings(disk_cache_dir=str(tmp_path / "c"), disk_cache_mb=5).disk_cache()
    assert placed == DiskCache(str(tmp_path / "c"), 5)
    with pytest.raises(InputError) as caught:
        ReadSettings(disk_cache_mb=-1)
    assert caught.value.param == "read_disk_cache_mb" and "`read_disk_cache_mb` -1" in str(caught.value)
