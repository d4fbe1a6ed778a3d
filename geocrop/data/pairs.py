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
from typing import Any

import numpy as np
import numpy.typing as npt

from geocrop.core.bands import S2_BANDS
from geocrop.data import pair_sampling as sampling
from geocrop.data.shards import DEFAULT_SHARD_ROWS, ShardSet, ShardWriter, feature_stats
from geocrop.errors import BundleError, InputError, NoDataError
from geocrop.io.atomic import write_json_atomic

__all__ = ["FORMAT", "MANIFEST", "PAPER_PIXELS_PER_DATE", "PairSet", "build_pairs", "build_pairs_from_arrays"]

MANIFEST = "manifest.json"
FORMAT = "geocrop-pairs/1"
#: The paper's pixels per S2 date (section 3.3).
PAPER_PIXELS_PER_DATE = 100_000
#: Held-out pairs per date are 21/70 of the training count, capped here: they only feed the learning signal.
MAX_HELDOUT_PER_DATE = 1000


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
        return int(self.manifest["settings"].get("second_window", sampling.SECOND_MODALITIES[modality][1]))

    @property
    def train(self) -> ShardSet:
        return ShardSet.from_state(self.root, self.manifest["splits"]["train"])

    @property
    def heldout(self) -> ShardSet:
        return ShardSet.from_state(self.root, self.manifest["splits"]["heldout"])

    def stats(self) -> tuple[sampling.FloatArray, sampling.FloatArray]:
        """Per-feature (mean, std) of the training pairs."""
        return feature_stats(self.manifest["splits"]["train"])


def build_pairs_from_arrays(
    *,
    s2: sampling.TimeIndexed,
    s2_dates: Sequence[np.datetime64] | npt.NDArray[np.datetime64],
    planet: sampling.TimeIndexed | None,
    planet_dates: Sequence[np.datetime64] | npt.NDArray[np.datetime64] | None,
    out_dir: Path | str,
    fields: sampling.IntArray | None = None,
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
    default_window = sampling.SECOND_MODALITIES[second_modality][1]
    window = default_window if second_window is None else second_window
    # A Sentinel-1 neighbourhood is gathered from the S1 image laid out on a grid `window` times finer.
    expand = second_modality != "planetscope" and window > 1
    sensor = "PlanetScope" if second_modality == "planetscope" else "Sentinel-1"
    if bimodal:
        assert planet is not None and planet_dates is not None
        matches = sampling.match_dates(s2_days, planet_dates, tolerance_days=tolerance_days)
        if not matches:
            raise NoDataError(
                f"no Sentinel-2 date ({_span(s2_days)}) has a {sensor} acquisition within "
                f"{tolerance_days} day(s) ({sensor}: {_span(np.asarray(planet_dates, 'datetime64[D]'))}); "
                "raise `tolerance_days` or choose overlapping dates",
                param="tolerance_days",
            )
    else:
        matches = [(i, -1) for i in range(len(s2_days))]
    field_raster = sampling.pseudo_fields(height, width) if fields is None else np.asarray(fields, np.int64)
    if field_raster.shape != (height, width):
        raise ValueError(f"fields raster {field_raster.shape} does not match the S2 grid {(height, width)}")
    train_ids, heldout_ids = sampling.split_field_raster(field_raster, seed=seed)
    train_mask = np.isin(field_raster, train_ids)
    heldout_mask = np.isin(field_raster, heldout_ids)
    n_train = pixels_per_date
    n_held = heldout_per_date
    if n_held is None:
        base = PAPER_PIXELS_PER_DATE if n_train is None else n_train
        n_held = max(
            1,
            min(
                MAX_HELDOUT_PER_DATE,
                math.ceil(base * sampling.SPLIT_FRACTIONS[1] / sampling.SPLIT_FRACTIONS[0]),
            ),
        )
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
        else f"pseudo-fields {sampling.PSEUDO_FIELD_PIXELS}x{sampling.PSEUDO_FIELD_PIXELS} px",
        "grid": [int(height), int(width)],
        "provenance": dict(provenance or {}),
    }
    if bimodal and second_modality != "planetscope":  # absent for Planet: folders of earlier runs still match
        settings["second_modality"] = second_modality
    if bimodal and window != default_window:  # absent by default: earlier folders still match
        settings["second_window"] = window
    n_feat = len(S2_BANDS) + (sampling.second_features(second_modality, window) if bimodal else 0)
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
            pl_img = sampling.neighbourhoods(pl_img, window)
        rng = np.random.default_rng([seed, si, 0xA1])
        tr = sampling.sample_pairs(s2_img, pl_img, mask=train_mask, n=n_train, rng=rng, window=window)
        ho = sampling.sample_pairs(s2_img, pl_img, mask=heldout_mask, n=n_held, rng=rng, window=window)
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
    # (S2 stack, its dates, second view's stack, its dates, field raster, provenance) from either source
    arrays: tuple[Any, ...]
    if detect_source(s2, tables=True) == "table":
        from geocrop.data.table_pairs import open_table_pairs

        if second_modality == "sentinel-1" and s1_window > 1:
            raise InputError(
                f"`s1_window` {s1_window} needs imagery: a samples table holds one pixel per sample, so it "
                "has no neighbourhood; leave `s1_window` at 1, or give an S2 cube or catalog with S1",
                param="s1_window",
            )
        table = open_table_pairs(s2, second=second_modality, s1=s1)
        second_dates = table.dates if table.second is not None else None
        arrays = (table.s2, table.dates, table.second, second_dates, table.fields, table.provenance)
        tolerance_days = 0  # a table's views share its dates
    else:
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
        arrays = (src.s2, src.s2_dates, src.planet, src.planet_dates, src.fields, src.provenance)
    s2_stack, s2_dates, second_stack, second_dates, field_raster, provenance = arrays
    return build_pairs_from_arrays(
        s2=s2_stack,
        s2_dates=s2_dates,
        planet=second_stack,
        planet_dates=second_dates,
        out_dir=out_dir,
        fields=field_raster,
        pixels_per_date=pixels_per_date,
        tolerance_days=tolerance_days,
        seed=seed,
        shard_rows=shard_rows,
        provenance=provenance,
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
        "columns": sampling.feature_names(
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
