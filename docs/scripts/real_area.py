"""Rerun docs/real-area.md on the real data and check (or rewrite) every output block, table and figure.

The page's ```` ```bash ```` blocks marked ``<!-- run: NAME -->`` are run as written, in order, in an
empty folder, with ``R`` set to the real WorldCereal folder and this interpreter's ``geocrop`` first on
the PATH; their output replaces (``--write``) or is compared with (default) the block marked
``<!-- output: NAME -->``. The class table and the figures in the prose (``<!--v:NAME-->``) are
computed from the maps the commands wrote, and so are the smoothing figures of
docs/fields-and-smoothing.md. `page_check` says what may differ (its tolerance).

    .venv/bin/python docs/scripts/real_area.py            # check: exit 1 listing each disagreement
    .venv/bin/python docs/scripts/real_area.py --write    # rewrite both pages and redraw the figures

``make docs`` runs ``--write``; ``tests/test_docs_real_area.py`` (slow suite) runs the check (5.1 min at
load 1.2-3.7 on the 2-core CPU, 2026-12-07 20:09 UTC: both pages agreed with the rerun). Torch gets
two threads (``OMP_NUM_THREADS=2``, this page's 2-core machine) so that a machine with more cores sums
in the same order. ``--write`` also redraws docs/img/real_area_belgium.png (here), real_area_profiles.png
(the ``inspect`` block's NDVI panels), real_area_qgis.png (``real_area_qgis.py``, the system Python's
PyQGIS), real_area_page.png (the page's Chromium command) and smoothing_belgium.png
(``docs/img/make_smoothing_figures.py``). ``--keep DIR --only NAME`` reruns one block in a folder an
earlier ``--keep DIR`` run filled (the other blocks' outputs are those it saved there, else the page's).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PAGE = REPO / "docs" / "real-area.md"
SMOOTHING_PAGE = REPO / "docs" / "fields-and-smoothing.md"
IMG = REPO / "docs" / "img"
#: Runs that draw a docs figure: only ``--write`` runs them.
FIGURE_RUNS = frozenset({"page"})


def _module(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


page_check = _module(HERE / "page_check.py", "page_check")


def find_realdata() -> Path:
    """The WorldCereal folder: ``$GEOCROP_REALDATA/worldcereal`` or ``shared/realdata/worldcereal`` above."""
    if os.environ.get("GEOCROP_REALDATA"):
        return Path(os.environ["GEOCROP_REALDATA"]) / "worldcereal"
    for parent in REPO.parents:
        if (parent / "shared" / "realdata" / "worldcereal").is_dir():
            return parent / "shared" / "realdata" / "worldcereal"
    raise SystemExit("shared/realdata/worldcereal not found; set GEOCROP_REALDATA to the realdata folder")


def normalise(output: str, realdata: Path, work: Path) -> str:
    """Command output as the page shows it: ``$R`` for the data folder, the epoch lines as first ... last."""
    text = output.replace(str(realdata), "$R").replace(f"{work}/", "")
    lines: list[str] = []
    epochs = 0  # length of the current run of epoch lines: shown as its first, "..." and its last
    for line in (line.rstrip() for line in text.splitlines()):
        epochs = epochs + 1 if re.match(r"epoch \d+/\d+: ", line) else 0
        if epochs == 2:
            lines.append("...")
        if epochs > 2:
            lines[-1] = line
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"


def run_blocks(
    runs: dict[str, str], *, realdata: Path, work: Path, figures: bool, only: frozenset[str] | None = None
) -> tuple[dict, dict]:
    """Run the page's command blocks in order (``only``: just those, in a folder an earlier run filled);
    (normalised outputs, wall seconds) by block name."""
    env = {**os.environ, "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2", "PYTHONUNBUFFERED": "1"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("COLUMNS", None)
    assignments = [f"R={realdata}"]
    outputs, seconds = {}, {}
    for name, commands in runs.items():
        skip = (name in FIGURE_RUNS and not figures) or (only is not None and name not in only)
        assignments += [line for line in commands.splitlines() if re.match(r"^[A-Z]\w*=\S+$", line)]
        if skip:
            continue
        script = "\n".join(["set -eo pipefail", *assignments, commands])
        began = time.perf_counter()
        done = subprocess.run(
            ["bash", "-c", script],
            cwd=work,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        seconds[name] = time.perf_counter() - began
        if done.returncode != 0:
            raise SystemExit(f"block {name!r} failed ({done.returncode}):\n{done.stdout}")
        outputs[name] = normalise(done.stdout, realdata, work)
        saved = work / "page_outputs"  # what --only reuses for the blocks it does not rerun
        saved.mkdir(exist_ok=True)
        (saved / f"{name}.txt").write_text(outputs[name], encoding="utf-8")
        (saved / f"{name}.seconds").write_text(f"{seconds[name]:.1f}", encoding="utf-8")
        print(f"{name}: {seconds[name]:.1f} s", file=sys.stderr)
    return outputs, seconds


def read_map(path: Path) -> tuple[list, np.ndarray, np.ndarray, np.ndarray]:
    """(classes, class band, confidence %, uncertainty %) of a map `geocrop map` wrote."""
    from geocrop.io.map_reader import open_map, read_window

    layers = open_map(path)
    window = read_window(layers, next(layers.blocks(max(layers.width, layers.height))), probabilities=False)
    assert window.confidence is not None and window.uncertainty is not None
    return list(layers.classes), window.classes, window.confidence, window.uncertainty


def _pct(value: float, digits: int = 1) -> str:
    return f"{100 * value:.{digits}f} %"


def map_figures(work: Path) -> tuple[str, dict[str, str]]:
    """The class table of runs/belgium.tif and the figures the prose quotes about it and its variants."""
    classes, cls, conf, unc = read_map(work / "runs" / "belgium.tif")
    mapped = cls != 255
    n = int(mapped.sum())
    rows = ["| class | pixels | share | mean confidence | mean uncertainty |", "|---|---:|---:|---:|---:|"]
    counted = sorted(((int((cls == c.value).sum()), c) for c in classes), key=lambda x: -x[0])
    values = {"mapped": f"{n:,}", "grid_pixels": f"{cls.size:,}", "unmapped": f"{cls.size - n:,}"}
    for count, c in counted:
        if count:
            sel = cls == c.value
            mean_conf, mean_unc = f"{conf[sel].mean():.0f} %", f"{unc[sel].mean():.0f} %"
            rows.append(f"| {c.name} | {count:,} | {_pct(count / n)} | {mean_conf} | {mean_unc} |")
            values[f"share_{c.name}"] = _pct(count / n)
            values[f"confidence_{c.name}"] = f"{conf[sel].mean():.0f} %"
    c_all = conf[mapped].astype(float)
    rows.append(
        f"| **all** | {n:,} | | **{c_all.mean():.1f} %** (median {np.median(c_all):.0f} %) | "
        f"{unc[mapped].mean():.0f} % |"
    )
    values["confidence"] = f"{c_all.mean():.1f} %"
    values["confident_90"] = _pct(float((c_all >= 90).mean()), 0)
    values["unsure_50"] = _pct(float((c_all < 50).mean()))
    for variant in ("belgium12", "belgium_rf"):
        _, other, _, _ = read_map(work / "runs" / f"{variant}.tif")
        both = mapped & (other != 255)
        values[f"agree_{variant}"] = _pct(float((other[both] == cls[both]).mean()))
        if variant == "belgium_rf":
            for _count, c in counted[:2]:
                share = float((other[other != 255] == c.value).mean())
                values[f"rf_share_{c.name}"] = _pct(share)
    return "\n".join(rows) + "\n", values


def train_figures(work: Path) -> dict[str, str]:
    """OA, macro-F1, kappa and kept epoch of every bundle the page trained, from the bundles themselves."""
    from geocrop.io.bundle import load_bundle

    values = {}
    for bundle in sorted((work / "runs").glob("*.safetensors")):
        training = load_bundle(bundle).metadata.get("training", {})
        scores = training.get("val_scores") or {}
        prefix = "" if bundle.stem == "france" else f"{bundle.stem}_"
        for key, name in (("oa", "oa"), ("macro_f1", "f1"), ("kappa", "kappa")):
            if scores.get(key) is not None:
                values[f"{prefix}{name}"] = f"{scores[key]:.3f}"
        if training.get("best_epoch"):
            values[f"{prefix}epoch"] = str(training["best_epoch"])
    return values


def smoothing_figures(work: Path, *, draw: bool) -> dict[str, str]:
    """The changed-pixel shares of docs/fields-and-smoothing.md's three smoothings of runs/belgium.tif."""
    from geocrop.post.smooth import smooth_map

    figures = _module(IMG / "make_smoothing_figures.py", "make_smoothing_figures")
    source = work / "runs" / "belgium.tif"
    (work / "smooth").mkdir(exist_ok=True)
    values = {}
    for name, options, _title in figures.RUNS:
        result = smooth_map(map=source, out=work / "smooth" / f"{name}.tif", **options)
        values[f"smooth_{name}"] = _pct(result.changed_pixels / result.clear_pixels)
        values["smooth_clear"] = f"{result.clear_pixels:,}"
    if draw:
        figures.main(source)
    return values


