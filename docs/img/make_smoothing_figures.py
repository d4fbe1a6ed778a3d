"""Draw docs/img/smoothing_belgium.png: a real map before and after `geocrop smooth`.

The map is docs/real-area.md's: the France LPIS TempCNN bundle applied to the Belgian WorldCereal NetCDF cube
with ``--probabilities`` (``runs/belgium.tif``, 98 x 91 px at 10 m; rerun that page's section 3 to make it).
Run from the repository root: ``.venv/bin/python docs/img/make_smoothing_figures.py [runs/belgium.tif]``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch

from geocrop.io.map_reader import open_map, read_window
from geocrop.post.smooth import smooth_map

HERE = Path(__file__).resolve().parent
RUNS = [
    ("bayes", {"method": "bayes", "window": 7, "smoothness": 10.0}, "Bayesian, window 7, smoothness 10"),
    ("bayes50", {"method": "bayes", "window": 7, "smoothness": 50.0}, "Bayesian, window 7, smoothness 50"),
    ("modal", {"method": "modal", "window": 5, "sieve": 10}, "modal, window 5, sieve 10 px"),
]


def classes_of(path: Path) -> np.ndarray:
    layers = open_map(path)
    window = next(layers.blocks(max(layers.width, layers.height)))
    return read_window(layers, window, probabilities=False).classes


def main(source: Path) -> None:
    layers = open_map(source)
    colours = np.zeros((256, 4))
    for c in layers.classes:
        colours[c.value] = (*(v / 255 for v in c.rgb), 1.0)
    cmap = ListedColormap(colours)
    panels = [("unsmoothed map", classes_of(source))]
    with tempfile.TemporaryDirectory() as tmp:
        for name, options, title in RUNS:
            result = smooth_map(map=source, out=Path(tmp) / f"{name}.tif", **options)  # type: ignore[arg-type]
            share = result.changed_pixels / result.clear_pixels
            print(f"{title}: {result.changed_pixels} of {result.clear_pixels} pixels changed ({share:.1%})")
            panels.append((f"{title}\n{share:.1%} of pixels changed class", classes_of(result.cog)))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.6))
    for ax, (title, cls) in zip(axes, panels, strict=True):
        ax.imshow(np.ma.masked_equal(cls, 255), cmap=cmap, vmin=0, vmax=255, interpolation="nearest")
        ax.set_title(title, fontsize=10)
        ax.set_axis_off()
    present = set(np.unique(panels[0][1]).tolist())
    handles = [Patch(color=colours[c.value], label=c.name) for c in layers.classes if c.value in present]
    fig.legend(handles=handles, loc="lower center", ncol=min(6, len(handles)), fontsize=9, frameon=False)
    fig.suptitle(f"{source.name}: France LPIS TempCNN on the Belgian WorldCereal cube (10 m)", fontsize=11)
    fig.tight_layout(rect=(0, 0.07, 1, 0.95))
    out = HERE / "smoothing_belgium.png"
    fig.savefig(out, dpi=110)
    print(out)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("runs/belgium.tif"))
