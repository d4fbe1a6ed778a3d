"""`PredictConfig`: the one declaration of every `geocrop predict` option (`geocrop.core.params`).

`geocrop.predict`'s arguments (a test holds its signature equal to these fields) and ``geocrop predict``'s
flags come from it; building one converts what a caller gives and checks it, season included.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from geocrop.core.params import as_bundle, as_floats, as_path, at_least, device_check, param, settle
from geocrop.core.temporal import as_date
from geocrop.inference.priors import PriorChoice, priors_param

__all__ = ["PredictConfig"]


@dataclass(frozen=True, kw_only=True)
class PredictConfig:
    """One `geocrop predict` run (field order is ``geocrop predict --help``'s)."""

    model: Path = param(help="Bundle (.safetensors)", convert=as_bundle)
    samples: Path = param(help="Samples table (Parquet/CSV)", convert=as_path)
    out: Path = param(help="Predictions, .csv or .parquet", convert=as_path, kind="table_out")
    id_column: str = param("sample_id", help="Sample id column (long tables)")
    class_column: str | None = param(None, help="Copy this label column beside the predictions")
    nodata: tuple[float, ...] = param(
        (), help="Value meaning 'no observation' (65535 always is)", convert=as_floats
    )
    scale: float | None = param(None, help="Value -> reflectance", check=at_least(0, strict=True))
    start: dt.date | None = param(None, help="The table's season start, if not the bundle's", convert=as_date)
    end: dt.date | None = param(None, help="The table's season end, if not the bundle's", convert=as_date)
    device: str = param("auto", help="auto, cpu or cuda", check=device_check)
    class_priors: PriorChoice = priors_param()

    def __post_init__(self) -> None:
        settle(self, season=("start", "end"))
