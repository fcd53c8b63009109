"""Turning a finished run into styled layers in a new group, and reporting it in the message bar and log."""
from __future__ import annotations

import os
import time

from qgis.core import Qgis, QgsLayerTreeGroup, QgsProject, QgsRasterLayer

from . import log
from .styling import style_error_map, style_fused
from .task import TaskOutcome

MESSAGE_TITLE = "Spatiotemporal fusion"


def add_result_layers(result, project: QgsProject) -> QgsLayerTreeGroup:
    """A group "Fusion <method> <time>" at the top of the layer tree: the fused raster, then each error map."""
    fused = QgsRasterLayer(result.output, f"fused ({result.method})")
    error_maps = [QgsRasterLayer(path, name) for name, path in result.error_maps.items()]
    invalid = [layer.source() for layer in [fused, *error_maps] if not layer.isValid()]
    if invalid:
        raise RuntimeError(f"QGIS could not open the output {invalid[0]}")
    style_fused(fused)
    for layer in error_maps:
        style_error_map(layer)
        if layer.bandCount() > 1:
            layer.setName(f"{layer.name()} (band 1 of {layer.bandCount()})")
    group = project.layerTreeRoot().insertGroup(0, f"Fusion {result.method} {time.strftime('%Y-%m-%d %H:%M:%S')}")
    for layer in [fused, *error_maps]:
        project.addMapLayer(layer, False)
        group.addLayer(layer).setExpanded(True)
    group.setExpanded(True)
    return group


def report(outcome: TaskOutcome, iface, project: QgsProject) -> None:
    """Layers and a success message, or the one-line reason (details in the log panel under STF)."""
    bar = iface.messageBar()
    if outcome.result is None:
        level = Qgis.Warning if outcome.cancelled else Qgis.Critical
        log.error(f"fusion failed: {outcome.reason}" + (f"\n{outcome.details}" if outcome.details else ""))
        bar.pushMessage(MESSAGE_TITLE, f"not run: {outcome.reason}", level, 0)
        return
    result = outcome.result
    try:
        add_result_layers(result, project)
    except RuntimeError as exc:
        log.error(str(exc))
        bar.pushMessage(MESSAGE_TITLE, str(exc), Qgis.Critical, 0)
        return
    outputs = [result.output, *result.error_maps.values()]
    summary = (
        f"{result.method} on {result.device} in {result.seconds:.1f} s, "
        f"{result.width}×{result.height}×{result.bands}: {os.path.basename(result.output)}"
        + (f" and {len(result.error_maps)} error map(s)" if result.error_maps else "")
    )
    if outcome.training is not None:
        trained = outcome.training
        summary = f"trained {trained.model} ({trained.epochs} epoch(s), {trained.seconds:.0f} s), then {summary}"
        outputs.append(trained.checkpoint)
    log.info(summary + "\n" + "\n".join(outputs) + "".join(f"\nwarning: {w}" for w in result.warnings))
    bar.pushMessage(MESSAGE_TITLE, f"{summary} (paths in the log panel, STF)", Qgis.Success, 15)
