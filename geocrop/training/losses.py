"""Contrastive losses: the paper's bi-modal loss (Eq. 1) and the standard symmetric NT-Xent (SimCLR).

Which loss the CLI uses
-----------------------
``geocrop pretrain --mode bimodal`` (the default) trains with `bimodal_ntxent`, Eq. 1 of Patnala et al.
(2024) exactly as printed: the paper's method and the one its results (bi-modal beats uni-modal and
supervised) are reported for, so a user who asks for "the paper's pretraining" gets it.
``geocrop pretrain --mode unimodal`` (the paper's SCARF baseline: one S2 encoder, two SCARF-corrupted views
of the same pixels) trains with `ntxent`, the symmetric SimCLR loss, because with one shared encoder
the two views are interchangeable, there is no privileged anchor modality, and that is the loss SCARF and
the paper's uni-modal baseline use. Both use cosine similarity and temperature 0.07 (the paper's value);
`ContrastiveLoss(mode)` is the module form of both.

How they are computed
---------------------
Both reduce to "log-sum-exp over a row of similarities minus the positive's similarity", which
`geocrop.training.row_contrast` computes in cache-sized blocks of anchor rows with the gradient formed in
the same pass (same values and gradients as the plain autograd form, to float64 rounding; tested).

Distributed use
---------------
Both losses take optional ``negatives_*`` tensors: the all-gathered embeddings of every rank
(`geocrop.training.distributed.gather_with_offset`) and ``offset``, the row where this rank's batch starts
in them. With those, the loss a rank computes is the mean over its own anchors of exactly the terms the
single-process loss over the concatenated batch has for those anchors; see `geocrop.training.distributed`
for why the DDP-averaged gradients then equal the single-process gradients.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from geocrop.errors import InputError
from geocrop.training.row_contrast import row_contrast, row_contrast_plain

__all__ = ["LOSS_NAMES", "ContrastiveLoss", "bimodal_ntxent", "ntxent"]

#: Names written to bundle metadata (``"loss"``) for each loss.
BIMODAL_LOSS_NAME = "bimodal_ntxent_eq1"
NTXENT_LOSS_NAME = "ntxent_symmetric"
LOSS_NAMES = {"bimodal": BIMODAL_LOSS_NAME, "unimodal": NTXENT_LOSS_NAME}


def _check_temperature(temperature: float) -> float:
    if not isinstance(temperature, (int, float)) or not math.isfinite(temperature) or temperature <= 0:
        raise InputError(
            f"temperature={temperature!r} is invalid; pass a positive number such as 0.07 (the paper's value)"
        )
    return float(temperature)


def _keys(
    local: torch.Tensor, negatives: torch.Tensor | None, offset: int, *, name: str
) -> tuple[torch.Tensor, int]:
    """The key set to contrast against (the gathered batch, or the local batch itself) and the offset."""
    if local.ndim != 2:
        raise InputError(f"{name} has shape {tuple(local.shape)}; pass embeddings of shape (N, D)")
    if negatives is None:
        if offset != 0:
            raise InputError(f"offset={offset} given without negatives for {name}; pass both or neither")
        return local, 0
    if negatives.ndim != 2 or negatives.shape[1] != local.shape[1]:
        raise InputError(
            f"negatives for {name} have shape {tuple(negatives.shape)} but the local batch is "
            f"{tuple(local.shape)}; pass the all-gathered (M, {local.shape[1]}) embeddings"
        )
    if offset < 0 or offset + local.shape[0] > negatives.shape[0]:
        raise InputError(
            f"offset={offset} puts the {local.shape[0]}-row batch of {name} outside the "
            f"{negatives.shape[0]} gathered rows; pass the offset returned by gather_with_offset"
        )
    return negatives, offset


def _promote(t: torch.Tensor) -> torch.Tensor:
    """Half-precision embeddings (autocast) are compared in float32; float32/float64 stay as they are."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


def bimodal_ntxent(
    z_s: torch.Tensor,
    z_p: torch.Tensor,
    *,
    temperature: float = 0.07,
    negatives_s: torch.Tensor | None = None,
    negatives_p: torch.Tensor | None = None,
    offset: int = 0,
    blocked: bool = True,
) -> torch.Tensor:
    """Eq. 1 of the paper, averaged over the Sentinel-2 anchors ``i`` of this batch.

    ``l_i = -log( r_iisp / (sum_{k!=i} r_ikss + sum_{m!=i} r_imsp) )`` with
    ``r_ijab = exp(cos(z_ia, z_jb) / tau)``: the S2 sample ``i`` is the anchor, its PlanetScope partner the
    positive, the other S2 samples and the other PlanetScope samples the negatives.

    Note: as printed, the denominator does NOT contain the positive term ``r_iisp`` (standard SimCLR puts
    it there). This implements the equation as printed, so a loss value can be negative (when the
    positive outweighs all negatives together); its minimiser pulls the positive up and pushes negatives
    down like SimCLR's. Computed as ``-s_ii/tau + logsumexp(negatives/tau)`` for numerical stability.

    Args:
        z_s: (B, D) S2 projections ``P_s(E_s(x_s))`` (the anchors).
        z_p: (B, D) PlanetScope projections ``P_p(E_p(x_p))``; row i is the positive of ``z_s[i]``.
        temperature: tau (paper: 0.07).
        negatives_s, negatives_p: (M, D) all-gathered S2 / Planet projections (default: this batch).
        offset: row of ``z_s[0]`` in the gathered tensors.
        blocked: compute with `row_contrast` (default) or, for comparison, its plain autograd form.

    Returns:
        Scalar tensor (float32 for half-precision inputs, else the input dtype).
    """
    tau = _check_temperature(temperature)
    if z_s.shape != z_p.shape:
        raise InputError(
            f"z_s {tuple(z_s.shape)} and z_p {tuple(z_p.shape)} differ; pass paired (N, D) batches"
        )
    if (negatives_s is None) != (negatives_p is None):
        raise InputError(
            "pass both negatives_s and negatives_p (the gathered S2 and Planet batches) or neither"
        )
    keys_s, off = _keys(z_s, negatives_s, offset, name="z_s")
    keys_p, _ = _keys(z_p, negatives_p, offset, name="z_p")
    if keys_s.shape[0] != keys_p.shape[0]:
        raise InputError("negatives_s and negatives_p have different row counts; gather both the same way")
    if keys_s.shape[0] < 2:
        raise InputError("Eq. 1 needs at least 2 pairs (1 gives an empty denominator); use a larger batch")
    b, m = z_s.shape[0], keys_s.shape[0]
    anchors = F.normalize(_promote(z_s), dim=1) / tau
    keys = F.normalize(_promote(torch.cat([keys_s, keys_p])), dim=1)  # (2M, D): S2 keys, then Planet keys
    own = torch.arange(b, device=z_s.device) + off
    # Eq. 1 leaves both the anchor itself and its positive out of the denominator.
    core = row_contrast if blocked else row_contrast_plain
    return core(anchors, keys, own + m, torch.stack([own, own + m], dim=1))


