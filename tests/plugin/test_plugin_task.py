"""Fusion tasks on the bundled sample: layers and renderers on success; nothing on disk or in the project on
cancel or failure; training first, then fusing with the new checkpoint."""
from __future__ import annotations

import pytest

pytest.importorskip("qgis")

from conftest import files_under, run_task, wait_for  # noqa: E402
from helpers.result_group import check_result_group, legend_texts  # noqa: E402


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


def fusion_groups():
    from qgis.core import QgsProject

    return [g for g in QgsProject.instance().layerTreeRoot().children() if g.name().startswith("Fusion ")]


def test_task_adds_a_group_with_styled_fused_raster_and_error_maps(plugin, sample_layers, sample_paths, tmp_path, iface):
    """Band names instead of "Band 1 (Gray)", units in the error maps' names, one error map switched on."""
    from qgis.core import Qgis

    assert run_task(plugin, request_for(plugin, sample_paths, tmp_path / "out")) == "completed"
    [group] = fusion_groups()
    out = tmp_path / "out"
    check_result_group(group, "delta", out / "fused.tif", out / "error_maps", shown="coarse_residual_rms")
    assert any("delta on cpu" in m for m in iface.messageBar().get_messages(Qgis.Success))


def test_with_a_truth_the_rms_error_is_the_map_switched_on(plugin, sample_layers, sample_paths, tmp_path, iface):
    """The message bar gives the run's RMSE against the truth, over every valid pixel and band (here from the
    per-band absolute errors)."""
    import numpy as np
    import rasterio
    from qgis.core import Qgis

    request = request_for(plugin, sample_paths, tmp_path / "out", truth=sample_paths["truth"])
    assert run_task(plugin, request) == "completed"
    [group] = fusion_groups()
    maps = check_result_group(group, "delta", tmp_path / "out" / "fused.tif", tmp_path / "out" / "error_maps",
                              shown="rms_error")
    assert {"abs_error", "rms_error"} <= set(maps)
    with rasterio.open(tmp_path / "out" / "error_maps" / "abs_error.tif") as errors:
        rmse = float(np.sqrt(np.nanmean(errors.read().astype("float64") ** 2)))
    success = iface.messageBar().get_messages(Qgis.Success)[-1]
    assert f"; RMSE against the truth {rmse:.4g} (paths in the log panel, STF)" in success, success


def described_copy(source, target, names) -> str:
    """The raster with GDAL band descriptions (what a Landsat product exported with band names carries)."""
    import rasterio

    with rasterio.open(source) as src:
        with rasterio.open(target, "w", **src.profile) as dst:
            dst.write(src.read())
            for band, name in enumerate(names, start=1):
                dst.set_band_description(band, name)
    return str(target)


def test_legend_names_bands_by_description_and_follows_the_renderer(plugin, sample_layers, sample_paths, tmp_path):
    from qgis.core import QgsMapLayerLegendUtils, QgsMultiBandColorRenderer, QgsSingleBandGrayRenderer

    fine = described_copy(sample_paths["fine_reference"], tmp_path / "fine_named.tif", ["NIR", "red", "green"])
    request = request_for(plugin, sample_paths, tmp_path / "out", fine_reference=fine, error_maps_dir=None)
    assert run_task(plugin, request) == "completed"
    [group] = fusion_groups()
    [node] = group.findLayers()
    fused = node.layer()
    assert legend_texts(node) == ["Band 1: NIR", "Band 2: red", "Band 3: green"]

    fused.setRenderer(QgsMultiBandColorRenderer(fused.dataProvider(), 3, 2, 1))
    assert legend_texts(node) == ["Band 3: green", "Band 2: red", "Band 1: NIR"]
    fused.setRenderer(QgsSingleBandGrayRenderer(fused.dataProvider(), 2))
    assert not any(QgsMapLayerLegendUtils.hasLegendNodeUserLabel(node, index) for index in range(3))

    # Unloaded, the plugin no longer reacts to the layer (no connection outlives it): the labels stay QGIS's.
    plugin.unload()
    fused.setRenderer(QgsMultiBandColorRenderer(fused.dataProvider(), 3, 2, 1))
    assert legend_texts(node) == ["Band 3: green", "Band 2: red", "Band 1: NIR (Gray)"]


