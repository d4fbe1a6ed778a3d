"""Temporal pretraining: a head family learns the crop calendar by reconstructing hidden observations.

``pretrain_temporal(config)`` reads the unlabelled series of a table or cube (`temporal_data`), and trains
a `MaskedSeriesModel` around the chosen head. For each series ``x`` (T steps x C standardised bands) with
observed steps ``O`` (clear in every band; cloud-masked and missing dates are never targets), a random
set ``H`` of observed dates is hidden: each observed date with probability ``mask_ratio``, at least one,
never all. The head sees the series re-filled from the visible dates ``O \\ H`` only (the grid's linear
fill, so nothing of a hidden value leaks into its neighbours), with the learned mask vector at ``H``,
optionally augmented (`series_augment`). The loss, on the hidden dates only:

    L = 1/|H| sum_{t in H} 1/|B| sum_{b in B} (x_hat[t, b] - x[t, b])^2
        + lambda * 1/|H_s| sum_{t in H_s} 1/2 sum_{p in VV,VH} (s_hat[t, p] - s[t, p])^2

``B``: the bands the source observed (bands the band rule filled are not targets); ``s``: Sentinel-1 in dB
standardised, ``H_s`` the hidden dates that have it; ``lambda = second_weight``. The first term is SITS-BERT's
masked-observation objective (Yuan and Lin 2021), the second the successor of the paper's bi-modal method
(Patnala et al. 2025) predicting the second sensor at the hidden dates, Sentinel-1 standing in for
PlanetScope.

Outputs in ``config.out``: ``checkpoints/last.safetensors`` after every epoch (a rerun resumes, bit for
bit on the CPU), ``history.json``/``.csv`` (training loss; held-out loss beside the loss of plain linear
interpolation of the same hidden dates, the baseline a useful head must beat) and ``head.safetensors``
(`geocrop.training.head_bundle`), which ``geocrop train --init`` starts from.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from geocrop.models.device import resolve_device
from geocrop.models.masked_series import MaskedSeriesModel
from geocrop.models.series_contrast import ContrastiveSeriesModel
from geocrop.training.checkpoint import load_checkpoint, restore_checkpoint, save_checkpoint
from geocrop.training.fit import linear_lr
from geocrop.training.head_bundle import write_head_bundle
from geocrop.training.losses import ContrastiveLoss
from geocrop.training.pretrain_config import PretrainResult
from geocrop.training.series_augment import SeriesAugment, fill_gaps
from geocrop.training.temporal_config import FINAL_LR_SHARE, TemporalPretrainConfig, plan_pretraining
from geocrop.training.temporal_contrast import contrastive_scorer, contrastive_step
from geocrop.training.temporal_data import load_series
from geocrop.training.temporal_outputs import EpochBar, describe_epoch, head_metadata, write_history

__all__ = [
    "HEAD_BUNDLE",
    "Objective",
    "describe_epoch",
    "hide_dates",
    "masked_loss",
    "pretrain_temporal",
    "train_step",
]

log = logging.getLogger(__name__)
HEAD_BUNDLE = "head.safetensors"


def hide_dates(observed: torch.Tensor, ratio: float, generator: torch.Generator) -> torch.Tensor:
    """(B, T) observed -> (B, T) hidden: each observed date with probability ``ratio``, at least one per
    series with two or more observed dates, never all of them (one stays visible)."""
    draw = torch.rand(observed.shape, generator=generator).to(observed.device)
    hidden = observed & (draw < ratio)
    score = torch.where(observed, draw, torch.full_like(draw, 2.0))
    rows = torch.arange(observed.shape[0], device=observed.device)
    lowest = score.argmin(dim=1)  # each series' first pick, forced hidden when none was
    enough = observed.sum(dim=1) >= 2
    none = enough & ~hidden.any(dim=1)
    hidden[rows[none], lowest[none]] = True
    all_hidden = enough & (hidden == observed).all(dim=1)
    keep = torch.where(observed, -draw, torch.full_like(draw, 2.0)).argmin(dim=1)  # largest draw stays
    hidden[rows[all_hidden], keep[all_hidden]] = False
    return hidden & enough.unsqueeze(1)


def masked_loss(
    predicted: torch.Tensor, target: torch.Tensor, where: torch.Tensor, channels: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean over the (B, T) steps ``where`` of the mean squared error over ``channels`` (a (C,) bool, all
    when None); NaN targets outside ``where`` are ignored. 0 when ``where`` is empty."""
    if channels is not None:
        predicted, target = predicted[..., channels], target[..., channels]
    diff = torch.where(where.unsqueeze(-1), predicted - torch.nan_to_num(target), torch.zeros_like(predicted))
    return diff.pow(2).mean(dim=-1).sum() / where.sum().clamp(min=1)


