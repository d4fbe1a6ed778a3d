"""`geocrop.models.fused`: the compiled ResMLP stack against the eager one (slow: compiling takes 20-60 s on
the 2-core development CPU), the engine's compiled path against its eager path, and the fallback."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from torch import nn

from geocrop.core.bands import S2_BANDS
from geocrop.inference.engine import Predictor
from geocrop.inference.schema import spec_for_modules
from geocrop.models.fused import FusedBackbone, resmlp_function
from geocrop.models.registry import build_head
from geocrop.models.resmlp import ResMLP


def small_resmlp() -> ResMLP:
    torch.manual_seed(0)
    model = ResMLP(12, width=32, depth=2).eval()
    with torch.no_grad():  # non-trivial norms, so a wrong weight or bias would show
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model


def test_pure_function_matches_both_eager_paths() -> None:
    model = small_resmlp()
    x = torch.randn(3, 5, 12)
    fn = resmlp_function(model)
    with torch.no_grad():
        torch.testing.assert_close(fn(x), model(x), rtol=0, atol=1e-6)  # the in-place inference path
    torch.testing.assert_close(fn(x), model(x), rtol=0, atol=1e-6)  # the autograd path


@pytest.mark.slow
def test_compiled_stack_matches_the_eager_one_for_any_row_count() -> None:
    model = small_resmlp()
    fused = FusedBackbone(model)
    with torch.inference_mode():
        for rows in (512, 77, 1):  # one compile (dynamic rows) serves every batch size
            x = torch.randn(rows, 12)
            torch.testing.assert_close(fused(x), model(x), rtol=0, atol=1e-5)
    assert fused.compiled


@pytest.mark.slow
def test_engine_compiled_path_matches_its_eager_path() -> None:
    torch.manual_seed(1)
    backbone = small_resmlp()
    head = build_head({"name": "transformer", "in_features": 32, "n_classes": 4})
    spec = spec_for_modules(bands=S2_BANDS, classes=["a", "b", "c", "d"], steps=6, mean=[0.2] * 12,
                            std=[0.1] * 12)  # fmt: skip
    rng = np.random.default_rng(0)
    x = rng.uniform(0.0, 0.5, (6, 12, 5, 9)).astype(np.float32)
    x[:, :, 0, :3] = np.nan
    kwargs = {"backbone": backbone, "head": head, "spec": spec, "device": "cpu", "batch_rows": 10 * 6}
    want = Predictor.from_modules(**kwargs, compile_backbone=False).predict_block(x)
    compiled = Predictor.from_modules(**kwargs, compile_backbone=True)
    assert isinstance(compiled._compute_backbone, FusedBackbone)
    got = compiled.predict_block(x)
    assert compiled._compute_backbone.compiled
    np.testing.assert_array_equal(got.classes, want.classes)
    np.testing.assert_allclose(got.probs, want.probs, atol=1e-5, equal_nan=True)


def test_engine_compiles_only_when_asked_on_the_cpu() -> None:
    head = build_head({"name": "lstm", "in_features": 32, "n_classes": 2, "hidden": 4, "layers": 1})
    spec = spec_for_modules(bands=S2_BANDS, classes=["a", "b"], steps=4)
    plain = Predictor.from_modules(backbone=small_resmlp(), head=head, spec=spec, device="cpu")
    assert isinstance(plain._compute_backbone, ResMLP)  # the CPU default: eager (measured no faster)


def test_a_failing_compiler_falls_back_to_the_eager_stack(caplog: pytest.LogCaptureFixture) -> None:
    model = small_resmlp()
    fused = FusedBackbone(model)

    def broken(x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("no C compiler")

    fused._compiled = broken
    x = torch.randn(8, 12)
    with caplog.at_level(logging.WARNING, logger="geocrop.models.fused"), torch.inference_mode():
        got = fused(x)
        want = model(x)
    assert not fused.compiled and "running it uncompiled" in caplog.text
    assert torch.equal(got, want)


def test_out_of_memory_is_not_swallowed() -> None:
    fused = FusedBackbone(small_resmlp())

    def oom(x: torch.Tensor) -> torch.Tensor:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")

    fused._compiled = oom
    with pytest.raises(torch.cuda.OutOfMemoryError):
        fused(torch.randn(2, 12))
    assert fused.compiled  # the engine halves its batch and tries the compiled stack again


def test_wrap_leaves_other_backbones_alone() -> None:
    other = nn.Linear(12, 8)
    assert FusedBackbone.wrap(other) is other
    assert isinstance(FusedBackbone.wrap(small_resmlp()), FusedBackbone)
