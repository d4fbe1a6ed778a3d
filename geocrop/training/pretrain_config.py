"""The settings of a pretraining run (`PretrainConfig`), checked before anything is built or written."""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from geocrop.core.temporal import DateLike, settle_season
from geocrop.errors import InputError, OutputError
from geocrop.models.contrastive import ContrastiveMode

Mode = ContrastiveMode
#: ``auto``: PlanetScope when a Planet source is given, else Sentinel-1.
SecondModality = Literal["auto", "planetscope", "s1"]
SECOND_CHOICES = ("auto", "planetscope", "s1")


@dataclass(frozen=True)
class PretrainResult:
    """Where a pretraining run's outputs went and what was measured (``history``: one dict per epoch);
    the same for every mode (pixel encoders and temporal heads)."""

    out: Path
    bundle: Path
    history: list[dict[str, Any]] = field(default_factory=list)
    resumed_from: int = 0
    is_main: bool = True


@dataclass(frozen=True)
class PretrainConfig:
    """Everything a pretraining run depends on. ``s2=None`` reuses the pairs already in ``out/pairs``."""

    out: Path
    s2: str | None = None
    planet: str | None = None
    aoi: str | None = None
    start: DateLike | None = None
    end: DateLike | None = None
    fields: str | None = None
    s2_collection: str = "sentinel-2-l2a"
    planet_collection: str = "planetscope"
    mode: Mode = "bimodal"
    corruption: float = 0.2
    epochs: int = 100
    batch_size: int = 2048
    lr: float = 1e-3
    temperature: float = 0.07
    seed: int = 0
    device: str = "auto"
    pixels_per_date: int | None = None
    tolerance_days: int = 0
    width: int = 256
    depth: int = 8
    retrieval_candidates: int = 1024
    #: torch intra-op threads (None: torch's default). Bit-exact resume needs the same count.
    threads: int | None = None
    #: The second view of bi-modal pretraining (see `second_view`).
    second_modality: SecondModality = "auto"
    #: Sentinel-1 source for ``second_modality`` s1 (default: the S2 source: a table's or cube's S1 data).
    s1: str | None = None
    s1_collection: str = "sentinel-1"
    #: Side k of the Sentinel-1 neighbourhood paired with each S2 pixel (1: the pixel's own VV/VH).
    s1_window: int = 1
    #: Read assets wherever the sources' catalogs point (`geocrop.io.stac.check_asset_hrefs`).
    allow_any_asset_href: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "out", Path(self.out).expanduser())
        validate(self)

    def fingerprint(self) -> dict[str, Any]:
        """The settings that shape the training trajectory; a checkpoint only resumes under the same ones."""
        keys = ("mode", "corruption", "batch_size", "lr", "temperature", "seed", "width", "depth")
        out = {k: getattr(self, k) for k in keys}
        if self.second_view() == "sentinel-1":  # absent for Planet, so earlier runs still resume
            out["second_modality"] = "sentinel-1"
            if self.s1_window != 1:  # absent by default, so earlier runs still resume
                out["s1_window"] = self.s1_window
        return out

    def second_view(self) -> str | None:
        """The second view's sensor (``planetscope`` or ``sentinel-1``), None for uni-modal runs."""
        if self.mode != "bimodal":
            return None
        if self.second_modality == "auto":
            if self.planet is None and self.s2 is None:  # reusing pairs: whatever they hold
                return _built_second(self.out)
            return "planetscope" if self.planet is not None else "sentinel-1"
        return "planetscope" if self.second_modality == "planetscope" else "sentinel-1"


def _built_second(out: Path) -> str:
    """The second view of the pairs already built in ``out/pairs`` (Planet when unknown)."""
    try:
        settings = json.loads((out / "pairs" / "manifest.json").read_text()).get("settings", {})
    except (OSError, ValueError):
        return "planetscope"
    return str(settings.get("second_modality", "planetscope"))


