"""`geocrop.training.graph_step.TrainStep`: the eager path on the CPU equals a plain training loop bit for
bit; the graph is refused off CUDA; on CUDA (``gpu``) the replayed graph follows the eager trajectory."""

from __future__ import annotations

import pytest
import torch

from geocrop.errors import InputError
from geocrop.models.contrastive import ContrastiveModel
from geocrop.training.graph_step import TrainStep
from geocrop.training.losses import ContrastiveLoss

BATCH = 64


def setup(device: torch.device, *, capturable: bool = False) -> tuple[ContrastiveModel, torch.optim.Adam]:
    torch.manual_seed(0)
    model = ContrastiveModel(mode="bimodal", width=32, depth=2).to(device)
    return model, torch.optim.Adam(model.parameters(), lr=1e-3, capturable=capturable)


def batches(device: torch.device, n: int, *, last: int = BATCH) -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(1)
    sizes = [BATCH] * (n - 1) + [last]
    return [(torch.randn(k, 12, generator=gen).to(device), torch.randn(k, 36, generator=gen).to(device))
            for k in sizes]  # fmt: skip


def plain_loop(
    device: torch.device, data: list[tuple[torch.Tensor, torch.Tensor]]
) -> tuple[list[float], dict]:
    model, opt = setup(device)
    loss_fn = ContrastiveLoss("bimodal", 0.07)
    losses = []
    for a, b in data:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(*model(a, b))
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses, {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def wrapped_loop(
    device: torch.device, data: list[tuple[torch.Tensor, torch.Tensor]], graph: bool | None
) -> tuple[list[float], dict, TrainStep]:
    model, opt = setup(device)
    loss_fn = ContrastiveLoss("bimodal", 0.07)
    step = TrainStep(lambda a, b: loss_fn(*model(a, b)), opt, device=device, graph=graph)
    losses = [float(step(a, b)) for a, b in data]
    return losses, {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}, step


def test_eager_step_equals_a_plain_loop_on_the_cpu() -> None:
    cpu = torch.device("cpu")
    data = batches(cpu, 5, last=40)  # a short last batch, as an epoch's end gives
    want_losses, want_state = plain_loop(cpu, data)
    got_losses, got_state, step = wrapped_loop(cpu, data, graph=None)
    assert not step.uses_graph and not step.captured and step.calls == 5
    assert got_losses == want_losses
    assert all(torch.equal(got_state[k], want_state[k]) for k in want_state)


def test_graph_is_refused_off_cuda() -> None:
    model, opt = setup(torch.device("cpu"))
    with pytest.raises(InputError, match="`graph` True needs a CUDA device") as info:
        TrainStep(lambda a, b: model(a, b)[0].sum(), opt, device=torch.device("cpu"), graph=True)
    assert info.value.param == "graph"


@pytest.mark.gpu
def test_graph_step_follows_the_eager_trajectory_on_cuda() -> None:
    cuda = torch.device("cuda")
    data = batches(cuda, 8, last=40)  # 3 warm-up steps, a capture, replays, a short eager last batch
    want_losses, want_state = plain_loop(cuda, data)
    got_losses, got_state, step = wrapped_loop(cuda, data, graph=None)
    assert step.uses_graph and step.captured
    torch.testing.assert_close(torch.tensor(got_losses), torch.tensor(want_losses), rtol=1e-4, atol=1e-4)
    for key, value in want_state.items():
        torch.testing.assert_close(got_state[key], value, rtol=1e-4, atol=1e-5)
