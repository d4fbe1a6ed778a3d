"""A QGIS layer style (``.qml``) for the crop-map COG: a paletted renderer on band 1, one entry per class.

QGIS loads ``<name>.qml`` beside ``<name>.tif`` automatically as the layer's default style, so the map
opens with crop colours and names in the legend whatever QGIS makes of the GDAL colour table. Nodata (255)
stays transparent through the band's nodata value, so it needs no palette entry.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from geocrop.io.atomic import write_text_atomic
from geocrop.io.classes import ClassInfo, check_classes

__all__ = ["qml_path_for", "qml_text", "write_qml"]

#: The QGIS version the style was written against (3.22 LTR, Debian bookworm's); newer QGIS reads it.
QGIS_VERSION = "3.22.16-Białowieża"


def qml_path_for(cog: str | os.PathLike[str]) -> Path:
    """The style path QGIS picks up by itself for ``cog``: same name, ``.qml`` suffix."""
    return Path(cog).with_suffix(".qml")


def qml_text(classes: Sequence[ClassInfo], *, band: int = 1, opacity: float = 1.0) -> str:
    """The QML document for a paletted renderer of ``band`` with one ``paletteEntry`` per class."""
    items = check_classes(classes)
    root = ET.Element("qgis", version=QGIS_VERSION, styleCategories="AllStyleCategories")
    pipe = ET.SubElement(root, "pipe")
    provider = ET.SubElement(pipe, "provider")
    # Nearest-neighbour resampling: classes must never be blended between pixels.
    ET.SubElement(
        provider,
        "resampling",
        enabled="false",
        maxOversampling="2",
        zoomedInResamplingMethod="nearestNeighbour",
        zoomedOutResamplingMethod="nearestNeighbour",
    )
    renderer = ET.SubElement(
        pipe,
        "rasterrenderer",
        type="paletted",
        band=str(band),
        opacity=f"{opacity:g}",
        alphaBand="-1",
        nodataColor="",
    )
    ET.SubElement(renderer, "rasterTransparency")
    palette = ET.SubElement(renderer, "colorPalette")
    for item in sorted(items, key=lambda c: c.value):
        ET.SubElement(
            palette,
            "paletteEntry",
            value=str(item.value),
            color=item.color.lower(),
            label=item.name,
            alpha="255",
        )
    ET.SubElement(pipe, "brightnesscontrast", brightness="0", contrast="0", gamma="1")
    ET.SubElement(pipe, "huesaturation", saturation="0", grayscaleMode="0", colorizeOn="0", invertColors="0")
    ET.SubElement(pipe, "rasterresampler", maxOversampling="2")
    ET.SubElement(root, "blendMode").text = "0"
    ET.indent(root)
    return (
        "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
        + ET.tostring(root, encoding="unicode")
        + "\n"
    )


def write_qml(
    path: str | os.PathLike[str], classes: Sequence[ClassInfo], *, band: int = 1, opacity: float = 1.0
) -> Path:
    """Write the style atomically (temp file in the same folder, then ``os.replace``); returns the path."""
    return write_text_atomic(path, qml_text(classes, band=band, opacity=opacity), what="style")
