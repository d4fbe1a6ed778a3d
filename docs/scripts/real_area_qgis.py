"""Draw docs/img/real_area_qgis.png: a geocrop class COG as QGIS shows it, with the legend QGIS builds.

Run with the system Python that has PyQGIS (not the project's virtualenv), offscreen:
``QT_QPA_PLATFORM=offscreen /usr/bin/python3 docs/scripts/real_area_qgis.py runs/belgium.tif OUT.png``
(`real_area.py --write` does). It opens the COG as any QGIS user would (its ``.qml`` and ``.aux.xml``
beside it give the palette and the class names), renders its extent and paints the legend items of its
renderer beside the map.
"""

from __future__ import annotations

import os
import sys

from qgis.core import (
    QgsApplication,
    QgsMapRendererParallelJob,
    QgsMapSettings,
    QgsRasterLayer,
)
from qgis.PyQt.QtCore import QSize, Qt
from qgis.PyQt.QtGui import QColor, QFont, QImage, QPainter


def main(source: str, out: str) -> None:
    QgsApplication.setPrefixPath("/usr", True)
    app = QgsApplication([], False)
    app.initQgis()
    layer = QgsRasterLayer(source, "belgium")
    if not layer.isValid():
        raise SystemExit(f"QGIS cannot open {source}")
    settings = QgsMapSettings()
    settings.setLayers([layer])
    settings.setDestinationCrs(layer.crs())
    settings.setExtent(layer.extent())
    settings.setOutputSize(QSize(560, 520))
    settings.setBackgroundColor(QColor("white"))
    job = QgsMapRendererParallelJob(settings)
    job.start()
    job.waitForFinished()
    items = layer.renderer().legendSymbologyItems()
    image = QImage(QSize(560 + 260, 520), QImage.Format_ARGB32)
    image.fill(QColor("white"))
    painter = QPainter(image)
    painter.drawImage(0, 0, job.renderedImage())
    painter.setFont(QFont("Sans", 10))
    painter.drawText(575, 24, f"{layer.name()} ({layer.crs().authid()}, {layer.renderer().type()})")
    for row, (name, colour) in enumerate(items):
        y = 44 + 24 * row
        painter.fillRect(575, y, 18, 16, colour)
        painter.setPen(Qt.black)
        painter.drawText(600, y + 13, name)
    painter.end()
    if not image.save(out):
        raise SystemExit(f"could not write {out}")
    # Debian's QGIS 3.22 segfaults in exitQgis() after an offscreen render (the picture is saved by then);
    # leave without tearing QGIS down.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
