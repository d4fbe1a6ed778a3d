"""Head training on frozen features (the paper's sections 3.2 and 5.1), and `geocrop train`'s pipeline.

`fit_head` trains one temporal head on precomputed (N, T, F) inputs: AdamW, cross-entropy, 20 epochs by
default, learning rate from 1e-3 decaying linearly per step to the configuration's ``lr`` (see
`geocrop.training.hparams`), validation accuracy after every epoch, a checkpoint after every epoch and
resumption from it. The reported accuracy is the last epoch's (no epoch is picked on the validation set,
which is also the evaluation set, as in the paper).

`train_model` is the whole command: labelled data -> parcel split -> balanced pixels -> frozen backbone
features (computed once) -> head -> a map-ready bundle (backbone + head + class names and colours +
normalisation + temporal grid) written atomically by `geocrop.io.bundle`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from geocrop.data.labelled import LabelledSeries, LabelSource, load_labelled
from geocrop.data.splits import split_pixels
from geocrop.errors import InputError
from geocrop.io.bundle import save_bundle
from geocrop.io.provenance import training_provenance
from geocrop.models.registry import build_head, state_to_numpy
from geocrop.training.checkpoint import load_checkpoint, restore_checkpoint, save_checkpoint
from geocrop.training.features import FrozenBackbone, encode, load_backbone, raw_bands, resolve_device
from geocrop.training.hparams import HeadConfig, check_family

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings shared by every head (the paper's section 5.1)."""

    epochs: int = 20
    batch_size: int = 256
    initial_lr: float = 1e-3
    weight_decay: float = 1e-2
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 2 or self.initial_lr <= 0:
            raise InputError(
                f"training settings epochs={self.epochs}, batch_size={self.batch_size}, "
                f"lr={self.initial_lr} are invalid; give epochs >= 1, batch size >= 2, lr > 0"
            )


@dataclass(frozen=True)
class EpochStats:
    """One epoch: mean training loss, validation loss and accuracy, the lr at its end, wall seconds."""

    epoch: int
    train_loss: float
    val_loss: float
    val_accuracy: float
    lr: float
    seconds: float


@dataclass
class HeadResult:
    """A trained head with its per-epoch history and final validation predictions (N_val,)."""

    head: nn.Module
    history: list[EpochStats]
    val_pred: np.ndarray
    resumed_from: int = 0

    @property
    def val_accuracy(self) -> float:
        return self.history[-1].val_accuracy if self.history else float("nan")


ProgressFn = Callable[[EpochStats], None]


def linear_lr(step: int, total: int, *, initial: float, final: float) -> float:
    """Learning rate at ``step`` of ``total``: linear from ``initial`` (step 0) to ``final`` (last step)."""
    if total <= 1:
        return initial
    frac = min(max(step / (total - 1), 0.0), 1.0)
    return initial + (final - initial) * frac