def test_a_result_in_an_empty_project_sets_the_crs_and_the_canvas_shows_it(plugin, qgis_new_project, sample_paths,
                                                                          tmp_path, iface):
    from qgis.core import QgsProject

    project, canvas = QgsProject.instance(), iface.mapCanvas()
    assert project.mapLayers() == {}
    assert run_task(plugin, request_for(plugin, sample_paths, tmp_path / "out")) == "completed"
    [group] = fusion_groups()
    extent = group.findLayers()[0].layer().extent()
    assert project.crs().authid() == canvas.mapSettings().destinationCrs().authid() == "EPSG:32649"
    shown = canvas.extent()
    assert shown.contains(extent) and shown.width() * shown.height() < 4 * extent.width() * extent.height()


def test_a_result_in_a_project_with_layers_leaves_crs_and_canvas_alone(plugin, sample_layers, sample_paths, tmp_path,
                                                                      iface):
    from qgis.core import QgsCoordinateReferenceSystem, QgsProject, QgsRectangle

    project, canvas = QgsProject.instance(), iface.mapCanvas()
    project.setCrs(QgsCoordinateReferenceSystem("EPSG:3857"))
    canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:3857"))
    canvas.setExtent(QgsRectangle(0, 0, 1000, 1000))
    before = canvas.extent()
    assert run_task(plugin, request_for(plugin, sample_paths, tmp_path / "out")) == "completed"
    assert project.crs().authid() == canvas.mapSettings().destinationCrs().authid() == "EPSG:3857"
    assert canvas.extent() == before


def write_raster(path, values):
    import rasterio
    from rasterio.transform import from_origin

    with rasterio.open(path, "w", driver="GTiff", width=values.shape[-1], height=values.shape[-2], count=values.shape[0],
                       dtype="float32", crs="EPSG:32649", transform=from_origin(0, 80, 10, 10)) as dst:
        dst.write(values.astype("float32"))


def test_the_results_warnings_are_warnings_next_to_the_success(plugin, sample_layers, sample_paths, tmp_path, iface):
    """The sample's MODIS is resampled to 30 m and covers part of the Landsat scene: the engine's warnings come as
    yellow messages naming the dialog's fields, and go to the log as warnings, after the green success."""
    from qgis.core import Qgis

    from stf_qgis_plugin.wording import in_dialog_terms

    logged = stf_log(Qgis.Warning)
    kept = []
    assert run_task(plugin, request_for(plugin, sample_paths, tmp_path / "out"),
                    started=lambda task: kept.append(task.outcome)) == "completed"
    warned = [in_dialog_terms(w) for w in kept[0].result.warnings]
    assert any("(Advanced → 'Real coarse pixel size')" in w for w in warned) and any("covers" in w for w in warned)
    shown = iface.messageBar().get_messages(Qgis.Warning)
    assert shown[-len(warned):] == [f"Spatiotemporal fusion:{w}" for w in warned]
    assert "delta on cpu" in iface.messageBar().get_messages(Qgis.Success)[-1]
    assert logged == warned and not [w for w in warned if "--" in w]


def test_an_internal_error_says_it_is_a_bug_to_report_and_logs_its_traceback(plugin, sample_layers, sample_paths,
                                                                              tmp_path, iface, monkeypatch):
    """An exception the engine did not mean (here auto's failed k-means on a tiny coarse image) is no reason the
    analyst can act on: the bar says it is STF's, to report, and the log has where it happened."""
    from qgis.core import Qgis

    def fails(request, **kwargs):
        raise RuntimeError("random_ expects 'from' to be less than 'to', but got from=0 >= to=0")

    logged = stf_log(Qgis.Critical)
    monkeypatch.setattr(plugin.status.engine, "fuse", fails)
    assert run_task(plugin, request_for(plugin, sample_paths, tmp_path / "out")) == "terminated"
    assert iface.messageBar().get_messages(Qgis.Critical)[-1] == (
        "Spatiotemporal fusion:not run: internal error of STF (RuntimeError: random_ expects 'from' to be less than "
        "'to', but got from=0 >= to=0), not a problem with your inputs; please report it with its traceback from the "
        "log panel (STF)")
    [entry] = logged
    assert "Traceback (most recent call last)" in entry and 'in fails\n    raise RuntimeError("random_' in entry


