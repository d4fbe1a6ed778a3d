"""The one rule that turns a `device` option into a torch device, for training, pretraining and mapping."""

from __future__ import annotations

import re

import torch

from geocrop.errors import InputError

_NAME = re.compile(r"auto|cpu|cuda(:\d+)?")


def resolve_device(device: str, *, local_rank: int | None = None) -> torch.device:
    """``auto`` -> CUDA when torch sees a GPU, else the CPU; ``cpu``; ``cuda`` or ``cuda:N``.

    ``local_rank``: under torchrun, the rank's GPU, which ``auto`` and a bare ``cuda`` then take
    (``cuda:<local_rank>``). `InputError` (``param="device"``) for any other name, or for CUDA when torch
    sees no CUDA device.
    """
    if not isinstance(device, str) or not _NAME.fullmatch(device):
        raise InputError(
            f"`device` {device!r} is not one of auto, cpu, cuda, cuda:N; choose one of those", param="device"
        )
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise InputError(
            f"`device` {device!r} asks for a GPU but torch sees no CUDA device; use `device` cpu (or auto)",
            param="device",
        )
    if device == "cuda" and local_rank is not None:
        return torch.device(f"cuda:{local_rank}")
    return torch.device(device)
