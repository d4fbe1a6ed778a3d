"""Fitting one temporal head on frozen features, with settings that follow the data it gets.

The paper trains every head for 20 epochs at batch 256 (section 5.1) on 5,000 pixels per class. On a
real samples table of a few hundred series that is two optimiser steps per epoch, 40 in all: the Bi-LSTM
and the Transformer underfit and nothing says so. `TrainConfig` therefore leaves ``epochs`` and
``batch_size`` unset by default and `plan_training` derives them from the number of training series:

- **batch**: the power of two nearest N / 10, between 16 and 256 (so 256 once N >= ~2,600);
- **epochs**: enough for `MIN_STEPS` optimiser steps, at least 20 and at most `MAX_EPOCHS`;
- **early stopping**: with an inner validation set (`fit_head`'s ``select``, drawn by group from the
  training part only), the epoch with the best inner macro-F1 is kept and training stops after
  ``patience`` epochs without improvement;
- **class-balanced loss**: cross-entropy weighted by inverse class frequency (uniform on the paper's
  balanced pixel sets, so it changes nothing there) so rare crops are not ignored.

Explicit ``epochs``/``batch_size`` (``--epochs 20 --batch-size 256``) reproduce the paper: that many
epochs, the last one kept, no inner selection. The learning rate starts at ``initial_lr`` and decays
linearly per step to the configuration's final lr. A checkpoint after every epoch (current and best
weights, optimiser and RNG states) makes an interrupted fit resume exactly.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from geocrop.core.params import at_least, param, settle
from geocrop.errors import GeocropWarning, InputError
from geocrop.models.device import resolve_device
from geocrop.models.registry import build_head
from geocrop.training.checkpoint import load_checkpoint, restore_checkpoint, save_checkpoint
from geocrop.training.frozen_logistic import fit_frozen_logistic
from geocrop.training.head_bundle import CLASSIFIER_PREFIX
from geocrop.training.head_init import (
    apply_init,
    check_init,
    freeze_body,
    hold_body_eval,
    read_init,
    trained_spec,
)
from geocrop.training.metrics import macro_f1
from geocrop.training.series_augment import FilledSeriesAugment

log = logging.getLogger(__name__)

#: Optimiser steps an adaptive fit plans for at least (~1,000 gives the recurrent and attention heads
#: room to converge on a few hundred series; early stopping ends it sooner when the inner F1 stalls).
MIN_STEPS = 1000
MAX_EPOCHS = 200


class UnderfitWarning(GeocropWarning):
    """A head still improved at its last epoch or fits its own training data poorly."""


def _share(value: float) -> str | None:
    return None if 0 <= value < 1 else "is not a share in [0, 1); give 0 (off) or a share such as 0.2"


_dropout_rate = _share


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings shared by every head. ``epochs``/``batch_size`` None: adapt to the data."""

    epochs: int | None = None
    batch_size: int | None = None
    initial_lr: float = 1e-3
    weight_decay: float = 1e-2
    seed: int = 0
    device: str = "auto"
    augment: bool | None = None
    #: A pretrained-head bundle (``geocrop pretrain --mode temporal``) the head starts from (str path);
    #: None: random initialisation. See `geocrop.training.head_init`.
    init: str | None = None
    #: With ``init``: train only the classifier layer, the pretrained body frozen (False: fine-tune all).
    freeze_init: bool = False
    #: With ``init`` (fine-tuned): the pretrained body's learning rate as a share of the classifier's,
    #: so a few labelled series adjust the pretrained weights instead of overwriting them (1: one rate).
    body_lr: float = 1.0
    #: The series augmentations of temporal pretraining (`geocrop.training.series_augment`) on every
    #: training batch of a deep head, before the shift and noise of ``augment``.
    resample_dates: bool = param(
        False, help="Resample each training series' dates (a random subset, moved by a step)", api=False
    )
    date_dropout: float = param(
        0.0, help="Share of each training series' dates blanked", check=_dropout_rate, api=False
    )
    #: With ``init`` (fine-tuned): this share of the planned epochs trains the classifier layer alone on
    #: the pretrained body (a linear probe, body frozen as with ``freeze_init``) before every weight trains.
    probe: float = param(
        0.0, help="Share of the planned epochs that train the classifier alone first", check=_share, api=False
    )
    #: How an adaptive fit picks its epoch: ``inner`` on a held-back 20 % of the training parcels,
    #: ``cv`` by cross-validation on the labelled parcels, then a refit on all of them
    #: (`geocrop.training.cv_epochs`); ``auto``: ``cv`` on small labelled sets, else ``inner``.
    epoch_choice: Literal["inner", "cv", "auto"] = param(
        "inner",
        help="How an adaptive fit picks its epoch: inner split, cross-validation, or by set size",
        api=False,
    )
    #: With ``frozen_classifier`` mlp: hidden units of the MLP classifier trained on the frozen body in
    #: place of the single linear layer (`geocrop.models.mlp_classifier`); 0: the linear layer.
    frozen_hidden: int = param(
        256,
        help="Hidden units of the frozen body's classifier (0: one linear layer)",
        check=at_least(0),
        api=False,
    )
    #: With ``freeze_init``: ``logistic`` (default) fits the head's linear layer as a logistic regression
    #: to convergence, no epochs, no inner split (`geocrop.training.frozen_logistic`: +0.09 macro-F1 over
    #: raw bands with 10 France labels per class); ``mlp``: the classifier above, trained by epochs.
    frozen_classifier: Literal["mlp", "logistic"] = param(
        "logistic", help="The frozen body's classifier: a logistic regression, or an MLP by epochs", api=False
    )

    def __post_init__(self) -> None:
        settle(self)
        if self.init is not None:
            object.__setattr__(self, "init", str(self.init))  # JSON-ready in fingerprints and bundles
        if self.freeze_init and self.init is None:
            raise InputError(
                "`freeze_init` needs a pretrained head to freeze; give `init` HEAD.safetensors or drop it",
                param="freeze_init",
            )
        bad = (
            (self.epochs is not None and self.epochs < 1)
            or (self.batch_size is not None and self.batch_size < 2)
            or not self.initial_lr > 0
            or not 0 < self.body_lr <= 1
        )
        if bad:
            raise InputError(
                f"training settings epochs={self.epochs}, batch_size={self.batch_size}, "
                f"lr={self.initial_lr}, body_lr={self.body_lr} are invalid; give epochs >= 1, "
                "batch size >= 2, lr > 0, 0 < body_lr <= 1"
            )

    @property
    def adaptive(self) -> bool:
        """True when the epoch count is left to the data (and early stopping may pick the epoch); a
        logistic classifier on a frozen body has no epochs."""
        return self.epochs is None and not self.fits_frozen_logistic

    @property
    def fits_frozen_logistic(self) -> bool:
        """True when the classifier on a frozen body is a logistic regression: fitted, not trained."""
        return self.freeze_init and self.frozen_classifier == "logistic"

    @property
    def augmenting(self) -> bool:
        """Augment training batches (`augment_batch`): by default with adaptive settings only."""
        return self.adaptive if self.augment is None else self.augment


