"""InceptionTime reading season parts (`geocrop.models.season_parts`), into the all-labels journal.

Two runs of `geocrop evaluate`'s protocol, each in a folder of its own (the journal's run keys do not
carry a head's ``parts``, so a run with parts would otherwise take the key of the run without):

- ``frozen``: the frozen pretrained InceptionTime heads given with ``--temporal``, whose classifier now
  reads the means of `season_parts` of the series' steps by default (4 for the France table's 52 dekads).
  The folder starts with the journal's raw-band InceptionTime runs, so only the frozen runs train.
- ``family``: InceptionTime on raw bands, and fine-tuned from the heads given with ``--temporal``, with
  the same number of parts (the family's default is 1: the mean over time).

``--merge`` then appends this folder's new runs to the all-labels journal with ``-parts<P>`` in their key
and ``<P> season parts`` in their name, beside the runs without parts they pair with.

    python docs/evaluation/france-few-labels/all-labels/evaluate_parts.py frozen --out runs/pool/frozen \\
        --temporal runs/temporal/inception-resample/head.safetensors \\
        --temporal runs/temporal/inception/head.safetensors --merge runs/few-all
    python docs/evaluation/france-few-labels/all-labels/evaluate_parts.py family --out runs/pool/family \\
        --temporal runs/temporal/inception-resample/head.safetensors --merge runs/few-all
"""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import asdict, replace
from pathlib import Path

from geocrop.data.labelled import LabelSource
from geocrop.models.season_parts import PARTS_KEY, season_parts
from geocrop.training import hparams
from geocrop.training.evaluate import EvaluateJob, evaluate
from geocrop.training.fit import TrainConfig
from geocrop.training.head_init import read_init
from geocrop.training.journal import JOURNAL, SETUP, append_journal, read_journal

#: The France LPIS table as the README's commands read it.
SOURCE = LabelSource(
    path=Path("../shared/realdata/worldcereal/extractions_2023_FRA_LPIS_dekad.geoparquet"),
    class_column="ewoc_code",
    class_map="../shared/realdata/worldcereal/class_mappings.json:CROPTYPE28",
    drop_unmapped=True,
)


def seed_folder(out: Path, journal: Path) -> None:
    """Start ``out`` with ``journal``'s fingerprint and raw-band InceptionTime runs (reused, not trained)."""
    if (out / JOURNAL).exists():
        return
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(journal / SETUP, out / SETUP)
    for record in read_journal(journal / JOURNAL).values():
        if record.key.startswith("inception-000-supervised-raw-") or record.family == "majority":
            append_journal(out / JOURNAL, record)


def merge(out: Path, journal: Path, parts: int, *, frozen: bool, chosen: bool) -> int:
    """Append ``out``'s InceptionTime runs to ``journal``; returns how many were new. Frozen runs with the
    default number of parts (but the raw-band runs `seed_folder` brought) get the key and name `geocrop
    evaluate` now gives them (``-parts``, ``season parts``); others (the family's runs, a number of parts
    ``chosen`` by hand) ``-parts<P>``, ``<P> season parts``."""
    into = read_journal(journal / JOURNAL)
    default = frozen and not chosen
    suffix, name = ("-parts", "season parts") if default else (f"-parts{parts}", f"{parts} season parts")
    if chosen and parts == 1:  # the time mean: keyed and named as the frozen runs of before
        suffix, name = "", ""
    added = 0
    for record in read_journal(out / JOURNAL).values():
        if record.family != "inception" or (frozen and record.variant == "supervised"):
            continue
        stem, fold = record.key.rsplit("-f", 1)
        if chosen:  # `geocrop evaluate` names the rule's parts; these runs have their own number
            stem = stem.removesuffix("-parts")
            record = replace(record, recipe=record.recipe.removesuffix(", season parts"))
        key = stem + ("" if not suffix or stem.endswith(suffix) else suffix) + f"-f{fold}"
        if key not in into:
            named = record.recipe.endswith(name) if name else True
            recipe = record.recipe if named else ", ".join(r for r in (record.recipe, name) if r)
            # the report names each pretrained head by its id, not by its place on one command line
            append_journal(journal / JOURNAL, replace(record, key=key, recipe=recipe, bundle_index=0))
            added += 1
    return added


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=("frozen", "family"))
    ap.add_argument("--temporal", type=Path, action="append", default=[], help="pretrained head (repeat)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--merge", type=Path, help="the all-labels evaluation folder to append to")
    ap.add_argument("--parts", type=int, help="season parts (default: `season_parts` of the steps)")
    args = ap.parse_args()
    steps = read_init(args.temporal[0]).steps if args.temporal else 52
    parts = args.parts or season_parts(steps)
    # the family's configuration with parts (what `head_params={"parts": P}` gives); a frozen body keeps a
    # number of parts its spec names instead of `season_parts`
    if args.parts or args.mode == "family":
        hparams.DEFAULT_PARAMS["inception"] = {**hparams.DEFAULT_PARAMS["inception"], PARTS_KEY: parts}
    settings = {"families": ("inception",), "baselines": (), "labels_per_class": (None,), "draws": 1}
    if args.mode == "frozen":
        if args.merge is not None:
            seed_folder(args.out, args.merge)
        frozen = tuple(args.temporal)
        job = EvaluateJob(SOURCE, args.out, folds=5, config=TrainConfig(), temporal_frozen=frozen, **settings)
    else:
        tuned = tuple(args.temporal)
        job = EvaluateJob(SOURCE, args.out, folds=5, config=TrainConfig(), temporal=tuned, **settings)
    print(f"{parts} season parts of {steps} steps; {json.dumps(asdict(job.config), default=str)}", flush=True)
    result = evaluate(job, progress=lambda event: print(event.message, flush=True) if event.log else None)
    print(f"{result.trained} runs trained, {result.reused} reused")
    if args.merge is not None:
        added = merge(args.out, args.merge, parts, frozen=args.mode == "frozen", chosen=bool(args.parts))
        print(f"{added} runs added to {args.merge / JOURNAL}")


if __name__ == "__main__":
    main()
