"""Outputs of a pretraining run: the per-epoch history files, the model bundle, the progress bars."""

from __future__ import annotations

import csv
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geocrop.core.bands import PLANET_BANDS, S2_BANDS
from geocrop.data.pair_sampling import feature_names
from geocrop.data.pairs import PairSet
from geocrop.io.atomic import atomic_path, write_json_atomic
from geocrop.io.bundle import save_bundle
from geocrop.io.bundle_metadata import Normalization
from geocrop.io.encoder_metadata import EncoderMetadata, SecondView
from geocrop.models.registry import state_to_numpy
from geocrop.training.distributed import DistInfo
from geocrop.training.losses import LOSS_NAMES

if TYPE_CHECKING:
    from geocrop.models.contrastive import ContrastiveModel
    from geocrop.training.pretrain_config import PretrainConfig

N_S2 = len(S2_BANDS)
PLANET_WINDOW = "3x3 flattened (row, col, band), row 0 north"
S1_UNITS = "backscatter dB (WorldCereal uint16: 20 log10(DN) - 83)"


def write_history(out: Path, history: list[dict[str, Any]]) -> None:
    write_json_atomic(out / "history.json", {"epochs": history})
    with atomic_path(out / "history.csv", what="history") as tmp, open(tmp, "w", newline="") as fh:
        cols = [
            "epoch",
            "loss",
            "retrieval_top1",
            "retrieval_top1_back",
            "chance",
            "candidates",
            "retrieval_top10",
            "retrieval_median_rank",
            "steps",
        ]
        writer = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(history)


def write_bundle(
    path: Path,
    *,
    model: ContrastiveModel,
    config: PretrainConfig,
    pairs: PairSet,
    history: list[dict[str, Any]],
    batch: int,
    info: DistInfo,
) -> None:
    tensors = state_to_numpy(model.s2_encoder, "backbone") | state_to_numpy(model.s2_projector, "projector")
    mean, std = pairs.stats()
    second: SecondView | None = None
    if config.mode == "bimodal":
        s1 = pairs.second_modality == "sentinel-1"
        prefix = "s1" if s1 else "planet"
        tensors |= state_to_numpy(model.planet_encoder, f"{prefix}_backbone")
        tensors |= state_to_numpy(model.planet_projector, f"{prefix}_projector")
        second = SecondView(
            sensor="sentinel-1" if s1 else "planetscope",
            backbone=model.planet_encoder.spec,
            projector=model.planet_projector.spec,
            bands=_s1_bands(pairs.second_window) if s1 else tuple(PLANET_BANDS),
            normalization=Normalization(tuple(mean[N_S2:].tolist()), tuple(std[N_S2:].tolist())),
            layout=S1_UNITS if s1 else PLANET_WINDOW,
        )
    meta = EncoderMetadata(
        mode=config.mode,
        backbone=model.s2_encoder.spec,
        projector=model.s2_projector.spec,
        bands=tuple(S2_BANDS),
        normalization=Normalization(tuple(mean[:N_S2].tolist()), tuple(std[:N_S2].tolist())),
        corruption_rate=config.corruption,
        loss=LOSS_NAMES.get(config.mode, config.mode),
        temperature=config.temperature,
        lr=config.lr,
        batch_size=batch,
        seed=config.seed,
        epochs=len(history),
        world_size=info.world_size,
        final=history[-1] if history else None,
        provenance={
            "pairs": pairs.manifest["settings"],
            "dates": pairs.manifest["dates"],
            "counts": pairs.manifest.get("counts"),
        },
        # bands of `bands` that the source lacked and the bandmap rule filled (not observed)
        filled_bands=tuple(pairs.manifest["settings"].get("provenance", {}).get("filled_bands", [])),
        second_modality=pairs.second_modality if config.mode == "bimodal" else None,
        second=second,
    )
    save_bundle(path, tensors, meta.to_dict())


class Progress:
    """A rich bar per epoch on a terminal; silent when disabled or when stderr is not a TTY."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self._bar: Any = None
        self._task: Any = None

    def start(self, epoch: int, epochs: int, steps: int) -> None:
        if not self.enabled:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._bar = Progress(
            TextColumn("epoch {task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()
        )
        self._bar.start()
        self._task = self._bar.add_task(f"{epoch + 1}/{epochs}", total=steps)

    def advance(self) -> None:
        if self._bar is not None:
            self._bar.advance(self._task)

    def finish(self, record: Mapping[str, Any]) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar.console.print(
                f"epoch {record['epoch']}: loss {record['loss']:.4f}, held-out retrieval "
                f"{record['retrieval_top1']:.3f} (chance {record['chance']:.4f})"
            )
            self._bar = None


def _s1_bands(window: int) -> tuple[str, ...]:
    """The S1 encoder's inputs: ``VV``, ``VH``; for a k x k neighbourhood ``r0c0.VV`` ... (row, col, band)."""
    names = feature_names(bimodal=True, modality="sentinel-1", window=window)[N_S2:]
    return tuple(name.removeprefix("s1.") for name in names)
