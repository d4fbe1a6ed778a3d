"""Two or more heads as one: the weighted mean of their class probabilities (``--head auto``'s ensemble).

`geocrop.training.auto` chooses by default the mean of two candidates' probabilities (say gradient
boosting and TempCNN), which is steadier than either alone. The average must map
like any other head: the inference engine builds one head from the bundle's spec and applies a softmax to
its output, so this module is a registered head whose spec holds its members' specs
(``{"name": "ensemble", "members": [{"name": "tempcnn", ...}, {"name": "trees", ...}], "weights": [0.5,
0.5], "temperatures": [1.3, 0.9]}``), whose state holds their tensors under ``members.<i>.``, and whose
output is the log of the averaged probabilities (so the engine's softmax gives the average back).

Each member's logits are divided by its own temperature (fitted when it was trained alone,
`geocrop.training.calibration`) and shifted by its ``offset`` before its softmax: the log-ratio that
moves a member to the class prior the ensemble decides under. ``--head auto`` moves every member to the
training class frequencies (a deep member deciding under a uniform prior gets ``log`` of them; a tree
member, whose outputs follow them already, nothing), so the mean is of what each member would map alone
at defaults; its bundle records ``head_prior`` ``training`` and a temperature of its own, and the engine
corrects the mean for other class priors as it does a tree head. Measured on the France table's held-out
folds, this mean classifies better than the mean of uniform-prior posteriors corrected once afterwards
(docs/evaluation/france-auto).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from geocrop.models.registry import build_head, register_head


@register_head("ensemble")
class ProbabilityAverage(nn.Module):
    """(batch, T, F) -> (batch, n_classes) log of the weighted mean of the members' softmax probabilities.

    ``members``: the member heads' specs (each built by `build_head`, so any registered head, trees
    included); ``weights``: one non-negative weight per member (default equal), normalised to sum to 1;
    ``temperatures``: one positive temperature per member (default 1); ``offsets``: per member None or
    (n_classes,) values added to its tempered logits.
    """

    weights: torch.Tensor
    temperatures: torch.Tensor

    def __init__(
        self,
        *,
        members: Sequence[Mapping[str, Any]],
        weights: Sequence[float] | None = None,
        temperatures: Sequence[float] | None = None,
        offsets: Sequence[Sequence[float] | None] | None = None,
    ) -> None:
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least 2 member heads, got {len(members)}")
        given = [1.0] * len(members) if weights is None else [float(w) for w in weights]
        if len(given) != len(members) or min(given) < 0 or sum(given) <= 0:
            raise ValueError(f"weights {given} do not fit {len(members)} members; give one >= 0 per member")
        temps = [1.0] * len(members) if temperatures is None else [float(t) for t in temperatures]
        if len(temps) != len(members) or not all(t > 0 for t in temps):
            raise ValueError(f"temperatures {temps} do not fit {len(members)} members; give one > 0 each")
        self.members = nn.ModuleList(build_head(dict(spec)) for spec in members)
        classes = {int(s["n_classes"]) for s in members if "n_classes" in s}
        if len(classes) > 1:
            raise ValueError(f"member heads disagree on the number of classes ({sorted(classes)})")
        total = sum(given)
        normalised = [w / total for w in given]
        shifts = (
            [None] * len(members) if offsets is None else [None if o is None else list(o) for o in offsets]
        )
        if len(shifts) != len(members):
            raise ValueError(f"offsets {shifts} do not fit {len(members)} members; give one (or None) each")
        self.spec = {
            "name": "ensemble",
            "members": [dict(s) for s in members],
            "weights": normalised,
            "temperatures": temps,
            "offsets": shifts,
        }
        # constants of the architecture (they are in the spec), not learnt tensors: kept out of the state
        self.register_buffer("weights", torch.tensor(normalised, dtype=torch.float32), persistent=False)
        self.register_buffer("temperatures", torch.tensor(temps, dtype=torch.float32), persistent=False)
        self.shifts = [None if o is None else torch.tensor(o, dtype=torch.float32) for o in shifts]

    @classmethod
    def of(
        cls,
        heads: Sequence[tuple[Mapping[str, Any], nn.Module]],
        weights: Sequence[float] | None = None,
        temperatures: Sequence[float] | None = None,
        offsets: Sequence[Sequence[float] | None] | None = None,
    ) -> ProbabilityAverage:
        """The ensemble of already trained heads, given as (spec, module) pairs, their tensors copied in."""
        ensemble = cls(
            members=[spec for spec, _ in heads], weights=weights, temperatures=temperatures, offsets=offsets
        )
        for target, (_, head) in zip(ensemble.members, heads, strict=True):
            target.load_state_dict(head.state_dict())
        return ensemble.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = sum(
            w * torch.softmax(self._shifted(m(x).float() / t, shift), dim=-1)
            for w, t, m, shift in zip(self.weights, self.temperatures, self.members, self.shifts, strict=True)
        )
        assert isinstance(mean, torch.Tensor)
        return torch.log(mean.clamp_min(1e-7))

    @staticmethod
    def _shifted(logits: torch.Tensor, shift: torch.Tensor | None) -> torch.Tensor:
        return logits if shift is None else logits + shift.to(logits.device)
