"""The area `bench/remote_read.py` maps: the sample area's Sentinel-2 COGs, repeated to a larger area, served
over loopback HTTP behind a STAC API.

* `ensure_sample`: ``sample_aoi/data`` (the SIMULATED sample area, `geocrop simulate`), made if missing.
* `build_area`: each of the sample's 73 scenes x 13 COGs (12 bands + SCL, 96 x 96 px) repeated ``k x k``
  times side by side (``96k`` px square, same dates, same clouds), written as tiled COGs with
  ``block`` px internal tiles (a real Sentinel-2 COG is 10980 px in 1024 px tiles; small blocks keep
  the bench's areas small while each map tile still reads whole blocks), plus one STAC item per scene.
* `api_inputs`: the items with asset hrefs on the range server, as ``collection.json`` + ``items.ndjson``
  for ``rustac serve`` (a STAC API).
* `write_head_bundle`: a Transformer head on raw bands (random weights, the demo's classes and grid).
* `add_loopback_options`, `search_area`: the command-line options and the STAC search the one-tile
  benches (`remote_tiles.py`, `remote_timeline.py`) and `remote_read.py` share.

Simulated imagery: the bench measures time and memory, never accuracy.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_aoi" / "data"
DEMO_BUNDLE = ROOT / "geocrop" / "assets" / "demo.safetensors"
START, END = "2021-01-01", "2021-12-31"
#: Where the benches build their areas unless told (``--work``).
WORK = Path(tempfile.gettempdir()) / "geocrop-remote-read"


def add_loopback_options(
    parser: argparse.ArgumentParser, *, mosaic: int = 1, tile: int = 48, block: int = 96
) -> None:
    """The loopback link (``--latency-ms``, ``--mbit``), the area (``--mosaic``, ``--tile``, ``--block``)
    and ``--work``, with these defaults."""
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--mbit", type=float, default=100.0)
    parser.add_argument("--mosaic", type=int, default=mosaic)
    parser.add_argument("--tile", type=int, default=tile)
    parser.add_argument("--block", type=int, default=block)
    parser.add_argument("--work", type=Path, default=WORK)


def search_area(url: str, aoi: Any) -> Any:
    """The area's scenes from the STAC API at ``url``, searched as `geocrop map` does at its defaults."""
    from geocrop.io.stac import search

    return search(
        url,
        collection="sentinel-2-l2a",
        bbox=aoi,
        start=START,
        end=END,
        max_cloud=60.0,
        allow_any_asset_href=True,
    )


_PIXEL = 10.0


def ensure_sample() -> Path:
    """The sample area's folder, simulated first when it does not exist (``make sample``)."""
    if not (SAMPLE / "catalog.json").is_file():
        subprocess.run(
            [str(ROOT / ".venv" / "bin" / "geocrop"), "simulate", "--out", str(SAMPLE)], check=True
        )
    return SAMPLE


def _mosaic_cog(src_path: Path, dst_path: Path, k: int, block: int) -> dict[str, Any]:
    import rasterio
    from affine import Affine

    with rasterio.open(src_path) as src:
        data = np.tile(src.read(1), (k, k))
        tf, crs, nodata = src.transform, src.crs, src.nodata
    profile = dict(
        driver="COG",
        width=data.shape[1],
        height=data.shape[0],
        count=1,
        dtype=data.dtype.name,
        crs=crs,
        transform=Affine(tf.a, 0, tf.c, 0, tf.e, tf.f),
        nodata=nodata,
        blocksize=block,
        compress="deflate",
        overviews="none",
    )
    dst_path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(dst_path, "w", **profile) as dst:
        dst.write(data, 1)
    return {"shape": list(data.shape), "transform": list(profile["transform"])[:6]}


def _footprint(x0: float, y0: float, side: float) -> tuple[dict[str, Any], list[float]]:
    from rasterio.warp import transform_geom
    from shapely.geometry import box, mapping, shape

    geom = transform_geom("EPSG:32633", "EPSG:4326", mapping(box(x0, y0 - side, x0 + side, y0)))
    return dict(geom), list(shape(geom).bounds)


