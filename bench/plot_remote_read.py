"""Draw where `geocrop map`'s time goes per stage and per latency, from ``bench/remote_read.py --json``.

``python bench/plot_remote_read.py RESULTS.json [--out docs/img/remote_read.png]``: left, one stacked bar
per model and latency, for the reruns from the disk cache and for the maps of the code before
(``--before``; the wall time split between search, read,
regrid, engine, write and the rest, as the map reports it: read time hidden behind the engine is not in the
read segment); right, pixels per second of the map beside the read alone and the engine alone, per latency.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

STAGES = ("search", "read", "regrid", "engine", "write", "other")
COLOURS = ("#8da0cb", "#fc8d62", "#ffd92f", "#66c2a5", "#a6d854", "#cccccc")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", type=Path)
    p.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs/img/remote_read.png"
    )
    opts = p.parse_args()
    data = json.loads(opts.results.read_text())
    rows = [r for r in data["rows"] if r["version"] == "after" and r["stages"]]
    reruns = [r for r in data["rows"] if r["version"] == "rerun" and r["stages"]]
    before = [r for r in data["rows"] if r["version"] == "before" and r["stages"]]
    order = {"before": 0, "after": 1, "rerun": 2}
    models = sorted({r["model"] for r in rows}, key=lambda m: m != "head")
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [1.4, 1]})
    labels, ticks, y = [], [], 0.0
    for model in models:
        mine = [r for r in rows + reruns + before if r["model"] == model]
        for r in sorted(mine, key=lambda r: (r["latency"], order[r["version"]])):
            split = {**r["stages"]["stage_seconds"], "other": r["stages"]["other_seconds"]}
            x = 0.0
            for stage, colour in zip(STAGES, COLOURS, strict=True):
                left.barh(y, split[stage], left=x, color=colour, label=stage if y == 0 else None)
                x += split[stage]
            left.plot([r["read_alone_s"]], [y], "k|", markersize=14, label="read alone" if y == 0 else None)
            what = {"rerun": ", rerun (disk cache)", "before": ", code before"}.get(r["version"], "")
            labels.append(f"{model}, {r['latency']} ms{what}")
            ticks.append(y)
            y += 1
        y += 0.5
    left.set_yticks(ticks, labels)
    left.invert_yaxis()
    left.set_xlabel("seconds of the map's wall time")
    left.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=7, fontsize=8, frameon=False)
    left.set_title("where the time goes (read: waiting for data only)")
    for model, marker in zip(models, ("o", "s"), strict=False):
        mine = sorted((r for r in rows if r["model"] == model), key=lambda r: r["latency"])
        lat = [r["latency"] for r in mine]
        right.plot(lat, [r["pixels"] / r["wall_s"] for r in mine], marker + "-", label=f"map, {model}")
        right.plot(
            lat,
            [r["pixels"] / r["engine_alone_s"] for r in mine],
            marker + ":",
            label=f"engine alone, {model}",
        )
    extra = (
        (before, "x", "tab:brown", "map, code before"),
        (reruns, "D", "tab:purple", "rerun (disk cache)"),
    )
    for points, marker, colour, label in extra:
        if points:
            rates = [r["pixels"] / r["wall_s"] for r in points]
            right.plot([r["latency"] for r in points], rates, marker, color=colour, label=f"{label}, head")
    head = sorted((r for r in rows if r["model"] == models[0]), key=lambda r: r["latency"])
    right.plot(
        [r["latency"] for r in head],
        [r["pixels"] / r["read_alone_s"] for r in head],
        "k--",
        label="read alone",
    )
    right.set_xlabel("latency per request (ms)")
    right.set_ylabel("pixels per second")
    right.set_yscale("log")
    right.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.4, -0.16), ncol=2, frameon=False)
    right.set_title("map vs. its read and its engine")
    meta = data["meta"]
    fig.suptitle(
        f"bench/remote_read.py, {meta['started']}, load average {meta['load_start'][0]:.1f} at start, "
        f"{meta.get('load_end', [float('nan')])[0]:.1f} at end (shared 2-core machine; simulated imagery)",
        fontsize=9,
    )
    fig.tight_layout()
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(opts.out, dpi=110)
    print(opts.out)


if __name__ == "__main__":
    main()
