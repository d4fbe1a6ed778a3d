"""`predict`: a bundle applied to a samples table, one row per sample."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from geocrop.api_types import BundleLike, DateLike, PathLike, Progress, emit
from geocrop.core.params import config_args, values

if TYPE_CHECKING:
    from geocrop.inference.predict import PredictResult
    from geocrop.inference.priors import ClassPriors

__all__ = ["predict"]


def predict(
    *,
    model: BundleLike,
    samples: PathLike,
    out: PathLike,
    id_column: str = "sample_id",
    class_column: str | None = None,
    nodata: Sequence[float] = (),
    scale: float | None = None,
    start: DateLike | None = None,
    end: DateLike | None = None,
    device: str = "auto",
    class_priors: ClassPriors = None,
    tune_process: bool = False,
    progress: Progress | None = None,
) -> PredictResult:
    """Classify every series of the samples table ``samples`` with ``model`` (a bundle path or a
    `TrainResult`) and write one row per sample to ``out`` (.csv or .parquet): the predicted class, its
    probability and one ``p_<class>`` column per class; see `geocrop.inference.predict`. ``start``/``end``:
    the table's season when it is not the bundle's (another year, on the bundle's steps).
    ``class_priors``: the class shares the probabilities are corrected for, as in `map_aoi` (None: the
    training class frequencies; ``"uniform"``: every class equally common; or a CSV/JSON file or dict of
    class -> share). The arguments are `geocrop.inference.predict_config.PredictConfig`'s fields."""
    from geocrop.inference.predict import predict_table
    from geocrop.inference.predict_config import PredictConfig

    config = PredictConfig(**config_args(PredictConfig, locals()))
    emit(progress, "predict", 0.0, f"classifying {config.samples} with {config.model.name}")
    result = predict_table(**values(config), tune_process=tune_process)
    emit(progress, "predict", 1.0, f"wrote {result.out} ({result.n_samples} samples)")
    return result
