"""Co-registered Sentinel-2 / PlanetScope pairs for contrastive pretraining (the paper's section 3.3).

A pair is one S2 pixel's 12 reflectances and the 3x3x4 Planet window under it, flattened ``(row, col, band)``
to 36 values (`geocrop.core.bands.PLANET_FEATURES`): a row of 48 float32 features, or 12 in uni-modal mode.

Sampling follows the paper: fields are split 70-21-9 (field level, seeded); for every S2 date, up to
``pixels_per_date`` random pixels of the 70 % fields become training pairs (the paper: 100,000 per date over
144 dates = 14.4M), and a smaller sample of the 21 % fields becomes held-out pairs used only for the learning
signal (cross-modal retrieval). Crop labels are never read. Without parcels, square blocks of
``PSEUDO_FIELD_PIXELS`` x ``PSEUDO_FIELD_PIXELS`` S2 pixels stand in for fields, so neighbouring, correlated
pixels still land in the same split.

Each S2 date is matched to the Planet acquisition on the same day, or the nearest one within
``tolerance_days``. A pair is dropped when any of its values is masked (NaN: cloud, shadow, nodata).

Output: ``out_dir/manifest.json`` plus shards (`geocrop.data.shards`). Building is resumable: the manifest
lists finished dates and is rewritten atomically after each one; rerunning with the same settings continues,
and a folder made with other settings is refused.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from geocrop.core.bands import PLANET_BANDS, PLANET_WINDOW, S2_BANDS
from geocrop.data.shards import DEFAULT_SHARD_ROWS, ShardSet, ShardWriter, feature_stats
from geocrop.data.splits import split_fields
from geocrop.errors import BundleError, InputError, NoDataError
from geocrop.io.atomic import write_json_atomic

MANIFEST = "manifest.json"
FORMAT = "geocrop-pairs/1"
#: The paper's pixels per S2 date (section 3.3).
PAPER_PIXELS_PER_DATE = 100_000
#: Held-out pairs per date are 21/70 of the training count, capped here: they only feed the learning signal.
MAX_HELDOUT_PER_DATE = 1000
#: Side of the square pseudo-fields (S2 pixels) used when no parcels are given.
PSEUDO_FIELD_PIXELS = 8
SPLIT_FRACTIONS = (0.7, 0.21, 0.09)

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]


class TimeIndexed(Protocol):
    """A (time, band, y, x) stack read one date at a time: a numpy array or a lazy xarray DataArray."""

    def __getitem__(self, index: int) -> Any: ...

    def __len__(self) -> int: ...


#: The second views a pair may hold: name -> (band names, window side). The Planet window is the paper's.
SECOND_MODALITIES: dict[str, tuple[tuple[str, ...], int]] = {
    "planetscope": (tuple(PLANET_BANDS), PLANET_WINDOW),
    "sentinel-1": (("VV", "VH"), 1),
}


def second_features(modality: str, window: int | None = None) -> int:
    """Width of the second view's input: 36 for the Planet 3x3 window, 2 for Sentinel-1 VV/VH (2 x k x k
    for a k x k Sentinel-1 neighbourhood, ``window``)."""
    bands, default = SECOND_MODALITIES[modality]
    side = default if window is None else window
    return len(bands) * side * side


def feature_names(
    *, bimodal: bool = True, modality: str = "planetscope", window: int | None = None
) -> list[str]:
    """Column names of a pair row: ``s2.B01`` ... ``s2.B12`` then ``planet.r{row}c{col}.{band}`` (or
    ``s1.VV``, ``s1.VH``; ``s1.r{row}c{col}.VV``... for a neighbourhood)."""
    names = [f"s2.{b}" for b in S2_BANDS]
    if not bimodal:
        return names
    bands, default = SECOND_MODALITIES[modality]
    side = default if window is None else window
    prefix = "planet" if modality == "planetscope" else "s1"
    if side == 1:
        return names + [f"{prefix}.{b}" for b in bands]
    return names + [f"{prefix}.r{r}c{c}.{b}" for r in range(side) for c in range(side) for b in bands]


def neighbourhoods(image: npt.ArrayLike, size: int) -> FloatArray:
    """(C, H, W) -> (C, size*H, size*W): each pixel's ``size`` x ``size`` neighbourhood (edges repeated)
    laid out as the block of a grid ``size`` times finer, so `sample_pairs` gathers it as it gathers the
    Planet window under an S2 pixel (a Sentinel-1 neighbourhood as the second view)."""
    arr = np.asarray(image, np.float32)
    channels, height, width = arr.shape
    r = size // 2
    padded = np.pad(arr, ((0, 0), (r, r), (r, r)), mode="edge")
    grid = np.empty((channels, height, size, width, size), np.float32)
    for a in range(size):
        for b in range(size):
            grid[:, :, a, :, b] = padded[:, a : a + height, b : b + width]
    return grid.reshape(channels, height * size, width * size)


def match_dates(
    s2_dates: Sequence[np.datetime64] | npt.NDArray[np.datetime64],
    planet_dates: Sequence[np.datetime64] | npt.NDArray[np.datetime64],
    *,
    tolerance_days: int = 0,
) -> list[tuple[int, int]]:
    """Pair each S2 date with the nearest Planet date no more than ``tolerance_days`` away.

    Returns ``(s2_index, planet_index)`` tuples in S2 order; S2 dates without a match are left out. Ties go
    to the earlier Planet date. Dates are compared at day precision.
    """
    if tolerance_days < 0:
        raise ValueError("tolerance_days must be >= 0")
    s2 = np.asarray(s2_dates, dtype="datetime64[D]").astype(np.int64)
    pl = np.asarray(planet_dates, dtype="datetime64[D]").astype(np.int64)
    out: list[tuple[int, int]] = []
    if len(pl) == 0:
        return out
    for i, day in enumerate(s2):
        gaps = np.abs(pl - day)
        best = int(np.min(gaps))
        if best <= tolerance_days:
            # argmin over (gap, date) so that ties pick the earlier acquisition deterministically.
            candidates = np.flatnonzero(gaps == best)
            out.append((i, int(candidates[np.argmin(pl[candidates])])))
    return out


def planet_windows(planet: FloatArray) -> FloatArray:
    """(4, 3H, 3W) Planet reflectance -> (H, W, 36): the 3x3 window under each S2 pixel, (row, col, band)."""
    bands, hh, ww = planet.shape
    if hh % PLANET_WINDOW or ww % PLANET_WINDOW:
        raise ValueError(f"Planet grid {hh}x{ww} is not a 3x refinement of an S2 grid")
    h, w = hh // PLANET_WINDOW, ww // PLANET_WINDOW
    win = planet.reshape(bands, h, PLANET_WINDOW, w, PLANET_WINDOW).transpose(1, 3, 2, 4, 0)
    return np.ascontiguousarray(win.reshape(h, w, PLANET_WINDOW * PLANET_WINDOW * bands), dtype=np.float32)


def pseudo_fields(height: int, width: int, *, block: int = PSEUDO_FIELD_PIXELS) -> IntArray:
    """(H, W) ids 1..n of square ``block`` x ``block`` tiles of the S2 grid, the stand-in for parcels."""
    rows = np.arange(height) // block
    cols = np.arange(width) // block
    return (rows[:, None] * (-(-width // block)) + cols[None, :] + 1).astype(np.int64)


def split_field_raster(fields: IntArray, *, seed: int) -> tuple[IntArray, IntArray]:
    """Field ids of the 70 % (pretraining) and 21 % (held-out) splits; id 0 means no field and is unused."""
    ids = np.unique(fields[fields > 0])
    if len(ids) < len(SPLIT_FRACTIONS):
        raise NoDataError(
            f"only {len(ids)} field(s) in the area: the 70-21-9 split needs at least {len(SPLIT_FRACTIONS)}; "
            "give a larger AOI or a parcels file with more fields (`fields`)",
            param="fields",
        )
    parts = split_fields(ids, fractions=SPLIT_FRACTIONS, seed=seed)
    return np.asarray(parts[0], np.int64), np.asarray(parts[1], np.int64)


def sample_pairs(
    s2: FloatArray,
    planet: FloatArray | None,
    *,
    mask: npt.NDArray[np.bool_],
    n: int | None,
    rng: np.random.Generator,
    window: int = PLANET_WINDOW,
) -> FloatArray:
    """Rows of up to ``n`` random valid pixels of one date inside ``mask``.

    Args:
        s2: (12, H, W) reflectance, NaN where masked.
        planet: (4, 3H, 3W) reflectance on the 3x grid, NaN where masked; None for S2-only rows. Any
            second view: (C, wH, wW) on the S2 grid refined ``window`` times (Sentinel-1: (2, H, W), 1).
        mask: (H, W) pixels eligible (in the split's fields).
        n: pixels wanted; None takes every valid pixel.
        rng: the date's generator.

    Returns:
        (m, 48) or (m, 12) float32, m = min(n, valid pixels), in random order.
    """
    s2 = np.asarray(s2, np.float32)
    _, height, width = s2.shape
    valid = mask & np.isfinite(s2).all(axis=0)
    if planet is not None:
        # (4, H, 3, W, 3) view: Planet pixel (3i + r, 3j + c) is [:, i, r, j, c]; no copy of the image.
        grid = np.asarray(planet, np.float32).reshape(planet.shape[0], height, window, width, window)
        valid &= np.isfinite(grid).all(axis=(0, 2, 4))
    flat = np.flatnonzero(valid)
    take = len(flat) if n is None else min(n, len(flat))
    chosen = np.sort(rng.choice(flat, size=take, replace=False)) if take < len(flat) else flat
    ii, jj = np.divmod(chosen, width)
    rows = s2[:, ii, jj].T  # (m, 12): only the chosen pixels are gathered
    if planet is not None:
        win = grid[:, ii, :, jj, :]  # advanced indices first: (m, 4, 3, 3) = (m, band, row, col)
        n_second = planet.shape[0] * window * window
        rows = np.concatenate([rows, win.transpose(0, 2, 3, 1).reshape(len(chosen), n_second)], axis=1)
    rows = np.ascontiguousarray(rows, dtype=np.float32)
    return rows[rng.permutation(len(rows))]


@dataclass(frozen=True)
class PairSet:
    """Finished pair data: the manifest plus lazily read train and held-out shards."""

    root: Path
    manifest: Mapping[str, Any]

    @classmethod
    def open(cls, root: Path | str) -> PairSet:
        path = Path(root) / MANIFEST
        try:
            manifest = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise NoDataError(f"no readable pair manifest at {path} ({exc}); build pairs first") from exc
        if not manifest.get("complete"):
            raise NoDataError(f"pair data in {root} is incomplete; rerun the same command to finish it")
        return cls(Path(root), manifest)

    @property
    def bimodal(self) -> bool:
        return bool(self.manifest["bimodal"])

    @property
    def second_modality(self) -> str | None:
        """The second view's sensor (a key of `SECOND_MODALITIES`), None for S2-only pairs."""
        if not self.bimodal:
            return None
        return str(self.manifest["settings"].get("second_modality", "planetscope"))

    @property
    def second_window(self) -> int:
        """Side of the second view's window: 3 for Planet, 1 (or the neighbourhood asked) for Sentinel-1."""
        modality = self.second_modality or "planetscope"
        return int(self.manifest["settings"].get("second_window", SECOND_MODALITIES[modality][1]))

    @property
    def train(self) -> ShardSet:
        return ShardSet.from_state(self.root, self.manifest["splits"]["train"])

    @property
    def heldout(self) -> ShardSet:
        return ShardSet.from_state(self.root, self.manifest["splits"]["heldout"])

    def stats(self) -> tuple[FloatArray, FloatArray]:
        """Per-feature (mean, std) of the training pairs."""
        return feature_stats(self.manifest["splits"]["train"])


def build_pairs_from_arrays(
    *,
    s2: TimeIndexed,
    s2_dates: Sequence[np.datetime64] | npt.NDArray[np.datetime64],
    planet: TimeIndexed | None,
    planet_dates: Sequence[np.datetime64] | npt.NDArray[np.datetime64] | None,
    out_dir: Path | str,
    fields: IntArray | None = None,
    pixels_per_date: int | None = None,
    heldout_per_date: int | None = None,
    tolerance_days: int = 0,
    seed: int = 0,
    shard_rows: int = DEFAULT_SHARD_ROWS,
    provenance: Mapping[str, Any] | None = None,
    second_modality: str = "planetscope",
    second_window: int | None = None,
) -> PairSet:
    """Sample pairs date by date from in-memory or lazy stacks and write shards to ``out_dir``.

    Args:
        s2: (T_s, 12, H, W) reflectance, NaN where masked (read one date at a time).
        s2_dates: (T_s,) acquisition dates.
        planet: (T_p, 4, 3H, 3W) reflectance on the 3x-refined S2 grid; None builds S2-only (uni-modal) rows.
            With ``second_modality="sentinel-1"``: (T_p, 2, H, W) VV/VH backscatter in dB on the S2 grid.
        planet_dates: (T_p,) dates; None with ``planet`` None.
        out_dir: folder for the manifest and shards (created).
        fields: (H, W) field ids, 0 = no field; None uses square pseudo-fields.
        pixels_per_date: training pixels per S2 date; None = min(100,000, available).
        heldout_per_date: held-out pixels per date; None = min(21/70 of ``pixels_per_date``, 1000).
        tolerance_days: largest S2-Planet date gap accepted.
        seed: drives the field split and every pixel draw (per date, so resuming reproduces them).
        shard_rows: rows per shard file.
        provenance: sources, AOI, dates... stored in the manifest and later in the model bundle.
        second_modality: a key of `SECOND_MODALITIES`: which sensor ``planet`` holds.
    """
    out = Path(out_dir)
    s2_days = np.asarray(s2_dates, dtype="datetime64[D]")
    bimodal = planet is not None
    first = np.asarray(s2[0], np.float32) if len(s2) else None
    if first is None:
        raise NoDataError(
            "the Sentinel-2 source has no scenes in the AOI and date range; widen `start` and `end`",
            param="start",
        )
    height, width = first.shape[-2:]
    default_window = SECOND_MODALITIES[second_modality][1]
    window = default_window if second_window is None else second_window
    # A Sentinel-1 neighbourhood is gathered from the S1 image laid out on a grid `window` times finer.
    expand = second_modality != "planetscope" and window > 1
    sensor = "PlanetScope" if second_modality == "planetscope" else "Sentinel-1"
    if bimodal:
        assert planet is not None and planet_dates is not None
        matches = match_dates(s2_days, planet_dates, tolerance_days=tolerance_days)
        if not matches:
            raise NoDataError(
                f"no Sentinel-2 date ({_span(s2_days)}) has a {sensor} acquisition within "
                f"{tolerance_days} day(s) ({sensor}: {_span(np.asarray(planet_dates, 'datetime64[D]'))}); "
                "raise `tolerance_days` or choose overlapping dates",
                param="tolerance_days",
            )
    else:
        matches = [(i, -1) for i in range(len(s2_days))]
    field_raster = pseudo_fields(height, width) if fields is None else np.asarray(fields, np.int64)
    if field_raster.shape != (height, width):
        raise ValueError(f"fields raster {field_raster.shape} does not match the S2 grid {(height, width)}")
    train_ids, heldout_ids = split_field_raster(field_raster, seed=seed)
    train_mask = np.isin(field_raster, train_ids)
    heldout_mask = np.isin(field_raster, heldout_ids)
    n_train = pixels_per_date
    n_held = heldout_per_date
    if n_held is None:
        base = PAPER_PIXELS_PER_DATE if n_train is None else n_train
        n_held = max(1, min(MAX_HELDOUT_PER_DATE, math.ceil(base * SPLIT_FRACTIONS[1] / SPLIT_FRACTIONS[0])))
    if n_train is None:
        n_train = PAPER_PIXELS_PER_DATE
    settings = {
        "bimodal": bimodal,
        "pixels_per_date": n_train,
        "heldout_per_date": n_held,
        "tolerance_days": tolerance_days,
        "seed": seed,
        "shard_rows": shard_rows,
        "fields": "parcels"
        if fields is not None
        else f"pseudo-fields {PSEUDO_FIELD_PIXELS}x{PSEUDO_FIELD_PIXELS} px",
        "grid": [int(height), int(width)],
        "provenance": dict(provenance or {}),
    }
    if bimodal and second_modality != "planetscope":  # absent for Planet: folders of earlier runs still match
        settings["second_modality"] = second_modality
    if bimodal and window != default_window:  # absent by default: earlier folders still match
        settings["second_window"] = window
    n_feat = len(S2_BANDS) + (second_features(second_modality, window) if bimodal else 0)
    manifest = _start_manifest(out, settings, n_feat)
    if manifest.get("complete"):
        return PairSet(out, manifest)
    writers = {
        name: ShardWriter(out, name, n_features=n_feat, shard_rows=shard_rows, state=manifest["splits"][name])
        for name in ("train", "heldout")
    }
    done = {d["s2_date"] for d in manifest["dates"]}
    for si, pi in matches:
        day = str(s2_days[si])
        if day in done:
            continue
        s2_img = first if si == 0 else np.asarray(s2[si], np.float32)
        pl_img = np.asarray(planet[pi], np.float32) if bimodal and planet is not None else None
        if expand and pl_img is not None:
            pl_img = neighbourhoods(pl_img, window)
        rng = np.random.default_rng([seed, si, 0xA1])
        tr = sample_pairs(s2_img, pl_img, mask=train_mask, n=n_train, rng=rng, window=window)
        ho = sample_pairs(s2_img, pl_img, mask=heldout_mask, n=n_held, rng=rng, window=window)
        writers["train"].add(tr)
        writers["heldout"].add(ho)
        pl_day = (
            str(np.asarray(planet_dates, dtype="datetime64[D]")[pi])
            if bimodal and planet_dates is not None
            else None
        )
        manifest["dates"].append(
            {"s2_date": day, "planet_date": pl_day, "train": len(tr), "heldout": len(ho)}
        )
        _commit(out, manifest, writers)
    for name, writer in writers.items():
        manifest["splits"][name] = writer.checkpoint(final=True)
    if manifest["splits"]["train"]["count"] == 0 or manifest["splits"]["heldout"]["count"] == 0:
        raise NoDataError(
            f"every candidate pair in {len(matches)} matched date(s) is masked (clouds, nodata, or the two "
            "sensors do not overlap); check the sources cover the same ground and dates"
        )
    mean, std = feature_stats(manifest["splits"]["train"])
    manifest["stats"] = {"mean": mean.tolist(), "std": std.tolist()}
    manifest["counts"] = {k: int(manifest["splits"][k]["count"]) for k in ("train", "heldout")}
    manifest["complete"] = True
    write_json_atomic(out / MANIFEST, manifest)
    for writer in writers.values():
        writer.cleanup()
    return PairSet(out, manifest)


def build_pairs(
    *,
    s2: str | Path,
    planet: str | Path | None,
    aoi: Any | None,
    start: str | None,
    end: str | None,
    out_dir: Path | str,
    fields: str | Path | None = None,
    pixels_per_date: int | None = None,
    tolerance_days: int = 0,
    seed: int = 0,
    s2_collection: str = "sentinel-2-l2a",
    planet_collection: str = "planetscope",
    shard_rows: int = DEFAULT_SHARD_ROWS,
    second_modality: str | None = None,
    s1: str | Path | None = None,
    s1_collection: str = "sentinel-1",
    s1_window: int = 1,
    allow_any_asset_href: bool = False,
) -> PairSet:
    """Pairs from an S2 source and a second view (any `geocrop.io.sources` kind, or a samples table).

    Searches both over ``aoi`` (any `geocrop.io.aoi.read_aoi` input; None = the S2 scenes' extent) and
    ``start``..``end``, loads them lazily on co-registered grids (clouds and nodata masked to NaN), and runs
    `build_pairs_from_arrays`. ``second_modality`` None builds S2-only rows for uni-modal pretraining;
    ``"planetscope"`` pairs each S2 pixel with the Planet 3x3 window of ``planet``; ``"sentinel-1"`` with
    the VV/VH backscatter (dB) of ``s1`` (default: the S2 source itself: a table's S1 columns, a cube's S1
    variables, or a catalog's Sentinel-1 collection). ``fields`` is a parcels file (its polygons become the
    fields of the 70-21-9 split); without it pseudo-fields are used. A samples table (`s2` a .parquet or
    .csv) gives one pair per sample and date, each sample its own field. ``s1_window`` k > 1 pairs each S2
    pixel with the k x k Sentinel-1 neighbourhood around it (2 k² values; imagery only).
    """
    from geocrop.data.pair_sources import open_pair_sources
    from geocrop.io.sources import detect_source

    if second_modality is None and planet is not None:
        second_modality = "planetscope"
    if detect_source(s2, tables=True) == "table":
        from geocrop.data.table_pairs import open_table_pairs

        if second_modality == "sentinel-1" and s1_window > 1:
            raise InputError(
                f"`s1_window` {s1_window} needs imagery: a samples table holds one pixel per sample, so it "
                "has no neighbourhood; leave `s1_window` at 1, or give an S2 cube or catalog with S1",
                param="s1_window",
            )
        table = open_table_pairs(s2, second=second_modality, s1=s1)
        return build_pairs_from_arrays(
            s2=table.s2,
            s2_dates=table.dates,
            planet=table.second,
            planet_dates=table.dates if table.second is not None else None,
            out_dir=out_dir,
            fields=table.fields,
            pixels_per_date=pixels_per_date,
            tolerance_days=0,
            seed=seed,
            shard_rows=shard_rows,
            provenance=table.provenance,
            second_modality=second_modality or "planetscope",
            second_window=s1_window if second_modality == "sentinel-1" else None,
        )
    src = open_pair_sources(
        s2=s2,
        planet=planet,
        aoi=aoi,
        start=start,
        end=end,
        fields=fields,
        tolerance_days=tolerance_days,
        s2_collection=s2_collection,
        planet_collection=planet_collection,
        second_modality=second_modality,
        s1=s1,
        s1_collection=s1_collection,
        allow_any_asset_href=allow_any_asset_href,
    )
    return build_pairs_from_arrays(
        s2=src.s2,
        s2_dates=src.s2_dates,
        planet=src.planet,
        planet_dates=src.planet_dates,
        out_dir=out_dir,
        fields=src.fields,
        pixels_per_date=pixels_per_date,
        tolerance_days=tolerance_days,
        seed=seed,
        shard_rows=shard_rows,
        provenance=src.provenance,
        second_modality=second_modality or "planetscope",
        second_window=s1_window if second_modality == "sentinel-1" else None,
    )


def _start_manifest(out: Path, settings: dict[str, Any], n_feat: int) -> dict[str, Any]:
    path = out / MANIFEST
    if path.exists():
        try:
            manifest: dict[str, Any] = json.loads(path.read_text())
        except ValueError as exc:
            raise BundleError(f"pair manifest {path} is corrupt ({exc}); delete {out} and rerun") from exc
        if manifest.get("settings") != json.loads(json.dumps(settings)):
            raise BundleError(
                f"pair data in {out} was built with settings {json.dumps(manifest.get('settings'))}, "
                f"this run asks for {json.dumps(settings)}; use another `out` or delete {out}",
                param="out",
            )
        return manifest
    out.mkdir(parents=True, exist_ok=True)
    manifest = {
        "format": FORMAT,
        "bimodal": settings["bimodal"],
        "second_modality": settings.get("second_modality", "planetscope") if settings["bimodal"] else None,
        "columns": feature_names(
            bimodal=settings["bimodal"],
            modality=settings.get("second_modality", "planetscope"),
            window=settings.get("second_window"),
        ),
        "n_features": n_feat,
        "settings": settings,
        "dates": [],
        "splits": {name: ShardWriter(out, name, n_features=n_feat).state() for name in ("train", "heldout")},
        "complete": False,
    }
    write_json_atomic(path, manifest)
    return manifest


def _commit(out: Path, manifest: dict[str, Any], writers: Mapping[str, ShardWriter]) -> None:
    for name, writer in writers.items():
        manifest["splits"][name] = writer.checkpoint()
    write_json_atomic(out / MANIFEST, manifest)
    for writer in writers.values():
        writer.cleanup()


def _span(days: npt.NDArray[np.datetime64]) -> str:
    return "no dates" if len(days) == 0 else f"{days.min()}..{days.max()}, {len(days)} dates"
