"""Crop calendars and surface spectra of the scene simulator (a test instrument, not real data).

Each field's surface is a linear mixture of five endmembers: green vegetation, dry (senescent) vegetation,
flowers, soil and road. A crop calendar gives, for any day of the year, the fraction of the field covered
by green and by dry canopy and by flowers; soil fills the rest. The calendars follow Central-European
practice (Brandenburg-like: winter cereals harvested in July, maize and sugar beet in autumn, meadows cut
three times), with per-field jitter added by the caller.

Spectra are typical laboratory/field values (reflectance, 0-1) for the 12 Sentinel-2 L2A bands in
``S2_BANDS`` order: green leaves are dark in red and bright in NIR, with SWIR falling as leaf water rises;
soil and straw rise steadily from blue to SWIR; yellow rapeseed flowers are bright in green and red.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from geocrop.io.classes import CROP_COLOURS  # the legend colours live with the other class metadata

__all__ = [
    "CROP_CALENDARS",
    "CROP_COLOURS",
    "CROP_TYPES",
    "ENDMEMBERS",
    "PLANET_FROM_S2",
    "CropCalendar",
    "canopy_fractions",
]

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

#: The simulated crop types; class index ``i`` in every label raster is ``CROP_TYPES[i]``.
CROP_TYPES: tuple[str, ...] = (
    "winter_wheat",
    "winter_barley",
    "winter_rapeseed",
    "maize",
    "sugar_beet",
    "potato",
    "sunflower",
    "soybean",
    "spring_oats",
    "grassland",
)


@dataclass(frozen=True)
class CropCalendar:
    """Canopy development of one crop, in days of the year (DOY) of the simulated season.

    Green cover rises logistically around ``emergence`` (scale ``rise`` days) to ``peak``, turns into dry
    cover around ``senescence`` (scale ``decline``; ``dry_max`` of the canopy stays standing as straw),
    and is removed at ``harvest``, leaving ``residue`` dry cover that tillage removes with time constant
    ``tillage`` days. Winter crops carry ``winter_green`` cover from the autumn before and are sown again
    (``sow``) for the next season. ``flowering`` = (DOY, width in days, cover fraction) of visible
    flowers. Grassland has no harvest; ``cuts`` are mowing dates instead.
    """

    emergence: float
    rise: float
    peak: float
    senescence: float
    decline: float
    harvest: float
    dry_max: float
    residue: float
    tillage: float = 30.0
    winter_green: float = 0.0
    sow: float | None = None
    flowering: tuple[float, float, float] | None = None
    cuts: tuple[float, ...] = ()


CROP_CALENDARS: dict[str, CropCalendar] = {
    "winter_wheat": CropCalendar(
        emergence=85, rise=9, peak=0.92, senescence=178, decline=8, harvest=212, dry_max=0.85,
        residue=0.35, tillage=25, winter_green=0.30, sow=282,
    ),
    "winter_barley": CropCalendar(
        emergence=75, rise=8, peak=0.88, senescence=163, decline=7, harvest=190, dry_max=0.80,
        residue=0.30, tillage=25, winter_green=0.35, sow=265,
    ),
    "winter_rapeseed": CropCalendar(
        emergence=68, rise=9, peak=0.90, senescence=172, decline=9, harvest=200, dry_max=0.70,
        residue=0.25, tillage=20, winter_green=0.45, sow=238, flowering=(120.0, 9.0, 0.55),
    ),
    "maize": CropCalendar(
        emergence=152, rise=9, peak=0.90, senescence=250, decline=10, harvest=285, dry_max=0.70,
        residue=0.40, tillage=45,
    ),
    "sugar_beet": CropCalendar(
        emergence=140, rise=10, peak=0.93, senescence=278, decline=14, harvest=295, dry_max=0.30,
        residue=0.10, tillage=20,
    ),
    "potato": CropCalendar(
        emergence=148, rise=7, peak=0.86, senescence=210, decline=8, harvest=242, dry_max=0.55,
        residue=0.05, tillage=15, flowering=(185.0, 8.0, 0.12),
    ),
    "sunflower": CropCalendar(
        emergence=140, rise=9, peak=0.80, senescence=226, decline=10, harvest=262, dry_max=0.85,
        residue=0.40, tillage=30, flowering=(200.0, 8.0, 0.35),
    ),
    "soybean": CropCalendar(
        emergence=152, rise=8, peak=0.88, senescence=246, decline=7, harvest=275, dry_max=0.75,
        residue=0.20, tillage=30,
    ),
    "spring_oats": CropCalendar(
        emergence=112, rise=7, peak=0.84, senescence=186, decline=7, harvest=221, dry_max=0.85,
        residue=0.35, tillage=25,
    ),
    "grassland": CropCalendar(
        emergence=82, rise=12, peak=0.90, senescence=295, decline=15, harvest=999, dry_max=0.15,
        residue=0.0, winter_green=0.50, cuts=(142.0, 188.0, 240.0),
    ),
}  # fmt: skip

#: Endmember spectra, rows in this order, columns the 12 bands of ``S2_BANDS`` (reflectance).
ENDMEMBER_NAMES: tuple[str, ...] = ("green", "dry", "flower", "soil", "road")
ENDMEMBERS: F32 = np.array(
    [
        # B01   B02    B03    B04    B05    B06    B07    B08    B8A    B09    B11    B12
        [0.030, 0.035, 0.075, 0.032, 0.115, 0.300, 0.380, 0.420, 0.440, 0.425, 0.205, 0.095],
        [0.070, 0.080, 0.110, 0.140, 0.180, 0.220, 0.250, 0.275, 0.290, 0.290, 0.385, 0.275],
        [0.030, 0.040, 0.160, 0.115, 0.210, 0.330, 0.390, 0.420, 0.430, 0.420, 0.230, 0.110],
        [0.080, 0.090, 0.120, 0.160, 0.190, 0.210, 0.225, 0.240, 0.255, 0.260, 0.330, 0.280],
        [0.070, 0.075, 0.085, 0.095, 0.105, 0.110, 0.115, 0.120, 0.125, 0.125, 0.140, 0.130],
    ],
    dtype=np.float32,
)

#: Band-equivalent weights (12 S2 bands -> Planet blue, green, red, nir): Planet's broader NIR band sits
#: between B08 and B8A. The sensor difference on top of this is applied by the simulator.
PLANET_FROM_S2: F32 = np.zeros((12, 4), dtype=np.float32)
PLANET_FROM_S2[1, 0] = 1.0
PLANET_FROM_S2[2, 1] = 1.0
PLANET_FROM_S2[3, 2] = 1.0
PLANET_FROM_S2[7, 3] = 0.5
PLANET_FROM_S2[8, 3] = 0.5

#: Multiplier on soil reflectance per band for fully wet soil (water darkens SWIR most).
WET_SOIL_FACTOR: F32 = np.array(
    [0.65, 0.65, 0.65, 0.65, 0.66, 0.67, 0.68, 0.68, 0.68, 0.66, 0.52, 0.48], dtype=np.float32
)
#: Relative SWIR rise of green leaves under full water stress (less leaf water, brighter SWIR).
DRY_LEAF_FACTOR: F32 = np.array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.45, 0.75], dtype=np.float32)


def _sigmoid(x: F64) -> F64:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60.0, 60.0)))


def canopy_fractions(
    calendar: CropCalendar,
    doy: float | F64,
    *,
    shift: F64,
    vigour: F64,
    cover_crop: npt.NDArray[np.bool_],
) -> tuple[F64, F64, F64]:
    """Green, dry and flower cover of a set of fields of one crop on day(s) of year ``doy``.

    ``doy`` is a number or an array that broadcasts against (F,), e.g. (D, 1) for D days at once.
    ``shift`` (F,) delays each field's calendar by that many days (sowing date, variety, soil);
    ``vigour`` (F,) scales its green cover; ``cover_crop`` (F,) marks spring-sown fields with a green
    catch crop over winter (ploughed in before sowing). Returns three arrays ((F,) or (D, F)) in
    [0, 1] whose sum is at most 1; soil is the rest.
    """
    c = calendar
    t = doy - shift
    if c.cuts:
        return _grassland(c, t, vigour)
    grow = _sigmoid((t - c.emergence) / c.rise)
    canopy = c.winter_green + (c.peak - c.winter_green) * grow
    senesced = _sigmoid((t - c.senescence) / c.decline)
    green = canopy * (1.0 - senesced) * vigour
    dry = canopy * senesced * c.dry_max
    flower = np.zeros_like(t)
    if c.flowering is not None:
        day, width, amount = c.flowering
        flower = amount * np.exp(-0.5 * ((t - day) / width) ** 2) * (1.0 - senesced)
        green = np.maximum(green - 0.8 * flower, 0.0)  # open flowers hide the leaves below them
    after = t >= c.harvest
    since = np.maximum(t - c.harvest, 0.0)
    green = np.where(after, 0.03, green)  # volunteers and weeds on the stubble
    dry = np.where(after, c.residue * np.exp(-since / c.tillage), dry)
    flower = np.where(after, 0.0, flower)
    if c.sow is not None:  # the next winter crop emerges in autumn
        autumn = c.winter_green * _sigmoid((t - c.sow - 14.0) / 6.0) * vigour
        green = np.where(t >= c.sow, np.maximum(green, autumn), green)
    elif c.winter_green == 0.0:
        # Spring-sown fields: some carry a catch crop from last autumn until ploughing, and get one again
        # after harvest; the others lie bare with last year's residue.
        plough = c.emergence - 35.0
        before = cover_crop * 0.30 * (1.0 - _sigmoid((t - plough) / 4.0))
        again = cover_crop * 0.30 * _sigmoid((t - c.harvest - 30.0) / 6.0)
        green = green + before + np.where(after, again, 0.0)
        dry = dry + 0.12 * (1.0 - _sigmoid((t - plough) / 4.0))
    return _normalise(green, dry, flower)


def _grassland(c: CropCalendar, t: F64, vigour: F64) -> tuple[F64, F64, F64]:
    season = c.winter_green + (c.peak - c.winter_green) * _sigmoid((t - c.emergence) / c.rise)
    season = season - 0.2 * _sigmoid((t - c.senescence) / c.decline)
    regrowth = np.ones_like(t)
    hay = np.zeros_like(t)
    for cut in c.cuts:
        since = t - cut
        mown = since >= 0
        # Mowing removes about 60% of the green cover, which regrows over two to three weeks; the cut
        # grass lies as hay for a few days.
        regrowth = regrowth * np.where(mown, 1.0 - 0.6 * np.exp(-np.maximum(since, 0) / 12.0), 1.0)
        hay = hay + np.where(mown, 0.35 * np.exp(-np.maximum(since, 0) / 4.0), 0.0)
    green = season * regrowth * vigour
    dry = c.dry_max * (1.0 - regrowth) + hay
    return _normalise(green, dry, np.zeros_like(t))


def _normalise(green: F64, dry: F64, flower: F64) -> tuple[F64, F64, F64]:
    green = np.clip(green, 0.0, 1.0)
    dry = np.clip(dry, 0.0, 1.0)
    flower = np.clip(flower, 0.0, 1.0)
    total = green + dry + flower
    scale = np.where(total > 1.0, 1.0 / np.maximum(total, 1e-9), 1.0)
    return green * scale, dry * scale, flower * scale
