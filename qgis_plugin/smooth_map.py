"""Processing algorithm `geocrop:smoothmap` ("Smooth crop map"): runs `geocrop smooth`."""

from __future__ import annotations

from typing import ClassVar

from .base import Extra, GeocropAlgorithm
from .declared import DeclaredParameters, Shown

_HELP = "".join(
    [
        "<p>Removes the salt-and-pepper noise of a pixel-by-pixel crop map (single pixels of another crop "
        "inside a field) while keeping field borders. The result is a new crop map like the input (same "
        "legend and colours, added to your project) with its own <code>NAME_confidence.tif</code>.</p>",
        "<h3>Method</h3>",
        "<p><b>Bayesian</b> (default, as in the <i>sits</i> R package): each pixel's class probabilities "
        "are pulled towards those of its neighbours where the neighbourhood agrees, and left alone across "
        "field borders, where it does not. It needs a map made with <i>Add class probability bands</i> "
        "ticked. <b>Smoothness</b> says how strongly pixels follow their neighbours (larger: smoother); "
        "<b>neighbour fraction</b> which share of the neighbours (those most sure of each crop) count.</p>",
        "<p><b>Majority filter</b> works on any map: each pixel takes the most common crop around it (its "
        "own crop wins ties). Simple, but it also rounds off field corners.</p>",
        "<p><b>Window</b>: the neighbourhood, in pixels (odd, 3 to 21; 7 = 70 m at 10 m). <b>Remove "
        "patches smaller than</b> (pixels, 0 = off): after smoothing, patches smaller than this join their "
        "largest neighbour.</p>",
    ]
)


class SmoothMapAlgorithm(GeocropAlgorithm):
    """Crop map -> a smoothed crop map (Bayesian smoothing of the probabilities, or a majority filter);
    its parameters are `geocrop smooth`'s declared options (`declared.json`)."""

    NAME, DISPLAY_NAME, HELP = "smoothmap", "Smooth crop map", _HELP
    TAGS = ("crop", "smoothing", "majority filter", "sieve", "bayesian", "noise", "classification")
    DECLARED = DeclaredParameters(
        "smooth",
        shown={
            "out": Shown(label="Smoothed crop map"),
            "method": Shown(
                label="Method",
                choices=("Bayesian (needs class probability bands)", "Majority filter (any map)"),
            ),
            "window": Shown(label="Window (pixels)"),
            "smoothness": Shown(label="Smoothness (Bayesian)", advanced=True),
            "neigh_fraction": Shown(label="Neighbour fraction (Bayesian)", advanced=True),
            "sieve": Shown(label="Remove patches smaller than (pixels, 0: off)"),
        },
    )
    EXTRA: ClassVar[Extra] = {"CONFIDENCE": ("confidence", "Confidence of the smoothed map", "raster")}
