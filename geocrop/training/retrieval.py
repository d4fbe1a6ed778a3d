"""The pretraining learning signal: top-1 retrieval accuracy among K candidates, against chance 1/K.

For held-out pairs (fields never trained on), each query (an S2 pixel's projection) is compared by cosine
similarity with K candidates (the projections of K held-out Planet windows, its own among them); a hit is
when its own partner is the most similar. Chance is 1/K. The held-out rows are cut into consecutive groups
of K and the accuracy is the mean over the full groups. A rising accuracy far above chance shows that the
encoders learn what the two sensors share about a pixel; it needs no labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class RetrievalScore:
    """``accuracy`` over ``queries`` queries, each among ``candidates`` candidates; ``chance`` = 1/K."""

    accuracy: float
    candidates: int
    queries: int

    @property
    def chance(self) -> float:
        return 1.0 / self.candidates


@torch.no_grad()
def retrieval_accuracy(queries: torch.Tensor, keys: torch.Tensor, *, candidates: int) -> RetrievalScore:
    """Top-1 accuracy of retrieving ``keys[i]`` for ``queries[i]`` among groups of ``candidates`` rows.

    Args:
        queries: (N, D) projections of one modality (or view).
        keys: (N, D) projections of the other; row i is the partner of ``queries[i]``.
        candidates: K, the group size (clamped to N).
    """
    n = min(len(queries), len(keys))
    k = max(1, min(candidates, n))
    groups = n // k
    hits = 0
    for g in range(groups):
        q = F.normalize(queries[g * k : (g + 1) * k].float(), dim=1)
        c = F.normalize(keys[g * k : (g + 1) * k].float(), dim=1)
        best = (q @ c.T).argmax(dim=1)
        hits += int((best == torch.arange(k, device=best.device)).sum())
    return RetrievalScore(accuracy=hits / max(groups * k, 1), candidates=k, queries=groups * k)
