"""``--head auto`` on the grouped folds of ``geocrop evaluate``, keeping every candidate's fit as well.

``auto`` fits each candidate exactly as ``--head <family>`` would (same settings, seed and training part),
so one auto run per fold also yields the single heads' held-out predictions: this script runs
`geocrop.training.auto.fit_auto` on the folds `geocrop evaluate --folds K` draws (same seed, classes and
normalisation), with a fitting function that keeps each candidate's `FittedHead`, and appends one JSON
line per method and fold (held-out labels, log-probabilities, temperature, head prior, class shares,
default predictions; a candidate's line also its predictions of the selection split, where it was
calibrated and ``auto`` chose, so that `bench/auto_calibration.py` can compare ways of calibrating the
mean without refitting; ``auto``'s line also its selection record). With ``--epochs DIR``, every deep
candidate's selection-split probabilities at each epoch go to ``DIR/fold<F>_<family>.npz`` as well
(``log_p`` (epochs, N, K), ``y``, ``groups``, ``best_epoch``), the inputs of the cross-fitted calibration
(`geocrop.training.cv_epochs`), so `bench/auto_crossfit.py` can compare ways of fitting it without
refitting. Folds already in ``--out`` are skipped;
an interrupted fold resumes from its candidates' checkpoints (``--work``). `bench/auto_report.py` reads
the lines into the report's tables.

    OMP_NUM_THREADS=1 python bench/auto_folds.py --folds 0,2,4 --out runs.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from geocrop.data.labelled import LabelSource, load_labelled
from geocrop.training.any_head import FittedHead, cached_features, fit_any_head, head_logits, inner_split
from geocrop.training.auto import fit_auto
from geocrop.training.features import raw_bands
from geocrop.training.fit import HeadResult, TrainConfig
from geocrop.training.hparams import HeadConfig, default_config
from geocrop.training.label_draws import fold_splits
from geocrop.training.metrics import scores


def find_realdata() -> Path:
    here = Path(__file__).resolve()
    roots = (p / "shared" / "realdata" for p in here.parents)
    root = next((r for r in roots if r.is_dir()), None)
    if root is None:
        raise SystemExit("shared/realdata not found beside this checkout")
    return root / "worldcereal"


def _log_p(logits: np.ndarray) -> list[list[float]]:
    """Row-normalised log-probabilities at T = 1, 4 decimals (any temperature's softmax is the same on
    them as on the logits)."""
    z = np.asarray(logits, dtype=np.float64)
    top = z.max(axis=1, keepdims=True)
    return np.round(z - top - np.log(np.exp(z - top).sum(axis=1, keepdims=True)), 4).tolist()


def _line(
    method: str, fold: int, y: np.ndarray, fitted: FittedHead, seconds: float, series: Any = None
) -> dict[str, Any]:
    z = np.asarray(fitted.val_logits, dtype=np.float64)
    pred = fitted.val_proba.argmax(axis=1)
    held_out: dict[str, Any] = {}
    if series is not None and fitted.held_out is not None:  # a candidate's selection-split predictions
        rows, logits = fitted.held_out
        held_out = {
            "select_true": [int(v) for v in series.labels[rows]],
            "select_groups": [str(g) for g in series.groups[rows]],
            "select_log_p": _log_p(logits),
        }
    return {
        "method": method,
        "fold": fold,
        "val_true": [int(v) for v in y],
        "val_pred": [int(v) for v in pred],
        "scores": scores(y, pred, z.shape[1]),
        "log_p": _log_p(z),
        "temperature": fitted.temperature,
        "head_prior": fitted.head_prior,
        "class_shares": [float(v) for v in np.asarray(fitted.class_shares)],
        "calibration": fitted.calibration,
        "seconds": round(seconds, 1),
        "best_epoch": fitted.best_epoch,
        **held_out,
    }


def _imbalanced(table: Path, class_map: Path, n: int, out: Path) -> Path:
    """The France table cut to every sample of its most common class and ``n`` samples (seeded draw) of
    each of the next two: one class dominates, as on the Corsica table of the issue."""
    import pandas as pd

    frame = pd.read_parquet(table)
    names = frame["ewoc_code"].astype(str).map(json.loads(class_map.read_text())["CROPTYPE28"])
    first = frame.assign(name=names).drop_duplicates("sample_id")
    counts = first["name"].value_counts()
    keep = list(first.loc[first["name"] == counts.index[0], "sample_id"])
    for name in counts.index[1:3]:
        ids = first.loc[first["name"] == name, "sample_id"]
        keep += list(ids.sample(n=n, random_state=0))
    frame[frame["sample_id"].isin(keep)].to_parquet(out)
    return out


def _keeping(kept: dict[str, tuple[FittedHead, float]], epochs: dict[str, list[np.ndarray]]) -> Any:
    """`fit_any_head` that also keeps each candidate's fitted head and seconds in ``kept``, and a deep
    candidate's per-epoch selection probabilities (`HeadResult.epoch_proba`) in ``epochs``."""
    import geocrop.training.any_head as any_head

    def keeping(head: Any, *a: Any, **kw: Any) -> FittedHead:
        t = time.perf_counter()
        plain = any_head.fit_head

        def recording(*fa: Any, **fkw: Any) -> HeadResult:
            result = plain(*fa, **fkw)
            epochs[head.family] = result.epoch_proba
            return result

        any_head.fit_head = recording  # the bench's instrument: fit_any_head calls it once per deep head
        try:
            fitted = fit_any_head(head, *a, **kw)
        finally:
            any_head.fit_head = plain
        kept[head.family] = (fitted, time.perf_counter() - t)
        return fitted

    return keeping


