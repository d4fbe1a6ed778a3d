"""`pretrain`'s options, declared once (`geocrop.core.params`): the Python verb's keywords, the CLI's flags
and their help follow these fields. Torch-free: the CLI builds its options from them without loading a
model.

`PretrainOptions` turns into the run's own settings: `contrastive_config` (`PretrainConfig`: the pixel
encoders, bi-modal or SCARF) or `temporal_config` (`TemporalPretrainConfig`: a temporal head), each
refusing the options that belong to the other mode; those configs check the values they keep.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from geocrop.core.params import as_aoi, as_path, as_source, param, settle, values
from geocrop.core.temporal import as_date
from geocrop.errors import InputError

if TYPE_CHECKING:
    from geocrop.training.pretrain_config import PretrainConfig
    from geocrop.training.temporal_config import TemporalPretrainConfig

__all__ = ["PretrainMode", "PretrainOptions", "SecondModality", "TemporalHead"]

PretrainMode = Literal["bimodal", "unimodal", "temporal"]
#: The second view of bi-modal pretraining: ``auto`` is PlanetScope when ``planet`` is given, else
#: Sentinel-1 (a table's or cube's S1 columns, or ``s1``). Temporal mode: ``auto`` is Sentinel-1 where
#: the source has it, ``s1`` requires it, ``none`` leaves it out.
SecondModality = Literal["auto", "planetscope", "s1", "none"]
#: Head families temporal pretraining can train.
TemporalHead = Literal["transformer", "inception", "tempcnn", "lstm"]
#: Contrastive modes' epochs and batch when left unset (the paper's).
CONTRASTIVE_EPOCHS, CONTRASTIVE_BATCH = 100, 2048


def _area(value: Any, name: str) -> Any:
    """An AOI as the pair builder reads it: a file name, ``"minx,miny,maxx,maxy"``, or a geometry."""
    area = as_aoi(value, name)
    if isinstance(area, tuple):
        return ",".join(repr(v) for v in area)
    return os.fspath(area) if isinstance(area, os.PathLike) else area


def _file_name(value: Any, name: str) -> str:
    return os.fspath(as_path(value, name))


@dataclass(frozen=True, kw_only=True)
class PretrainOptions:
    """Everything `pretrain` takes, converted on creation (library terms)."""

    s2: str | None = param(
        None,
        help="Sentinel-2 L2A source: STAC API URL, catalog.json, saved ItemCollection, GeoTIFF folder, "
        "NetCDF/Zarr cube, or a samples table (.parquet/.csv)",
        convert=as_source,
    )
    planet: str | None = param(
        None, help="PlanetScope source (STAC kinds); the paper's second view", convert=as_source
    )
    second_modality: SecondModality = param(
        "auto",
        help="Second view of `mode` bimodal: auto = planetscope with `planet`, else s1 (Sentinel-1 VV/VH). "
        "`mode` temporal: auto = s1 where the source has it; none = Sentinel-2 alone",
    )
    s1: str | None = param(
        None,
        help="Sentinel-1 source for `second_modality` s1 (default: the `s2` source's S1 columns/variables)",
        convert=as_source,
    )
    s1_collection: str = param("sentinel-1", help="S1 collection in a catalog")
    s1_window: int = param(
        1,
        help="Pair each S2 pixel with its k x k S1 neighbourhood (odd k, imagery only; 1: the pixel's VV/VH)",
    )
    out: Path = param(help="Run folder", convert=as_path, kind="folder_out")
    aoi: str | None = param(
        None,
        help="Area of interest (GeoJSON/GPKG/... or minx,miny,maxx,maxy); default: the S2 extent",
        convert=_area,
    )
    start: dt.date | None = param(None, help="First date, YYYY-MM-DD (default: all)", convert=as_date)
    end: dt.date | None = param(None, help="Last date, YYYY-MM-DD (default: all)", convert=as_date)
    fields: str | None = param(
        None,
        help="Parcel polygons for the field-level 70-21-9 split (default: 8x8-pixel blocks)",
        convert=_file_name,
    )
    s2_collection: str = param("sentinel-2-l2a", help="S2 collection in a catalog")
    planet_collection: str = param("planetscope", help="PlanetScope collection in a catalog")
    mode: PretrainMode = param(
        "bimodal",
        help="bimodal/unimodal: contrastive pixel encoders; temporal: a temporal head by masked "
        "reconstruction",
    )
    head: TemporalHead = param(
        "transformer", help="`mode` temporal: the head family to pretrain (options as in train)"
    )
    head_params: Mapping[str, Any] | None = param(
        None,
        help="`mode` temporal: the head's options over train's defaults (e.g. {'d_model': 32})",
        cli=False,
    )
    steps: int | Literal["auto"] = param("auto", help="temporal: grid steps (auto: as train)")
    mask_ratio: float = param(0.15, help="temporal: share of dates hidden")
    second_weight: float = param(1.0, help="temporal: weight of the S1 term")
    objective: Literal["masked", "contrastive"] = param(
        "masked",
        help="temporal: reconstruct hidden dates (+ S1 there), or match two augmented views (NT-Xent)",
    )
    date_dropout: float | None = param(
        None, help="temporal: blank each date of a series with this probability [masked: 0; contrastive: 0.2]"
    )
    resample_dates: bool | None = param(
        None,
        help="temporal: keep a random subset of each series' dates, jittered by a step, then regrid [on]",
        flag="--resample-dates/--no-resample-dates",
    )
    corruption_rate: float = param(0.2, help="SCARF corruption rate", flag="--corruption")
    epochs: int | None = param(None, help="Epochs [contrastive: 100; temporal: adapts to the series]")
    batch_size: int | None = param(None, help="Global batch, all ranks [contrastive: 2048; temporal: adapts]")
    lr: float = param(1e-3, help="Learning rate")
    temperature: float = param(0.07, help="NT-Xent temperature (the paper's 0.07)")
    seed: int = param(0, help="Seed of the draws and the weights")
    device: str = param("auto", help="auto, cpu or cuda")
    pixels_per_date: int | None = param(None, help="Training pixels per S2 date [min(100000, all)]")
    tolerance_days: int = param(0, help="Largest S2-Planet date gap")
    width: int = param(256, help="Encoder width (the paper: 256)")
    depth: int = param(8, help="Residual layers (the paper: 8)")
    threads: int | None = param(None, help="CPU threads for torch (default: torch's choice)")
    allow_any_asset_href: bool = param(
        False, help="Read assets wherever the sources' catalogs point (not only beside them)"
    )

    def __post_init__(self) -> None:
        settle(self, season=("start", "end"))

    def contrastive_config(self) -> PretrainConfig:
        """The settings of a bi-modal or uni-modal run (the pixel encoders)."""
        from geocrop.training.pretrain_config import PretrainConfig

        if self.date_dropout or self.resample_dates:
            raise InputError(
                f"`date_dropout` and `resample_dates` act on series; `mode` {self.mode} pairs single dates: "
                "use `mode` temporal",
                param="date_dropout" if self.date_dropout else "resample_dates",
            )
        if self.second_modality == "none":
            raise InputError(
                "`second_modality` none applies to `mode` temporal; use `mode` unimodal for Sentinel-2 alone",
                param="second_modality",
            )
        return PretrainConfig(
            out=self.out,
            s2=self.s2,
            planet=self.planet,
            second_modality=self.second_modality,
            s1=self.s1,
            s1_collection=self.s1_collection,
            s1_window=self.s1_window,
            aoi=self.aoi,
            start=self.start,  # the season as settled here: PretrainConfig takes it as it is
            end=self.end,
            fields=self.fields,
            s2_collection=self.s2_collection,
            planet_collection=self.planet_collection,
            mode=self.mode,  # type: ignore[arg-type]  # temporal goes to temporal_config
            corruption=self.corruption_rate,
            epochs=CONTRASTIVE_EPOCHS if self.epochs is None else self.epochs,
            batch_size=CONTRASTIVE_BATCH if self.batch_size is None else self.batch_size,
            lr=self.lr,
            temperature=self.temperature,
            seed=self.seed,
            device=self.device,
            pixels_per_date=self.pixels_per_date,
            tolerance_days=self.tolerance_days,
            width=self.width,
            depth=self.depth,
            threads=self.threads,
            allow_any_asset_href=self.allow_any_asset_href,
        )

    def temporal_config(self) -> TemporalPretrainConfig:
        """The settings of a temporal run: each option that names a field of `TemporalPretrainConfig` (the
        same names) goes to it; the contrastive modes' inputs must be unset."""
        import dataclasses

        from geocrop.training.temporal_config import TemporalPretrainConfig

        if self.s2 is None:
            raise InputError("`mode` temporal needs `s2`: a samples table or imagery with series", param="s2")
        for name in ("planet", "aoi", "fields"):
            if getattr(self, name) is not None:
                raise InputError(
                    f"`{name}` does not apply to `mode` temporal (it reads every series of `s2`); drop it",
                    param=name,
                )
        if self.second_modality == "planetscope":
            raise InputError(
                "`second_modality` planetscope cannot be read as series; use s1, none or auto with `mode` "
                "temporal",
                param="second_modality",
            )
        names = {f.name for f in dataclasses.fields(TemporalPretrainConfig)}
        given = {name: value for name, value in values(self).items() if name in names}
        head_params = dict(self.head_params) if self.head_params else None
        return TemporalPretrainConfig(**given | {"head_params": head_params})