#: Augmentation strength: largest shift in grid steps, and noise in units of a feature's spread.
MAX_SHIFT, NOISE = 2, 0.05


def augment_batch(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A randomly shifted (up to `MAX_SHIFT` steps, ends held) and noised copy of x (batch, T, F).

    Fields of one crop sow and grow a week or two apart, and a few hundred samples do not show a head
    every such offset: shifting the series in time and adding a little noise teaches it that they do
    not change the crop. Draws come from ``generator`` (on the CPU) so a resumed run repeats them.
    """
    b, t, _ = x.shape
    shift = torch.randint(-MAX_SHIFT, MAX_SHIFT + 1, (b, 1), generator=generator)
    index = (torch.arange(t).unsqueeze(0) - shift).clamp(0, t - 1).to(x.device)
    shifted = x.gather(1, index.unsqueeze(-1).expand_as(x))
    noise = torch.randn(x.shape, generator=generator).to(x.device)
    return shifted + NOISE * noise


@dataclass(frozen=True)
class Plan:
    """The settings a fit runs with: epochs, batch size, and the patience of early stopping (0: none)."""

    epochs: int
    batch_size: int
    patience: int


def plan_training(config: TrainConfig, n_train: int) -> Plan:
    """Epochs, batch and patience for ``n_train`` series (see the module docstring)."""
    batch = config.batch_size or int(np.clip(2 ** round(math.log2(max(n_train, 1) / 10)), 16, 256))
    batch = min(batch, max(n_train, 2))
    per_epoch = math.ceil(n_train / batch)
    if config.epochs is not None:
        return Plan(config.epochs, batch, 0)
    epochs = int(np.clip(math.ceil(MIN_STEPS / per_epoch), 20, MAX_EPOCHS))
    return Plan(epochs, batch, max(10, epochs // 4))


@dataclass(frozen=True)
class EpochStats:
    """One epoch: mean training loss, validation loss, accuracy and macro-F1, the inner-selection
    macro-F1 (NaN without one), the lr at its end, wall seconds, and the fit's planned epochs (early
    stopping may end it sooner; 0 in histories written before it was recorded)."""

    epoch: int
    train_loss: float
    val_loss: float
    val_accuracy: float
    lr: float
    seconds: float
    val_f1: float = float("nan")
    select_f1: float = float("nan")
    epochs: int = 0


@dataclass
class HeadResult:
    """A trained head (the kept epoch's weights) with its history and validation predictions (N_val,).

    ``best_epoch``: the epoch whose weights were kept. ``val_proba``: (N_val, K) class probabilities.
    """

    head: nn.Module
    history: list[EpochStats]
    val_pred: np.ndarray
    resumed_from: int = 0
    best_epoch: int = 0
    val_proba: np.ndarray | None = None
    #: Each epoch run here (none before a resume): (N, K) probabilities of ``select`` when it picks the
    #: epoch, else of ``val`` (`geocrop.training.cv_epochs` fits calibration on epochs others chose).
    epoch_proba: list[np.ndarray] = field(default_factory=list)
    #: (labels (M,), logits (M, K)) of training series predicted by fits that did not train on them: a
    #: frozen body's logistic classifier's out-of-fold logits (`geocrop.training.frozen_logistic`), which
    #: `geocrop.training.any_head` calibrates it on; None for heads trained by epochs.
    held_out: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def kept(self) -> EpochStats | None:
        return next((h for h in self.history if h.epoch == self.best_epoch), None)

    @property
    def val_accuracy(self) -> float:
        kept = self.kept
        return kept.val_accuracy if kept else float("nan")


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


def class_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    """(K,) inverse-frequency weights, mean 1 over the samples; classes absent from ``y`` get weight 0."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    present = counts > 0
    w = np.zeros(n_classes)
    w[present] = len(y) / (present.sum() * counts[present])
    return w.astype(np.float32)


def _evaluate(
    head: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int, n_classes: int
) -> tuple[float, np.ndarray]:
    """Mean (unweighted) cross-entropy and (N, K) probabilities of ``head`` in eval mode."""
    head.eval()
    losses, probs = [], []
    with torch.inference_mode():
        for s in range(0, len(x), batch):
            logits = head(x[s : s + batch])
            losses.append(float(nn.functional.cross_entropy(logits, y[s : s + batch], reduction="sum")))
            probs.append(torch.softmax(logits.float(), dim=1).cpu())
    proba = torch.cat(probs).numpy() if probs else np.zeros((0, n_classes), dtype=np.float32)
    return sum(losses) / max(len(x), 1), proba


def _tensor(a: np.ndarray, dtype: Any, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=dtype)).to(device)


