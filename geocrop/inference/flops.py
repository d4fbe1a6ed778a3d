"""Forward FLOPs of a model, counted from its layers (for `--dry-run` estimates and the benchmark).

``torch.utils.flop_counter.FlopCounterMode`` counts matmuls, convolutions and attention as they run; the
fused recurrent kernels (``nn.LSTM``/``nn.GRU``) are invisible to it, so their FLOPs are added analytically:
per timestep, layer and direction ``2 * gates * (input * hidden + hidden * hidden)`` (4 gates for an LSTM,
3 for a GRU). A multiply-add counts as 2 FLOPs throughout.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["count_flops_per_pixel", "estimate_flops_per_pixel", "module_flops"]


def _recurrent_flops(module: nn.Module, steps: int) -> int:
    total = 0
    for sub in module.modules():
        if isinstance(sub, nn.LSTM | nn.GRU):
            gates = 4 if isinstance(sub, nn.LSTM) else 3
            dirs = 2 if sub.bidirectional else 1
            hidden = sub.hidden_size
            for layer in range(sub.num_layers):
                inputs = sub.input_size if layer == 0 else hidden * dirs
                total += 2 * gates * (inputs * hidden + hidden * hidden) * steps * dirs
    return total


def module_flops(module: nn.Module, example: torch.Tensor, *, steps: int = 1) -> int:
    """FLOPs of one forward pass of ``module`` on the batch ``example`` (recurrent layers analytically).

    Counted on a copy in training mode with autograd on: that is the plain path of every layer (in
    inference ResMLP folds its residual adds into in-place ``addmm_``, which the counter does not see;
    the same FLOPs), and the copy keeps the real module's BatchNorm statistics untouched.
    """
    probe = copy.deepcopy(module).train()
    with torch.enable_grad(), FlopCounterMode(display=False) as counter:
        probe(example)
    return int(counter.get_total_flops()) + _recurrent_flops(module, steps) * int(example.shape[0])


def count_flops_per_pixel(
    backbone: nn.Module | None,
    head: nn.Module,
    *,
    steps: int,
    n_bands: int,
    device: torch.device | str = "cpu",
) -> float:
    """Forward FLOPs to classify one pixel: backbone on each of ``steps`` timestamps, then the head.

    Counted on a batch of 2 (BatchNorm in training mode needs more than one sample) and halved.
    """
    per_step = 0.0
    features = n_bands
    if backbone is not None:
        rows = torch.zeros((2, n_bands), device=device)
        per_step = module_flops(backbone, rows) / 2
        with torch.inference_mode():
            features = int(backbone.eval()(rows).shape[-1])
    series = torch.zeros((2, steps, features), device=device)
    return per_step * steps + module_flops(head, series, steps=steps) / 2


def estimate_flops_per_pixel(backbone: nn.Module | None, head: nn.Module, *, steps: int) -> float:
    """Quick estimate without running the model: every weight used once per timestep (2 FLOPs each).

    Exact for per-timestep MLPs, convolutions and recurrent layers up to biases and attention scores;
    used for the size check of a run (the exact count needs FlopCounterMode, slow to import).
    """
    params = sum(p.numel() for p in head.parameters())
    if backbone is not None:
        params += sum(p.numel() for p in backbone.parameters())
    return float(2 * params * steps)