def build_area(k: int, *, work: Path, block: int = 64) -> tuple[Path, list[dict[str, Any]], dict[str, Any]]:
    """The sample repeated ``k x k`` under ``work/area-k-b<block>`` (reused when complete): (folder, item
    dicts with hrefs relative to the folder, the AOI: a GeoJSON polygon in EPSG:4326 whose corners are the
    area's UTM corners a quarter pixel inside, so that the map's grid is exactly ``96k`` px square)."""
    import pystac

    folder = work / f"area-{k}-b{block}"
    marker = folder / "items-aoi.json"
    if marker.is_file():
        items, aoi = json.loads(marker.read_text())
        return folder, items, aoi
    sample = ensure_sample()
    catalog = pystac.read_file(str(sample / "catalog.json"))
    scenes = [it for it in catalog.get_items(recursive=True) if it.collection_id == "sentinel-2-l2a"]  # type: ignore[attr-defined]
    out: list[dict[str, Any]] = []
    for item in sorted(scenes, key=lambda it: it.id):
        d = item.to_dict(include_self_link=False, transform_hrefs=False)
        d["links"] = []
        for key, asset in item.assets.items():
            src = Path(asset.get_absolute_href() or asset.href)
            rel = f"{item.id}/{src.name}"
            info = _mosaic_cog(src, folder / rel, k, block)
            d["assets"][key]["href"] = rel
            d["assets"][key].update({"proj:shape": info["shape"], "proj:transform": info["transform"]})
            d["assets"][key].pop("file:size", None)
        x0, y0 = info["transform"][2], info["transform"][5]
        d["geometry"], d["bbox"] = _footprint(x0, y0, 96 * k * _PIXEL)
        out.append(d)
    quarter, side = _PIXEL / 4, 96 * k * _PIXEL
    x0, y0 = out[0]["assets"]["scl"]["proj:transform"][2], out[0]["assets"]["scl"]["proj:transform"][5]
    from pyproj import Transformer

    to = Transformer.from_crs("EPSG:32633", "EPSG:4326", always_xy=True)
    xs, ys = (x0 + quarter, x0 + side - quarter), (y0 - quarter, y0 - side + quarter)
    ring = [
        list(to.transform(x, y)) for x, y in ((xs[0], ys[0]), (xs[1], ys[0]), (xs[1], ys[1]), (xs[0], ys[1]))
    ]
    aoi = {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}
    marker.write_text(json.dumps([out, aoi]))
    return folder, out, aoi


def api_inputs(items: list[dict[str, Any]], base_url: str, folder: Path) -> tuple[Path, Path]:
    """``collection.json`` + ``items.ndjson`` (hrefs on ``base_url``) in ``folder`` for ``rustac serve``."""
    folder.mkdir(parents=True, exist_ok=True)
    coll = {
        "type": "Collection",
        "stac_version": "1.0.0",
        "id": "sentinel-2-l2a",
        "license": "proprietary",
        "description": "the SIMULATED sample area, repeated, served on loopback for bench/remote_read.py",
        "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]}, "temporal": {"interval": [[None, None]]}},
        "links": [],
    }
    (folder / "collection.json").write_text(json.dumps(coll))
    lines = []
    for d in items:
        d = json.loads(json.dumps(d))
        d["collection"] = "sentinel-2-l2a"
        for asset in d["assets"].values():
            asset["href"] = f"{base_url}/{asset['href']}"
        lines.append(json.dumps(d))
    (folder / "items.ndjson").write_text("\n".join(lines) + "\n")
    return folder / "collection.json", folder / "items.ndjson"


def write_head_bundle(path: Path) -> Path:
    """A Transformer head at its default size on the 12 raw bands, random weights (seed 0), with the demo
    bundle's classes, normalisation and 144-step 2021 grid: a model without a pretrained backbone."""
    import torch

    from geocrop.io.bundle import read_bundle_metadata, save_bundle
    from geocrop.models.registry import build_head, state_to_numpy

    if path.is_file():
        return path
    demo = read_bundle_metadata(DEMO_BUNDLE)
    head = {"name": "transformer", "in_features": len(demo["bands"]), "n_classes": len(demo["classes"])}
    torch.manual_seed(0)
    meta = {
        "name": "bench-transformer-head",
        "backbone": None,
        "head": head,
        "bands": demo["bands"],
        "normalization": demo["normalization"],
        "classes": demo["classes"],
        "temporal_grid": demo["temporal_grid"],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_bundle(path, state_to_numpy(build_head(head), "head"), meta)
