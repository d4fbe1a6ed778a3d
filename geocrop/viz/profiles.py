"""Look at labelled samples before training: per-class temporal profiles and class counts.

What `sits` users plot first (``sits_patterns``, the per-class time series): for every class, the median
of each variable over its series at every step of the temporal grid, with the 10-90 % band around it
(the spread a head has to learn through), one panel per class on shared axes so classes compare at a
glance. The variables are NDVI, ``(B08 - B04) / (B08 + B04)``, and each Sentinel-2 band.

The series are those `geocrop train` learns from (`geocrop.data.labelled.load_labelled`): on the table's or
the season's temporal grid, gaps filled by interpolation, filled bands flagged. `inspect_labels` writes:

- ``profiles_ndvi.png`` and ``profiles_<band>.png``: the panels;
- ``counts.png`` and ``counts.csv``: series and parcels (groups) per class;
- ``profiles.csv``: every plotted number (class, variable, date, median, p10, p90);
- ``index.html``: a small offline page with the counts table and every figure.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from geocrop.data.labelled import LabelledSeries, parcels_per_class
from geocrop.io.atomic import write_text_atomic
from geocrop.io.classes import class_colours
from geocrop.viz.plots import save_figure

#: Percentiles of the band drawn around each median.
LOW, HIGH = 10, 90


@dataclass(frozen=True)
class ClassProfiles:
    """Per-class statistics of labelled series on one temporal grid.

    ``median``, ``low`` and ``high`` are (classes, steps, variables) arrays: the median and the `LOW`/`HIGH`
    percentiles over each class's series; ``variables`` is ``("NDVI", *bands)``; ``dates`` the grid's
    steps; ``series`` and ``parcels`` the counts per class.
    """

    class_names: tuple[str, ...]
    colours: tuple[str, ...]
    variables: tuple[str, ...]
    dates: np.ndarray
    median: np.ndarray
    low: np.ndarray
    high: np.ndarray
    series: np.ndarray
    parcels: np.ndarray
    missing_bands: tuple[str, ...]


@dataclass(frozen=True)
class InspectResult:
    """Where `inspect_labels` wrote the page and its figures, and what it counted."""

    page: Path
    figures: tuple[Path, ...]
    counts: Path
    profiles: Path
    class_names: tuple[str, ...]
    series: tuple[int, ...]


def ndvi(values: np.ndarray, bands: Sequence[str]) -> np.ndarray:
    """(N, T) NDVI of (N, T, B) reflectance series; NaN where red + NIR is not positive."""
    red, nir = values[..., bands.index("B04")], values[..., bands.index("B08")]
    total = red + nir
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (nir - red) / total, np.nan)


def class_profiles(series: LabelledSeries, *, colours: Sequence[str] | None = None) -> ClassProfiles:
    """Median and 10-90 % band of NDVI and every band, per class and step (`ClassProfiles`); ``colours``
    (one per class) default to the colours geocrop gives the classes on a map."""
    bands = tuple(series.bands)
    stacked = np.concatenate([ndvi(series.values, bands)[..., None], series.values], axis=-1)
    k, steps, v = len(series.class_names), stacked.shape[1], stacked.shape[2]
    median, low, high = (np.full((k, steps, v), np.nan) for _ in range(3))
    for c in range(k):
        rows = stacked[series.labels == c]
        if len(rows):
            median[c], low[c], high[c] = np.nanpercentile(rows, [50, LOW, HIGH], axis=0)
    return ClassProfiles(
        class_names=series.class_names,
        colours=tuple(colours) if colours is not None else class_colours(series.class_names),
        variables=("NDVI", *bands),
        dates=series.grid.dates,
        median=median,
        low=low,
        high=high,
        series=np.bincount(series.labels, minlength=k),
        parcels=parcels_per_class(series),
        missing_bands=tuple(series.missing_bands),
    )


def plot_profiles(profiles: ClassProfiles, variable: str, path: Path) -> Path:
    """One panel per class: ``variable``'s median (line) and 10-90 % band over the season, shared axes."""
    j = profiles.variables.index(variable)
    k = len(profiles.class_names)
    cols = min(4, k)
    rows = math.ceil(k / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.5 * rows), sharex=True, sharey=True,
                             squeeze=False)  # fmt: skip
    dates = profiles.dates.astype("datetime64[D]").astype(object)
    for c, ax in enumerate(axes.flat):
        if c >= k:
            ax.set_visible(False)
            continue
        colour = profiles.colours[c]
        ax.fill_between(dates, profiles.low[c, :, j], profiles.high[c, :, j], color=colour, alpha=0.25, lw=0)
        ax.plot(dates, profiles.median[c, :, j], color=colour, lw=1.8)
        ax.set_title(f"{profiles.class_names[c]} ({profiles.series[c]})", fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.tick_params(labelsize=7)
    fig.autofmt_xdate()
    filled = " (filled from neighbouring bands)" if variable in profiles.missing_bands else ""
    fig.suptitle(f"{variable}{filled}: median and {LOW}-{HIGH} % of each class's series (series in brackets)")
    fig.tight_layout()
    return _save(fig, path)


def plot_counts(profiles: ClassProfiles, path: Path) -> Path:
    """Horizontal bars: series per class, with the parcels (split groups) they come from."""
    k = len(profiles.class_names)
    fig, ax = plt.subplots(figsize=(6.4, 0.9 + 0.36 * k))
    ax.barh(range(k), profiles.series, color=profiles.colours)
    for c in range(k):
        ax.text(profiles.series[c], c, f" {profiles.series[c]} ({profiles.parcels[c]} parcels)", va="center",
                fontsize=8)  # fmt: skip
    ax.set_yticks(range(k), labels=list(profiles.class_names))
    ax.invert_yaxis()
    ax.set_xlim(0, 1.3 * max(int(profiles.series.max()), 1))
    ax.set_xlabel("labelled series")
    ax.set_title("Series per class")
    return _save(fig, path)


def _save(fig: plt.Figure, path: Path) -> Path:
    return save_figure(fig, path, dpi=100)


def profiles_table(profiles: ClassProfiles) -> pd.DataFrame:
    """Every plotted number: one row per class, variable and date."""
    index = pd.MultiIndex.from_product(
        [profiles.class_names, profiles.variables, profiles.dates.astype("datetime64[D]").astype(str)],
        names=["class", "variable", "date"],
    )
    by = {name: getattr(profiles, name).transpose(0, 2, 1).reshape(-1) for name in ("median", "low", "high")}
    return pd.DataFrame({"median": by["median"], f"p{LOW}": by["low"], f"p{HIGH}": by["high"]}, index=index)


def _page(profiles: ClassProfiles, title: str, figures: Sequence[Path]) -> str:
    rows = "".join(
        f"<tr><td><span style='color:{html.escape(c)}'>&#9632;</span> {html.escape(n)}</td>"
        f"<td>{s}</td><td>{p}</td></tr>"
        for n, c, s, p in zip(
            profiles.class_names, profiles.colours, profiles.series, profiles.parcels, strict=True
        )
    )
    filled = ", ".join(profiles.missing_bands)
    note = f"<p>Bands {html.escape(filled)} are absent from the input and filled from their neighbours.</p>"
    images = "".join(f"<h2>{html.escape(f.stem)}</h2><img src='{f.name}' alt='{f.stem}'>" for f in figures)
    start, end = (str(d) for d in profiles.dates[[0, -1]].astype("datetime64[D]"))
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>body{{font-family:sans-serif;max-width:1400px;margin:1em}}"
        "td,th{padding:2px 10px;text-align:right}td:first-child{text-align:left}img{max-width:100%}</style>"
        f"</head><body><h1>{html.escape(title)}</h1><p>{int(profiles.series.sum())} series of "
        f"{len(profiles.class_names)} classes on {len(profiles.dates)} steps from {start} to {end} "
        "(gaps filled by interpolation, as training sees them). Each panel: the median of a class's "
        f"series (line) and the {LOW}-{HIGH} % band around it.</p>{note if filled else ''}"
        f"<table><tr><th>class</th><th>series</th><th>parcels</th></tr>{rows}</table>{images}</body></html>"
    )


