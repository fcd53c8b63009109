"""Helpers the algorithms share: engine feedback, enum values given by name, layers as local files."""
from __future__ import annotations

import threading
from typing import Callable, Dict, Sequence, Tuple

from qgis.core import QgsProcessingException, QgsProcessingFeedback

from ..layer_info import file_path


def engine_callbacks(feedback: QgsProcessingFeedback) -> Tuple[Callable[[float, str], None], threading.Event]:
    """The engine's progress callable and cancel event, driven by (and driving) Processing's feedback."""
    cancel = threading.Event()
    feedback.canceled.connect(cancel.set)

    def progress(fraction: float, message: str) -> None:
        if feedback.isCanceled():
            cancel.set()
        feedback.setProgress(100.0 * fraction)
        feedback.setProgressText(message)

    return progress, cancel


def names_to_indices(parameters: Dict, enums: Dict[str, Sequence[str]]) -> Dict:
    """Parameters with enum values given by option name (e.g. METHOD='starfm') replaced by their index."""
    mapped = dict(parameters)
    for key, options in enums.items():
        value = mapped.get(key)
        if isinstance(value, str) and value in options:
            mapped[key] = options.index(value)
    return mapped


def local_file(algorithm, parameters: Dict, name: str, context) -> str:
    """The file behind a raster-layer parameter, '' when unset; non-file layers (WMS…) are an error."""
    layer = algorithm.parameterAsRasterLayer(parameters, name, context)
    if layer is None:
        return ""
    path = file_path(layer)
    if path is None:
        raise QgsProcessingException(f"{name}: '{layer.name()}' is not a local raster file; save it as GeoTIFF first")
    return path
