"""Test helpers: tiny COGs, STAC items/catalogs for S2 and PlanetScope, and a loopback `rustac serve`.

Import as ``from tests.io.stac_fixtures import ...`` (``tests`` is a package).
Everything is small (tens of pixels) so tests stay fast on two cores.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pystac
import rasterio
from affine import Affine
from rasterio.warp import transform_geom
from shapely.geometry import box, mapping, shape

from geocrop.core.bands import S2_ASSET_KEYS, S2_BANDS

EPSG = 32633
ORIGIN = (399_960.0, 5_820_000.0)  # UTM 33N upper-left, a multiple of 30 m
S2_COLLECTION = "sentinel-2-l2a"
PLANET_COLLECTION = "planetscope"


def write_cog(
    path: Path,
    data: np.ndarray,
    *,
    transform: Affine,
    epsg: int = EPSG,
    nodata: float | None = 0,
) -> Path:
    """Write (bands, H, W) or (H, W) ``data`` as a small tiled COG (16 px blocks)."""
    arr = data[None] if data.ndim == 2 else data
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = {
        "driver": "COG",
        "width": arr.shape[2],
        "height": arr.shape[1],
        "count": arr.shape[0],
        "dtype": arr.dtype.name,
        "crs": f"EPSG:{epsg}",
        "transform": transform,
        "nodata": nodata,
        "blocksize": 16,
        "compress": "deflate",
        "overviews": "none",
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(arr)
    return path


def _footprint(transform: Affine, shape_hw: tuple[int, int], epsg: int) -> dict[str, Any]:
    h, w = shape_hw
    x0, y0 = transform.c, transform.f
    x1, y1 = x0 + w * transform.a, y0 + h * transform.e
    geom = mapping(box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))
    return dict(transform_geom(f"EPSG:{epsg}", "EPSG:4326", geom))


def s2_item(
    out_dir: Path,
    item_id: str,
    when: dt.datetime,
    *,
    dn: Mapping[str, np.ndarray],
    scl: np.ndarray | None,
    transform: Affine,
    epsg: int = EPSG,
    cloud_cover: float | None = 10.0,
    offset: float | None = -0.1,
    baseline: str | None = "05.00",
    keys: str = "earth-search",
    nodata: float = 0,
    collection: str = S2_COLLECTION,
    resolution: Mapping[str, float] | None = None,
    scl_resolution: float | None = None,
) -> pystac.Item:
    """Write one COG per band (+ SCL) and return an S2 item pointing at them.

    ``keys``: "earth-search" (``blue``, ``scl``) or "band-id" (``B02``, ``SCL``). ``offset``: the
    ``raster:bands`` offset to advertise (None leaves scale/offset out, as Planetary Computer does).
    ``resolution`` / ``scl_resolution``: pixel size of a band / SCL whose array is coarser than 10 m.
    """
    first = next(iter(dn.values()))
    geometry = _footprint(transform, first.shape, epsg)
    props: dict[str, Any] = {"proj:epsg": epsg}
    if cloud_cover is not None:
        props["eo:cloud_cover"] = cloud_cover
    if baseline is not None:
        props["s2:processing_baseline"] = baseline
    item = pystac.Item(
        id=item_id,
        geometry=geometry,
        bbox=list(shape(geometry).bounds),
        datetime=when,
        properties=props,
        collection=collection,
    )
    for band, arr in dn.items():
        key = S2_ASSET_KEYS[band] if keys == "earth-search" else band
        res = (resolution or {}).get(band, abs(transform.a))
        tf = Affine(res, 0, transform.c, 0, -res, transform.f)
        path = write_cog(out_dir / item_id / f"{key}.tif", arr, transform=tf, epsg=epsg, nodata=nodata)
        rb: dict[str, Any] = {"data_type": arr.dtype.name, "nodata": nodata}
        if offset is not None:
            rb.update(scale=0.0001, offset=offset)
        extra = {"raster:bands": [rb], "eo:bands": [{"name": band}]}
        item.add_asset(
            key,
            pystac.Asset(href=str(path), media_type=pystac.MediaType.COG, roles=["data"], extra_fields=extra),
        )
    if scl is not None:
        key = "scl" if keys == "earth-search" else "SCL"
        res = scl_resolution or abs(transform.a)
        tf = Affine(res, 0, transform.c, 0, -res, transform.f)
        path = write_cog(out_dir / item_id / f"{key}.tif", scl.astype(np.uint8), transform=tf, epsg=epsg)
        extra = {"raster:bands": [{"data_type": "uint8", "nodata": 0}]}
        item.add_asset(
            key,
            pystac.Asset(href=str(path), media_type=pystac.MediaType.COG, roles=["data"], extra_fields=extra),
        )
    return item


def planet_item(
    out_dir: Path,
    scene_id: str,
    when: dt.datetime,
    *,
    sr: np.ndarray,
    udm2: np.ndarray,
    transform: Affine,
    epsg: int = EPSG,
    cloud_cover: float | None = 5.0,
    provider_names: bool = False,
) -> pystac.Item:
    """Write a 4-band SR COG and an 8-band UDM2 COG; return a PlanetScope item.

    ``provider_names`` writes them as Planet names files (``<scene>_3B_AnalyticMS_SR.tif``/``_udm2.tif``).
    """
    geometry = _footprint(transform, sr.shape[1:], epsg)
    sr_name = f"{scene_id}_3B_AnalyticMS_SR.tif" if provider_names else f"{scene_id}/sr.tif"
    udm_name = f"{scene_id}_3B_udm2.tif" if provider_names else f"{scene_id}/udm2.tif"
    sr_path = write_cog(out_dir / sr_name, sr.astype(np.uint16), transform=transform, epsg=epsg)
    udm_path = write_cog(
        out_dir / udm_name, udm2.astype(np.uint8), transform=transform, epsg=epsg, nodata=None
    )
    props: dict[str, Any] = {"proj:epsg": epsg}
    if cloud_cover is not None:
        props["eo:cloud_cover"] = cloud_cover
    item = pystac.Item(
        id=scene_id,
        geometry=geometry,
        bbox=list(shape(geometry).bounds),
        datetime=when,
        properties=props,
        collection=PLANET_COLLECTION,
    )
    eo = [{"name": n, "common_name": n} for n in ("blue", "green", "red", "nir")]
    rb = [{"data_type": "uint16", "nodata": 0, "scale": 0.0001}] * 4
    item.add_asset(
        "ortho_analytic_4b_sr",
        pystac.Asset(
            href=str(sr_path),
            media_type=pystac.MediaType.COG,
            roles=["data"],
            extra_fields={"eo:bands": eo, "raster:bands": rb},
        ),
    )
    item.add_asset(
        "ortho_udm2",
        pystac.Asset(
            href=str(udm_path),
            media_type=pystac.MediaType.COG,
            roles=["data"],
            extra_fields={"raster:bands": [{"data_type": "uint8"}] * 8},
        ),
    )
    return item


def write_catalog(out_dir: Path, items: Sequence[pystac.Item], *, collection: str = S2_COLLECTION) -> Path:
    """A self-contained static catalog with one collection holding ``items``; returns catalog.json."""
    out_dir.mkdir(parents=True, exist_ok=True)
    catalog = pystac.Catalog(id="test-catalog", description="geocrop test catalog")
    coll = pystac.Collection(
        id=collection,
        description="test collection",
        extent=pystac.Extent(
            pystac.SpatialExtent([[-180.0, -90.0, 180.0, 90.0]]),
            pystac.TemporalExtent([[None, None]]),
        ),
    )
    for item in items:
        coll.add_item(_with_assets_under(item.clone(), out_dir / "assets"))
    catalog.add_child(coll)
    catalog.normalize_hrefs(str(out_dir))
    catalog.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    return out_dir / "catalog.json"


def _with_assets_under(item: pystac.Item, folder: Path) -> pystac.Item:
    """Copy asset files that lie outside ``folder``'s parent into ``folder/<item id>/`` and repoint them.

    geocrop reads a static catalog's local assets only under the catalog's own folder (see
    `geocrop.io.stac.check_asset_hrefs`), so a test catalog carries copies of its (tiny) files.
    """
    root = folder.parent.absolute()
    for key, asset in item.assets.items():
        src = Path(asset.href)
        if "://" in asset.href or not src.is_absolute() or root in src.absolute().parents:
            continue
        dst = folder / item.id / f"{key}{src.suffix}"
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        asset.href = str(dst.absolute())
    return item


def write_api_inputs(out_dir: Path, items: Sequence[pystac.Item], *, collection: str) -> tuple[Path, Path]:
    """``collection.json`` + ``items.ndjson`` for ``rustac serve`` (asset hrefs stay absolute paths)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    coll = {
        "type": "Collection",
        "stac_version": "1.0.0",
        "id": collection,
        "description": "test collection",
        "license": "proprietary",
        "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]}, "temporal": {"interval": [[None, None]]}},
        "links": [],
    }
    coll_path = out_dir / "collection.json"
    coll_path.write_text(json.dumps(coll))
    lines = []
    for item in items:
        d = item.to_dict(include_self_link=False, transform_hrefs=False)
        d["collection"] = collection
        d["links"] = []
        lines.append(json.dumps(d))
    items_path = out_dir / "items.ndjson"
    items_path.write_text("\n".join(lines) + "\n")
    return coll_path, items_path


