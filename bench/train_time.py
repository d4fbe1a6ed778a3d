"""Wall time of `geocrop train` at default settings, per head, on a real samples table.

Runs the documented command once per head (a fresh process each, as a user would) on the France LPIS
WorldCereal extraction from ``shared/realdata`` (or ``--labels``), and prints seconds, the ratio to the
RandomForest's time measured in the same run, the epoch kept and the validation macro-F1 the command
printed. The target of the real-data issue is under a minute per head on the 2-core development CPU;
the ratio is the figure to compare across machines.

    python bench/train_time.py [--labels TABLE --class-column C --class-map MAP] [--heads rf,gbm,...]

Not a test: run it by hand and copy the table into docs/evaluation/README.md.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HEADS = ("rf", "gbm", "lstm", "inception", "transformer", "tempcnn")


def find_realdata() -> Path | None:
    """``shared/realdata`` beside or above this checkout, or ``$GEOCROP_REALDATA``."""
    if os.environ.get("GEOCROP_REALDATA"):
        return Path(os.environ["GEOCROP_REALDATA"])
    here = Path(__file__).resolve()
    return next(
        (p / "shared" / "realdata" for p in here.parents if (p / "shared" / "realdata").is_dir()), None
    )


def france_series(root: Path) -> Any:
    """The France LPIS table's `LabelledSeries` as `geocrop train` reads it (CROPTYPE28 classes, unmapped
    codes dropped), its known warnings silenced."""
    import warnings

    from geocrop.data.labelled import LabelSource, load_labelled

    folder = root / "worldcereal"
    source = LabelSource(
        folder / "extractions_2023_FRA_LPIS_dekad.geoparquet",
        "ewoc_code",
        class_map=f"{folder / 'class_mappings.json'}:CROPTYPE28",
        drop_unmapped=True,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unmapped codes, filled bands: known for this table
        return load_labelled(source)


def _defaults() -> tuple[str, str, str]:
    root = find_realdata()
    if root is None:
        sys.exit("shared/realdata not found; give --labels, --class-column and --class-map")
    folder = root / "worldcereal"
    table = folder / "extractions_2023_FRA_LPIS_dekad.geoparquet"
    return str(table), "ewoc_code", f"{folder / 'class_mappings.json'}:CROPTYPE28"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels")
    parser.add_argument("--class-column", default="ewoc_code")
    parser.add_argument("--class-map")
    parser.add_argument("--heads", default=",".join(HEADS))
    args = parser.parse_args()
    labels, column, class_map = (
        _defaults() if args.labels is None else (args.labels, args.class_column, args.class_map)
    )
    geocrop = str(Path(sys.executable).with_name("geocrop"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for head in args.heads.split(","):
            cmd = [geocrop, "train", "--labels", labels, "--class-column", column, "--head", head]
            cmd += ["--out", f"{tmp}/{head}.safetensors", "--progress", "none"]
            if class_map:
                cmd += ["--class-map", class_map, "--drop-unmapped"]
            t0 = time.perf_counter()
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            seconds = time.perf_counter() - t0
            if done.returncode != 0:
                sys.exit(f"{head}: {done.stderr.strip()}")
            summary = next((line for line in done.stdout.splitlines() if line.startswith("wrote ")), "")
            f1 = re.search(r"macro-F1 ([0-9.]+)", summary)
            kept = re.search(r"epoch (\d+) kept", summary)
            rows.append((head, seconds, kept.group(1) if kept else "-", f1.group(1) if f1 else "?"))
    rf = next((s for h, s, _, _ in rows if h == "rf"), None)
    print(f"`geocrop train` at defaults on {Path(labels).name}")
    print("| head | seconds | x RandomForest | epoch kept | validation macro-F1 |")
    print("|---|---|---|---|---|")
    for head, seconds, kept, f1 in rows:
        ratio = f"{seconds / rf:.1f}" if rf else "-"
        print(f"| {head} | {seconds:.1f} | {ratio} | {kept} | {f1} |")


if __name__ == "__main__":
    main()
