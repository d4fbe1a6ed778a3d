"""What `geocrop evaluate` records of each run, shared by the evaluation (writer) and its report (reader)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: Variant keys in report order, and how the report names them.
VARIANTS: dict[str, str] = {
    "supervised": "supervised",
    "unimodal": "uni-modal",
    "bimodal": "bi-modal",
    "temporal": "temporal",
    "temporal_frozen": "temporal, frozen",
}
#: Variants whose bundle is a pretrained temporal head (raw bands in, the head's body pretrained).
TEMPORAL_VARIANTS = ("temporal", "temporal_frozen")


@dataclass(frozen=True)
class RunRecord:
    """One trained (or counted) method on one fold, as stored in the journal.

    ``labels_per_class`` None: trained on every labelled series of the fold's training part; a number:
    on that many parcels per class drawn from it (draw number ``draw``, `geocrop.data.splits.
    draw_parcels_per_class`). Journals written before label-scarce runs lack both and read as all labels.
    """

    key: str
    family: str
    config_index: int
    config: dict[str, Any]
    variant: str
    bundle: str
    bundle_index: int
    fold: int
    scores: dict[str, float]
    val_true: list[int]
    val_pred: list[int]
    seconds: float
    best_epoch: int = 0
    labels_per_class: int | None = None
    draw: int = 0
    #: Prior correction and calibration (`geocrop.training.both_sides`): ``scores``/``val_pred`` are the
    #: default decision (logits corrected for the training class frequencies); ``balanced_*`` the same
    #: head uncorrected (``class_priors="uniform"``); ``val_logits`` its (N_val, K) raw log-probabilities
    #: (3 decimals), ``temperature`` fitted on the inner split, ``class_shares`` the training frequencies,
    #: ``head_prior`` the prior the raw outputs decide under (`geocrop.training.calibration.correction`).
    #: Journals written before prior correction lack them (their ``scores`` are the balanced decision).
    balanced_scores: dict[str, float] | None = None
    balanced_pred: list[int] | None = None
    val_logits: list[list[float]] | None = None
    temperature: float | None = None
    class_shares: list[float] | None = None
    head_prior: str | float | None = None
    #: How a deep head was trained when not geocrop's plain way (e.g. ``body lr 0.1``, ``resampled
    #: dates``: `geocrop.training.evaluate._recipe`); part of the report's method name.
    recipe: str = ""

    @property
    def val_accuracy(self) -> float:
        return float(self.scores["oa"])

    @property
    def method(self) -> str:
        """The report's name of the method: ``rf``, ``majority``, ``lstm``, ``lstm (bi-modal)``..."""
        if self.variant == "supervised":
            return f"{self.family} ({self.recipe})" if self.recipe else self.family
        number = f" {self.bundle_index + 1}" if self.bundle_index else ""
        recipe = f", {self.recipe}" if self.recipe else ""
        return f"{self.family} ({VARIANTS[self.variant]}{number}{recipe})"