def data_digest(*arrays: np.ndarray) -> str:
    """Cheap fingerprint of training data (shapes, labels, a strided subsample) to validate resumption."""
    h = hashlib.blake2b(digest_size=12)
    for a in arrays:
        h.update(str((a.shape, a.dtype.str)).encode())
        flat = a.reshape(-1)
        h.update(np.ascontiguousarray(flat[:: max(1, flat.size // 65536)]).tobytes())
    return h.hexdigest()


def _evaluate(head: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int) -> tuple[float, np.ndarray]:
    head.eval()
    losses, preds = [], []
    with torch.inference_mode():
        for s in range(0, len(x), batch):
            logits = head(x[s : s + batch])
            losses.append(float(nn.functional.cross_entropy(logits, y[s : s + batch], reduction="sum")))
            preds.append(logits.argmax(dim=1).cpu())
    pred = torch.cat(preds).numpy() if preds else np.zeros(0, dtype=np.int64)
    return sum(losses) / max(len(x), 1), pred


def fit_head(
    spec: Mapping[str, Any],
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    *,
    config: TrainConfig = TrainConfig(),
    final_lr: float | None = None,
    checkpoint: Path | None = None,
    progress: ProgressFn | None = None,
) -> HeadResult:
    """Train the head built from ``spec`` on ``train`` = (x (N, T, F) float32, y (N,) int64); score ``val``.

    ``final_lr``: where the linear schedule ends (default: the initial lr / 100). ``checkpoint``: a
    ``.safetensors`` path written after each epoch; a matching checkpoint there (same spec, settings and
    data) is resumed from, a non-matching one is ignored with a warning and overwritten.
    """
    x_tr, y_tr = train
    x_va, y_va = val
    if len(x_tr) < 2 or len(x_va) < 1:
        raise InputError(f"too few pixels to train a head ({len(x_tr)} training, {len(x_va)} validation)")
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    head = build_head(dict(spec)).to(device)
    optimizer = torch.optim.AdamW(head.parameters(), lr=config.initial_lr, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    end_lr = config.initial_lr / 100 if final_lr is None else final_lr
    fingerprint = {
        "spec": json.loads(json.dumps(dict(spec))),
        "config": {k: v for k, v in asdict(config).items() if k != "device"},
        "final_lr": end_lr,
        "data": data_digest(x_tr, y_tr, x_va, y_va),
    }
    history: list[EpochStats] = []
    start_epoch = 0
    if checkpoint is not None and checkpoint.exists():
        ckpt = load_checkpoint(checkpoint)
        if ckpt.fingerprint == fingerprint:
            restore_checkpoint(ckpt, model=head, optimizer=optimizer, generator=generator)
            start_epoch = ckpt.epoch
            history = [EpochStats(**h) for h in ckpt.extra.get("history", [])]
            log.info("resuming %s from epoch %d", spec.get("name"), start_epoch)
        else:
            log.warning("checkpoint %s belongs to another run; starting this head from scratch", checkpoint)
    xt = torch.from_numpy(np.ascontiguousarray(x_tr, dtype=np.float32)).to(device)
    yt = torch.from_numpy(np.asarray(y_tr, dtype=np.int64)).to(device)
    xv = torch.from_numpy(np.ascontiguousarray(x_va, dtype=np.float32)).to(device)
    yv = torch.from_numpy(np.asarray(y_va, dtype=np.int64)).to(device)
    per_epoch = math.ceil(len(xt) / config.batch_size)
    total = per_epoch * config.epochs
    pred = np.zeros(len(xv), dtype=np.int64)
    for epoch in range(start_epoch, config.epochs):
        t0 = time.perf_counter()
        head.train()
        order = torch.randperm(len(xt), generator=generator).to(device)
        loss_sum, seen, lr = 0.0, 0, config.initial_lr
        for b in range(per_epoch):
            idx = order[b * config.batch_size : (b + 1) * config.batch_size]
            if len(idx) < 2:  # BatchNorm (InceptionTime) cannot train on a single sample
                continue
            lr = linear_lr(epoch * per_epoch + b, total, initial=config.initial_lr, final=end_lr)
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss = nn.functional.cross_entropy(head(xt[idx]), yt[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += float(loss.detach()) * len(idx)
            seen += len(idx)
        val_loss, pred = _evaluate(head, xv, yv, config.batch_size * 4)
        stats = EpochStats(
            epoch=epoch + 1,
            train_loss=loss_sum / max(seen, 1),
            val_loss=val_loss,
            val_accuracy=float((pred == y_va).mean()),
            lr=lr,
            seconds=time.perf_counter() - t0,
        )
        history.append(stats)
        if checkpoint is not None:  # before reporting, so an interrupt in the callback loses no epoch
            save_checkpoint(
                checkpoint,
                model=head,
                optimizer=optimizer,
                epoch=epoch + 1,
                fingerprint=fingerprint,
                generator=generator,
                extra={"history": [asdict(h) for h in history]},
            )
        if progress is not None:
            progress(stats)
    if start_epoch >= config.epochs:  # resumed a finished run: score it once more for the predictions
        _, pred = _evaluate(head, xv, yv, config.batch_size * 4)
    return HeadResult(head=head.cpu().eval(), history=history, val_pred=pred, resumed_from=start_epoch)


@dataclass(frozen=True)
class ModelBundleInfo:
    """What a map-ready bundle records besides the weights."""

    class_names: tuple[str, ...]
    class_colours: tuple[str, ...]
    grid: dict[str, Any]
    missing_bands: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


def bundle_payload(
    *, backbone: FrozenBackbone, head: nn.Module, head_spec: Mapping[str, Any], info: ModelBundleInfo
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(tensors, metadata) of a map-ready bundle in the layout `geocrop.inference.schema` reads."""
    tensors = state_to_numpy(head, "head")
    if backbone.module is not None:
        tensors.update(state_to_numpy(backbone.module, "backbone"))
    metadata: dict[str, Any] = {
        "kind": "classifier",
        "backbone": backbone.spec if backbone.spec is not None else {"name": "none"},
        "head": dict(head_spec),
        "bands": list(backbone.bands),
        "normalization": {"mean": backbone.mean.tolist(), "std": backbone.std.tolist()},
        "classes": [
            {"value": i, "name": n, "color": c}
            for i, (n, c) in enumerate(zip(info.class_names, info.class_colours, strict=True))
        ],
        "temporal_grid": dict(info.grid),
        "missing_bands": list(info.missing_bands),
        **info.extra,
    }
    if backbone.path is not None:
        metadata["backbone_source"] = {
            "path": str(backbone.path),
            **{
                k: backbone.metadata[k] for k in ("mode", "loss", "corruption_rate") if k in backbone.metadata
            },
        }
    return tensors, metadata


#: Colours for classes without a known one (qualitative, tab20-like, distinguishable on a map).
PALETTE: tuple[str, ...] = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
)  # fmt: skip


def class_colours(names: tuple[str, ...]) -> tuple[str, ...]:
    """A colour per class: the simulator's crop colour when the name is one of its crops, else the palette."""
    try:
        from geocrop.data.simulate import CROP_COLOURS

        known: Mapping[str, str] = CROP_COLOURS
    except ImportError:
        known = {}
    return tuple(known.get(n, PALETTE[i % len(PALETTE)]) for i, n in enumerate(names))


@dataclass(frozen=True)
class TrainJob:
    """Everything `geocrop train` needs: labels, backbone (None = raw bands), head, pixels, output."""

    source: LabelSource
    out: Path
    head: HeadConfig
    backbone: Path | None = None
    config: TrainConfig = TrainConfig()
    n_train: int = 5000
    n_val: int = 1000
    scheme: str = "70-30"


@dataclass(frozen=True)
class TrainResult:
    bundle: Path
    history: list[EpochStats]
    class_names: tuple[str, ...]
    n_train: int
    n_val: int
    resumed_from: int

    @property
    def val_accuracy(self) -> float:
        return self.history[-1].val_accuracy if self.history else float("nan")


def checkpoint_path(out: Path) -> Path:
    """Where `train_model` keeps its per-epoch checkpoint for ``out`` (removed once the bundle exists)."""
    return out.with_name(f".{out.stem}.checkpoint.safetensors")


def check_output(out: Path) -> Path:
    if out.suffix != ".safetensors":
        raise InputError(f"--out {out} must end in .safetensors (e.g. model.safetensors)")
    if out.parent.exists() and not out.parent.is_dir():
        raise InputError(f"--out {out}: {out.parent} is not a folder")
    return out


def prepare_data(
    source: LabelSource, *, scheme: str, n_train: int, n_val: int, seed: int
) -> tuple[LabelledSeries, np.ndarray, np.ndarray]:
    """Labelled series plus the (training, validation) pixel indices of the parcel split."""
    series = load_labelled(source, max_per_class=4 * (n_train + n_val), seed=seed)
    train_idx, val_idx = split_pixels(
        series.labels,
        series.groups,
        class_names=series.class_names,
        scheme=scheme,
        n_train=n_train,
        n_val=n_val,
        seed=seed,
    )
    return series, train_idx, val_idx


def train_model(
    job: TrainJob,
    *,
    progress: ProgressFn | None = None,
    stage: Callable[[str], None] | None = None,
) -> TrainResult:
    """`geocrop train`: labelled data -> split -> features -> head -> map-ready bundle at ``job.out``.

    ``progress`` gets each finished epoch's `EpochStats`; ``stage`` a line before each step that comes
    first (reading imagery, encoding, training). Every input is checked before anything is written; the
    only file written before the bundle is the per-epoch checkpoint (`checkpoint_path`), which a rerun
    resumes from and success removes.
    """
    say = stage or (lambda message: None)
    out = check_output(Path(job.out))
    check_family(job.head.family)
    backbone = load_backbone(job.backbone) if job.backbone is not None else None
    say(f"reading the labelled pixels' series from {job.source.path.name}")
    series, train_idx, val_idx = prepare_data(
        job.source, scheme=job.scheme, n_train=job.n_train, n_val=job.n_val, seed=job.config.seed
    )
    if backbone is None:
        backbone = raw_bands(series.values[train_idx], bands=series.bands)
    device = resolve_device(job.config.device)
    what = "encoding" if backbone.module is not None else "normalising"
    say(f"{what} {len(train_idx):,} training and {len(val_idx):,} validation pixels")
    x_tr = encode(series.values[train_idx], backbone, device=device)
    x_va = encode(series.values[val_idx], backbone, device=device)
    spec = job.head.spec(in_features=x_tr.shape[-1], n_classes=len(series.class_names))
    ckpt = checkpoint_path(out)
    say(f"training the {job.head.family} head for {job.config.epochs} epochs")
    result = fit_head(
        spec,
        (x_tr, series.labels[train_idx]),
        (x_va, series.labels[val_idx]),
        config=job.config,
        final_lr=job.head.lr,
        checkpoint=ckpt,
        progress=progress,
    )
    info = ModelBundleInfo(
        class_names=series.class_names,
        class_colours=class_colours(series.class_names),
        grid=series.grid.to_dict(),
        missing_bands=series.missing_bands,
        extra={
            "training": {
                "labels": str(job.source.path),
                "class_column": job.source.class_column,
                "split": job.scheme,
                "pixels_per_class": [job.n_train, job.n_val],
                "n_train": len(train_idx),
                "n_val": len(val_idx),
                "val_accuracy": result.val_accuracy,
                "history": [asdict(h) for h in result.history],
                "config": {k: v for k, v in asdict(job.config).items() if k != "device"},
                "final_lr": job.head.lr,
            },
            "provenance": training_provenance(
                job.source, class_names=series.class_names, grid=series.grid, accuracy=result.val_accuracy
            ),
        },
    )
    tensors, metadata = bundle_payload(backbone=backbone, head=result.head, head_spec=spec, info=info)
    save_bundle(out, tensors, metadata)
    for leftover in (ckpt, ckpt.with_suffix(".json")):
        leftover.unlink(missing_ok=True)
    return TrainResult(
        out, result.history, series.class_names, len(train_idx), len(val_idx), result.resumed_from
    )