def ntxent(
    z_a: torch.Tensor,
    z_b: torch.Tensor,
    *,
    temperature: float = 0.07,
    negatives_a: torch.Tensor | None = None,
    negatives_b: torch.Tensor | None = None,
    offset: int = 0,
    blocked: bool = True,
) -> torch.Tensor:
    """Symmetric NT-Xent (SimCLR, Chen et al. 2020) over the 2N views ``z_a``, ``z_b``.

    Every view is an anchor once: ``l = -log( exp(s_pos/tau) / sum_{j != anchor} exp(s_j/tau) )`` over all
    other 2N-1 views (the positive included), averaged over the 2N anchors. Equal to
    `pytorch_metric_learning.losses.NTXentLoss` on ``cat([z_a, z_b])`` with labels ``arange(N)`` twice.

    Args:
        z_a, z_b: (B, D) the two views' projections; row i of each is the same sample.
        temperature: tau (paper: 0.07).
        negatives_a, negatives_b: (M, D) all-gathered views (default: this batch).
        offset, blocked: as in `bimodal_ntxent`.
    """
    tau = _check_temperature(temperature)
    if z_a.shape != z_b.shape:
        raise InputError(
            f"z_a {tuple(z_a.shape)} and z_b {tuple(z_b.shape)} differ; pass paired (N, D) batches"
        )
    if (negatives_a is None) != (negatives_b is None):
        raise InputError("pass both negatives_a and negatives_b (the gathered views) or neither")
    keys_a, off = _keys(z_a, negatives_a, offset, name="z_a")
    keys_b, _ = _keys(z_b, negatives_b, offset, name="z_b")
    if keys_a.shape[0] != keys_b.shape[0]:
        raise InputError("negatives_a and negatives_b have different row counts; gather both the same way")
    b, m = z_a.shape[0], keys_a.shape[0]
    anchors = F.normalize(_promote(torch.cat([z_a, z_b])), dim=1) / tau  # (2B, D)
    keys = F.normalize(_promote(torch.cat([keys_a, keys_b])), dim=1)  # (2M, D)
    local = torch.arange(b, device=z_a.device) + off
    own = torch.cat([local, local + m])  # each anchor's own column
    partner = torch.cat([local + m, local])  # the other view of the same sample
    core = row_contrast if blocked else row_contrast_plain
    return core(anchors, keys, partner, own[:, None])


class ContrastiveLoss(nn.Module):
    """Module form of either loss: ``forward(z_a (N, D), z_b (N, D)) -> scalar``.

    ``mode="bimodal"``: `bimodal_ntxent` (Eq. 1, ``z_a`` the S2 anchors ``z_s``, ``z_b`` the second view
    ``z_p``); ``mode="unimodal"``: `ntxent` (symmetric SimCLR). ``negatives_a``/``negatives_b`` and
    ``offset`` as in the functions (distributed use), and ``blocked``. ``name`` is what bundle metadata
    records as ``loss``.
    """

    def __init__(
        self,
        mode: Literal["bimodal", "unimodal"] = "bimodal",
        temperature: float = 0.07,
        *,
        blocked: bool = True,
    ) -> None:
        super().__init__()
        if mode not in LOSS_NAMES:
            raise InputError(
                f"contrastive loss mode {mode!r} is not bimodal or unimodal; choose one of those"
            )
        self.mode = mode
        self.temperature = _check_temperature(temperature)
        self.blocked = blocked

    @property
    def name(self) -> str:
        return LOSS_NAMES[self.mode]

    def forward(
        self,
        z_a: torch.Tensor,
        z_b: torch.Tensor,
        *,
        negatives_a: torch.Tensor | None = None,
        negatives_b: torch.Tensor | None = None,
        offset: int = 0,
    ) -> torch.Tensor:
        if self.mode == "bimodal":
            return bimodal_ntxent(
                z_a,
                z_b,
                temperature=self.temperature,
                blocked=self.blocked,
                negatives_s=negatives_a,
                negatives_p=negatives_b,
                offset=offset,
            )
        return ntxent(
            z_a,
            z_b,
            temperature=self.temperature,
            blocked=self.blocked,
            negatives_a=negatives_a,
            negatives_b=negatives_b,
            offset=offset,
        )

    def extra_repr(self) -> str:
        return f"mode={self.mode}, temperature={self.temperature}"
