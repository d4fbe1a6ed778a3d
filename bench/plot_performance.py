"""Draw docs/img/engine_peak.png from the ranges recorded in docs/performance.md (measured 2026-11-25).

The numbers are copied from the bench runs listed there (ranges over runs, fraction of the matmul
peak); rerun `bench/map_throughput.py --engine-only` to measure again, then update both.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

#: (label, before low/high, after low/high), % of matmul peak.
RANGES = [
    ("Bi-LSTM", (53, 64), (60, 82)),
    ("InceptionTime", (30, 43), (61, 87)),
    ("Transformer", (41, 64), (57, 69)),
    ("backbone alone", (50, 91), (78, 89)),
]


def main() -> None:
    fig, ax = plt.subplots(figsize=(7, 3.2), dpi=120)
    for i, (_, before, after) in enumerate(RANGES):
        for offset, (low, high), colour, name in (
            (-0.18, before, "#bbbbbb", "stop 6 (4 runs)"),
            (0.18, after, "#2c7fb8", "now (6 runs)"),
        ):
            legend = name if i == 0 else None
            ax.bar(i + offset, high - low, bottom=low, width=0.32, color=colour, label=legend)
    ax.axhline(60, color="#d95f0e", linestyle="--", linewidth=1)
    ax.text(len(RANGES) - 0.5, 61, "target 60 %", color="#d95f0e", ha="right", va="bottom", fontsize=8)
    ax.set_xticks(range(len(RANGES)), [r[0] for r in RANGES])
    ax.set_ylabel("% of fp32 matmul peak")
    ax.set_ylim(0, 100)
    title = "Mapping engine on a 2-core CPU: range over runs (ResMLP-8x256 + head, 144 steps)"
    ax.set_title(title, fontsize=9)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    out = Path(__file__).resolve().parent.parent / "docs" / "img" / "engine_peak.png"
    fig.savefig(out)
    print(out)


if __name__ == "__main__":
    main()