def test_a_flat_error_map_is_styled_without_a_stretch_and_not_switched_on(tmp_path):
    """With ratio 1 (no real coarse pixel size) the coarse residual maps are 0 everywhere: GDAL has no histogram
    to cut (it prints an error), and switched on the map would read as "no error"; another map shows, else none."""
    import numpy as np
    import rasterio
    from osgeo import gdal
    from qgis.core import QgsRasterLayer

    from stf_qgis_plugin.results import shown_error_map
    from stf_qgis_plugin.styling import style_error_map

    write_raster(tmp_path / "zero.tif", np.zeros((1, 8, 8)))
    write_raster(tmp_path / "change.tif", np.arange(64).reshape(1, 8, 8) / 64)
    zero, change = (QgsRasterLayer(str(tmp_path / f"{name}.tif"), name) for name in ("zero", "change"))
    errors = []
    gdal.PushErrorHandler(lambda level, number, message: errors.append(message))
    try:
        assert style_error_map(zero) == "sequential"
    finally:
        gdal.PopErrorHandler()
    assert errors == [] and (zero.renderer().classificationMin(), zero.renderer().classificationMax()) == (0, 1)
    assert shown_error_map({"coarse_residual_rms": zero, "temporal_change": change}) == "temporal_change"
    assert shown_error_map({"coarse_residual": zero, "coarse_residual_rms": zero}) is None
    write_raster(tmp_path / "seams.tif", (np.arange(64).reshape(1, 8, 8) % 8 == 3).astype("float32"))
    with rasterio.open(tmp_path / "seams.tif", "r+") as seams:
        seams.update_tags(STF_RAMP="mask")
    mask = QgsRasterLayer(str(tmp_path / "seams.tif"), "seams")
    assert shown_error_map({"coarse_residual_rms": zero, "seam_mask": mask}) is None  # where tiles join: no error


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
    """A cancel is a warning, in the bar and the log (nothing went wrong)."""
    from qgis.core import Qgis

    critical, warned = stf_log(Qgis.Critical), stf_log(Qgis.Warning)
    out = tmp_path / "cancelled"
    request = request_for(plugin, sample_paths, out, method="starfm", tile=64, batch=1, options={"window": 5})
    assert run_task(plugin, request, started=cancel_after_first_batch) == "terminated"
    assert files_under(out) == [] and not out.exists()
    assert fusion_groups() == []
    assert any("cancelled" in m for m in iface.messageBar().get_messages(Qgis.Warning))
    assert critical == [] and warned == ["fusion failed: cancelled"]


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
    kept = []
    ended = run_task(plugin, request, training, timeout=120, started=lambda task: kept.append(task.outcome))
    assert ended == "completed", iface.messageBar().get_messages(Qgis.Critical)[-1:]
    [outcome] = kept
    assert (tmp_path / "trained" / "fused.pt").exists() and (tmp_path / "trained" / "fused.tif").exists()
    [group] = fusion_groups()
    assert group.findLayers()[0].layer().name() == "fused (ganstfm)"
    success = iface.messageBar().get_messages(Qgis.Success)[-1]
    metrics = outcome.training.validation_metrics
    assert "trained ganstfm (1 epoch(s)" in success
    assert f"held-out RMSE {metrics['rmse']:.4g} against delta's {metrics['rmse_delta']:.4g}: " in success
    assert outcome.training.verdict in success


