"""SCARF random feature corruption (Bahri et al., 2021), the paper's augmentation for tabular pixels.

For a batch ``x`` (N, F) and rate ``c``: every entry ``x[i, j]`` is, independently with probability ``c``,
replaced by ``pool[r, j]`` for a uniformly drawn row ``r`` of the pool: a draw from feature ``j``'s
empirical marginal. The pool is the batch itself (SCARF's default) or a larger ``marginals`` sample of the
dataset (M, F). Replacing with values of the same feature keeps each view on the data manifold feature by
feature, which crops and colour jitter cannot do for a 12-number spectrum. The paper applies it to both
modalities at rates 0.2 and 0.6; rate 0 is the identity (no randomness is drawn).
"""

from __future__ import annotations

import math

import torch

from geocrop.errors import InputError

__all__ = ["ScarfCorruption"]


class ScarfCorruption:
    """``__call__(x (N, F), *, generator=None, marginals=None) -> (N, F)``; see the module docstring.

    Args:
        rate: probability in [0, 1) that an entry is replaced (paper: 0.2 or 0.6; 0 disables corruption).

    Seed the draw with a ``torch.Generator`` for reproducible (resumable) training; the generator may live
    on the CPU while ``x`` lives on a GPU (draws are made on the generator's device, then moved).
    """

    def __init__(self, rate: float) -> None:
        if (
            not isinstance(rate, (int, float))
            or isinstance(rate, bool)
            or not math.isfinite(rate)
            or not 0.0 <= rate < 1.0
        ):
            raise InputError(
                f"corruption rate {rate!r} is invalid; pass a fraction in [0, 1), e.g. 0.2 or 0.6 "
                "as in the paper, or 0 for no corruption"
            )
        self.rate = float(rate)

    def __repr__(self) -> str:
        return f"ScarfCorruption(rate={self.rate})"

    def __call__(
        self,
        x: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
        marginals: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if x.ndim != 2:
            raise InputError(f"SCARF input has shape {tuple(x.shape)}; pass a (N, F) batch of pixels")
        pool = x if marginals is None else marginals
        if pool.ndim != 2 or pool.shape[1] != x.shape[1]:
            raise InputError(
                f"SCARF marginals have shape {tuple(pool.shape)} but the batch has {x.shape[1]} features; "
                f"pass a (M, {x.shape[1]}) sample of the same features"
            )
        if self.rate == 0.0 or x.shape[0] == 0:
            return x
        if pool.shape[0] == 0:
            raise InputError("SCARF marginals pool is empty; pass at least one row or leave marginals=None")
        draw_device = generator.device if generator is not None else x.device
        shape = tuple(x.shape)
        replace = torch.rand(shape, generator=generator, device=draw_device) < self.rate
        rows = torch.randint(0, pool.shape[0], shape, generator=generator, device=draw_device)
        # out[i, j] = pool[rows[i, j], j]: a value of the same feature from a random row.
        donor = pool.to(x.device, x.dtype).gather(0, rows.to(x.device))
        return torch.where(replace.to(x.device), donor, x)
