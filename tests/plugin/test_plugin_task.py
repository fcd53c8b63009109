"""Fusion tasks on the bundled sample: layers and renderers on success; nothing on disk or in the project on
cancel or failure; training first, then fusing with the new checkpoint."""
from __future__ import annotations

import pytest

pytest.importorskip("qgis")

from conftest import files_under, wait_for  # noqa: E402


def request_for(plugin, sample_paths, out, **changes):
    engine = plugin.status.engine
    fields = dict(
        coarse_target=sample_paths["coarse_target"],
        fine_reference=sample_paths["fine_reference"],
        coarse_reference=sample_paths["coarse_reference"],
        output=str(out / "fused.tif"),
        error_maps_dir=str(out / "error_maps"),
        method="delta",
        tile=128,
        device="cpu",
    )
    fields.update(changes)
    return engine.FusionRequest(**fields)


def run_task(plugin, request):
    outcomes = []
    task = plugin.start(request)
    task.taskCompleted.connect(lambda: outcomes.append("completed"))
    task.taskTerminated.connect(lambda: outcomes.append("terminated"))
    wait_for(lambda: outcomes and not plugin.tasks)
    return outcomes[0]


def fusion_groups():
    from qgis.core import QgsProject

    return [g for g in QgsProject.instance().layerTreeRoot().children() if g.name().startswith("Fusion ")]


def test_task_adds_a_group_with_styled_fused_raster_and_error_maps(plugin, sample_layers, sample_paths, tmp_path, iface):
    from qgis.core import (
        Qgis,
        QgsColorRampShader,
        QgsMultiBandColorRenderer,
        QgsRasterMinMaxOrigin,
        QgsSingleBandPseudoColorRenderer,
    )

    assert run_task(plugin, request_for(plugin, sample_paths, tmp_path / "out")) == "completed"
    [group] = fusion_groups()
    assert group.name().startswith("Fusion delta ")
    layers = {node.layer().name(): node.layer() for node in group.findLayers()}
    fused = group.findLayers()[0].layer()
    assert fused.name() == "fused (delta)"
    residual, rms = layers["coarse_residual (band 1 of 3)"], layers["coarse_residual_rms"]
    assert fused.source() == str(tmp_path / "out" / "fused.tif")
    renderer = fused.renderer()
    assert isinstance(renderer, QgsMultiBandColorRenderer)
    assert (renderer.redBand(), renderer.greenBand(), renderer.blueBand()) == (1, 2, 3)
    assert renderer.minMaxOrigin().limits() == QgsRasterMinMaxOrigin.CumulativeCut
    enhancement = renderer.redContrastEnhancement()
    assert 0 < enhancement.minimumValue() < enhancement.maximumValue() < 10000
    error_maps = [layer for layer in layers.values() if layer is not fused]
    assert len(error_maps) == len(list((tmp_path / "out" / "error_maps").glob("*.tif")))
    for layer in error_maps:
        assert isinstance(layer.renderer(), QgsSingleBandPseudoColorRenderer), layer.name()
        assert layer.renderer().legendSymbologyItems()
    assert residual.renderer().classificationMin() == -residual.renderer().classificationMax()
    seams = layers["seam_mask"].renderer().shader().rasterShaderFunction()
    assert seams.colorRampType() == QgsColorRampShader.Exact and len(seams.colorRampItemList()) == 2
    assert rms.renderer().classificationMin() == 0
    assert any("delta on cpu" in m for m in iface.messageBar().get_messages(Qgis.Success))


def write_raster(path, values):
    import rasterio
    from rasterio.transform import from_origin

    with rasterio.open(path, "w", driver="GTiff", width=values.shape[-1], height=values.shape[-2], count=values.shape[0],
                       dtype="float32", crs="EPSG:32649", transform=from_origin(0, 80, 10, 10)) as dst:
        dst.write(values.astype("float32"))


def test_single_band_output_is_grey_and_untagged_maps_styled_by_sign(tmp_path):
    import numpy as np
    from qgis.core import QgsRasterLayer, QgsSingleBandGrayRenderer

    from stf_qgis_plugin.styling import style_error_map, style_fused

    values = np.arange(64, dtype="float32").reshape(1, 8, 8)
    write_raster(tmp_path / "one.tif", values)
    write_raster(tmp_path / "signed.tif", values - 32)
    layer = QgsRasterLayer(str(tmp_path / "one.tif"), "one")
    style_fused(layer)
    assert isinstance(layer.renderer(), QgsSingleBandGrayRenderer)
    assert style_error_map(QgsRasterLayer(str(tmp_path / "one.tif"), "magnitude")) == "sequential"
    assert style_error_map(QgsRasterLayer(str(tmp_path / "signed.tif"), "signed")) == "diverging"


