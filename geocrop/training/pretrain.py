"""Contrastive pretraining of the per-pixel encoders: bi-modal (the paper's Eq. 1) or uni-modal SCARF.

(``mode`` temporal, pretraining a temporal head by masked reconstruction, is dispatched from `pretrain`
to `geocrop.training.temporal_pretrain`.)

``pretrain(config)`` turns an S2 source (+ a Planet source) into a model bundle, in ``config.out``::

    pairs/                      pair shards + manifest (`geocrop.data.pairs`), built once, resumable
    checkpoints/last.safetensors   model + Adam + RNG states after the last finished epoch
    history.json, history.csv   loss and held-out retrieval accuracy per epoch
    encoder.safetensors (+ .json)  the bundle: E_s (``backbone.``), E_p (``planet_backbone.``), projectors

Bi-modal: ``z_s = P_s(E_s(corrupt(x_s)))``, ``z_p = P_p(E_p(corrupt(x_p)))``, loss `bimodal_ntxent`
(Eq. 1). Uni-modal (the paper's SCARF baseline): two corrupted views of ``x_s`` through E_s + P_s, loss
`ntxent` (both as `ContrastiveLoss`). Inputs are standardised with the training pairs' per-feature mean/std
first; SCARF draws replacements from the (global) batch. Adam, constant learning rate (the paper gives no
schedule), seeded.

Determinism and resume: epoch ``e`` reads batches in an order fixed by ``(seed, e)`` and draws corruption
from a generator seeded by ``(seed, e)``; a checkpoint is written atomically after every epoch. A run killed
at any point and rerun with the same command restarts after the last finished epoch and ends with the same
weights (bit for bit on the CPU) as an uninterrupted one. The epoch count is not part of the trajectory,
so ``--epochs`` may be raised to continue training.

Distributed (torchrun): every rank reads the same global batch, standardises and corrupts it with the same
generator, and trains on its own disjoint slice under DistributedDataParallel; projections are all-gathered
with gradients (`geocrop.training.distributed`) so each rank's anchors see every rank's negatives, and the
averaged gradients equal the single-process ones for the concatenated batch.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from geocrop.core.bands import PLANET_FEATURES, S2_BANDS
from geocrop.data.pair_sampling import second_features
from geocrop.data.pairs import PairSet, build_pairs
from geocrop.errors import BundleError, InputError
from geocrop.io.atomic import remove_stale_partials
from geocrop.models.contrastive import ContrastiveModel
from geocrop.models.device import resolve_device
from geocrop.training.checkpoint import load_checkpoint, restore_checkpoint, save_checkpoint
from geocrop.training.corruption import ScarfCorruption
from geocrop.training.distributed import DistInfo, cleanup_distributed, gather_with_offset, init_distributed
from geocrop.training.graph_step import TrainStep
from geocrop.training.losses import ContrastiveLoss
from geocrop.training.pretrain_config import PretrainConfig, PretrainResult, validate
from geocrop.training.pretrain_outputs import Progress, write_bundle, write_history
from geocrop.training.retrieval import retrieval_accuracy
from geocrop.training.temporal_config import TemporalPretrainConfig
from geocrop.training.temporal_pretrain import pretrain_temporal

__all__ = [
    "BUNDLE_NAME",
    "ContrastiveModel",
    "PretrainConfig",
    "PretrainResult",
    "TemporalPretrainConfig",
    "pretrain",
]

log = logging.getLogger(__name__)

N_S2 = len(S2_BANDS)
#: Held-out pairs used for the retrieval signal, and K (candidates per query).
EVAL_ROWS = 8192
BUNDLE_NAME = "encoder.safetensors"


def _pairs(config: PretrainConfig, info: DistInfo) -> PairSet:
    root = config.out / "pairs"
    if config.s2 is not None and info.is_main:
        second = config.second_view()
        # The pair settings PretrainConfig shares with build_pairs, by name (no forwarding list).
        shared = {
            n: getattr(config, n) for n in inspect.signature(build_pairs).parameters if hasattr(config, n)
        }
        planet = config.planet if second == "planetscope" else None
        build_pairs(**shared | {"planet": planet, "second_modality": second, "out_dir": root})
    if info.world_size > 1:
        dist.barrier()
    pairs = PairSet.open(root)
    if config.mode == "bimodal" and not pairs.bimodal:
        raise BundleError(
            f"pairs in {root} hold Sentinel-2 only; `mode` bimodal needs them rebuilt with `planet` or `s1`",
            param="mode",
        )
    if config.mode == "bimodal" and config.s2 is not None and pairs.second_modality != config.second_view():
        raise BundleError(
            f"pairs in {root} pair Sentinel-2 with {pairs.second_modality}, this run asks for "
            f"{config.second_view()}; use another `out`",
            param="out",
        )
    return pairs


def _epoch_seed(seed: int, epoch: int) -> int:
    return int(np.random.SeedSequence([seed, epoch, 0xC0]).generate_state(1)[0])


def pretrain(
    config: PretrainConfig | TemporalPretrainConfig,
    *,
    progress: bool = True,
    on_epoch_end: Callable[[int, Mapping[str, Any]], None] | None = None,
) -> PretrainResult:
    """Build pairs (if needed), train for ``config.epochs`` epochs (resuming), and write the bundle.

    A `TemporalPretrainConfig` runs temporal pretraining of a head instead
    (`geocrop.training.temporal_pretrain`). ``on_epoch_end(epoch, record)`` is called after each epoch's
    checkpoint is on disk (tests use it to simulate a kill). Raises `InputError`/`SourceError`/`NoDataError`
    for bad input and `BundleError` when ``config.out`` holds a run made with other settings. Temporaries
    a killed run left in ``config.out`` (pair shards, checkpoints) are removed first.
    """
    remove_stale_partials(config.out, recursive=True)
    if isinstance(config, TemporalPretrainConfig):
        return pretrain_temporal(config, progress=progress, on_epoch_end=on_epoch_end)
    validate(config)
    info = init_distributed(device="cuda" if config.device.startswith("cuda") else "cpu")
    try:
        return _run(config, info, progress=progress, on_epoch_end=on_epoch_end)
    finally:
        cleanup_distributed()


def _run(
    config: PretrainConfig,
    info: DistInfo,
    *,
    progress: bool,
    on_epoch_end: Callable[[int, Mapping[str, Any]], None] | None,
) -> PretrainResult:
    device = resolve_device(config.device, local_rank=info.local_rank)
    if config.threads:
        torch.set_num_threads(config.threads)
    ckpt_path = config.out / "checkpoints" / "last.safetensors"
    fingerprint = config.fingerprint()
    ckpt = load_checkpoint(ckpt_path) if ckpt_path.exists() else None
    if ckpt is not None and ckpt.fingerprint != fingerprint:
        raise BundleError(
            f"{config.out} holds a run made with {ckpt.fingerprint}; this run asks for {fingerprint}; "
            "rerun with the original options or choose another `out`",
            param="out",
        )
    pairs = _pairs(config, info)
    modality = pairs.second_modality if config.mode == "bimodal" else None
    n_second = second_features(modality, pairs.second_window) if modality is not None else 0
    n_feat = N_S2 + n_second
    mean_np, std_np = pairs.stats()
    mean = torch.from_numpy(mean_np[:n_feat]).to(device)
    std = torch.from_numpy(std_np[:n_feat]).to(device)
    train = pairs.train
    batch = min(config.batch_size, train.total) // info.world_size * info.world_size
    if batch < 2 * info.world_size:
        raise InputError(
            f"only {train.total} training pairs; need at least {2 * info.world_size} for a batch"
        )

    torch.manual_seed(config.seed)
    model = ContrastiveModel(
        mode=config.mode, width=config.width, depth=config.depth, second_features=n_second or PLANET_FEATURES
    ).to(device)
    # capturable: Adam's step counters on the GPU, so one process's step can replay from a CUDA graph.
    graphed = device.type == "cuda" and info.world_size == 1
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, capturable=graphed)
    generator = torch.Generator(device=device)
    history: list[dict[str, Any]] = []
    start_epoch = 0
    if ckpt is not None:
        restore_checkpoint(ckpt, model=model, optimizer=optimizer, generator=generator)
        history = list(ckpt.extra.get("history", []))
        start_epoch = ckpt.epoch
        if info.is_main:
            log.info("resuming %s after epoch %d", config.out, start_epoch)
    ddp: nn.Module = model
    if info.world_size > 1:
        ddp = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    loss_fn = ContrastiveLoss(config.mode, config.temperature)
    corrupt = ScarfCorruption(config.corruption)
    # A seeded random sample of the held-out pairs, so the K candidates of a query are random held-out
    # pixels from any date and field (the held-out split is small: at most 1,000 pairs per date).
    held_np = pairs.heldout.read_all()
    pick = np.random.default_rng([config.seed, 0xE7]).permutation(len(held_np))[:EVAL_ROWS]
    heldout = torch.from_numpy(np.ascontiguousarray(held_np[pick][:, :n_feat])).to(device)
    heldout = (heldout - mean) / std
    local = batch // info.world_size
    lo, hi = info.rank * local, (info.rank + 1) * local
    steps = train.batches_per_epoch(batch)

    def evaluate() -> dict[str, float]:
        model.eval()
        gen = torch.Generator(device=device).manual_seed(_epoch_seed(config.seed, 1 << 30))
        with torch.no_grad():
            if config.mode == "bimodal":
                z_a, z_b = model(heldout[:, :N_S2], heldout[:, N_S2:])
            else:
                z_a, z_b = model(corrupt(heldout, generator=gen), corrupt(heldout, generator=gen))
        model.train()
        score = retrieval_accuracy(z_a, z_b, candidates=config.retrieval_candidates)
        record = {
            "retrieval_top1": score.accuracy,
            "chance": score.chance,
            "candidates": score.candidates,
            "retrieval_top10": score.top10,
            "retrieval_median_rank": score.median_rank,
        }
        if config.mode == "bimodal":  # and back: the second view's pixel finds its S2 partner
            record["retrieval_top1_back"] = retrieval_accuracy(
                z_b, z_a, candidates=config.retrieval_candidates
            ).accuracy
        return record

    def step_loss(view_a: torch.Tensor, view_b: torch.Tensor) -> torch.Tensor:
        z_a, z_b = ddp(view_a, view_b)
        if info.world_size > 1:
            all_a, offset = gather_with_offset(z_a)
            all_b, _ = gather_with_offset(z_b)
            return loss_fn(z_a, z_b, negatives_a=all_a, negatives_b=all_b, offset=offset)
        return loss_fn(z_a, z_b)

    # On one GPU the step replays from a CUDA graph (at the paper's batch it is bound by kernel launches,
    # geocrop.training.graph_step); under DDP and on the CPU it runs eagerly.
    train_step = TrainStep(step_loss, optimizer, device=device, graph=graphed)
    initial = ckpt.extra.get("initial") if ckpt is not None else (evaluate() if info.is_main else None)
    bar = Progress(enabled=progress and info.is_main)
    for epoch in range(start_epoch, config.epochs):
        generator.manual_seed(_epoch_seed(config.seed, epoch))
        total = torch.zeros((), device=device)
        bar.start(epoch, config.epochs, steps)
        for rows in train.iter_batches(batch, seed=config.seed, epoch=epoch):
            x = (torch.from_numpy(rows[:, :n_feat]).to(device, non_blocking=True) - mean) / std
            if config.mode == "bimodal":
                view_a = corrupt(x[:, :N_S2], generator=generator)[lo:hi]
                view_b = corrupt(x[:, N_S2:], generator=generator)[lo:hi]
            else:
                view_a = corrupt(x, generator=generator)[lo:hi]
                view_b = corrupt(x, generator=generator)[lo:hi]
            total += train_step(view_a, view_b)
            bar.advance()
        if info.world_size > 1:
            dist.all_reduce(total)
            total /= info.world_size
        record: dict[str, Any] = {"epoch": epoch + 1, "loss": float(total) / max(steps, 1), "steps": steps}
        if info.is_main:
            record.update(evaluate())
            history.append(record)
            save_checkpoint(
                ckpt_path,
                model=model,
                optimizer=optimizer,
                epoch=epoch + 1,
                fingerprint=fingerprint,
                generator=generator,
                extra={"history": history, "initial": initial},
            )
            write_history(config.out, history)
            bar.finish(record)
            log.info(
                "epoch %d/%d loss %.4f retrieval %.3f (chance %.4f)",
                epoch + 1,
                config.epochs,
                record["loss"],
                record["retrieval_top1"],
                record["chance"],
            )
        if info.world_size > 1:
            dist.barrier()
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, record)
    bundle = config.out / BUNDLE_NAME
    if info.is_main:
        write_history(config.out, history)
        write_bundle(bundle, model=model, config=config, pairs=pairs, history=history, batch=batch, info=info)
    return PretrainResult(
        out=config.out, bundle=bundle, history=history, resumed_from=start_epoch, is_main=info.is_main
    )
