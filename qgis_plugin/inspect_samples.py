"""Processing algorithm `geocrop:inspectsamples` ("Look at labelled samples"): runs `geocrop inspect`."""

from __future__ import annotations

from typing import ClassVar

from .base import Extra, GeocropAlgorithm
from .declared import DeclaredParameters, Shown

_HELP = "".join(
    [
        "<p>Before training, look at what the model will learn from: for every crop class of a labelled "
        "samples table (Parquet, GeoParquet or CSV, e.g. an ESA WorldCereal point extraction), the median "
        "of its series over the season with the band where 80 % of them lie (10th to 90th percentile), one "
        "panel per class, for NDVI and each Sentinel-2 band; and how many series and parcels each class "
        "has.</p>",
        "<p>The series are read exactly as <i>Train crop classifier</i> and <code>geocrop train</code> read "
        "them (same temporal grid, gaps filled), so a class whose band is wide, or two classes whose "
        "profiles overlap, are what the model will confuse. The <b>Profiles folder</b> receives "
        "<code>index.html</code> (opened in the Results Viewer), the PNG figures and their numbers as "
        "CSV.</p>",
        "<p>Coded labels (WorldCereal's <code>ewoc_code</code>) need a <b>Class table</b>: "
        "<code>class_mappings.json:CROPTYPE28</code> picks one table of a JSON file.</p>",
    ]
)


class InspectSamplesAlgorithm(GeocropAlgorithm):
    """Samples table -> per-class temporal profiles, counts and a page; its parameters are `geocrop
    inspect`'s declared options (`declared.json`), those for parcels with imagery left out."""

    NAME, DISPLAY_NAME, HELP = "inspectsamples", "Look at labelled samples", _HELP
    TAGS = ("crop", "samples", "profiles", "ndvi", "time series", "training data", "labels")
    DECLARED = DeclaredParameters(
        "inspect",
        hidden=(
            "id_column",
            "s2",
            "start",
            "end",
        ),  # parcels with imagery: geocrop inspect's, not this dialog's
        shown={
            "labels": Shown(label="Labelled samples table"),
            "class_column": Shown(label="Class column", default="crop"),
            "out": Shown(label="Profiles folder"),
            "group_column": Shown(label="Parcel id column (optional)"),
            "class_map": Shown(label="Class table for coded labels (file.json:KEY or CSV; optional)"),
            "drop_unmapped": Shown(label="Leave out samples whose code the class table lacks"),
            **{
                name: Shown(advanced=True)
                for name in ("steps", "nodata", "scale", "min_parcels", "variables", "colors")
            },
        },
    )
    EXTRA: ClassVar[Extra] = {"PAGE": ("page", "Profiles page", "html")}
