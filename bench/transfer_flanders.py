"""Transfer from France to Flanders: does pretraining on the area to be mapped narrow the gap?

Trains heads on the French LPIS labels (`geocrop train` defaults: a 70-30 split by parcel) and scores
them on the Flanders LPIS samples of the classes France has, beside the same heads' scores on the French
held-out parcels of those classes. Inputs compared: raw bands, an encoder pretrained without labels on
the French table (SCARF, corruption 0.2) and one pretrained on the Belgian cube, the mapped area's own
unlabelled pixels (`worldcereal_preprocessed_inputs.nc`, 100 x 100 px, 12 monthly composites), with
a RandomForest and gradient boosting on raw bands beside them. The Flanders table (2021, monthly) is put
on the bundle's grid shifted by two years (`geocrop predict --start/--end`).

    python bench/transfer_flanders.py --out runs/transfer [--france-encoder runs/scarf20/encoder.safetensors]
        [--epochs 20 --pixels-per-date 2000]

Few samples: Flanders holds 49 samples of classes France has (no_temporary_crop 34, maize 12, wheat 2,
barley 1); upstream calls the file a format fixture. Read the table as an indication, not a benchmark.
Not a test: run it by hand and copy the table into docs/evaluation/.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_time import find_realdata

#: Flanders' 2021 season on the French bundle's grid (2022-09-01 .. 2024-01-21), two years earlier.
SEASON = ("2020-09-01", "2022-01-21")


def macro_f1(y: np.ndarray, p: np.ndarray, classes: list[str]) -> float:
    """Mean F1 over the reference classes present (a prediction of any other class is an error)."""
    f1 = []
    for c in classes:
        tp = np.sum((y == c) & (p == c))
        denom = np.sum(y == c) + np.sum(p == c)
        f1.append(2 * tp / denom if denom else 0.0)
    return float(np.mean(f1))


def score(frame: pd.DataFrame, names: dict[str, str], shared: list[str]) -> tuple[float, float, int]:
    y = frame["ewoc_code"].astype(str).map(names)
    keep = y.isin(shared)
    y, p = y[keep].to_numpy(), frame.loc[keep, "predicted"].astype(str).to_numpy()
    present = sorted(set(y))
    return macro_f1(y, p, present), float(np.mean(y == p)), int(keep.sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--france-encoder", type=Path, help="a SCARF encoder pretrained on the French table")
    parser.add_argument("--epochs", type=int, default=20, help="cube pretraining epochs")
    parser.add_argument("--pixels-per-date", type=int, default=2000, help="cube pixels drawn per month")
    args = parser.parse_args()
    import torch

    import geocrop
    from geocrop.io.bundle import read_bundle_metadata
    from geocrop.training.labelled_options import LabelledOptions
    from geocrop.training.train import prepare_data

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    root = find_realdata()
    if root is None:
        sys.exit("shared/realdata not found (set GEOCROP_REALDATA)")
    wc = root / "worldcereal"
    france, flanders = (
        wc / "extractions_2023_FRA_LPIS_dekad.geoparquet",
        wc / "extractions_2021_BEL_LPIS-Flanders_monthly.parquet",
    )
    names = json.loads((wc / "class_mappings.json").read_text())["CROPTYPE28"]
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    cube_encoder = out / "cube_scarf20" / "encoder.safetensors"
    if not cube_encoder.exists():
        geocrop.pretrain(
            out=out / "cube_scarf20", s2=wc / "worldcereal_preprocessed_inputs.nc", mode="unimodal",
            corruption_rate=0.2, epochs=args.epochs, batch_size=512, device="cpu",
            pixels_per_date=args.pixels_per_date,
        )  # fmt: skip
    runs: dict[str, tuple[str, Path | None]] = {
        "rf": ("rf", None),
        "gbm": ("gbm", None),
        "tempcnn": ("tempcnn", None),
        "tempcnn (SCARF, Belgian cube)": ("tempcnn", cube_encoder),
    }
    if args.france_encoder is not None:
        runs["tempcnn (SCARF, French table)"] = ("tempcnn", args.france_encoder)
    # the held-out parcels of `geocrop train`'s 70-30 split (seed 0), as train_model draws them
    source = LabelledOptions(
        labels=france, class_column="ewoc_code", class_map=f"{wc / 'class_mappings.json'}:CROPTYPE28",
        drop_unmapped=True,
    ).source()  # fmt: skip
    series, _, val_idx = prepare_data(source, scheme="70-30", n_train=5000, n_val=1000, seed=0)
    val_ids = {str(g) for g in series.groups[val_idx]}  # one sample per parcel on this table
    rows = []
    for label, (head, backbone) in runs.items():
        slug = "".join(c if c.isalnum() else "_" for c in label)
        bundle = out / f"{slug}.safetensors"
        if not bundle.exists():
            geocrop.train(
                labels=france, class_column="ewoc_code", class_map=f"{wc / 'class_mappings.json'}:CROPTYPE28",
                drop_unmapped=True, head=head, backbone=backbone, out=bundle, device="cpu",
            )  # fmt: skip
        trained_on = [c["name"] for c in read_bundle_metadata(bundle)["classes"]]
        home = out / f"{slug}_france.csv"
        away = out / f"{slug}_flanders.csv"
        geocrop.predict(model=bundle, samples=france, out=home, class_column="ewoc_code", device="cpu")
        geocrop.predict(
            model=bundle, samples=flanders, out=away, class_column="ewoc_code", start=SEASON[0],
            end=SEASON[1], device="cpu",
        )  # fmt: skip
        held = pd.read_csv(home)
        held = held[held["sample_id"].astype(str).isin(val_ids)]
        flemish = pd.read_csv(away)
        # the classes both sides have: scored on the same classes at home and away
        shared = sorted(set(flemish["ewoc_code"].astype(str).map(names)) & set(trained_on))
        f_home, oa_home, n_home = score(held, names, shared)
        f_away, oa_away, n_away = score(flemish, names, shared)
        rows.append((label, f_home, oa_home, n_home, f_away, oa_away, n_away))
    print(f"classes scored (both sides): {', '.join(shared)}")
    print("| method | France held-out macro-F1 | OA | n | Flanders macro-F1 | OA | n | macro-F1 drop |")
    print("|---|---|---|---|---|---|---|---|")
    for label, f_home, oa_home, n_home, f_away, oa_away, n_away in rows:
        print(
            f"| {label} | {f_home:.3f} | {oa_home:.3f} | {n_home} | {f_away:.3f} | {oa_away:.3f} | {n_away} "
            f"| {f_home - f_away:+.3f} |"
        )


if __name__ == "__main__":
    main()
