"""The ResMLP stack through ``torch.compile``: each layer's LayerNorm, ReLU, bias and residual fused into
the passes around its matmul.

Why: on an H200 the eager ResMLP backbone ran at 6 % of the bf16 matmul peak, bound by memory traffic
between its separate LayerNorm / ReLU / bias / residual passes over the (rows, 256) activations
(docs/performance.md, "GPU"). Written as one pure function (no in-place updates, so the compiler sees the
whole dataflow), the stack compiles (Inductor) to one matmul per layer plus one fused kernel that adds the
residual, normalises and applies ReLU, reading and writing the activations about half as often.

`FusedBackbone` is what the engine runs (`geocrop.inference.engine.Predictor`, ``compile_backbone``; by
default on CUDA only: on the 2-core development CPU the compiled stack was no faster than the eager
inference path and took about a minute to compile, docs/performance.md). It computes the same function
as `ResMLP` (tested on the CPU against the eager path) and compiles once for any row count
(``dynamic=True``). If compiling fails (no compiler, an unsupported platform) it logs a warning and runs
the eager module from then on, so a map never stops for want of a compiler.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from geocrop.models.resmlp import ResidualLayer, ResMLP

__all__ = ["FusedBackbone", "resmlp_function"]

log = logging.getLogger(__name__)


def resmlp_function(model: ResMLP) -> Callable[[torch.Tensor], torch.Tensor]:
    """``model``'s forward as one pure function of the rows (reads the parameters when called, so a
    later ``load_state_dict`` is seen): the form ``torch.compile`` fuses best."""
    norms = [layer.norm for layer in model.layers if isinstance(layer, ResidualLayer)]
    linears = [layer.linear for layer in model.layers if isinstance(layer, ResidualLayer)]

    def forward(x: torch.Tensor) -> torch.Tensor:
        h = F.linear(x.reshape(-1, model.in_features), model.stem.weight, model.stem.bias)
        for norm, linear in zip(norms, linears, strict=True):
            activated = F.layer_norm(h, norm.normalized_shape, norm.weight, norm.bias, norm.eps).relu()
            h = h + F.linear(activated, linear.weight, linear.bias)
        out = F.layer_norm(h, model.norm.normalized_shape, model.norm.weight, model.norm.bias, model.norm.eps)
        return out.reshape(*x.shape[:-1], model.width)

    return forward


class FusedBackbone(nn.Module):
    """A `ResMLP` whose forward runs compiled (see the module docstring); same inputs, same outputs.

    ``FusedBackbone.wrap(module)`` wraps a ResMLP and returns any other backbone unchanged.
    ``compiled`` says whether the compiled path is still in use (False after a compile failure).
    """

    def __init__(self, model: ResMLP, **compile_options: Any) -> None:
        super().__init__()
        self.model = model
        options = {"dynamic": True, **compile_options}
        self._compiled: Callable[[torch.Tensor], torch.Tensor] | None = torch.compile(
            resmlp_function(model), **options
        )

    @classmethod
    def wrap(cls, module: nn.Module) -> nn.Module:
        return cls(module) if isinstance(module, ResMLP) else module

    @property
    def compiled(self) -> bool:
        return self._compiled is not None

    @property
    def spec(self) -> dict[str, Any]:
        return self.model.spec

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._compiled is None:
            return self.model(x)
        try:
            return self._compiled(x)
        except torch.cuda.OutOfMemoryError:
            raise  # the engine halves its batch and calls again
        except Exception as exc:  # a compiler that cannot run here: the eager stack computes the same
            log.warning(
                "compiling the backbone failed (%s: %s); running it uncompiled", type(exc).__name__, exc
            )
            self._compiled = None
            return self.model(x)
