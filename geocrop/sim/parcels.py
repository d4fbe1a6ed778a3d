"""Synthetic field parcels of the scene simulator: polygons, crops, and their rasters on both grids.

Parcels are the Voronoi cells of a jittered grid of seeds, clipped to the area and shrunk by a random
half-width so that tracks, roads and furrows of 2-10 m run between fields. Those gaps are narrower than a
Sentinel-2 pixel but wider than a PlanetScope pixel, which is what makes the 3x3 Planet window under an S2
pixel carry information the S2 pixel lacks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import shapely
from affine import Affine
from rasterio.features import rasterize
from shapely.geometry import MultiPoint, Polygon, box

from geocrop.sim.phenology import CROP_TYPES

__all__ = ["Parcel", "make_parcels", "rasterize_parcels", "smooth_noise"]

#: Relative frequency of each crop after every crop has been placed once (arable Brandenburg, roughly).
_CROP_WEIGHTS: dict[str, float] = {
    "winter_wheat": 0.20, "winter_barley": 0.10, "winter_rapeseed": 0.12, "maize": 0.16,
    "sugar_beet": 0.06, "potato": 0.05, "sunflower": 0.05, "soybean": 0.05, "spring_oats": 0.06,
    "grassland": 0.15,
}  # fmt: skip


@dataclass(frozen=True)
class Parcel:
    """One field: ``parcel_id`` >= 1 (0 means "no field" in rasters), its crop and its UTM polygon."""

    parcel_id: int
    crop: str
    geometry: Polygon

    @property
    def crop_index(self) -> int:
        """Position of the crop in `CROP_TYPES` (the class index of label rasters)."""
        return CROP_TYPES.index(self.crop)


def make_parcels(
    rng: np.random.Generator,
    *,
    bounds: tuple[float, float, float, float],
    field_size_m: float,
) -> tuple[Parcel, ...]:
    """Parcels covering ``bounds`` (minx, miny, maxx, maxy in metres) with cells about ``field_size_m``.

    Every crop type appears once before any appears twice (when there are enough fields), so even small
    areas hold every class; further fields follow `_CROP_WEIGHTS`.
    """
    minx, miny, maxx, maxy = bounds
    nx = max(1, round((maxx - minx) / field_size_m))
    ny = max(1, round((maxy - miny) / field_size_m))
    dx, dy = (maxx - minx) / nx, (maxy - miny) / ny
    # One ring of seeds outside the area keeps border cells as regular as inner ones.
    ii, jj = np.meshgrid(np.arange(-1, nx + 1), np.arange(-1, ny + 1))
    cx = minx + (ii.ravel() + 0.5) * dx + rng.uniform(-0.35, 0.35, ii.size) * dx
    cy = miny + (jj.ravel() + 0.5) * dy + rng.uniform(-0.35, 0.35, jj.size) * dy
    area = box(minx, miny, maxx, maxy)
    cells = shapely.voronoi_polygons(MultiPoint(np.column_stack([cx, cy])), extend_to=area.buffer(dx))
    polygons: list[Polygon] = []
    for cell in shapely.get_parts(cells):
        clipped = cell.intersection(area)
        # Half the gap to the neighbour: 1-5 m, so tracks between fields are 2-10 m wide.
        field = clipped.buffer(-float(rng.uniform(1.0, 5.0)), join_style="mitre")
        if isinstance(field, Polygon) and not field.is_empty and field.area >= 0.08 * dx * dy:
            polygons.append(field)
    # Sort north-west to south-east so ids read like a map, independent of GEOS's output order.
    polygons.sort(key=lambda p: (-round(p.centroid.y, 3), round(p.centroid.x, 3)))
    crops = _assign_crops(rng, len(polygons))
    return tuple(
        Parcel(parcel_id=i + 1, crop=crop, geometry=poly)
        for i, (poly, crop) in enumerate(zip(polygons, crops, strict=True))
    )


def _assign_crops(rng: np.random.Generator, n: int) -> list[str]:
    first = list(rng.permutation(CROP_TYPES))[:n]
    weights = np.array([_CROP_WEIGHTS[c] for c in CROP_TYPES])
    rest = rng.choice(len(CROP_TYPES), size=max(0, n - len(first)), p=weights / weights.sum())
    order = first + [CROP_TYPES[int(i)] for i in rest]
    return [str(c) for c in rng.permutation(order)]


def rasterize_parcels(
    parcels: tuple[Parcel, ...], *, transform: Affine, shape: tuple[int, int]
) -> npt.NDArray[np.int32]:
    """Parcel id of every pixel whose centre lies in a parcel (0 elsewhere); shape ``shape``."""
    if not parcels:
        return np.zeros(shape, dtype=np.int32)
    return rasterize(
        ((p.geometry, p.parcel_id) for p in parcels),
        out_shape=shape,
        transform=transform,
        fill=0,
        dtype="int32",
    )


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cell: float) -> npt.NDArray[np.float32]:
    """Spatially correlated noise (zero mean, unit std) with features about ``cell`` pixels across.

    Value noise: a coarse grid of normal draws interpolated with a smoothstep, so neighbouring pixels
    differ little while pixels ``cell`` apart are nearly independent.
    """
    h, w = shape
    gh, gw = math.ceil(h / cell) + 2, math.ceil(w / cell) + 2
    grid = rng.standard_normal((gh, gw), dtype=np.float32)

    def axis(n: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]:
        pos = (np.arange(n) + 0.5) / cell + 0.5
        idx = np.floor(pos).astype(np.intp)
        frac = pos - idx
        return idx, (frac * frac * (3.0 - 2.0 * frac)).astype(np.float32)

    iy, fy = axis(h)
    ix, fx = axis(w)
    # Separable: interpolate the coarse rows along x first, then those rows along y.
    rows = grid[:, ix] * (1.0 - fx) + grid[:, ix + 1] * fx  # (gh, w)
    out = rows[iy] * (1.0 - fy)[:, None] + rows[iy + 1] * fy[:, None]
    out = (out - out.mean()) / max(float(out.std()), 1e-9)
    return out.astype(np.float32)
