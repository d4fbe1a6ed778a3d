"""The contrastive objective of temporal pretraining (``objective="contrastive"``).

Each series ``x`` gives two views ``a = A(x)`` and ``b = A'(x)``, independent draws of the series
augmentations (`series_augment`: its observed dates resampled and jittered, then whole dates dropped);
the head's pooled body and a projector map them to ``z_a``, ``z_b``, and the symmetric NT-Xent loss of
SimCLR (`geocrop.training.losses.ntxent`, the paper's uni-modal form) pulls the two views of a series
together and pushes the other series of the batch away:

    L = 1/2N sum_i [ l(z_a_i, z_b_i) + l(z_b_i, z_a_i) ],
    l(u_i, v_i) = -log exp(sim(u_i, v_i)/tau)
                  / (sum_k exp(sim(u_i, v_k)/tau) + sum_{k != i} exp(sim(u_i, u_k)/tau))

The views are what make the task: the same field under another acquisition and cloud pattern must stay
recognisable, which is what a classifier of fields seen in other years and places needs. The held-out
signal is top-1 retrieval of a held-out series' second view among all held-out series (chance 1/N).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from geocrop.models.series_contrast import ContrastiveSeriesModel
from geocrop.training.losses import ContrastiveLoss
from geocrop.training.retrieval import retrieval_accuracy
from geocrop.training.series_augment import SeriesAugment

__all__ = ["contrastive_scorer", "contrastive_step"]


def contrastive_step(
    model: ContrastiveSeriesModel,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    augment: SeriesAugment,
    loss_fn: ContrastiveLoss,
    generator: torch.Generator,
) -> torch.Tensor:
    """One optimiser step on two augmented views of x (B, T, C) (standardised, NaN gaps); the loss."""
    observed = torch.isfinite(x).all(dim=-1)
    view_a = augment(x, observed, generator)
    view_b = augment(x, observed, generator)
    loss = loss_fn(model(view_a), model(view_b))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()


def contrastive_scorer(
    model: ContrastiveSeriesModel, x: torch.Tensor, augment: SeriesAugment, seed: int
) -> Callable[[], dict[str, float]]:
    """A function giving held-out retrieval top-1 between two fixed augmented views of ``x``."""
    observed = torch.isfinite(x).all(dim=-1)
    gen = torch.Generator().manual_seed(seed)
    view_a, view_b = augment(x, observed, gen), augment(x, observed, gen)

    def score() -> dict[str, float]:
        if len(x) < 2:
            return {"heldout_retrieval_top1": float("nan"), "chance": float("nan")}
        model.eval()
        with torch.no_grad():
            found = retrieval_accuracy(model(view_a), model(view_b), candidates=len(x))
        model.train()
        return {"heldout_retrieval_top1": found.accuracy, "chance": found.chance}

    return score
