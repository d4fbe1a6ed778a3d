"""Outputs of a temporal pretraining run: the per-epoch history files and line, the bundle's metadata."""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from geocrop.io.atomic import atomic_path, write_json_atomic
from geocrop.io.bundle_metadata import Normalization
from geocrop.training.head_bundle import PretrainedHead
from geocrop.training.pretrain_outputs import Progress
from geocrop.training.temporal_config import FINAL_LR_SHARE, Plan, TemporalPretrainConfig
from geocrop.training.temporal_data import UnlabelledSeries

__all__ = ["EpochBar", "describe_epoch", "head_metadata", "write_history"]

#: history.csv's columns: masked runs fill the held-out losses, contrastive ones retrieval and chance.
_HISTORY_COLUMNS = (
    "epoch", "loss", "heldout_loss", "heldout_interp_loss", "heldout_second_loss", "heldout_retrieval_top1",
    "chance", "steps",
)  # fmt: skip


class EpochBar(Progress):
    """The pretraining bar, ending each epoch with `describe_epoch`'s line."""

    def finish(self, record: Mapping[str, Any]) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar.console.print(describe_epoch(record))
            self._bar = None


def describe_epoch(record: Mapping[str, Any]) -> str:
    if "heldout_retrieval_top1" in record:
        return (
            f"epoch {record['epoch']}: loss {record['loss']:.4f}, held-out retrieval "
            f"{record['heldout_retrieval_top1']:.3f} (chance {record['chance']:.3f})"
        )
    return (
        f"epoch {record['epoch']}: loss {record['loss']:.4f}, held-out {record['heldout_loss']:.4f} "
        f"(linear interpolation {record['heldout_interp_loss']:.4f})"
    )


def write_history(out: Path, history: list[dict[str, Any]]) -> None:
    write_json_atomic(out / "history.json", {"epochs": history})
    with atomic_path(out / "history.csv", what="history") as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(_HISTORY_COLUMNS), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(history)


def head_metadata(
    config: TemporalPretrainConfig,
    data: UnlabelledSeries,
    spec: dict[str, Any],
    plan: Plan,
    history: list[dict[str, Any]],
    mean: np.ndarray,
    std: np.ndarray,
    second_stats: tuple[np.ndarray, np.ndarray] | None,
    n_train: int,
    n_held: int,
) -> PretrainedHead:
    if config.objective == "contrastive":
        objective: dict[str, Any] = {
            "name": "contrastive",
            "loss": "nt_xent",
            "temperature": config.temperature,
        }
    else:
        objective = _masked_objective(config, data, second_stats)
    return PretrainedHead(
        head=spec,
        bands=tuple(data.bands),
        normalization=Normalization(tuple(mean.tolist()), tuple(std.tolist())),
        grid=data.grid,
        objective=objective,
        augment=config.augment().to_dict(),
        training={
            "epochs": len(history),
            "batch_size": plan.batch_size,
            "lr": config.lr,
            "final_lr": config.lr * FINAL_LR_SHARE,
            "weight_decay": config.weight_decay,
            "seed": config.seed,
            "series": {"train": n_train, "heldout": n_held},
        },
        history=[
            {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in h.items()}
            for h in history
        ],
        filled_bands=tuple(data.filled_bands),
        provenance=dict(data.provenance),
    )


def _masked_objective(
    config: TemporalPretrainConfig, data: UnlabelledSeries, second_stats: tuple[np.ndarray, np.ndarray] | None
) -> dict[str, Any]:
    objective: dict[str, Any] = {
        "name": "masked_reconstruction",
        "mask_ratio": config.mask_ratio,
        "target_bands": [b for b in data.bands if b not in data.filled_bands],
        "second": "sentinel-1" if second_stats is not None else None,
        "second_weight": config.second_weight if second_stats is not None else 0.0,
    }
    if second_stats is not None:
        objective["second_bands"] = ["VV", "VH"]
        objective["second_normalization"] = Normalization(
            tuple(second_stats[0].tolist()), tuple(second_stats[1].tolist())
        ).to_dict()
    return objective
