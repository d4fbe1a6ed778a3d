"""Processing algorithm `geocrop:fieldresults` ("Crop per field"): runs `geocrop fields`."""

from __future__ import annotations

from .base import GeocropAlgorithm
from .declared import DeclaredParameters, Shown

_HELP = "".join(
    [
        "<p>Sums a crop map up per field: for every parcel of a polygon layer, which crop most of its "
        "pixels show, how sure the map is, and how much of the parcel the map covers. The result is a copy "
        "of your parcel layer (its own attributes and CRS kept) with these columns added, coloured by crop "
        "in the map's colours:</p>",
        "<ul>",
        "<li><b>class_name</b> / <b>class_value</b>: the majority crop of the parcel's mapped pixels, and "
        "<b>class_share</b> its share of them (0-1: 0.55 means a mixed or uncertain field, 0.95 a clear "
        "one);</li>",
        "<li><b>confidence</b>: the mean confidence of those pixels;</li>",
        "<li><b>pixels</b>, <b>clear_share</b> (share of pixels with a crop, not masked as cloud or outside "
        "the area) and <b>map_cover</b> (share of the parcel that lies on the map at all);</li>",
        "<li>with a map made with <i>Add class probability bands</i>: <b>prob_&lt;crop&gt;</b>, the mean "
        "probability of each crop, and <b>prob_class_name</b>, the crop of highest mean probability.</li>",
        "</ul>",
        "<p>A pixel belongs to a parcel when its centre lies inside it. Parcels without a clear pixel get "
        "empty values (grey on the map). Tick <i>Selected features only</i> to summarise just the selected "
        "parcels.</p>",
    ]
)


class FieldResultsAlgorithm(GeocropAlgorithm):
    """Crop map + parcels -> the parcels with their majority crop, its share, confidence, probabilities;
    its parameters are `geocrop fields`'s declared options (`declared.json`)."""

    NAME, DISPLAY_NAME, HELP = "fieldresults", "Crop per field", _HELP
    TAGS = ("crop", "field", "parcel", "zonal statistics", "majority", "agriculture")
    DECLARED = DeclaredParameters(
        "fields",
        hidden=("batch_size",),  # a memory setting; geocrop's default suits any parcel layer
        shown={
            "parcels": Shown(
                label="Parcels", layer="polygon", fix="choose a polygon layer of fields (parcels)"
            ),
            "out": Shown(label="Field results", layer="polygon", style="class_name"),
            "columns": Shown(label="Parcel attributes to keep (space-separated; empty: all)", advanced=True),
        },
    )
