"""What the long commands cost, measured, and their quick variants: the end of their ``--help``.

The figures are the README's cost table (measured on the 2-core CPU of the development machine on the
France LPIS table and the Belgian cube, with the load at the time; wall time follows the load) and
`docs/pretraining.md`'s timing of temporal pretraining. A test holds every figure here equal to one in
those pages, so the help cannot drift from what was measured.
"""

from __future__ import annotations

__all__ = ["COSTS", "cost_note"]

#: Command -> (what it cost, the quick variant).
COSTS: dict[str, tuple[str, str]] = {
    "train": (
        "on the France table (422 series of 52 dekads, 2 CPU cores): --head tempcnn 22 s at load 1.4-1.6; "
        "the default --head auto 36.5 s on an idle machine (it fits three heads once each)",
        "--head tempcnn (or --head rf)",
    ),
    "evaluate": (
        "on the France table: the defaults (5 folds x 4 deep heads + RF + gradient boosting = 30 runs) about "
        "35 min on an idle machine; interrupted runs resume with the same --out",
        "--families tempcnn --baselines rf --folds 3: 4.5 min (271 s wall, 169 s CPU)",
    ),
    "pretrain": (
        "--mode temporal on the France table's 500 series: 5.5 min (333 s) for the default Transformer head "
        "under a load of 11-14; bi-modal pretraining scales with the pairs drawn and --epochs",
        "fewer --epochs, or --mode temporal --head tempcnn",
    ),
    "map": (
        "the real-area walk-through's 98 x 91 px Belgian cube: --dry-run plus the map 13 s; time grows "
        "linearly with the area (pixels x dates), and --dry-run estimates it before anything is read",
        "--dry-run first, then a small --bbox",
    ),
}


def cost_note(command: str) -> str:
    """The ``--help`` epilog of ``command``: its measured cost and quick variant."""
    cost, quick = COSTS[command]
    return f"Cost: {cost}.\n\nQuick: {quick}.\n\nMeasured figures: README.md, 'What they cost'."