@dataclass(frozen=True)
class Objective:
    """What one step optimises: the hidden share, the S1 weight, the target bands (C,) and augmentation."""

    mask_ratio: float
    second_weight: float
    targets: torch.Tensor
    augment: SeriesAugment = field(default_factory=SeriesAugment)


def train_step(
    model: MaskedSeriesModel,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    s: torch.Tensor | None,
    objective: Objective,
    generator: torch.Generator,
) -> torch.Tensor:
    """One optimiser step on a batch: x (B, T, C) standardised with NaN gaps, s (B, T, 2) or None.

    Hides dates, re-fills the visible ones (augmented when asked), reconstructs, and steps on the loss of
    the module docstring. Returns the loss (detached).
    """
    observed = torch.isfinite(x).all(dim=-1)
    hidden = hide_dates(observed, objective.mask_ratio, generator)
    visible = observed & ~hidden
    aug = objective.augment
    x_in = aug(x, visible, generator) if aug.active else fill_gaps(x, visible)
    bands, second = model(x_in, hidden)
    loss = masked_loss(bands, x, hidden, objective.targets)
    if second is not None and s is not None:
        loss = loss + objective.second_weight * masked_loss(second, s, hidden & torch.isfinite(s).all(-1))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()


def _standardise(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-channel mean and std over the finite values, and the standardised copy (NaN stays NaN)."""
    flat = values.reshape(-1, values.shape[-1])
    with np.errstate(all="ignore"):
        mean = np.nan_to_num(np.nanmean(flat, axis=0), nan=0.0)
        std = np.maximum(np.nan_to_num(np.nanstd(flat, axis=0), nan=1.0), 1e-6)
    return mean.astype(np.float32), std.astype(np.float32), ((values - mean) / std).astype(np.float32)


def _epoch_seed(seed: int, epoch: int) -> int:
    return int(np.random.SeedSequence([seed, epoch, 0x7E]).generate_state(1)[0])


def pretrain_temporal(
    config: TemporalPretrainConfig,
    *,
    progress: bool = True,
    on_epoch_end: Callable[[int, Mapping[str, Any]], None] | None = None,
) -> PretrainResult:
    """Read the series, train for the planned epochs (resuming), write history and ``head.safetensors``.

    ``on_epoch_end(epoch, record)`` runs after each epoch's checkpoint is on disk. Raises `InputError`
    for data that cannot be pretrained along time and `BundleError` when ``config.out`` holds a run made
    with other settings.
    """
    from geocrop.errors import BundleError

    if config.threads:
        torch.set_num_threads(config.threads)
    second = config.second_modality if config.objective == "masked" else "none"  # contrastive: S2 views
    data = load_series(
        config.s2,
        steps=config.steps,
        second=second,
        s1=config.s1,
        seed=config.seed,
        allow_any_asset_href=config.allow_any_asset_href,
    )
    n = len(data.values)
    order = np.random.default_rng([config.seed, 0x4E1D]).permutation(n)
    n_held = round(config.heldout * n) if n >= 10 else 0
    held_idx, train_idx = np.sort(order[:n_held]), np.sort(order[n_held:])
    plan = plan_pretraining(config, len(train_idx))
    fingerprint = config.fingerprint(plan, len(train_idx))
    ckpt_path = config.out / "checkpoints" / "last.safetensors"
    ckpt = load_checkpoint(ckpt_path) if ckpt_path.exists() else None
    if ckpt is not None and ckpt.fingerprint != fingerprint:
        raise BundleError(
            f"{config.out} holds a run made with {ckpt.fingerprint}; this run asks for {fingerprint}; "
            "rerun with the original options or choose another `out`",
            param="out",
        )
    device = resolve_device(config.device)
    mean, std, x_all = _standardise(data.values)
    s_all, second_stats = None, None
    if data.second is not None:
        s_mean, s_std, s_all = _standardise(data.second)
        second_stats = (s_mean, s_std)
    targets = torch.tensor([b not in data.filled_bands for b in data.bands], device=device)
    spec = {"name": config.head, "in_features": len(data.bands), **config.params()}
    if config.head == "tempcnn":
        spec["steps"] = data.grid.steps
    torch.manual_seed(config.seed)
    n_second = 0 if s_all is None else s_all.shape[-1]
    model: MaskedSeriesModel | ContrastiveSeriesModel
    if config.objective == "contrastive":
        model = ContrastiveSeriesModel(spec).to(device)
    else:
        model = MaskedSeriesModel(spec, steps=data.grid.steps, second_features=n_second).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    generator = torch.Generator()
    history: list[dict[str, Any]] = []
    start = 0
    if ckpt is not None:
        restore_checkpoint(ckpt, model=model, optimizer=optimizer, generator=generator)
        history, start = list(ckpt.extra.get("history", [])), ckpt.epoch
        log.info("resuming %s after epoch %d", config.out, start)
    augment = config.augment()
    x_train = torch.from_numpy(x_all[train_idx]).to(device)
    s_train = torch.from_numpy(s_all[train_idx]).to(device) if s_all is not None else None
    held = torch.from_numpy(x_all[held_idx]).to(device)
    if isinstance(model, ContrastiveSeriesModel):
        loss_fn = ContrastiveLoss("unimodal", config.temperature)
        evaluate = contrastive_scorer(model, held, augment, config.seed + 1)

        def step_on(rows: torch.Tensor) -> torch.Tensor:
            assert isinstance(model, ContrastiveSeriesModel)
            return contrastive_step(model, optimizer, x_train[rows], augment, loss_fn, generator)
    else:
        evaluate = _heldout_scorer(model, held, None if s_all is None else s_all[held_idx], config, targets)
        objective = Objective(config.mask_ratio, config.second_weight, targets, augment)

        def step_on(rows: torch.Tensor) -> torch.Tensor:
            assert isinstance(model, MaskedSeriesModel)
            s = s_train[rows] if s_train is not None else None
            return train_step(model, optimizer, x_train[rows], s, objective, generator)

    steps = plan.steps_per_epoch(len(train_idx))
    end_lr = config.lr * FINAL_LR_SHARE
    bar = EpochBar(enabled=progress)
    for epoch in range(start, plan.epochs):
        generator.manual_seed(_epoch_seed(config.seed, epoch))
        model.train()
        perm = torch.randperm(len(train_idx), generator=generator).to(device)
        total = torch.zeros((), device=device)
        bar.start(epoch, plan.epochs, steps)
        for step in range(steps):
            for group in optimizer.param_groups:
                group["lr"] = linear_lr(
                    epoch * steps + step, plan.epochs * steps, initial=config.lr, final=end_lr
                )
            total += step_on(perm[step * plan.batch_size : (step + 1) * plan.batch_size])
            bar.advance()
        record: dict[str, Any] = {"epoch": epoch + 1, "loss": float(total) / steps, "steps": steps}
        record.update(evaluate())
        history.append(record)
        save_checkpoint(
            ckpt_path, model=model, optimizer=optimizer, epoch=epoch + 1, fingerprint=fingerprint,
            generator=generator, extra={"history": history},
        )  # fmt: skip
        write_history(config.out, history)
        bar.finish(record)
        log.info("%s", describe_epoch(record))
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, record)
    write_history(config.out, history)
    bundle = config.out / HEAD_BUNDLE
    meta = head_metadata(
        config, data, spec, plan, history, mean, std, second_stats, len(train_idx), len(held_idx)
    )
    state = {k: v.detach().cpu().numpy() for k, v in model.head.state_dict().items()}
    write_head_bundle(bundle, state, meta)
    return PretrainResult(config.out, bundle, history, start)


def _heldout_scorer(
    model: MaskedSeriesModel,
    x: torch.Tensor,
    s_np: np.ndarray | None,
    config: TemporalPretrainConfig,
    targets: torch.Tensor,
) -> Callable[[], dict[str, float]]:
    """A function scoring the model on the held-out series with one fixed draw of hidden dates."""
    device = targets.device
    observed = torch.isfinite(x).all(dim=-1)
    hidden = hide_dates(observed, config.mask_ratio, torch.Generator().manual_seed(config.seed + 1))
    x_in = fill_gaps(x, observed & ~hidden)
    interp = float(masked_loss(x_in, x, hidden, targets)) if len(x) else float("nan")
    s = torch.from_numpy(s_np).to(device) if s_np is not None else None

    def score() -> dict[str, float]:
        if not len(x):
            return {"heldout_loss": float("nan"), "heldout_interp_loss": float("nan")}
        model.eval()
        with torch.no_grad():
            bands, second = model(x_in, hidden)
        model.train()
        out = {"heldout_loss": float(masked_loss(bands, x, hidden, targets)), "heldout_interp_loss": interp}
        if second is not None and s is not None:
            out["heldout_second_loss"] = float(masked_loss(second, s, hidden & torch.isfinite(s).all(-1)))
        return out

    return score
