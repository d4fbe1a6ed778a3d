"""`assess`: a crop map checked against labelled reference points -> accuracy, area estimates, a report.

The reference points are a stratified random sample of the map's classes (`geocrop sample --stratified`,
labelled in their ``reference`` column); the estimators are those of Olofsson et al. (2014) in
`geocrop.post.assess`, with each map class's pixel share ``W_i`` counted from the map window by window.
Points may be in any CRS (reprojected to the map's); reference classes are the map's class names
(any case) or its class values, or any other name (a crop the map cannot show, ``other``): such a
reference-only class is kept as a column of omission only, with its estimated area (a warning lists them,
in case one is a misspelt map class). A number that is not a map value is refused. Points left without a
reference class are set aside with a warning. Areas are reported in hectares with enough decimals for the
smallest mapped class, in m² for a map under 10 ha (`area_unit`).

The report folder holds ``report.md`` (tables and plots), ``assessment.json`` (every number),
``per_class.csv``, ``error_matrix_counts.csv``, ``error_matrix_proportions.csv``, ``areas.png`` and
``error_matrix.png``, each written atomically. Every input is checked before anything is written.
"""

from __future__ import annotations

import csv
import io
import json
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from geocrop.core.progress import Progress, within
from geocrop.errors import GeocropError, GeocropWarning, InputError, OutputError, SourceError
from geocrop.io.atomic import write_text_atomic
from geocrop.io.classes import NODATA
from geocrop.io.map_reader import MapLayers, MapSource, open_map
from geocrop.post.assess import AreaEstimates, stratified_estimates
from geocrop.post.sampling import REFERENCE_COLUMN, class_pixel_counts

__all__ = ["Assessment", "area_unit", "assess", "plot_areas", "plot_error_matrix", "write_report"]
_BLOCK = 512


@dataclass(frozen=True)
class Assessment:
    """What `assess` found: the ``estimates``, the points used and set aside, and where files went."""

    estimates: AreaEstimates
    n_points: int
    n_unlabelled: int
    out: Path | None = None
    files: tuple[Path, ...] = ()


def assess(
    *,
    map: str | os.PathLike[str],
    reference: str | os.PathLike[str],
    class_column: str = REFERENCE_COLUMN,
    out: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
) -> Assessment:
    """Compare ``map`` with the labelled points in ``reference`` (column ``class_column``); with ``out``
    (a folder, created if missing) write the report there."""
    folder = _check_out(out)
    layers = open_map(map)
    frame = _read_reference(reference, class_column)
    label = frame[class_column]
    empty = label.isna() | (label.astype(str).str.strip() == "")
    n_unlabelled = int(empty.sum())
    if frame.empty:
        raise InputError(
            f"`reference` {Path(reference).name} holds no points; draw points on the map (geocrop sample), "
            "label them and give that file",
            param="reference",
        )
    if n_unlabelled == len(frame):
        raise InputError(
            f"`reference` {Path(reference).name}: none of its {len(frame)} points has a class in "
            f"`class_column` {class_column!r}; label them first",
            param="reference",
        )
    if n_unlabelled:
        warnings.warn(
            f"{n_unlabelled} of {len(frame)} reference points have no class in {class_column!r} and are "
            "left out; the estimates assume the labelled ones are still a random sample of each class",
            GeocropWarning,
            stacklevel=2,
        )
    frame = frame[~empty.to_numpy()]
    ids = _point_ids(frame)
    strata = _map_values_at(layers, frame, ids)
    truth, reference_only = _reference_values(layers, frame[class_column].tolist(), class_column)
    if reference_only:
        seen = frame[class_column].astype(str).str.strip().str.casefold().value_counts()
        warnings.warn(
            "reference classes that are not map classes are kept as omission only (columns of the error "
            "matrix, with their estimated areas): "
            + ", ".join(f"{name} ({_points(int(seen[name.casefold()]))})" for name, _ in reference_only)
            + "; if one is a misspelt map class, rename it",
            GeocropWarning,
            stacklevel=2,
        )
    counts = class_pixel_counts(layers, progress=within(progress, 0.0, 1.0, stage="assess"))
    keep = [
        (c.name, c.value) for c in layers.classes if counts[c.value] > 0 or c.value in set(truth.tolist())
    ] + reference_only
    index = {value: k for k, (_, value) in enumerate(keep)}
    matrix = np.zeros((len(keep), len(keep)), dtype=np.int64)
    np.add.at(matrix, ([index[v] for v in strata.tolist()], [index[v] for v in truth.tolist()]), 1)
    try:
        pixel_area: float | None = layers.pixel_area
    except GeocropError:
        pixel_area = None  # a geographic map: areas in pixels only
    estimates = stratified_estimates(
        matrix,
        [counts[value] if value < _REFERENCE_ONLY_BASE else 0 for _, value in keep],
        classes=[name for name, _ in keep],
        pixel_area=pixel_area,
    )
    files: tuple[Path, ...] = ()
    if folder is not None:
        folder.mkdir(exist_ok=True)
        inputs = {"map": layers.path.name, "reference": Path(reference).name, "class_column": class_column}
        files = write_report(estimates, folder, inputs=inputs, n_unlabelled=n_unlabelled)
    return Assessment(estimates, len(frame), n_unlabelled, folder, files)


