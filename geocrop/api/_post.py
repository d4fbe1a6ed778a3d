"""After the map (`geocrop.post`): reference samples, accuracy and area estimates, fields, smoothing.

Each verb takes the map COG `map_aoi` wrote (a path, or its `MapResult`) and returns the step's frozen
result, which says where its outputs went. Its arguments are the fields of its config in
`geocrop.post.configs` (declared once there, with their help, units and bounds; a test holds each
signature equal to them), which converts and checks them before the stage runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal

from geocrop.api_types import PathLike, Progress, emit
from geocrop.core.params import config_args, values
from geocrop.core.progress import Stage

if TYPE_CHECKING:
    from geocrop.post.assess_report import Assessment
    from geocrop.post.fields import FieldsResult
    from geocrop.post.sampling import SampleResult
    from geocrop.post.smooth import SmoothResult

__all__ = ["SmoothMethod", "assess", "field_results", "smooth_map", "stratified_sample", "uncertain_sample"]

#: ``bayes``: Bayesian smoothing of the class probabilities (needs a map made with ``probabilities``);
#: ``modal``: a majority filter (+ sieve) of the classes, for any map.
SmoothMethod = Literal["bayes", "modal"]

#: A map: the class COG's path, or the `MapResult` that wrote it (``.cog``).
MapLike = Any


def stratified_sample(
    *,
    map: MapLike,
    n: int,
    out: PathLike,
    min_per_class: int = 50,
    seed: int = 0,
    progress: Progress | None = None,
) -> SampleResult:
    """``n`` reference points drawn at random within the map's classes (strata), written to ``out``
    (.gpkg) with an empty ``reference`` column to fill in; every class gets at least ``min_per_class``,
    the rest is shared in proportion to area (docs/area-estimation.md). Label them, then `assess`."""
    from geocrop.post.configs import StratifiedSampleConfig
    from geocrop.post.sampling import stratified_sample as run

    return run(
        **values(StratifiedSampleConfig(**config_args(StratifiedSampleConfig, locals()))), progress=progress
    )


def uncertain_sample(
    *,
    map: MapLike,
    n: int,
    out: PathLike,
    min_distance: float | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> SampleResult:
    """The ``n`` pixels where the map is least sure (highest uncertainty), at least ``min_distance``
    metres apart, written to ``out`` (.gpkg) to label next: the points that teach a model most."""
    from geocrop.post.configs import UncertainSampleConfig
    from geocrop.post.sampling import uncertain_sample as run

    return run(
        **values(UncertainSampleConfig(**config_args(UncertainSampleConfig, locals()))), progress=progress
    )


def assess(
    *,
    map: MapLike,
    reference: PathLike,
    class_column: str = "reference",
    out: PathLike | None = None,
    progress: Progress | None = None,
) -> Assessment:
    """Accuracy and area estimates of the map from a stratified reference sample (Olofsson et al. 2014):
    error matrix in counts and area proportions, overall/user's/producer's accuracy and class areas with
    95 % confidence intervals; a report (markdown, plots, JSON, CSV) in the folder ``out`` when given."""
    from geocrop.post.assess_report import assess as run
    from geocrop.post.configs import AssessConfig

    return run(**values(AssessConfig(**config_args(AssessConfig, locals()))), progress=progress)


def field_results(
    *,
    map: MapLike,
    parcels: PathLike,
    out: PathLike,
    columns: Sequence[str] | None = None,
    batch_size: int = 10_000,
    html: PathLike | None = None,
    progress: Progress | None = None,
) -> FieldsResult:
    """One row per parcel of ``parcels`` (any vector file, any CRS) written to ``out`` (.gpkg or .parquet):
    its majority class and share, mean confidence, pixel count and clear share, and with a probability
    map the mean class probabilities; ``columns`` the parcel attributes to keep (default: all);
    ``html``: also an offline web page of the map with each parcel filled in its majority class's colour
    (`geocrop.viz.result_page`), its path in the result's ``html``."""
    from geocrop.post.configs import FieldsConfig
    from geocrop.post.fields import field_results as run
    from geocrop.viz.result_page import write_fields_page

    arguments = values(FieldsConfig(**config_args(FieldsConfig, locals())))
    return _with_page(
        run,
        arguments,
        progress,
        "fields",
        lambda page, r: write_fields_page(page, cog=arguments["map"], fields=r.out),
    )


def smooth_map(
    *,
    map: MapLike,
    out: PathLike,
    method: SmoothMethod = "bayes",
    window: int = 7,
    smoothness: float = 10.0,
    neigh_fraction: float = 0.5,
    sieve: int = 0,
    html: PathLike | None = None,
    colors: PathLike | None = None,
    progress: Progress | None = None,
) -> SmoothResult:
    """The map with its salt-and-pepper removed, as a new class COG at ``out`` (+ confidence COG, style,
    STAC item) in `map_aoi`'s layout; docs/fields-and-smoothing.md explains the parameters. ``html``: also
    an offline web page of the smoothed map (its path in the result's ``html``); ``colors``: a class
    colour table (CSV, JSON or QGIS ``.qml``) for the classes it names, in every output."""
    from geocrop.post.configs import SmoothConfig
    from geocrop.post.smooth import smooth_map as run
    from geocrop.viz.result_page import write_map_page

    arguments = values(SmoothConfig(**config_args(SmoothConfig, locals())))
    return _with_page(
        run, arguments, progress, "smooth", lambda page, r: write_map_page(page, cog=r.cog, title=_SMOOTHED)
    )


_SMOOTHED = "geocrop smoothed crop map"


def _with_page(
    run: Callable[..., Any], arguments: dict[str, Any], progress: Progress | None, stage: Stage, page: Any
) -> Any:
    """Run the stage without its ``html`` argument, then write its web page there (``page(path, result)``)
    when one was asked for, and return the result with the page's path in ``html``."""
    html = arguments.pop("html")
    result = run(**arguments, progress=progress)
    if html is None:
        return result
    emit(progress, stage, 1.0, "writing the web page")
    return replace(result, html=page(html, result))