def rustac_executable() -> str | None:
    """The `rustac` CLI next to this Python, else on PATH."""
    local = Path(sys.executable).with_name("rustac")
    return str(local) if local.exists() else shutil.which("rustac")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def rustac_server(*hrefs: Path, timeout: float = 20.0) -> Iterator[str]:
    """Run ``rustac serve`` on a free loopback port with ``hrefs`` loaded; yield its URL; stop it after."""
    exe = rustac_executable()
    if exe is None:
        raise RuntimeError("rustac is not installed (pip install rustac)")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [exe, "serve", "--addr", f"127.0.0.1:{port}", *map(str, hrefs)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise RuntimeError(f"rustac serve exited with {proc.returncode}: {err[-500:]}")
            try:
                with urllib.request.urlopen(url + "/collections", timeout=1) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"rustac serve did not answer on {url} within {timeout} s")
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def synthetic_s2(
    out_dir: Path,
    dates: Sequence[dt.date],
    *,
    size: int = 12,
    clouds: Sequence[float] | None = None,
    keys: str = "earth-search",
    offset: float | None = -0.1,
    baseline: str | None = "05.00",
    bands: Sequence[str] = S2_BANDS,
    seed: int = 0,
) -> list[pystac.Item]:
    """``len(dates)`` S2 items over a ``size``x``size`` 10 m tile at :data:`ORIGIN` with known DNs.

    DN of band ``k`` (index in S2_BANDS) at date ``t``, pixel (i, j) = 1000 + 100*k + 10*t + i + j (offset
    -0.1 then gives reflectance (100*k + 10*t + i + j) / 1e4). SCL is 4 everywhere except a 3x3 cloud (9)
    at the top-left corner of odd dates.
    """
    tf = Affine(10.0, 0, ORIGIN[0], 0, -10.0, ORIGIN[1])
    ii, jj = np.mgrid[0:size, 0:size]
    items = []
    for t, day in enumerate(dates):
        dn = {b: (1000 + 100 * S2_BANDS.index(b) + 10 * t + ii + jj).astype(np.uint16) for b in bands}
        scl = np.full((size, size), 4, np.uint8)
        if t % 2 == 1:
            scl[:3, :3] = 9
        when = dt.datetime.combine(day, dt.time(10, 30), tzinfo=dt.timezone.utc)
        items.append(
            s2_item(
                out_dir,
                f"S2A_T33UUU_{day:%Y%m%d}",
                when,
                dn=dn,
                scl=scl,
                transform=tf,
                cloud_cover=(clouds[t] if clouds is not None else 10.0),
                keys=keys,
                offset=offset,
                baseline=baseline,
            )
        )
    return items