def validate(config: PretrainConfig) -> None:
    """Every check that needs no data, so a bad option fails before pairs are built (and leaves nothing)."""
    if config.mode not in ("bimodal", "unimodal"):
        raise InputError(f"`mode` {config.mode!r} is invalid; use bimodal or unimodal", param="mode")
    if config.second_modality not in SECOND_CHOICES:
        raise InputError(
            f"`second_modality` {config.second_modality!r} does not exist; choose one of "
            f"{', '.join(SECOND_CHOICES)}",
            param="second_modality",
        )
    if config.mode == "bimodal" and config.s2 is not None:
        if config.second_view() == "planetscope" and config.planet is None:
            raise InputError(
                "`second_modality` planetscope needs `planet` SOURCE; give one, use `second_modality` s1 "
                "(Sentinel-1 from `s1` or the S2 source), or `mode` unimodal with `s2` alone",
                param="second_modality",
            )
        if config.second_view() == "sentinel-1" and config.planet is not None:
            raise InputError(
                "`planet` is given but `second_modality` s1 asks for Sentinel-1; drop one of them",
                param="planet",
            )
    if config.s1_window < 1 or config.s1_window % 2 == 0 or config.s1_window > 9:
        raise InputError(
            f"`s1_window` {config.s1_window} is not an odd size from 1 to 9; give 1 (the pixel) or 3 "
            "(its 3x3 neighbourhood)",
            param="s1_window",
        )
    if config.s1_window > 1 and config.mode == "bimodal" and config.second_view() != "sentinel-1":
        raise InputError(
            "`s1_window` applies to a Sentinel-1 second view; drop it or use `second_modality` s1",
            param="s1_window",
        )
    for name in ("epochs", "batch_size", "width", "depth", "retrieval_candidates"):
        if getattr(config, name) < 1:
            raise InputError(f"`{name}` must be >= 1, got {getattr(config, name)}", param=name)
    if not (config.lr > 0 and math.isfinite(config.lr)):
        raise InputError(f"`lr` must be a positive number, got {config.lr}", param="lr")
    if not (config.temperature > 0 and math.isfinite(config.temperature)):
        raise InputError(
            f"`temperature` must be a positive number, got {config.temperature}; the paper uses 0.07",
            param="temperature",
        )
    if config.pixels_per_date is not None and config.pixels_per_date < 1:
        raise InputError(
            f"`pixels_per_date` must be >= 1, got {config.pixels_per_date}; leave it out to use "
            "min(100000, all) pixels per date",
            param="pixels_per_date",
        )
    if config.tolerance_days < 0:
        raise InputError(
            f"`tolerance_days` must be >= 0, got {config.tolerance_days}; 0 pairs same-day scenes",
            param="tolerance_days",
        )
    if config.threads is not None and config.threads < 1:
        raise InputError(
            f"`threads` must be >= 1, got {config.threads}; leave it out for torch's choice", param="threads"
        )
    if config.device not in ("auto", "cpu") and not str(config.device).startswith("cuda"):
        raise InputError(
            f"`device` {config.device!r} is not one of auto, cpu, cuda; choose one of those", param="device"
        )
    # The one date parser and season rule (geocrop.core.temporal): dates `PretrainOptions` settled pass as
    # they are; others are settled here once, and the config keeps the settled dates.
    settle_season(config)
    if not 0 <= config.corruption < 1:
        raise InputError(
            f"`corruption_rate` {config.corruption} is not a fraction in [0, 1); give e.g. 0.2 or 0.6 as in "
            "the paper, or 0 for no corruption",
            param="corruption_rate",
        )
    if config.batch_size < 2:
        raise InputError("`batch_size` must be >= 2: a contrastive batch needs negatives", param="batch_size")
    check_run_folder(Path(config.out))


def check_run_folder(out: Path) -> None:
    """`OutputError` unless ``out`` is (or can become) a folder this process can write in; creates nothing."""
    if out.exists() and not out.is_dir():
        raise OutputError(
            f"`out` {out} is a file; give a folder for the run (it is created if missing)", param="out"
        )
    probe_in = out if out.is_dir() else next((p for p in out.absolute().parents if p.exists()), None)
    if probe_in is None or not probe_in.is_dir():
        raise OutputError(f"`out` {out}: {probe_in} is not a folder; choose another `out`", param="out")
    try:
        fd, probe = tempfile.mkstemp(prefix=".geocrop-probe-", dir=probe_in)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(
            f"`out` {out}: cannot write in {probe_in} ({exc.strerror or exc}); choose a writable folder",
            param="out",
        ) from exc
