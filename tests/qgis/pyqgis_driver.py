"""PyQGIS checks run by the system `/usr/bin/python3` (never by the venv), headless; prints one JSON line.

    pyqgis_driver.py inspect-raster PATH
    pyqgis_driver.py inspect-vector PATH
    pyqgis_driver.py labels
    pyqgis_driver.py run PARAMS_JSON [--algorithm ID] [--cancel-when-file PATH | --cancel-at-progress PERCENT]
                     [--load-outputs [NAME ...]]
    pyqgis_driver.py screenshot OUT_PNG [--width W --height H] [--layer POLYGONS]

`labels` lists every geocrop algorithm's library-argument -> parameter-label table and its parameters.
`run` drives an algorithm (default `geocrop:mapcrops`) in-process the way the Processing dialog does,
optionally cancelling the
QgsProcessingFeedback from another thread once PATH exists, or once geocrop reports PERCENT progress
(qgis_process has no cancel), and optionally
loading the outputs (NAME: the output parameters, default OUTPUT) with their post-processors as the dialog
does on completion.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from qgis.core import (
    QgsApplication,
    QgsProcessingContext,
    QgsProcessingFeatureSourceDefinition,
    QgsProcessingFeedback,
    QgsProcessingUtils,
    QgsProject,
    QgsRasterLayer,
    QgsVectorLayer,
)


class RecordingFeedback(QgsProcessingFeedback):
    """Keeps every message and progress value so the test can assert on them."""

    def __init__(self) -> None:
        super().__init__()
        self.errors: list[str] = []
        self.infos: list[str] = []
        self.progress_texts: list[str] = []
        self.progress_values: list[float] = []
        self.progressChanged.connect(self.progress_values.append)

    def reportError(self, error: str, fatalError: bool = False) -> None:
        self.errors.append(error)

    def pushInfo(self, info: str) -> None:
        self.infos.append(info)

    def setProgressText(self, text: str) -> None:  # the dialog writes these into its log too
        self.progress_texts.append(text)


def _start_qgis(*, gui: bool) -> QgsApplication:
    QgsApplication.setPrefixPath("/usr", True)
    app = QgsApplication([], gui)
    app.initQgis()
    sys.path.append("/usr/share/qgis/python/plugins")
    from processing.core.Processing import Processing

    Processing.initialize()
    sys.path.insert(0, os.environ["QGIS_PLUGINPATH"])
    import geocrop_qgis

    plugin = geocrop_qgis.classFactory(None)
    plugin.initProcessing()
    app._geocrop_plugin = plugin  # keep the provider alive
    return app


def inspect_raster(path: str) -> dict[str, Any]:
    layer = QgsRasterLayer(path, "crop map")
    info: dict[str, Any] = {"valid": layer.isValid()}
    if not layer.isValid():
        return info
    renderer = layer.renderer()
    info.update(
        renderer=renderer.type(),
        bands=layer.bandCount(),
        width=layer.width(),
        height=layer.height(),
        crs=layer.crs().authid(),
        classes=[
            {"value": int(c.value), "label": c.label, "color": c.color.name()}
            for c in (renderer.classes() if renderer.type() == "paletted" else [])
        ],
        legend=[item[0] for item in renderer.legendSymbologyItems()],
    )
    return info


def inspect_vector(path: str) -> dict[str, Any]:
    layer = QgsVectorLayer(path, "layer", "ogr")
    info: dict[str, Any] = {"valid": layer.isValid()}
    if layer.isValid():
        info.update(_vector_info(layer))
    return info


def _vector_info(layer: QgsVectorLayer) -> dict[str, Any]:
    from qgis.core import QgsWkbTypes

    renderer = layer.renderer()
    names = [f.name() for f in layer.fields()]
    first = next(layer.getFeatures(), None)
    info: dict[str, Any] = {
        "features": layer.featureCount(),
        "geometry": QgsWkbTypes.displayString(layer.wkbType()),
        "crs": layer.crs().authid(),
        "fields": names,
        "renderer": renderer.type() if renderer is not None else None,
        "first": {} if first is None else dict(zip(names, map(_plain, first.attributes()), strict=True)),
    }
    if renderer is not None and renderer.type() == "categorizedSymbol":
        info["categories"] = [
            {"value": _plain(c.value()), "label": c.label(), "color": c.symbol().color().name()}
            for c in renderer.categories()
        ]
    return info


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return None if hasattr(value, "isNull") and value.isNull() else str(value)


def labels() -> dict[str, Any]:
    provider = QgsApplication.processingRegistry().providerById("geocrop")
    report: dict[str, Any] = {}
    for algorithm in provider.algorithms():
        instance = algorithm.create()
        report[algorithm.id()] = {
            "labels": instance.argument_labels(),
            "arguments": instance.arguments(),
            "parameters": [p.name() for p in instance.parameterDefinitions()],
            "help_url": instance.helpUrl(),
        }
    return report


def _selection(spec: dict[str, str]) -> QgsProcessingFeatureSourceDefinition:
    """`{"path": ..., "select": EXPR}`: the layer added to the project with EXPR selected, selection only."""
    layer = QgsVectorLayer(spec["path"], "fields", "ogr")
    QgsProject.instance().addMapLayer(layer)
    layer.selectByExpression(spec["select"])
    return QgsProcessingFeatureSourceDefinition(layer.id(), selectedFeaturesOnly=True)


def _drawn(path: str) -> str:
    """A scratch layer as one draws polygons in QGIS (a memory layer, no file behind it): the file's
    polygons and fields copied into it; its layer id."""
    source = QgsVectorLayer(path, "source", "ogr")
    layer = QgsVectorLayer(f"Polygon?crs={source.crs().authid()}", "drawn parcels", "memory")
    layer.dataProvider().addAttributes(source.fields().toList())
    layer.updateFields()
    layer.dataProvider().addFeatures(list(source.getFeatures()))
    QgsProject.instance().addMapLayer(layer)
    return str(layer.id())


def run(
    params: dict[str, Any],
    *,
    algorithm_id: str = "geocrop:mapcrops",
    cancel_when: Path | None,
    cancel_at: float | None,
    load_outputs: list[str] | None,
) -> dict[str, Any]:
    for name, value in params.items():
        if isinstance(value, dict):
            params = {**params, name: _drawn(value["drawn"]) if "drawn" in value else _selection(value)}
    algorithm = QgsApplication.processingRegistry().createAlgorithmById(algorithm_id)
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    feedback = RecordingFeedback()
    canceled_at: list[float] = []
    if cancel_when is not None:

        def cancel() -> None:
            while not cancel_when.exists():
                time.sleep(0.05)
            time.sleep(0.3)
            canceled_at.append(time.monotonic())
            feedback.cancel()

        threading.Thread(target=cancel, daemon=True).start()
    if cancel_at is not None:  # cancel once geocrop reports this much progress (percent)

        def cancel_on_progress(value: float) -> None:
            if value >= cancel_at and not feedback.isCanceled():
                canceled_at.append(time.monotonic())
                feedback.cancel()

        feedback.progressChanged.connect(cancel_on_progress)
    if load_outputs is not None:
        for name in load_outputs or ["OUTPUT"]:
            context.addLayerToLoadOnCompletion(
                params[name], QgsProcessingContext.LayerDetails("placeholder", QgsProject.instance(), name)
            )
    started = time.monotonic()
    results, ok = algorithm.run(params, context, feedback)
    finished = time.monotonic()
    report: dict[str, Any] = {
        "ok": bool(ok),
        "results": {key: str(value) for key, value in (results or {}).items()},
        "errors": feedback.errors,
        "infos": feedback.infos,
        "progress_texts": feedback.progress_texts,
        "progress": feedback.progress_values,
        "seconds": finished - started,
        "cancel_to_return": (finished - canceled_at[0]) if canceled_at else None,
    }
    if load_outputs is not None and ok:
        loaded = []
        for source, details in context.layersToLoadOnCompletion().items():
            layer = QgsProcessingUtils.mapLayerFromString(source, context)
            if layer is None:
                continue
            if details.postProcessor() is not None:
                details.postProcessor().postProcessLayer(layer, context, feedback)
            if isinstance(layer, QgsVectorLayer):
                info = {"name": details.name, "source": source, **_vector_info(layer)}
                loaded.append(info)
                continue
            renderer = layer.renderer()
            info = {
                "name": details.name,
                "source": source,
                "renderer": renderer.type(),
                "labels": [c.label for c in renderer.classes()] if renderer.type() == "paletted" else [],
            }
            loaded.append(info)
        report["loaded"] = loaded
    return report


def screenshot(out: Path, *, width: int, height: int, layer: Path | None) -> dict[str, Any]:
    from processing.gui.AlgorithmDialog import AlgorithmDialog

    added = None
    if layer is not None:  # so the area combo box shows a layer, as it would in a real project
        added = QgsProject.instance().addMapLayer(QgsVectorLayer(str(layer), layer.stem, "ogr"))

    algorithm = QgsApplication.processingRegistry().createAlgorithmById("geocrop:mapcrops")
    dialog = AlgorithmDialog(algorithm, False, None)
    if added is not None:
        context = QgsProcessingContext()
        context.setProject(QgsProject.instance())
        dialog.mainWidget().wrappers["AOI"].setParameterValue(added.id(), context)
    dialog.resize(width, height)
    dialog.show()
    app = QgsApplication.instance()
    for _ in range(30):
        app.processEvents()
        time.sleep(0.02)
    image = dialog.grab()
    saved = image.save(str(out), "PNG")
    dialog.close()
    return {"saved": bool(saved), "width": image.width(), "height": image.height()}


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    inspect = sub.add_parser("inspect-raster")
    inspect.add_argument("path")
    sub.add_parser("inspect-vector").add_argument("path")
    sub.add_parser("labels")
    runner = sub.add_parser("run")
    runner.add_argument("params")
    runner.add_argument("--algorithm", default="geocrop:mapcrops")
    runner.add_argument("--cancel-when-file", type=Path)
    runner.add_argument("--cancel-at-progress", type=float)
    runner.add_argument("--load-outputs", nargs="*")
    shot = sub.add_parser("screenshot")
    shot.add_argument("out", type=Path)
    shot.add_argument("--width", type=int, default=860)
    shot.add_argument("--height", type=int, default=760)
    shot.add_argument("--layer", type=Path)
    options = parser.parse_args()

    app = _start_qgis(gui=options.command == "screenshot")
    if options.command == "inspect-raster":
        report = inspect_raster(options.path)
    elif options.command == "inspect-vector":
        report = inspect_vector(options.path)
    elif options.command == "labels":
        report = labels()
    elif options.command == "run":
        params = json.loads(options.params)
        report = run(
            params,
            algorithm_id=options.algorithm,
            cancel_when=options.cancel_when_file,
            cancel_at=options.cancel_at_progress,
            load_outputs=options.load_outputs,
        )
    else:
        report = screenshot(options.out, width=options.width, height=options.height, layer=options.layer)
    print("GEOCROP-REPORT " + json.dumps(report), flush=True)
    app.exitQgis()


if __name__ == "__main__":
    main()