def cancel_after_first_batch(task):
    """Cancel from the worker thread as soon as progress moves, so the run cannot finish first."""
    from qgis.PyQt.QtCore import Qt

    task.progressChanged.connect(lambda value: task.cancel() if value > 0 else None, Qt.DirectConnection)


def test_cancel_leaves_nothing(plugin, sample_layers, sample_paths, tmp_path, iface):
    from qgis.core import Qgis

    out = tmp_path / "cancelled"
    request = request_for(plugin, sample_paths, out, method="starfm", tile=64, batch=1, options={"window": 5})
    outcomes = []
    task = plugin.start(request)
    task.taskTerminated.connect(lambda: outcomes.append("terminated"))
    cancel_after_first_batch(task)
    wait_for(lambda: outcomes and not plugin.tasks)
    assert outcomes == ["terminated"]
    assert files_under(out) == [] and not out.exists()
    assert fusion_groups() == []
    assert any("cancelled" in m for m in iface.messageBar().get_messages(Qgis.Warning))


def test_engine_error_is_one_line_in_the_message_bar(plugin, sample_layers, sample_paths, tmp_path, iface):
    from qgis.core import Qgis

    request = request_for(plugin, sample_paths, tmp_path / "failed", fine_reference=str(tmp_path / "missing.tif"))
    assert run_task(plugin, request) == "terminated"
    messages = iface.messageBar().get_messages(Qgis.Critical)
    assert "fine reference: file not found" in messages[-1] and "\n" not in messages[-1]
    assert fusion_groups() == [] and not (tmp_path / "failed").exists()


def fast_training(plugin, small_scene, out, model="ganstfm"):
    """The dialog's "train first" request for the small scene, shortened to one tiny step."""
    engine = plugin.status.engine
    request = engine.FusionRequest(
        coarse_target=small_scene["coarse_target"], fine_reference=small_scene["fine_reference"],
        output=str(out / "fused.tif"), method=model, tile=0, device="cpu", coarse_resolution=250,
    )
    training = engine.TrainingRequest(
        model=model, output=str(out / "fused.pt"), coarse_target=small_scene["coarse_target"],
        fine_reference=small_scene["fine_reference"], epochs=1, patch=8, batch=2, steps_per_epoch=1,
        device="cpu", coarse_resolution=250,
    )
    return request, training


def test_train_first_then_fuse_with_the_new_checkpoint(plugin, qgis_new_project, small_scene, tmp_path, iface):
    from qgis.core import Qgis

    request, training = fast_training(plugin, small_scene, tmp_path / "trained")
    outcomes = []
    task = plugin.start(request, training)
    task.taskCompleted.connect(lambda: outcomes.append("completed"))
    task.taskTerminated.connect(lambda: outcomes.append("terminated"))
    wait_for(lambda: outcomes and not plugin.tasks, timeout=120)
    assert outcomes == ["completed"], iface.messageBar().get_messages(Qgis.Critical)[-1:]
    assert (tmp_path / "trained" / "fused.pt").exists() and (tmp_path / "trained" / "fused.tif").exists()
    [group] = fusion_groups()
    assert group.findLayers()[0].layer().name() == "fused (ganstfm)"
    assert "trained ganstfm (1 epoch(s)" in iface.messageBar().get_messages(Qgis.Success)[-1]


def test_cancel_during_training_leaves_no_checkpoint(plugin, qgis_new_project, small_scene, tmp_path):
    request, training = fast_training(plugin, small_scene, tmp_path / "cancelled")
    training.epochs, training.steps_per_epoch = 3, 5
    outcomes = []
    task = plugin.start(request, training)
    task.taskTerminated.connect(lambda: outcomes.append("terminated"))
    cancel_after_first_batch(task)
    wait_for(lambda: outcomes and not plugin.tasks, timeout=120)
    assert outcomes == ["terminated"]
    assert not (tmp_path / "cancelled").exists() and fusion_groups() == []