def test_a_model_that_does_not_beat_delta_is_a_warning_in_the_message_bar(plugin, qgis_new_project, small_scene,
                                                                          tmp_path, iface):
    """EDCSTFN after one training step on the small scene with its coarse reference does worse than delta on the
    held-out data (0.0323 against 0.0321 when written): the engine warns, and the message bar shows the training's
    warnings as warnings next to the success, first, and once (the fusion with the new checkpoint repeats them)."""
    from qgis.core import Qgis

    from stf_qgis_plugin.wording import in_dialog_terms

    request, training = fast_training(plugin, small_scene, tmp_path / "weak", model="edcstfn")
    request.coarse_reference = training.coarse_reference = small_scene["coarse_reference"]
    kept = []
    before = len(iface.messageBar().get_messages(Qgis.Warning))
    ended = run_task(plugin, request, training, timeout=120, started=lambda task: kept.append(task.outcome))
    assert ended == "completed", iface.messageBar().get_messages(Qgis.Critical)[-1:]
    [outcome] = kept
    warned = outcome.training.warnings
    assert any("does not beat the delta baseline" in w for w in warned), (outcome.training.validation_metrics, warned)
    shown = iface.messageBar().get_messages(Qgis.Warning)[before:]
    assert shown[:len(warned)] == [f"Spatiotemporal fusion:{in_dialog_terms(w)}" for w in warned]
    assert len([m for m in shown if "does not beat the delta baseline" in m]) == 1, shown
    assert "trained edcstfn" in iface.messageBar().get_messages(Qgis.Success)[-1]


def test_a_training_error_names_the_dialogs_field(plugin, qgis_new_project, small_scene, tmp_path, iface):
    """The sample's MODIS is resampled to 30 m, so self-training needs the real coarse pixel size: the engine asks
    for it as --coarse-res, the message bar as the dialog's Advanced field."""
    from qgis.core import Qgis

    request, training = fast_training(plugin, small_scene, tmp_path / "failed")
    request.coarse_resolution = training.coarse_resolution = None
    kept = []
    assert run_task(plugin, request, training, timeout=120, started=lambda task: kept.append(task.outcome)) == "terminated"
    [outcome] = kept
    assert "(--coarse-res)" in outcome.reason  # what the engine said
    message = iface.messageBar().get_messages(Qgis.Critical)[-1]
    assert "give its real pixel size (Advanced → 'Real coarse pixel size')" in message and "--" not in message
    assert not (tmp_path / "failed").exists()


def stf_log(level=None):
    """Collects what the plugin writes to the log panel's STF tab (at `level` only, when given)."""
    from qgis.core import QgsApplication

    lines = []
    QgsApplication.messageLog().messageReceived.connect(
        lambda message, tag, at: lines.append(message) if tag == "STF" and level in (None, at) else None)
    return lines


def test_auto_says_what_it_ran_and_logs_its_validation_table(plugin, sample_layers, sample_paths, tmp_path, iface):
    import json

    import rasterio
    from qgis.core import Qgis

    log = stf_log()
    request = request_for(plugin, sample_paths, tmp_path / "auto", method="auto", coarse_resolution=250, tile=256)
    kept = []
    ended = run_task(plugin, request, timeout=180, started=lambda task: kept.append(task.outcome))
    assert ended == "completed", iface.messageBar().get_messages(Qgis.Critical)[-1:]
    [outcome] = kept
    with rasterio.open(tmp_path / "auto" / "fused.tif") as fused:
        recorded = json.loads(fused.tags()["STF_AUTO"])  # what the engine wrote into the output
    ran, table = recorded["chosen"], recorded["validation_rmse"]
    assert outcome.result.method == ran and ran != "auto" and "delta" in table
    message = iface.messageBar().get_messages(Qgis.Success)[-1]
    assert f"auto ran {ran} (Wald validation RMSE {table[ran]:.4g}, delta {table['delta']:.4g}) on cpu" in message
    [logged] = [entry for entry in log if entry.startswith(f"auto ran {ran}")]
    lines = logged.splitlines()
    start = lines.index("Wald's reduced-resolution validation on the scene (RMSE, best first):")
    rows = lines[start + 1:start + 1 + len(table)]
    assert [row.split(":")[0].strip() for row in rows] == sorted(table, key=table.get)
    assert all(f"{method}: {table[method]:.4g}" in row for method, row in zip(sorted(table, key=table.get), rows))
    assert f"  {ran}: {table[ran]:.4g} (ran" in logged and f"  delta: {table['delta']:.4g}" in logged
    assert recorded["reason"] in lines and f"warning: {recorded['reason']}" not in lines  # a note, not a fault


