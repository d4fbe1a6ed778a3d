"""Decision-tree ensembles (RandomForest, gradient boosting) as a head the mapping engine runs like any other.

A crop mapper compares every method with a RandomForest first, so geocrop ships one (and a gradient-
boosted ensemble) as heads: trained by scikit-learn (`geocrop.training.trees`), stored as plain arrays in
the bundle's safetensors (no pickle: loading runs no code), and evaluated here in torch, so `geocrop map`
applies them on the CPU or a GPU through the same engine as the deep heads.

All trees are packed into flat node arrays. Node ``i`` splits on flattened input feature ``feature[i]``
(the series ``(T, F)`` flattened time-major): ``x <= threshold[i]`` goes to ``left[i]``, else
``right[i]``; a NaN goes left where ``nan_left[i]``. A leaf has ``feature[i] = -1`` and points to itself,
so every tree is walked ``depth`` times in lockstep for a whole batch. ``value[i]`` is the leaf's (K,)
output. ``combine``:

- ``"mean_proba"`` (RandomForest): the mean over trees of the leaves' class probabilities; the head
  returns their log, so a softmax gives the forest's probabilities back;
- ``"sum_logits"`` (gradient boosting): ``bias`` plus the sum over trees of the leaves' raw scores (each
  tree scores one class), the softmax's input as in scikit-learn.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from geocrop.models.registry import register_head

Combine = Literal["mean_proba", "sum_logits"]


@register_head("trees")
class TreeEnsemble(nn.Module):
    """(batch, T, F) -> (batch, n_classes) logits from ``n_trees`` packed trees of ``n_nodes`` nodes."""

    roots: torch.Tensor
    feature: torch.Tensor
    threshold: torch.Tensor
    left: torch.Tensor
    right: torch.Tensor
    nan_left: torch.Tensor
    value: torch.Tensor
    bias: torch.Tensor

    def __init__(
        self,
        *,
        in_features: int,
        steps: int,
        n_classes: int,
        n_trees: int,
        n_nodes: int,
        depth: int,
        combine: Combine = "mean_proba",
        kind: str = "rf",
    ) -> None:
        super().__init__()
        if combine not in ("mean_proba", "sum_logits"):
            raise ValueError(f"combine={combine!r}; expected 'mean_proba' or 'sum_logits'")
        self.spec = {
            "name": "trees",
            "in_features": in_features,
            "steps": steps,
            "n_classes": n_classes,
            "n_trees": n_trees,
            "n_nodes": n_nodes,
            "depth": depth,
            "combine": combine,
            "kind": kind,
        }
        self.in_features, self.steps, self.depth, self.combine = in_features, steps, depth, combine
        self.register_buffer("roots", torch.zeros(n_trees, dtype=torch.int64))
        self.register_buffer("feature", torch.full((n_nodes,), -1, dtype=torch.int64))
        self.register_buffer("threshold", torch.zeros(n_nodes, dtype=torch.float32))
        self.register_buffer("left", torch.zeros(n_nodes, dtype=torch.int64))
        self.register_buffer("right", torch.zeros(n_nodes, dtype=torch.int64))
        self.register_buffer("nan_left", torch.zeros(n_nodes, dtype=torch.bool))
        self.register_buffer("value", torch.zeros(n_nodes, n_classes, dtype=torch.float32))
        self.register_buffer("bias", torch.zeros(n_classes, dtype=torch.float32))

    def leaves(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, n_trees) leaf index reached by each series in each tree."""
        flat = x.reshape(x.shape[0], -1).float()
        if flat.shape[1] != self.steps * self.in_features:
            expected = f"{self.steps} steps x {self.in_features} features"
            raise ValueError(f"tree ensemble expects {expected}, got {tuple(x.shape[1:])}")
        node = self.roots.unsqueeze(0).expand(flat.shape[0], -1).contiguous()
        for _ in range(self.depth):
            feat = self.feature[node]
            v = flat.gather(1, feat.clamp(min=0))
            go_left = (v <= self.threshold[node]) | (torch.isnan(v) & self.nan_left[node])
            step = torch.where(go_left, self.left[node], self.right[node])
            node = torch.where(feat < 0, node, step)
        return node

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values = self.value[self.leaves(x)]  # (batch, n_trees, K)
        if self.combine == "sum_logits":
            return values.sum(dim=1) + self.bias
        return torch.log(values.mean(dim=1).clamp_min(1e-7))