def _check_out(out: str | os.PathLike[str] | None) -> Path | None:
    if out is None:
        return None
    folder = Path(out).expanduser()
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"`out` {folder} is a file; give a folder for the report", param="out")
    if not folder.parent.is_dir():
        raise OutputError(
            f"`out` {folder}: folder {folder.parent} does not exist; create it or choose another", param="out"
        )
    return folder


def _read_reference(reference: str | os.PathLike[str], class_column: str) -> Any:
    import geopandas as gpd

    path = Path(reference).expanduser()
    if not path.is_file():
        raise InputError(
            f"`reference` {path} does not exist; give the labelled points file", param="reference"
        )
    try:
        frame = gpd.read_file(path, engine="pyogrio")
    except Exception as exc:  # pyogrio/GDAL raise many types for an unreadable file
        raise SourceError(
            f"`reference` {path}: not a vector file GDAL can read ({exc}); give a GeoPackage of points",
            param="reference",
        ) from exc
    columns = [c for c in frame.columns if c != frame.geometry.name] if "geometry" in frame else []
    if class_column not in frame.columns:
        raise InputError(
            f"`reference` {path.name} has no column {class_column!r}; its columns are "
            f"{', '.join(map(str, columns)) or 'none'}: choose one with `class_column`",
            param="class_column",
        )
    if frame.crs is None:
        raise InputError(f"`reference` {path.name} has no CRS; set it (e.g. in QGIS)", param="reference")
    bad = ~frame.geometry.geom_type.isin(["Point"]) | frame.geometry.is_empty
    if bad.any():
        raise InputError(
            f"`reference` {path.name}: {int(bad.sum())} features are not points; give one point per "
            "reference sample",
            param="reference",
        )
    return frame


def _point_ids(frame: Any) -> list[str]:
    if "id" in frame.columns:
        return [str(v) for v in frame["id"].tolist()]
    return [f"row {i + 1}" for i in range(len(frame))]


def _points(n: int) -> str:
    return f"{n} point" + ("" if n == 1 else "s")


