"""Frozen pretrained heads with a classifier `geocrop evaluate` does not expose, into the same folder.

`geocrop evaluate --temporal-frozen HEAD` trains the default classifier on the frozen body (an MLP of
`TrainConfig.frozen_hidden` = 256 units, `geocrop.models.mlp_classifier`). This script runs the same
protocol with another ``--frozen-hidden`` (0: the single linear layer every frozen run used before) into
the same evaluation folder, so that its runs pair with the raw-band and default runs there; the keys and
report names carry the classifier (``tempcnn (temporal, frozen, MLP 64)``; the linear one has no suffix).

    python docs/evaluation/france-few-labels/all-labels/evaluate_frozen.py --frozen-hidden 0 \\
        --family inception --temporal runs/temporal/inception-resample/head.safetensors --out runs/few-all
"""

from __future__ import annotations

import argparse
from pathlib import Path

from geocrop.data.labelled import LabelSource
from geocrop.training.evaluate import EvaluateJob, evaluate
from geocrop.training.fit import TrainConfig

#: The France LPIS table as the README's commands read it.
SOURCE = LabelSource(
    path=Path("../shared/realdata/worldcereal/extractions_2023_FRA_LPIS_dekad.geoparquet"),
    class_column="ewoc_code",
    class_map="../shared/realdata/worldcereal/class_mappings.json:CROPTYPE28",
    drop_unmapped=True,
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--temporal", type=Path, action="append", required=True, help="pretrained head (repeat)")
    ap.add_argument("--frozen-hidden", type=int, required=True, help="MLP hidden units (0: linear layer)")
    ap.add_argument("--family", default="tempcnn")
    ap.add_argument("--out", type=Path, default=Path("runs/few-all"))
    args = ap.parse_args()
    settings = {"families": (args.family,), "baselines": (), "labels_per_class": (None,), "draws": 1}
    job = EvaluateJob(
        SOURCE, args.out, folds=5, config=TrainConfig(frozen_hidden=args.frozen_hidden),
        temporal_frozen=tuple(args.temporal), **settings,
    )  # fmt: skip
    result = evaluate(job, progress=lambda event: print(event.message, flush=True) if event.log else None)
    print(f"{result.trained} runs trained, {result.reused} reused")


if __name__ == "__main__":
    main()
