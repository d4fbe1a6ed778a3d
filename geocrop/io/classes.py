"""The classes of a crop map: pixel value, name and colour, shared by the COG, QML, STAC item and web map.

Pixel value 255 is reserved for "no class" (masked, outside the AOI, no clear observation), so class values
live in 0..254. Colours are ``"#rrggbb"`` strings, the form QGIS, folium and STAC ``color_hint`` derive from.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from geocrop.errors import InputError

#: Pixel value of masked / outside-AOI / no-observation pixels in the class band (and every uint8 band).
NODATA = 255

_HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")

#: Legend colour of well-known crop types (hex "#rrggbb"), chosen to stay distinguishable side by side.
#: The scene simulator's crops use them, and `geocrop train` gives them to classes of the same name.
CROP_COLOURS: dict[str, str] = {
    "winter_wheat": "#e6ab02",
    "winter_barley": "#a6761d",
    "winter_rapeseed": "#ffff33",
    "maize": "#ff7f00",
    "sugar_beet": "#e7298a",
    "potato": "#7570b3",
    "sunflower": "#b15928",
    "soybean": "#1b9e77",
    "spring_oats": "#cab2d6",
    "grassland": "#33a02c",
}


#: Colours for classes without a known one (qualitative, tab20-like, distinguishable on a map): what
#: `geocrop train` gives new class names (`class_colours`) and a bundle's classes listed without a colour.
CLASS_PALETTE: tuple[str, ...] = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
)  # fmt: skip


def hex_rgb(colour: str) -> tuple[int, int, int]:
    """``"#rrggbb"`` as an ``(r, g, b)`` tuple of 0..255 integers."""
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


@dataclass(frozen=True)
class ClassInfo:
    """One map class: ``value`` (0..254) in the class band, a display ``name``, a ``"#rrggbb"`` colour."""

    value: int
    name: str
    color: str

    def __post_init__(self) -> None:
        if not isinstance(self.value, int) or isinstance(self.value, bool) or not 0 <= self.value < NODATA:
            raise InputError(
                f"class {self.name!r}: value {self.value!r} is not an integer in 0..254; "
                "255 is reserved for nodata, renumber the class"
            )
        if not self.name or not self.name.strip():
            raise InputError(f"class value {self.value}: the name is empty; give every class a name")
        if not isinstance(self.color, str) or not _HEX_COLOUR.match(self.color):
            raise InputError(
                f"class {self.name!r}: colour {self.color!r} is not of the form '#rrggbb'; "
                "write it as six hex digits after '#'"
            )

    @property
    def rgb(self) -> tuple[int, int, int]:
        """The colour as an ``(r, g, b)`` tuple of 0..255 integers."""
        return hex_rgb(self.color)

    @property
    def hex6(self) -> str:
        """The colour as six lower-case hex digits without ``#`` (STAC ``color_hint`` form)."""
        return self.color[1:].lower()


def check_classes(classes: Iterable[ClassInfo]) -> tuple[ClassInfo, ...]:
    """Return ``classes`` as a tuple after checking there is at least one and values and names are unique."""
    out = tuple(classes)
    if not out:
        raise InputError("the class list is empty; a crop map needs at least one class")
    for item in out:
        if not isinstance(item, ClassInfo):
            raise InputError(
                f"class entry {item!r} is not a ClassInfo; build it as ClassInfo(value, name, color)"
            )
    values = [c.value for c in out]
    dup_values = sorted({v for v in values if values.count(v) > 1})
    if dup_values:
        raise InputError(f"class values {dup_values} appear more than once; give each class its own value")
    names = [c.name for c in out]
    dup_names = sorted({n for n in names if names.count(n) > 1})
    if dup_names:
        raise InputError(f"class names {dup_names} appear more than once; give each class its own name")
    return out


def classes_from_names(names: Sequence[str], colors: Sequence[str]) -> tuple[ClassInfo, ...]:
    """Classes numbered 0..N-1 in the order given (the order of a model's output logits)."""
    if len(names) != len(colors):
        raise InputError(
            f"{len(names)} class names but {len(colors)} colours; give one '#rrggbb' colour per class"
        )
    return check_classes(ClassInfo(i, n, c) for i, (n, c) in enumerate(zip(names, colors, strict=True)))


def look_alike(a: str, b: str) -> bool:
    """Two colours a map reader would mistake for each other (RGB distance under 60 of 441)."""
    return sum((x - y) ** 2 for x, y in zip(hex_rgb(a), hex_rgb(b), strict=True)) < 60**2


def class_colours(names: Sequence[str]) -> tuple[str, ...]:
    """A colour per class: the known crop colour (`CROP_COLOURS`), else the next `CLASS_PALETTE` colour that
    no class already uses or nearly matches (maize's orange and the palette's orange would read as one
    class on a map)."""
    taken = [CROP_COLOURS[n] for n in names if n in CROP_COLOURS]
    free = [c for c in CLASS_PALETTE if not any(look_alike(c, t) for t in taken)] or list(CLASS_PALETTE)
    out, k = [], 0
    for name in names:
        if name in CROP_COLOURS:
            out.append(CROP_COLOURS[name])
        else:
            out.append(free[k % len(free)])
            k += 1
    return tuple(out)