def test_cancel_during_training_leaves_no_checkpoint(plugin, qgis_new_project, small_scene, tmp_path):
    request, training = fast_training(plugin, small_scene, tmp_path / "cancelled")
    training.epochs, training.steps_per_epoch = 3, 5
    assert run_task(plugin, request, training, timeout=120, started=cancel_after_first_batch) == "terminated"
    assert not (tmp_path / "cancelled").exists() and fusion_groups() == []


def test_unload_cancels_tasks_and_they_no_longer_report_back(plugin, sample_layers, sample_paths, tmp_path, iface):
    """A task that ends after the plugin is gone (QGIS closing) adds no layers and pushes no message."""
    from qgis.core import Qgis

    out = tmp_path / "unloaded"
    request = request_for(plugin, sample_paths, out, method="starfm", tile=64, batch=1, options={"window": 5})
    ended = []
    task = plugin.start(request)
    task.taskTerminated.connect(lambda: ended.append("terminated"))
    task.taskCompleted.connect(lambda: ended.append("completed"))
    cancel_after_first_batch(task)  # in case it is not running yet when the plugin unloads
    messages = {level: len(iface.messageBar().get_messages(level)) for level in (Qgis.Warning, Qgis.Critical)}
    plugin.unload()
    assert plugin.tasks == []
    wait_for(lambda: ended)
    assert ended == ["terminated"] and fusion_groups() == [] and not out.exists()
    assert {level: len(iface.messageBar().get_messages(level)) for level in messages} == messages


def test_the_task_shows_its_step_and_the_time_left(plugin, sample_paths, tmp_path):
    """Within a run the task manager's description names the step and an estimate of the time left."""
    import time

    from stf_qgis_plugin.task import FusionTask, time_left

    assert time_left(1.0, 0.5) == "" and time_left(30.0, 0.01) == ""
    assert time_left(10.0, 0.5) == "about 10 s left" and time_left(60.0, 0.25) == "about 3 min left"
    task = FusionTask(plugin.status.engine, request_for(plugin, sample_paths, tmp_path / "o.tif"), lambda outcome: None)
    progress = task._stage(0.0, 1.0)
    task._started = time.monotonic() - 20.0
    progress(0.4, "tile 2/5")
    assert task.description().endswith(": tile 2/5, about 30 s left"), task.description()
    assert task.progress() == pytest.approx(40.0)


def test_a_run_into_the_files_of_an_earlier_result_replaces_their_layers_there(plugin, sample_layers, sample_paths,
                                                                               tmp_path):
    """The earlier group's layers of the files the new run overwrote (with the earlier run's names and styles) go,
    and so do those of the maps it removed (an error-maps folder keeps only the maps of the fused raster beside it);
    the maps of another folder stay, and a group left empty goes too."""
    import os
    from pathlib import Path

    from qgis.core import QgsProject

    out = tmp_path / "out"
    assert run_task(plugin, request_for(plugin, sample_paths, out, truth=sample_paths["truth"])) == "completed"
    elsewhere = request_for(plugin, sample_paths, out, method="cubic", error_maps_dir=str(out / "cubic_maps"))
    assert run_task(plugin, elsewhere) == "completed"
    new, old = fusion_groups()
    assert new.name().startswith("Fusion cubic ") and old.name().startswith("Fusion delta ")
    assert sorted(Path(node.layer().source()).stem for node in old.findLayers()) == sorted(
        path.stem for path in (out / "error_maps").glob("*.tif"))
    assert {"abs_error", "rms_error", "temporal_change"} <= {Path(n.layer().source()).stem for n in old.findLayers()}
    assert run_task(plugin, request_for(plugin, sample_paths, out, method="cubic")) == "completed"  # no truth maps
    newest, new = fusion_groups()
    assert [node.layer().source() for node in new.findLayers()] == [
        str(path) for path in sorted((out / "cubic_maps").glob("*.tif"))]
    written = [str(out / "fused.tif"), *map(str, (out / "error_maps").glob("*.tif"))]
    assert sorted(node.layer().source() for node in newest.findLayers()) == sorted(written)
    layers = QgsProject.instance().mapLayers().values()
    assert all(layer.isValid() and os.path.exists(layer.source()) for layer in layers)