def draw_map_figure(work: Path) -> None:
    """docs/img/real_area_belgium.png: the class COG in its own colours, confidence and uncertainty."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    classes, cls, conf, unc = read_map(work / "runs" / "belgium.tif")
    colours = np.zeros((256, 4))
    for c in classes:
        colours[c.value] = (*(int(c.color[i : i + 2], 16) / 255 for i in (1, 3, 5)), 1.0)
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.6))
    axes[0].imshow(np.ma.masked_equal(cls, 255), cmap=ListedColormap(colours), vmin=0, vmax=255,
                   interpolation="nearest")  # fmt: skip
    axes[0].set_title("classes (belgium.tif)")
    for ax, band, title in ((axes[1], conf, "confidence %"), (axes[2], unc, "uncertainty %")):
        image = ax.imshow(np.ma.masked_where(cls == 255, band), cmap="viridis", vmin=0, vmax=100)
        ax.set_title(f"{title} (belgium_confidence.tif)")
        fig.colorbar(image, ax=ax, fraction=0.046)
    for ax in axes:
        ax.set_axis_off()
    present = set(np.unique(cls).tolist())
    handles = [Patch(color=colours[c.value], label=c.name) for c in classes if c.value in present]
    fig.legend(handles=handles, loc="lower center", ncol=5, fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.savefig(IMG / "real_area_belgium.png", dpi=100)
    plt.close(fig)


def draw_qgis_figure(work: Path) -> None:
    """docs/img/real_area_qgis.png, drawn by QGIS itself (system Python with PyQGIS, offscreen)."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    subprocess.run(
        ["/usr/bin/python3", str(HERE / "real_area_qgis.py"), str(work / "runs" / "belgium.tif"),
         str(IMG / "real_area_qgis.png")],
        check=True, env=env,
    )  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="rewrite the pages and redraw the figures")
    parser.add_argument("--keep", type=Path, default=None, help="run in this folder and keep its files")
    parser.add_argument(
        "--only",
        action="append",
        default=None,
        help="run just this block (repeat); with --keep, the other blocks' files are an earlier run's",
    )
    args = parser.parse_args()
    if args.only and args.keep is None:
        parser.error("--only needs --keep FOLDER holding an earlier run's files")
    realdata = find_realdata()
    page, smoothing_page = PAGE.read_text(encoding="utf-8"), SMOOTHING_PAGE.read_text(encoding="utf-8")
    shown = page_check.parts(page)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        (work / "docs" / "img").mkdir(parents=True, exist_ok=True)
        load = os.getloadavg()[0]
        only = frozenset(args.only) if args.only else None
        outputs, seconds = run_blocks(shown.runs, realdata=realdata, work=work, figures=args.write, only=only)
        if only is not None:  # the other blocks: as an earlier run in this folder saved them, else the page's
            saved = {p.stem: p.read_text(encoding="utf-8") for p in (work / "page_outputs").glob("*.txt")}
            outputs = {**shown.outputs, **saved, **outputs}
            took = {p.stem: float(p.read_text()) for p in (work / "page_outputs").glob("*.seconds")}
            seconds = {**took, **seconds}
        table, values = map_figures(work)
        values |= train_figures(work)
        values |= smoothing_figures(work, draw=args.write)
        values |= {f"t_{name}": f"{s:.0f} s" for name, s in seconds.items()}
        values["t_load"] = f"{max(load, os.getloadavg()[0]):.1f}"
        run = page_check.Parts(shown.runs, outputs, {"classes": table}, values)
        smoothing_run = page_check.Parts({}, {}, {}, values)
        if args.write:
            draw_map_figure(work)
            draw_qgis_figure(work)
            for made, target in (
                (work / "docs" / "img" / "real_area_page.png", "real_area_page.png"),
                (work / "runs" / "look" / "profiles_ndvi.png", "real_area_profiles.png"),
            ):
                if made.exists():
                    shutil.copy(made, IMG / target)
            PAGE.write_text(page_check.rewrite(page, run), encoding="utf-8")
            SMOOTHING_PAGE.write_text(page_check.rewrite(smoothing_page, smoothing_run), encoding="utf-8")
            return 0
    problems = [f"{PAGE.name}: {p}" for p in page_check.check(page, run)]
    smoothing_shown = page_check.parts(smoothing_page)
    smoothing_run = page_check.Parts(
        {}, {}, {}, {k: values[k] for k in smoothing_shown.values if k in values}
    )
    problems += [f"{SMOOTHING_PAGE.name}: {p}" for p in page_check.check(smoothing_page, smoothing_run)]
    print("\n".join(problems) or "both pages agree with the run", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