def fit_head(
    spec: Mapping[str, Any],
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    *,
    config: TrainConfig = TrainConfig(),
    final_lr: float | None = None,
    checkpoint: Path | None = None,
    progress: ProgressFn | None = None,
    select: tuple[np.ndarray, np.ndarray] | None = None,
    stop_after: int | None = None,
) -> HeadResult:
    """Train the head built from ``spec`` on ``train`` = (x (N, T, F) float32, y (N,) int64); score ``val``.

    ``select``: an inner validation set (from the training groups only) that picks the epoch and stops
    early when the config is adaptive; ``val`` is only reported. ``stop_after``: end after that many
    epochs of the planned schedule (its lr decay unchanged), the last kept. ``final_lr``: where the
    linear schedule ends (default: the initial lr / 100). ``checkpoint``: a ``.safetensors`` path written
    after each epoch; a matching checkpoint there (same spec, settings and data) is resumed from, a
    non-matching one is ignored with a warning and overwritten.
    """
    x_tr, y_tr = train
    x_va, y_va = val
    if len(x_tr) < 2 or len(x_va) < 1:
        raise InputError(f"too few series to train a head ({len(x_tr)} training, {len(x_va)} validation)")
    n_classes = int(spec["n_classes"])
    plan = plan_training(config, len(x_tr))
    selecting = select is not None and config.adaptive and len(select[0]) > 0
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    head = build_head(trained_spec(spec, config))  # a frozen body's classifier may be an MLP
    trainable = list(head.parameters())
    if config.init is not None:  # a pretrained body (`geocrop.training.head_init`)
        pre = read_init(config.init)
        check_init(pre, family=str(spec["name"]), steps=int(x_tr.shape[1]), in_features=int(x_tr.shape[2]))
        apply_init(head, pre)
        if config.fits_frozen_logistic:  # convex: fitted, not trained
            done = fit_frozen_logistic(head, train, val, seed=config.seed)
            pred = done.val_proba.argmax(axis=1)
            return HeadResult(
                done.head,
                [EpochStats(**done.stats)],
                pred,
                best_epoch=1,
                val_proba=done.val_proba,
                held_out=done.fit.held_out,
            )
        if config.freeze_init:
            trainable = freeze_body(head)
    head = head.to(device)
    best = copy.deepcopy(head)
    state = nn.ModuleDict({"head": head, "best": best})
    optimizer = torch.optim.AdamW(
        _param_groups(head, trainable, config), lr=config.initial_lr, weight_decay=config.weight_decay
    )
    generator = torch.Generator().manual_seed(config.seed)
    end_lr = config.initial_lr / 100 if final_lr is None else final_lr
    fingerprint = {
        "spec": json.loads(json.dumps(dict(spec))),
        "config": {k: v for k, v in asdict(config).items() if k != "device"},
        "plan": asdict(plan),
        "final_lr": end_lr,
        "data": data_digest(x_tr, y_tr, x_va, y_va, *(select or ())),
    }
    if stop_after is not None:  # only then, so checkpoints written before it still resume
        fingerprint["stop_after"] = stop_after
    history: list[EpochStats] = []
    epoch_proba: list[np.ndarray] = []
    start_epoch, best_epoch, best_score = 0, 0, -math.inf
    best_proba: np.ndarray | None = None  # validation probabilities of the kept epoch, when it ran here
    if checkpoint is not None and checkpoint.exists():
        ckpt = load_checkpoint(checkpoint)
        if ckpt.fingerprint == fingerprint:
            restore_checkpoint(ckpt, model=state, optimizer=optimizer, generator=generator)
            start_epoch = ckpt.epoch
            history = [EpochStats(**h) for h in ckpt.extra.get("history", [])]
            best_epoch, best_score = int(ckpt.extra["best_epoch"]), float(ckpt.extra["best_score"])
            log.info("resuming %s from epoch %d", spec.get("name"), start_epoch)
        else:
            log.warning("checkpoint %s belongs to another run; starting this head from scratch", checkpoint)
    weight = _tensor(class_weights(np.asarray(y_tr), n_classes), np.float32, device)
    xt, yt = _tensor(x_tr, np.float32, device), _tensor(y_tr, np.int64, device)
    xv, yv = _tensor(x_va, np.float32, device), _tensor(y_va, np.int64, device)
    xs, ys = (_tensor(select[0], np.float32, device), select[1]) if selecting and select else (None, None)
    per_epoch = math.ceil(len(xt) / plan.batch_size)
    total = per_epoch * plan.epochs
    labelled_augment = FilledSeriesAugment(config.date_dropout, config.resample_dates)
    probe_epochs = (
        round(config.probe * plan.epochs) if config.init is not None and not config.freeze_init else 0
    )
    for epoch in range(start_epoch, min(plan.epochs, stop_after or plan.epochs)):
        if plan.patience and best_epoch and epoch - best_epoch >= plan.patience:
            break
        t0 = time.perf_counter()
        head.train()
        probing = epoch < probe_epochs
        if config.freeze_init or probing:
            hold_body_eval(head)
        order = torch.randperm(len(xt), generator=generator).to(device)
        loss_sum, seen, lr = 0.0, 0, config.initial_lr
        for b in range(per_epoch):
            idx = order[b * plan.batch_size : (b + 1) * plan.batch_size]
            if len(idx) < 2:  # BatchNorm (InceptionTime) cannot train on a single sample
                continue
            lr = linear_lr(epoch * per_epoch + b, total, initial=config.initial_lr, final=end_lr)
            for group in optimizer.param_groups:
                group["lr"] = 0.0 if probing and group.get("body") else lr * group["lr_share"]
            batch = labelled_augment(xt[idx], generator) if labelled_augment.active else xt[idx]
            batch = augment_batch(batch, generator) if config.augmenting else batch
            loss = nn.functional.cross_entropy(head(batch), yt[idx], weight=weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += float(loss.detach()) * len(idx)
            seen += len(idx)
        val_loss, proba = _evaluate(head, xv, yv, plan.batch_size * 4, n_classes)
        pred = proba.argmax(axis=1)
        select_f1, held = float("nan"), proba
        if xs is not None and ys is not None:
            _, held = _evaluate(head, xs, _tensor(ys, np.int64, device), plan.batch_size * 4, n_classes)
            select_f1 = macro_f1(ys, held.argmax(axis=1), n_classes)
        epoch_proba.append(held)
        score = select_f1 if xs is not None else float(epoch)  # without selection: the last epoch
        if score > best_score:
            best_score, best_epoch = score, epoch + 1
            best.load_state_dict(head.state_dict())
            best_proba = proba
        stats = EpochStats(
            epoch=epoch + 1,
            train_loss=loss_sum / max(seen, 1),
            val_loss=val_loss,
            val_accuracy=float((pred == y_va).mean()),
            lr=lr,
            seconds=time.perf_counter() - t0,
            val_f1=macro_f1(y_va, pred, n_classes),
            select_f1=select_f1,
            epochs=plan.epochs,
        )
        history.append(stats)
        if checkpoint is not None:  # before reporting, so an interrupt in the callback loses no epoch
            save_checkpoint(
                checkpoint,
                model=state,
                optimizer=optimizer,
                epoch=epoch + 1,
                fingerprint=fingerprint,
                generator=generator,
                extra={
                    "history": [asdict(h) for h in history],
                    "best_epoch": best_epoch,
                    "best_score": best_score,
                },
            )
        if progress is not None:
            progress(stats)
    if selecting and best_epoch == plan.epochs:
        warnings.warn(
            f"the {spec.get('name')} head still improved at its last epoch ({plan.epochs}); "
            "it may be underfit: give more `epochs`",
            UnderfitWarning,
            stacklevel=2,
        )
    if best_proba is None:  # the kept epoch ran before a resume: score its weights once more
        _, best_proba = _evaluate(best, xv, yv, plan.batch_size * 4, n_classes)
    _warn_if_underfit(best, xt, yt, plan.batch_size, n_classes, str(spec.get("name")))
    return HeadResult(
        head=best.cpu().eval(),
        history=history,
        val_pred=best_proba.argmax(axis=1),
        resumed_from=start_epoch,
        best_epoch=best_epoch,
        val_proba=best_proba,
        epoch_proba=epoch_proba,
    )


def _param_groups(
    head: nn.Module, trainable: list[nn.Parameter], config: TrainConfig
) -> list[dict[str, Any]]:
    """Optimiser groups with their share of the scheduled lr: a fine-tuned pretrained body at
    ``config.body_lr`` (``body``: held at 0 while ``probe`` lasts), everything else (and every head
    without ``init``) at 1."""
    if config.init is None or config.freeze_init or (config.body_lr == 1 and not config.probe):
        return [{"params": trainable, "lr_share": 1.0, "body": False}]
    body = [p for n, p in head.named_parameters() if not n.startswith(CLASSIFIER_PREFIX)]
    rest = [p for n, p in head.named_parameters() if n.startswith(CLASSIFIER_PREFIX)]
    return [
        {"params": body, "lr_share": config.body_lr, "body": True},
        {"params": rest, "lr_share": 1.0, "body": False},
    ]


def _warn_if_underfit(
    head: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int, n_classes: int, name: str
) -> None:
    """A head whose kept weights do not fit even their own training data well is named in a warning."""
    _, proba = _evaluate(head, x, y, batch * 4, n_classes)
    f1 = macro_f1(y.cpu().numpy(), proba.argmax(axis=1), n_classes)
    if f1 < 0.6:
        warnings.warn(
            f"the {name} head reaches only {f1:.2f} macro-F1 on its own training series: it is underfit; "
            "give more `epochs`, a larger head, or more training samples",
            UnderfitWarning,
            stacklevel=3,
        )