def inspect_labels(
    series: LabelledSeries,
    out: Path,
    *,
    title: str = "Labelled samples",
    variables: Sequence[str] | None = None,
    colours: Sequence[str] | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> InspectResult:
    """Write ``series``' per-class profiles (NDVI and every band, or ``variables``), counts and a page to
    the folder ``out`` (see the module docstring); each file appears whole or not at all."""
    profiles = class_profiles(series, colours=colours)
    names = list(variables) if variables is not None else list(profiles.variables)
    out.mkdir(parents=True, exist_ok=True)
    figures = [plot_counts(profiles, out / "counts.png")]
    for i, variable in enumerate(names):
        if progress is not None:
            progress(i / (len(names) + 1), f"drawing {variable}")
        figures.append(plot_profiles(profiles, variable, out / f"profiles_{variable.lower()}.png"))
    counts = pd.DataFrame(
        {"class": profiles.class_names, "series": profiles.series, "parcels": profiles.parcels}
    )
    write_text_atomic(out / "counts.csv", counts.to_csv(index=False))
    write_text_atomic(out / "profiles.csv", profiles_table(profiles).reset_index().to_csv(index=False))
    page = write_text_atomic(out / "index.html", _page(profiles, title, figures))
    if progress is not None:
        progress(1.0, f"wrote {page}")
    return InspectResult(
        page=page,
        figures=tuple(figures),
        counts=out / "counts.csv",
        profiles=out / "profiles.csv",
        class_names=profiles.class_names,
        series=tuple(int(s) for s in profiles.series),
    )
