"""Labelled pixel time series for downstream training, from parcels + Sentinel-2 or from a samples table.

Both inputs end as a `LabelledSeries`: per-pixel (or per-sample) reflectance series on one
`TemporalGrid`, a class index per series, and a group id (the parcel) that splits are drawn over.

- **Parcels** (GeoJSON, GeoPackage, GeoParquet, Shapefile; any CRS): the S2 source is searched over the
  parcels' extent and date range, loaded as a masked cube (`geocrop.io.cube.load_s2`), and the parcels are
  burnt into the cube's grid (`rasterio.features.rasterize`, pixel centres inside a polygon). Every pixel
  inside a parcel becomes one series, tagged with the parcel's id (``id_column`` or the row number).
- **Samples table** (Parquet/CSV, see `geocrop.data.samples`): each row (or sample id) is one series; the
  group column, when given, is the parcel id; otherwise each sample is its own group.

Observations are put on the grid by `geocrop.core.temporal.regrid` (bin to the nearest step, linear fill,
ends held). Series with no clear observation at all are dropped. Mixed CRS is defined as labels whose
coordinates cannot be put in one CRS: a vector file without a CRS, or a samples table whose ``crs``/``epsg``
column names several; both are `InputError`. Every check runs before anything is written.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from geocrop.core.bands import S2_BANDS
from geocrop.core.temporal import DEFAULT_STEPS, TemporalGrid, regrid
from geocrop.data.class_map import apply_class_map, code_text, read_class_map
from geocrop.data.parcel_labels import read_parcels
from geocrop.data.samples import read_samples
from geocrop.data.splits import split_pixels
from geocrop.errors import GeocropWarning, InputError, NoDataError, SourceError

log = logging.getLogger(__name__)

_TABLE_SUFFIXES = {".csv", ".txt"}
_VECTOR_SUFFIXES = {".geojson", ".json", ".gpkg", ".shp", ".fgb", ".zip"}


@dataclass(frozen=True)
class LabelSource:
    """Where labelled data comes from (typed form of the CLI's --labels/--class-column/--s2 options).

    path: parcels vector file or samples table. class_column: the crop-type column. group_column: the
    parcel id column of a samples table; id_column: the parcel id column of a vector file (default: row
    number). s2: S2 source for parcels (STAC API URL, catalog.json, GeoTIFF folder). start/end: season
    (required for parcels; for a table default to its first/last date). steps: temporal grid length, or
    ``"auto"``: the table's own cadence (`auto_steps`), the paper's 144 for imagery. class_map: a code ->
    name table (`geocrop.data.class_map`) for tables that carry codes. nodata/scale: see
    `geocrop.data.samples.read_samples`. drop_unmapped: leave out samples whose code the class map lacks
    (else an error). min_parcels: crop types with fewer parcels (samples, for a table without groups)
    are left out with a warning; 0 keeps every class; ``"auto"`` (`auto_min_parcels`) is 10, so every
    kept class has about three parcels in a 30 % validation part, or 3 (the fewest a split into
    training, selection and validation can use) where fewer than two classes reach 10.
    """

    path: Path
    class_column: str
    group_column: str | None = None
    id_column: str | None = None
    s2: str | None = None
    start: dt.date | None = None
    end: dt.date | None = None
    steps: int | Literal["auto"] = "auto"
    min_parcels: int | Literal["auto"] = "auto"
    class_map: str | None = None
    drop_unmapped: bool = False
    nodata: tuple[float, ...] = ()
    scale: float | None = None
    #: Read assets wherever the imagery's catalog points (`geocrop.io.stac.check_asset_hrefs`).
    allow_any_asset_href: bool = False

    def __post_init__(self) -> None:
        if self.steps != "auto" and (not isinstance(self.steps, int) or self.steps < 2):
            raise InputError(f"steps={self.steps!r} is invalid; give 'auto' or a whole number >= 2")
        if self.scale is not None and not self.scale > 0:
            raise InputError(f"scale={self.scale} is invalid; give a positive factor such as 0.0001")


@dataclass(frozen=True)
class LabelledSeries:
    """values (N, steps, 12) float32 reflectance on ``grid`` in `S2_BANDS` order; labels (N,) int64 class
    indices into ``class_names``; groups (N,) parcel ids (str); missing_bands filled and flagged."""

    values: np.ndarray
    labels: np.ndarray
    groups: np.ndarray
    class_names: tuple[str, ...]
    grid: TemporalGrid
    missing_bands: tuple[str, ...] = ()
    kind: str = "samples"
    bands: tuple[str, ...] = S2_BANDS
    ids: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def is_samples_table(path: Path) -> bool:
    """CSV, or Parquet with band columns (or without GeoParquet ``geo`` metadata), is a samples table.

    WorldCereal's extractions carry point geometries and sometimes GeoParquet metadata, yet are tables
    of series: any column named like a band (``B02``, ``S2-L2A-B02``, ``B02_2021-03-01``) decides.
    """
    from geocrop.data.samples import normalise_band

    suffix = path.suffix.lower()
    if suffix in _TABLE_SUFFIXES:
        return True
    if suffix in (".parquet", ".pq", ".geoparquet"):
        import pyarrow.parquet as pq

        try:
            schema = pq.read_schema(path)
        except (OSError, ValueError) as exc:
            raise SourceError(f"labels file {path} is not readable Parquet ({exc}); check the file") from exc
        if any(normalise_band(name.split("_")[0]) for name in schema.names):
            return True
        return b"geo" not in (schema.metadata or {})
    return False


def load_labelled(source: LabelSource, *, max_per_class: int | None = None, seed: int = 0) -> LabelledSeries:
    """Read labelled series from ``source`` (parcels or samples table, detected from the file).

    ``max_per_class`` caps the pixels kept per class (random, seeded) so large areas stay in memory; the
    cap applies before splitting, so it should be well above the pixels per class a split needs.
    Warnings (scaled digital numbers, filled bands, left-out classes) are given only once every check has
    passed, so bad input ends in its one error and nothing else.
    """
    path = Path(source.path)
    if not path.exists():
        raise SourceError(f"labels file {path} does not exist; check `labels`", param="labels")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if is_samples_table(path):
            series = _from_table(source)
        else:
            series = _from_parcels(source, max_per_class=max_per_class, seed=seed)
        threshold = auto_min_parcels(series) if source.min_parcels == "auto" else int(source.min_parcels)
        if threshold > 0:
            series = drop_rare_classes(series, threshold, path=path)
    for w in caught:
        if not issubclass(w.category, _DEPENDENCY_NOISE):  # "always" above caught dependencies' deprecations
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return series


#: Warnings that dependencies give about their own future, not about the user's data.
_DEPENDENCY_NOISE = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)


def parcels_per_class(series: LabelledSeries) -> np.ndarray:
    """(K,) number of distinct groups (parcels) of each class."""
    return np.array(
        [len(np.unique(series.groups[series.labels == i])) for i in range(len(series.class_names))]
    )


def auto_min_parcels(series: LabelledSeries) -> int:
    """10 parcels per class, or 3 where fewer than two classes have 10 (see `LabelSource`)."""
    return 10 if (parcels_per_class(series) >= 10).sum() >= 2 else 3


def split_series(
    series: LabelledSeries, *, scheme: str, n_train: int, n_val: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(training, validation) rows of one `split_pixels` split by parcel of ``series``; only parcels warn
    of classes too small to balance (a table's points are no pixels to balance)."""
    return split_pixels(
        series.labels,
        series.groups,
        class_names=series.class_names,
        scheme=scheme,
        n_train=n_train,
        n_val=n_val,
        seed=seed,
        warn_unbalanced=series.kind == "parcels",
    )


def drop_rare_classes(series: LabelledSeries, min_parcels: int, *, path: Path) -> LabelledSeries:
    """``series`` without the classes that have fewer than ``min_parcels`` parcels (a warning names them).

    The kept classes keep their order; labels are renumbered. Fewer than two classes left is an
    `InputError`.
    """
    parcels = parcels_per_class(series)
    rare = np.flatnonzero(parcels < min_parcels)
    if not rare.size:
        return series
    kept = np.flatnonzero(parcels >= min_parcels)
    if kept.size < 2:
        raise InputError(
            f"labels {path}: only {kept.size} crop type(s) have at least {min_parcels} parcels; "
            "lower `min_parcels` or add parcels",
            param="min_parcels",
        )
    shown = ", ".join(f"{series.class_names[i]!r} ({parcels[i]})" for i in rare)
    warnings.warn(
        f"left out {rare.size} crop type(s) with fewer than {min_parcels} parcels: {shown}",
        GeocropWarning,
        stacklevel=2,
    )
    renumber = np.full(len(series.class_names), -1, dtype=np.int64)
    renumber[kept] = np.arange(kept.size)
    keep = renumber[series.labels] >= 0
    return dataclasses.replace(
        series,
        values=series.values[keep],
        labels=renumber[series.labels[keep]],
        groups=series.groups[keep],
        class_names=tuple(series.class_names[i] for i in kept),
        ids=None if series.ids is None else series.ids[keep],
    )


def _class_index(names: np.ndarray, path: Path) -> tuple[np.ndarray, tuple[str, ...]]:
    classes, index = np.unique(names.astype(str), return_inverse=True)
    if len(classes) == 0:
        raise InputError(
            f"labels {path} leave no labelled sample (every label was left out); "
            "check the class column and the class map"
        )
    if len(classes) < 2:
        raise InputError(
            f"labels {path} hold a single class ({str(classes[0])!r}); a classifier needs two or more: "
            "add samples of other crops or check the class column"
        )
    return index.astype(np.int64), tuple(str(c) for c in classes)


def _drop_empty(
    values: np.ndarray, labels: np.ndarray, groups: np.ndarray, names: tuple[str, ...], path: Path
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Drop all-NaN series; a class left with none is an error naming it."""
    keep = np.isfinite(values).any(axis=(1, 2))
    empty = [names[i] for i in range(len(names)) if not (keep & (labels == i)).any()]
    if empty:
        raise InputError(
            f"labels {path}: class(es) {', '.join(map(repr, empty))} have no pixel with a clear observation "
            "(parcels too small, outside the imagery or always clouded); drop them or add parcels"
        )
    if not keep.all():
        log.info("dropped %d series without any clear observation", int((~keep).sum()))
    return values[keep], labels[keep], groups[keep]


def auto_steps(cadence_days: float, start: dt.date, end: dt.date, *, what: str) -> int:
    """Grid steps that follow the data's cadence: one step per ``cadence_days`` over [start, end].

    Monthly composites over a year give 12 steps, dekads ~36, raw 5-day acquisitions ~73. At least 2,
    at most one step per day.
    """
    span = (end - start).days
    if not np.isfinite(cadence_days) or cadence_days <= 0 or span <= 0:
        raise InputError(
            f"{what} has a single date, so `steps` auto cannot find its cadence; "
            "give a table with two or more dates per sample, or `steps` N",
            param="steps",
        )
    return int(min(max(round(span / cadence_days) + 1, 2), span + 1))


def _warn_crowded_steps(values: np.ndarray, dates: np.ndarray, grid: TemporalGrid, path: Path) -> None:
    """Warn when a series has two clear observations on one grid step (they will be averaged)."""
    step = grid.step_index(dates)
    inside = step >= 0
    clear = np.isfinite(values).any(axis=2)[:, inside].astype(np.int32)  # (N, T_obs)
    onehot = np.zeros((int(inside.sum()), grid.steps), dtype=np.int32)
    onehot[np.arange(onehot.shape[0]), step[inside]] = 1
    crowded = ((clear @ onehot) > 1).any(axis=1)
    if crowded.any():
        warnings.warn(
            f"labels {path}: {int(crowded.sum())} of {len(crowded)} series have two or more clear "
            f"observations on one step of the {grid.steps}-step grid ({grid.spacing_days:.1f} days); "
            "they are averaged: give more `steps` to keep them apart",
            GeocropWarning,
            stacklevel=3,
        )


def _from_table(source: LabelSource) -> LabelledSeries:
    mapping = read_class_map(source.class_map) if source.class_map is not None else None
    table = read_samples(
        source.path,
        label_column=source.class_column,
        group_column=source.group_column,
        nodata=source.nodata,
        scale=source.scale,
    )
    names_of = table.labels
    if mapping is not None:
        what = f"labels {source.path}"
        names_of = apply_class_map(table.labels, mapping, what=what, drop_unmapped=source.drop_unmapped)
    start = source.start or dt.date.fromisoformat(str(table.dates.min()))
    end = source.end or dt.date.fromisoformat(str(table.dates.max()))
    if end <= start:
        end = start + dt.timedelta(days=1)
    if source.steps == "auto":
        steps = auto_steps(table.cadence_days, start, end, what=f"samples table {source.path}")
    else:
        steps = int(source.steps)
    grid = TemporalGrid(start, end, steps)
    values, _ = regrid(table.values, table.dates, grid, axis=1)
    text = np.array([code_text(v) for v in names_of])
    mapped = text != ""  # "" marks samples the class map left out
    labels, names = _class_index(text[mapped], source.path)
    ids = (table.ids if table.ids is not None else np.arange(len(text)).astype(str))[mapped].astype(str)
    groups = (table.groups[mapped] if table.groups is not None else ids).astype(str)
    values = values[mapped]
    keep = np.isfinite(values).any(axis=(1, 2))
    values, labels, groups = _drop_empty(values, labels, groups, names, source.path)
    _warn_crowded_steps(table.values[mapped][keep], table.dates, grid, source.path)  # after every error
    return LabelledSeries(values, labels, groups, names, grid, table.missing_bands, "samples", ids=ids[keep])


def _from_parcels(source: LabelSource, *, max_per_class: int | None, seed: int) -> LabelledSeries:
    from rasterio.features import rasterize

    from geocrop.io.aoi import read_aoi
    from geocrop.io.cube import load_s2
    from geocrop.io.stac import search

    path = Path(source.path)
    gdf = read_parcels(path, class_column=source.class_column, id_column=source.id_column)
    if source.s2 is None:
        raise InputError(f"labels {path} are parcels: give the Sentinel-2 source with `s2`", param="s2")
    if source.start is None or source.end is None:
        raise InputError(f"labels {path} are parcels: give the season with `start` and `end`", param="start")
    # imagery: raw acquisitions of irregular cadence, so "auto" is the paper's 144-step grid
    grid = TemporalGrid(source.start, source.end, DEFAULT_STEPS if source.steps == "auto" else source.steps)
    aoi = read_aoi(gdf.to_crs(4326).geometry.union_all())
    try:
        items = search(
            source.s2,
            collection="sentinel-2-l2a",
            bbox=aoi,
            start=source.start,
            end=source.end,
            allow_any_asset_href=source.allow_any_asset_href,
        )
    except NoDataError as exc:
        raise NoDataError(
            f"labels {path} lie outside the imagery of {source.s2} between {source.start} and {source.end} "
            f"({exc}); check the labels' location and CRS or the date range"
        ) from exc
    # lazy: only the chunks under the sampled pixels are read, so a large parcel layer stays in memory
    cube = load_s2(items, aoi=aoi, resolution=10.0, chunks={"x": 1024, "y": 1024})
    geobox = cube.odc.geobox
    parcels = gdf.to_crs(geobox.crs)
    codes = {p: k + 1 for k, p in enumerate(parcels["parcel"])}
    burnt = rasterize(
        ((geom, codes[p]) for geom, p in zip(parcels.geometry, parcels["parcel"], strict=True)),
        out_shape=tuple(geobox.shape),
        transform=geobox.affine,
        fill=0,
        dtype="int32",
    )
    rows, cols = np.nonzero(burnt)
    if rows.size == 0:
        raise NoDataError(
            f"labels {path} cover no pixel of the imagery in {source.s2}; the parcels lie outside it "
            "(check their CRS and location) or are smaller than a 10 m pixel"
        )
    parcel_of = np.array(list(parcels["parcel"]))[burnt[rows, cols] - 1]
    class_of = dict(zip(parcels["parcel"], parcels["class"], strict=True))
    labels_str = np.array([class_of[p] for p in parcel_of])
    labels, names = _class_index(labels_str, path)
    all_classes = sorted(set(parcels["class"]))
    absent = [c for c in all_classes if c not in names]
    if absent:
        raise InputError(
            f"labels {path}: class(es) {', '.join(map(repr, absent))} cover no imagery pixel "
            "(parcels smaller than a pixel or outside the imagery); drop them or add parcels"
        )
    keep = _cap(labels, max_per_class, seed)
    rows, cols, labels, parcel_of = rows[keep], cols[keep], labels[keep], parcel_of[keep]
    import xarray as xr

    picked = cube.isel(y=xr.DataArray(rows, dims="pixel"), x=xr.DataArray(cols, dims="pixel"))
    obs = np.asarray(picked.transpose("pixel", "time", "band").values, dtype=np.float32)  # (P, T_obs, 12)
    values, _ = regrid(obs, cube["time"].values, grid, axis=1)
    values, labels, groups = _drop_empty(values, labels, parcel_of.astype(str), names, path)
    missing = tuple(cube.attrs.get("missing_bands", ()))
    if missing:
        warnings.warn(
            f"S2 source lacks band(s) {', '.join(missing)}; filled and flagged", GeocropWarning, stacklevel=2
        )
    return LabelledSeries(values, labels, groups, names, grid, missing, "parcels")


def _cap(labels: np.ndarray, max_per_class: int | None, seed: int) -> np.ndarray:
    if max_per_class is None:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    keep = []
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        keep.append(idx if len(idx) <= max_per_class else rng.choice(idx, max_per_class, replace=False))
    return np.sort(np.concatenate(keep))