def _listed(ids: Sequence[str], limit: int = 10) -> str:
    shown = ", ".join(ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def _map_values_at(layers: MapLayers, frame: Any, ids: list[str]) -> npt.NDArray[np.int64]:
    """The map's class value under each point (points reprojected to the map CRS); errors for points
    outside the map or on pixels without a class."""
    pts = frame.geometry.to_crs(layers.crs.to_wkt())
    col_f, row_f = ~layers.transform * (pts.x.to_numpy(), pts.y.to_numpy())
    col, row = np.floor(col_f).astype(np.int64), np.floor(row_f).astype(np.int64)
    outside = (col < 0) | (row < 0) | (col >= layers.width) | (row >= layers.height)
    _refuse_points(
        ids, outside, "lie outside the map (ids {ids}); remove them or give the map they were drawn from"
    )
    values = np.full(len(ids), NODATA, dtype=np.int64)
    blocks = (row // _BLOCK) * (layers.width // _BLOCK + 1) + col // _BLOCK
    from rasterio.windows import Window

    with MapSource(layers) as src:
        for b in np.unique(blocks):
            here = blocks == b
            r0, c0 = int(row[here][0]) // _BLOCK * _BLOCK, int(col[here][0]) // _BLOCK * _BLOCK
            win = Window(c0, r0, min(_BLOCK, layers.width - c0), min(_BLOCK, layers.height - r0))
            part = src.read(win, probabilities=False)
            values[here] = part.classes[row[here] - r0, col[here] - c0]
    _refuse_points(
        ids,
        values == NODATA,
        "lie on map pixels without a class (nodata; ids {ids}); remove them: they are outside the map's "
        "data area",
    )
    return values


def _refuse_points(ids: Sequence[str], bad: npt.NDArray[np.bool_], problem: str) -> None:
    """`InputError` when any reference point is ``bad``: how many, ``problem`` with their ``{ids}``."""
    if bad.any():
        listed = _listed([i for i, b in zip(ids, bad.tolist(), strict=True) if b])
        raise InputError(
            f"`reference`: {int(bad.sum())} points {problem.format(ids=listed)}", param="reference"
        )


#: Values given to reference-only classes, above any class value a uint8 map can hold.
_REFERENCE_ONLY_BASE = 1000


def _reference_values(
    layers: MapLayers, labels: list[Any], class_column: str
) -> tuple[npt.NDArray[np.int64], list[tuple[str, int]]]:
    """Reference labels -> class values: a map class name (any case) or value; any other name (a crop the
    map cannot show, ``other``) becomes a reference-only class, returned as (name, value) pairs in name
    order. A number that is not a map value is refused: it is a wrong value, not a class."""
    by_name = {c.name.casefold(): c.value for c in layers.classes}
    by_value = {str(c.value): c.value for c in layers.classes}
    texts = []
    for label in labels:
        text = str(label).strip()
        if isinstance(label, float) and label.is_integer():
            text = str(int(label))
        texts.append(text)
    bad_values = sorted(
        {t for t in texts if t.lstrip("+-").isdigit() and t not in by_value}, key=lambda t: int(t)
    )
    if bad_values:
        values = ", ".join(f"{c.value} {c.name}" for c in layers.classes)
        raise InputError(
            f"`reference`: column {class_column!r} holds {', '.join(bad_values)}, not class values of the "
            f"map ({values}); give a map value or a class name (a name the map lacks, e.g. 'other', "
            "is kept as a reference-only class)",
            param="reference",
        )
    extra: dict[str, str] = {}  # casefolded -> first spelling seen
    for text in texts:
        if text.casefold() not in by_name and text not in by_value:
            extra.setdefault(text.casefold(), text)
    names = sorted(extra, key=lambda k: extra[k].casefold())
    extra_value = {k: _REFERENCE_ONLY_BASE + i for i, k in enumerate(names)}
    out = [by_name.get(t.casefold(), by_value.get(t, extra_value.get(t.casefold(), NODATA))) for t in texts]
    return np.asarray(out, dtype=np.int64), [(extra[k], extra_value[k]) for k in names]


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _csv(rows: list[list[Any]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def _matrix_csv(names: list[str], rows: list[list[Any]], strata: list[bool]) -> str:
    """Rows = map class (strata only: a reference-only class has no row), columns = reference class."""
    body = [[n, *r] for n, r, s in zip(names, rows, strata, strict=True) if s]
    return _csv([["map \\ reference", *names], *body])


def write_report(
    estimates: AreaEstimates, folder: Path, *, inputs: dict[str, Any], n_unlabelled: int = 0
) -> tuple[Path, ...]:
    """Write the JSON, CSV, PNG and markdown files of an assessment into ``folder`` (atomically each)."""
    data: dict[str, Any] = {"inputs": inputs, "n_points": int(estimates.counts.sum())}
    data["n_unlabelled"] = n_unlabelled
    data |= estimates.to_dict()
    names, strata = list(estimates.classes), estimates.strata.tolist()
    per_class = data["per_class"]
    fields = list(per_class[0])
    e_counts, e_props = data["error_matrix_counts"], data["error_matrix_proportions"]
    written = [
        write_text_atomic(folder / "assessment.json", json.dumps(data, indent=2) + "\n", what="`out`"),
        write_text_atomic(
            folder / "per_class.csv",
            _csv([fields, *[[r[f] for f in fields] for r in per_class]]),
            what="`out`",
        ),
        write_text_atomic(
            folder / "error_matrix_counts.csv", _matrix_csv(names, e_counts, strata), what="`out`"
        ),
        write_text_atomic(
            folder / "error_matrix_proportions.csv", _matrix_csv(names, e_props, strata), what="`out`"
        ),
        plot_areas(estimates, folder / "areas.png"),
        plot_error_matrix(estimates, folder / "error_matrix.png"),
    ]
    written.append(write_text_atomic(folder / "report.md", _markdown(data, estimates), what="`out`"))
    return tuple(written)


def area_unit(e: AreaEstimates) -> tuple[float, str, int]:
    """How to show the areas of ``e``: (factor from pixels, unit, decimals). Hectares with enough decimals
    (up to 3) that the smallest mapped class reads non-zero; m² for a map under 10 ha or a class too small
    for 3 decimals of a hectare; pixels without a pixel area."""
    mapped = e.mapped_pixels[e.mapped_pixels > 0]
    smallest = float(mapped.min()) if mapped.size else 1.0
    if e.pixel_area is None:
        return 1.0, "pixels", 0 if smallest >= 10 else 1
    digits = int(max(1, 1 - np.floor(np.log10(smallest * e.pixel_area / 1e4))))  # 2 significant
    if e.total_pixels * e.pixel_area < 1e5 or digits > 3:  # under 10 ha, or a class under 10 m²: m²
        return e.pixel_area, "m²", 0 if smallest * e.pixel_area >= 10 else 1
    return e.pixel_area / 1e4, "ha", digits


def _accuracy(value: float | None, ci: float | None, undefined: str) -> str:
    return undefined if value is None else f"{value:.3f} +- {_fmt(ci)}"


def _markdown(data: dict[str, Any], e: AreaEstimates) -> str:
    scale, unit, digits = area_unit(e)
    strata = e.strata
    lines = [
        f"# Accuracy and area of {data['inputs']['map']}",
        "",
        f"Reference: {data['inputs']['reference']} (column `{data['inputs']['class_column']}`), "
        f"{data['n_points']} labelled points"
        + (f", {data['n_unlabelled']} unlabelled points left out" if data["n_unlabelled"] else "")
        + ". Stratified estimators of Olofsson et al. (2014, Remote Sens. Environ. 148:42-57); strata are "
        "the map classes, weighted by their mapped pixels; intervals are 95 % (estimate +- 1.96 SE).",
        "",
        f"**Overall accuracy: {_fmt(data['overall_accuracy'])} +- {_fmt(data['overall_accuracy_ci95'])}**",
        "",
        f"| class | mapped ({unit}) | points (map / reference) | user's accuracy | producer's accuracy | "
        f"estimated area ({unit}) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for k, r in enumerate(data["per_class"]):
        mapped = "not mapped" if not strata[k] else f"{e.mapped_pixels[k] * scale:,.{digits}f}"
        area, ci = e.area_pixels[k] * scale, e.ci95(e.area_pixels_se[k]) * scale
        users = _accuracy(r["users_accuracy"], r["users_accuracy_ci95"], "undefined (not mapped)")
        producers = _accuracy(
            r["producers_accuracy"], r["producers_accuracy_ci95"], "undefined (not in the reference)"
        )
        lines.append(
            f"| {r['class']} | {mapped} | {r['sample_count']} / {r['reference_count']} | {users} | "
            f"{producers} | {area:,.{digits}f} +- {ci:,.{digits}f} |"
        )
    if not strata.all():
        only = ", ".join(n for n, s in zip(e.classes, strata.tolist(), strict=True) if not s)
        lines += [
            "",
            f"Reference-only classes ({only}): labelled in the reference but never mapped, so pure "
            "omission: a column of the error matrix without a row, producer's accuracy 0, and an area "
            "estimated from the points of the mapped classes labelled with them.",
        ]
    rows = [k for k in range(len(e.classes)) if strata[k]]
    header = "| map \\ reference | " + " | ".join(e.classes) + " | total |"
    rule = "|---|" + "---:|" * (len(e.classes) + 1)
    lines += ["", "## Error matrix: sample counts", "", header, rule]
    for k in rows:
        row = e.counts[k].tolist()
        lines.append(f"| {e.classes[k]} | " + " | ".join(map(str, row)) + f" | {sum(row)} |")
    lines += ["", "## Error matrix: estimated proportions of area", "", header, rule]
    for k in rows:
        row = e.proportions[k].tolist()
        lines.append(f"| {e.classes[k]} | " + " | ".join(f"{v:.4f}" for v in row) + f" | {sum(row):.4f} |")
    lines += ["", "![Mapped and estimated areas](areas.png)", "", "![Error matrix](error_matrix.png)", ""]
    lines += ["Numbers: `assessment.json`, `per_class.csv`, `error_matrix_*.csv`.", ""]
    return "\n".join(lines)


def _save(fig: Any, path: Path) -> Path:
    from geocrop.viz.plots import save_figure

    return save_figure(fig, path, what="`out`")


def plot_areas(estimates: AreaEstimates, path: str | os.PathLike[str]) -> Path:
    """Bars: each class's mapped area beside its estimated area with the 95 % interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    e = estimates
    scale, unit, _ = area_unit(e)
    k = np.arange(len(e.classes))
    fig, ax = plt.subplots(figsize=(2.2 + 1.3 * len(e.classes), 3.6))
    ax.bar(k - 0.2, e.mapped_pixels * scale, 0.4, label="mapped", color="#bdbdbd")
    ax.bar(
        k + 0.2, e.area_pixels * scale, 0.4, yerr=e.ci95(e.area_pixels_se) * scale, capsize=4,
        label="estimated (95 % CI)", color="#3182bd",
    )  # fmt: skip
    ax.set_xticks(k, labels=list(e.classes), rotation=20, ha="right")
    positive = e.mapped_pixels[e.mapped_pixels > 0]
    if positive.size and positive.max() > 10 * positive.min():  # rare classes stay visible
        ax.set_yscale("log")
        unit += ", log scale"
    ax.set_ylabel(f"area ({unit})")
    ax.set_title("Mapped and error-adjusted area")
    ax.legend(frameon=False)
    return _save(fig, Path(path))


def plot_error_matrix(estimates: AreaEstimates, path: str | os.PathLike[str]) -> Path:
    """Heatmap of the estimated area proportions p_ij (colour) with the sample counts n_ij (text)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    e = estimates
    k = len(e.classes)
    rows = np.flatnonzero(e.strata)  # a reference-only class is a column without a row
    shown = np.sqrt(e.proportions[rows])  # square root: small cells stay visible beside the big diagonal
    fig, ax = plt.subplots(figsize=(2.4 + 0.8 * k, 2.0 + 0.7 * len(rows)))
    im = ax.imshow(shown, cmap="Blues", vmin=0.0, vmax=max(float(shown.max()), 1e-9))
    ax.set_xticks(range(k), labels=list(e.classes), rotation=30, ha="right")
    ax.set_yticks(range(len(rows)), labels=[e.classes[r] for r in rows])
    for i, r in enumerate(rows.tolist()):
        for j in range(k):
            colour = "white" if shown[i, j] > 0.6 * shown.max() else "black"
            text = f"{e.proportions[r, j]:.4f}\n(n={int(e.counts[r, j])})"
            ax.text(j, i, text, ha="center", va="center", fontsize=7, color=colour)
    ax.set_xlabel("reference class")
    ax.set_ylabel("map class (stratum)")
    ax.set_title("Estimated area proportions (sample counts)")
    fig.colorbar(im, ax=ax, fraction=0.046, label="sqrt(proportion)")
    return _save(fig, Path(path))