def tile_bbox(size: int = 12, margin_px: float = 0.0) -> tuple[float, float, float, float]:
    """EPSG:4326 bbox of the synthetic tile (shrunk by ``margin_px`` pixels on each side)."""
    x0, y1 = ORIGIN
    m = margin_px * 10.0
    geom = mapping(box(x0 + m, y1 - size * 10.0 + m, x0 + size * 10.0 - m, y1 - m))
    g = shape(transform_geom(f"EPSG:{EPSG}", "EPSG:4326", geom))
    minx, miny, maxx, maxy = g.bounds
    return (minx, miny, maxx, maxy)


def write_worldcereal_catalog(nc_path: Path, out_dir: Path) -> Path:
    """The real WorldCereal cube (9 S2 bands, uint16 x1e4, nodata 65535) as COGs + a static catalog.

    One item per month with band-id asset keys (``B02`` ...), ``raster:bands`` scale 1e-4, offset 0 (the
    composites are already offset-corrected) and nodata 65535; no SCL (composites are cloud-free or empty).
    """
    import xarray as xr

    ds = xr.open_dataset(nc_path, engine="h5netcdf", mask_and_scale=False)
    x, y = ds["x"].values, ds["y"].values
    res = float(x[1] - x[0])
    tf = Affine(res, 0, float(x[0]) - res / 2, 0, -res, float(y[0]) + res / 2)
    epsg = 32631
    bands = [b for b in S2_BANDS if f"S2-L2A-{b}" in ds]
    items = []
    for t, when in enumerate(ds["t"].values):
        day = dt.datetime.fromisoformat(str(when)[:19]).replace(tzinfo=dt.timezone.utc)
        item_id = f"worldcereal_{day:%Y%m}"
        dn = {b: ds[f"S2-L2A-{b}"].values[t].view(np.uint16) for b in bands}
        items.append(
            s2_item(
                out_dir / "cogs",
                item_id,
                day,
                dn=dn,
                scl=None,
                transform=tf,
                epsg=epsg,
                cloud_cover=None,
                offset=0.0,
                baseline=None,
                keys="band-id",
                nodata=65535,
            )
        )
    ds.close()
    return write_catalog(out_dir, items)
