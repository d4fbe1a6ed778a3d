"""The pretraining learning signal: top-1 retrieval accuracy among K candidates, against chance 1/K.

For held-out pairs (fields never trained on), each query (an S2 pixel's projection) is compared by cosine
similarity with K candidates (the projections of K held-out Planet windows, its own among them); a hit is
when its own partner is the most similar. Chance is 1/K. The held-out rows are cut into consecutive groups
of K and the accuracy is the mean over the full groups. A rising accuracy far above chance shows that the
encoders learn what the two sensors share about a pixel; it needs no labels.

Top-1 alone cannot tell a partner that is a close second from one lost among the candidates (pixels of
one field are near-twins in both sensors, so a good encoder may still miss top-1). The partner's **rank**
(1 = most similar) says how far the encoder got: the score also keeps top-10 accuracy (chance 10/K) and
the median rank (chance (K + 1) / 2), the usual recall@k and median-rank figures of cross-modal retrieval.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class RetrievalScore:
    """Top-1 ``accuracy`` (chance 1/K), ``top10`` accuracy and the partner's ``median_rank`` (1 = first)
    over ``queries`` queries, each among ``candidates`` (K) candidates."""

    accuracy: float
    candidates: int
    queries: int
    top10: float = 0.0
    median_rank: float = 0.0

    @property
    def chance(self) -> float:
        return 1.0 / self.candidates

    @property
    def chance_median_rank(self) -> float:
        return (self.candidates + 1) / 2


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
    ranks = []
    for g in range(groups):
        q = F.normalize(queries[g * k : (g + 1) * k].float(), dim=1)
        c = F.normalize(keys[g * k : (g + 1) * k].float(), dim=1)
        sim = q @ c.T
        own = torch.arange(k, device=sim.device)
        hits += int((sim.argmax(dim=1) == own).sum())
        ranks.append(1 + (sim > sim[own, own][:, None]).sum(dim=1))  # candidates strictly closer, plus one
    if not ranks:
        return RetrievalScore(accuracy=0.0, candidates=k, queries=0)
    rank = torch.cat(ranks).double()
    return RetrievalScore(
        accuracy=hits / (groups * k),
        candidates=k,
        queries=groups * k,
        top10=float((rank <= 10).double().mean()),
        median_rank=float(rank.median()),
    )
