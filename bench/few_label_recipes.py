"""Fine-tuning recipes for pretrained temporal heads on the France LPIS table, few labels per class.

`geocrop evaluate` fine-tunes a pretrained head (``--temporal``) with geocrop's plain training settings.
This script runs the same label-scarce protocol (5 grouped folds x seeded draws, the same draws as the
report in ``docs/evaluation/france-few-labels/``) with settings the command does not expose, into the
same folder, so that its runs pair with the raw-band runs already there:

- ``--body-lr F``: the pretrained body learns at F times the classifier's rate
  (`geocrop.training.fit.TrainConfig.body_lr`); the runs' keys and report names carry it
  (``tempcnn (temporal, body lr 0.1)``).
- ``--resample-dates``, ``--date-dropout P``: the series augmentations of temporal pretraining on every
  labelled training batch (`TrainConfig.resample_dates`, ``date_dropout``), for the raw-band head and
  each pretrained one (``tempcnn (resampled dates)``, ``tempcnn (temporal 3, resampled dates)``).
- ``--epochs N``: a fixed schedule of N epochs, the last kept, with no inner split (every drawn parcel
  trains, none picks the epoch); a setting of the folder's fingerprint, so it runs into another ``--out``
  (the draws are the same: they follow the seed, fold and count only).
- ``--epoch-choice cv``: the epoch count chosen by 3-fold cross-validation on the drawn parcels, then
  a refit on all of them (`geocrop.training.cv_epochs`; ``tempcnn (epochs by cv)``).
- ``--frozen-classifier logistic|mlp`` (with ``--frozen``): the frozen body's classifier fitted as a
  logistic regression, its L2 strength and temperature cross-validated on the drawn parcels (geocrop's
  default, `geocrop.training.frozen_logistic`; ``tempcnn (temporal 3, frozen, logistic)``), or the MLP
  trained by epochs (``tempcnn (temporal 3, frozen, MLP 256)``).
- ``--baselines gbm,rf``: the tree baselines on raw bands too (a fresh ``--out`` has none to pair with).
- ``--probe S``: linear probe, then fine-tuning: the first S of the planned epochs train the classifier
  layer alone on the pretrained body (`TrainConfig.probe`; ``tempcnn (temporal 3, probe 0.1)``).

    python bench/few_label_recipes.py --body-lr 0.1 --labels-per-class 5,10 \\
        --temporal runs/temporal/tempcnn/head.safetensors
    python bench/few_label_recipes.py --resample-dates --labels-per-class 10 \\
        --temporal runs/temporal/tempcnn-resample/head.safetensors

Prints one line per finished run; rebuild the report afterwards with the README's ``--report-only``
command (this script's runs are in the journal with the others).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from geocrop.data.labelled import LabelSource
from geocrop.training.evaluate import EvaluateJob, evaluate
from geocrop.training.fit import TrainConfig

TABLE = Path("../shared/realdata/worldcereal/extractions_2023_FRA_LPIS_dekad.geoparquet")
CLASS_MAP = "../shared/realdata/worldcereal/class_mappings.json:CROPTYPE28"


def _counts(text: str) -> tuple[int | None, ...]:
    return tuple(None if c == "all" else int(c) for c in text.split(","))


def _say(event: object) -> None:
    """Print the evaluation's log lines (a progress event's message, or a plain line), not its epochs."""
    if getattr(event, "log", True):
        print(getattr(event, "message", event), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--temporal", type=Path, action="append", required=True, help="pretrained head (repeat)")
    ap.add_argument("--body-lr", type=float, default=1.0, help="the body's share of the learning rate")
    ap.add_argument("--resample-dates", action="store_true", help="resample the labelled series' dates")
    ap.add_argument("--date-dropout", type=float, default=0.0, help="blank this share of their dates")
    ap.add_argument(
        "--probe", type=float, default=0.0, help="share of the epochs that train the classifier alone"
    )
    ap.add_argument(
        "--epochs", type=int, default=None, help="a fixed schedule: no inner split, every drawn parcel trains"
    )
    ap.add_argument(
        "--epoch-choice", default="inner", choices=("inner", "cv", "auto"), help="how the epoch is picked"
    )
    ap.add_argument("--frozen", action="store_true", help="the pretrained heads with their body frozen")
    ap.add_argument(
        "--frozen-classifier", default="logistic", choices=("logistic", "mlp"), help="the frozen classifier"
    )
    ap.add_argument("--labels-per-class", type=_counts, default=(5, 10))
    ap.add_argument("--draws", type=int, default=3)
    ap.add_argument("--family", default="tempcnn")
    ap.add_argument("--baselines", default="", help="tree baselines trained beside, e.g. gbm,rf")
    ap.add_argument("--table", type=Path, default=TABLE)
    ap.add_argument("--out", type=Path, default=Path("docs/evaluation/france-few-labels"))
    args = ap.parse_args()
    job = EvaluateJob(
        source=LabelSource(
            path=args.table, class_column="ewoc_code", class_map=CLASS_MAP, drop_unmapped=True
        ),
        out=args.out,
        families=(args.family,),
        baselines=tuple(b for b in args.baselines.split(",") if b),
        folds=5,
        config=TrainConfig(
            body_lr=args.body_lr,
            probe=args.probe,
            resample_dates=args.resample_dates,
            date_dropout=args.date_dropout,
            epochs=args.epochs,
            epoch_choice=args.epoch_choice,
            frozen_classifier=args.frozen_classifier,
            # the time shift and noise, on by default with adaptive settings only
            augment=None if args.epochs is None else True,
        ),
        labels_per_class=args.labels_per_class,
        draws=args.draws,
        temporal=() if args.frozen else tuple(args.temporal),
        temporal_frozen=tuple(args.temporal) if args.frozen else (),
    )
    result = evaluate(job, progress=_say)
    print(f"{result.trained} runs trained, {result.reused} reused")


if __name__ == "__main__":
    main()