def _save_epochs(
    folder: Path, fold: int, family: str, proba: list[np.ndarray], fitted: Any, series: Any
) -> None:
    rows = fitted.held_out[0]
    folder.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        folder / f"fold{fold}_{family}.npz",
        log_p=np.log(np.clip(np.stack(proba), 1e-30, None)).astype(np.float32),
        y=series.labels[rows],
        groups=np.asarray([str(g) for g in series.groups[rows]]),
        best_epoch=fitted.best_epoch,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", default="0,1,2,3,4", help="which of the 5 folds to run")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--work", type=Path, default=Path(".auto_folds"))
    parser.add_argument("--epochs", type=Path, help="a folder for each deep candidate's per-epoch outputs")
    parser.add_argument(
        "--epoch-choice",
        default="inner",
        choices=("inner", "cv"),
        help="TrainConfig.epoch_choice of every deep candidate (cv: auto still chooses on the inner split, "
        "which the deep candidates then trained on: read their own lines only)",
    )
    parser.add_argument(
        "--imbalanced",
        type=int,
        default=0,
        help="a test instrument: keep every sample of the most common class and this many of the next two",
    )
    parser.add_argument(
        "--candidates", default="", help="auto's candidates, comma-separated (default: its own)"
    )
    args = parser.parse_args()
    root = find_realdata()
    table = root / "extractions_2023_FRA_LPIS_dekad.geoparquet"
    class_map = root / "class_mappings.json"
    if args.imbalanced:
        args.work.mkdir(parents=True, exist_ok=True)
        table = _imbalanced(table, class_map, args.imbalanced, args.work / "imbalanced.parquet")
    source = LabelSource(table, "ewoc_code", class_map=f"{class_map}:CROPTYPE28", drop_unmapped=True)
    config = TrainConfig(epoch_choice=args.epoch_choice)  # evaluate's defaults: adaptive, seed 0
    series = load_labelled(source, max_per_class=4 * (5000 + 1000), seed=config.seed)
    splits = fold_splits(series, folds=args.k, scheme="70-30", n_train=5000, n_val=1000, seed=config.seed)
    done = set()
    if args.out.exists():
        done = {json.loads(line)["fold"] for line in args.out.read_text().splitlines() if line.strip()}
    for fold in (int(f) for f in args.folds.split(",")):
        if fold in done:
            print(f"fold {fold}: in {args.out} already")
            continue
        train_idx, val_idx = splits[fold]
        rows = np.concatenate([train_idx, val_idx])
        features = cached_features(series, raw_bands(series.values[train_idx]), rows, torch.device("cpu"))
        auto_config = default_config("auto")
        if args.candidates:
            params = {**auto_config.params, "candidates": args.candidates.split(",")}
            auto_config = HeadConfig("auto", params, auto_config.lr)
        kept: dict[str, tuple[FittedHead, float]] = {}
        epochs: dict[str, list[np.ndarray]] = {}
        keeping = _keeping(kept, epochs)

        wall, cpu = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF).ru_utime
        result = fit_auto(
            auto_config, series, features, train_idx, val_idx, fit=keeping, split=inner_split,
            outputs=head_logits, config=config, checkpoint=args.work / f"fold{fold}.safetensors",
        )  # fmt: skip
        seconds = time.perf_counter() - wall
        y = series.labels[val_idx]
        assert isinstance(result, FittedHead)
        lines = [_line(c, fold, y, f, s, series) for c, (f, s) in kept.items()]
        auto = _line("auto", fold, y, result, seconds)
        auto["selection"] = result.selection
        auto["cpu_seconds"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_utime - cpu, 1)
        auto["load"] = [round(v, 1) for v in os.getloadavg()]
        for family, proba in epochs.items():
            if args.epochs is not None and kept[family][0].held_out is not None:
                _save_epochs(args.epochs, fold, family, proba, kept[family][0], series)
        with args.out.open("a", encoding="utf-8") as out:
            for line in [*lines, auto]:
                out.write(json.dumps(line) + "\n")
        sel = result.selection or {}
        print(f"fold {fold}: auto chose {sel.get('chosen')}: macro-F1 {auto['scores']['macro_f1']:.3f}")


if __name__ == "__main__":
    main()
