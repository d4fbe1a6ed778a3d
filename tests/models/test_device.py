"""One device rule for training, pretraining and mapping (`geocrop.models.device.resolve_device`)."""

from __future__ import annotations

import pytest
import torch

from geocrop.errors import InputError
from geocrop.models.device import resolve_device


def test_auto_is_the_gpu_when_torch_sees_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu", local_rank=3) == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("auto", local_rank=1) == torch.device("cuda:1")  # torchrun: the rank's GPU
    assert resolve_device("cuda:2", local_rank=1) == torch.device("cuda:2")


def test_cuda_without_a_gpu_names_the_argument_and_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for name in ("cuda", "cuda:0"):
        with pytest.raises(InputError, match=r"`device` .* no CUDA device; use `device` cpu") as info:
            resolve_device(name)
        assert info.value.param == "device"


@pytest.mark.parametrize("name", ["tpu", "CUDA", "cuda:", "cuda:x", ""])
def test_other_names_are_refused(name: str) -> None:
    with pytest.raises(InputError, match="is not one of auto, cpu, cuda, cuda:N"):
        resolve_device(name)
