"""Runs into the files of results QGIS shows, as on Windows, where a file GDAL holds open can be neither replaced
nor removed: the plugin lets go of those files for the run and shows them again afterwards, new or untouched."""
from __future__ import annotations

import os

import pytest

pytest.importorskip("qgis")

from conftest import run_task, wait_for  # noqa: E402
from test_plugin_processing import fuse_parameters  # noqa: E402
from test_plugin_series import DATES, delta_series, series_csv, series_groups, series_parameters  # noqa: E402, F401
from test_plugin_task import fusion_groups, request_for  # noqa: E402

FD_FOLDER = "/proc/self/fd"


def open_files() -> set:
    """The real paths of the files this process holds open (a replaced or removed one ends in ' (deleted)')."""
    held = set()
    for fd in os.listdir(FD_FOLDER):
        try:
            held.add(os.readlink(os.path.join(FD_FOLDER, fd)))
        except OSError:  # closed since the listing
            continue
    return held


def sharing_violation(source, target=None) -> PermissionError:
    """What Windows raises for a file another handle has open without delete sharing (GDAL's)."""
    refused = PermissionError(13, "The process cannot access the file because it is being used by another process",
                              source, 32, target)
    refused.winerror = 32  # ERROR_SHARING_VIOLATION (OSError sets it from its arguments on Windows only)
    return refused


@pytest.fixture
def windows_files(monkeypatch):
    """os.replace and os.remove as on Windows (what the engine's outputs module calls): refused while this process
    holds the file to be renamed, replaced or removed open."""
    from stf_engine.core import outputs

    replace, remove = outputs.os.replace, outputs.os.remove

    def refuse_if_held(*paths) -> None:
        held = open_files()
        if any(os.path.realpath(path) in held for path in paths if os.path.lexists(path)):
            raise sharing_violation(*paths)

    def windows_replace(source, target, **kwargs):
        refuse_if_held(source, target)
        replace(source, target, **kwargs)

    def windows_remove(path, **kwargs):
        refuse_if_held(path)
        remove(path, **kwargs)

    monkeypatch.setattr(outputs.os, "replace", windows_replace)
    monkeypatch.setattr(outputs.os, "remove", windows_remove)


def gone_files_held(folder) -> list:
    """Files under `folder` this process still holds open although they were replaced or removed."""
    return sorted(path for path in open_files() if path.startswith(str(folder)) and path.endswith(" (deleted)"))


def read(layer, size: int = 64) -> list:
    """What the layer reads of its file: every band on a size×size grid, as QGIS's provider gives it (None for
    nodata, whose bytes in a block are not defined)."""
    provider = layer.dataProvider()
    blocks = [provider.block(band, layer.extent(), size, size) for band in range(1, layer.bandCount() + 1)]
    return [None if block.isNoData(row, column) else block.value(row, column)
            for block in blocks for row in range(size) for column in range(size)]


def shows(layer, path) -> bool:
    """Whether the layer reads what the file holds now (what a layer opened on it now reads)."""
    from qgis.core import QgsRasterLayer

    return layer.isValid() and read(layer) == read(QgsRasterLayer(str(path), "now"))


def project_layers() -> list:
    from qgis.core import QgsProject

    return list(QgsProject.instance().mapLayers().values())


def cancel_when_running(shown, held: list):
    """`started` for run_task: as soon as progress moves (the task's thread), note which of the files `shown`
    this process holds open, then cancel, so the run cannot finish first."""
    from qgis.PyQt.QtCore import Qt

    def started(task):
        def progressed(value):
            if value > 0 and not held:
                held.append(sorted(open_files() & {str(path) for path in shown}))
                task.cancel()

        task.progressChanged.connect(progressed, Qt.DirectConnection)

    return started


def save_copy(path) -> None:
    """Save the project as `path`, leaving it unsaved (its folder would become the dialog's default output)."""
    from qgis.core import QgsProject

    assert QgsProject.instance().write(str(path))
    QgsProject.instance().setFileName("")


def test_a_rerun_into_the_shown_result_replaces_it(plugin, sample_layers, sample_paths, tmp_path, iface,
                                                  windows_files):
    """The dialog's run into the files of the result it added before: the new result shows; the earlier group's
    layers of files the run replaced or removed (its truth maps: cubic writes none) go, and so does the group; a
    layer of the fused raster outside result groups reads the new one. The project saved during the run keeps
    every layer as it was."""
    from qgis.core import Qgis, QgsProject, QgsRasterLayer, QgsSingleBandGrayRenderer

    out = tmp_path / "out"
    first = request_for(plugin, sample_paths, out, truth=sample_paths["truth"])
    assert run_task(plugin, first) == "completed", iface.messageBar().get_messages(Qgis.Critical)[-1:]
    own = QgsRasterLayer(str(out / "fused.tif"), "my own")
    own.setRenderer(QgsSingleBandGrayRenderer(own.dataProvider(), 2))
    QgsProject.instance().addMapLayer(own)
    before, sources = read(own), {layer.id(): layer.source() for layer in project_layers()}
    rerun = request_for(plugin, sample_paths, out, method="cubic")
    saved = tmp_path / "saved" / "during the run.qgs"
    saved.parent.mkdir()
    assert run_task(plugin, rerun, started=lambda task: save_copy(saved)) == "completed", \
        iface.messageBar().get_messages(Qgis.Critical)[-1:]
    reopened = QgsProject()
    assert reopened.read(str(saved))
    assert {layer.id(): layer.source() for layer in reopened.mapLayers().values()} == sources
    assert reopened.mapLayer(own.id()).renderer().grayBand() == 2
    [group] = fusion_groups()
    assert group.name().startswith("Fusion cubic ")
    fused = group.findLayers()[0].layer()
    assert fused.source() == str(out / "fused.tif") and shows(fused, out / "fused.tif")
    assert QgsProject.instance().mapLayer(own.id()) is own and shows(own, out / "fused.tif") and read(own) != before
    assert all(layer.isValid() and os.path.exists(layer.source()) for layer in project_layers())
    assert gone_files_held(tmp_path) == []


def test_a_cancelled_rerun_leaves_the_shown_result_as_it_was(plugin, sample_layers, sample_paths, tmp_path,
                                                             windows_files):
    """The layers let go of the files during the run, and read the old ones again after it."""
    out = tmp_path / "out"
    assert run_task(plugin, request_for(plugin, sample_paths, out)) == "completed"
    [group] = fusion_groups()
    layers = [node.layer() for node in group.findLayers()]
    before = [read(layer) for layer in layers]
    rerun = request_for(plugin, sample_paths, out, method="starfm", tile=64, batch=1, options={"window": 5})
    held = []
    assert run_task(plugin, rerun, started=cancel_when_running([l.source() for l in layers], held)) == "terminated"
    assert held == [[]]
    assert fusion_groups() == [group] and [node.layer() for node in group.findLayers()] == layers
    assert [read(layer) for layer in layers] == before and all(layer.isValid() for layer in layers)


def toolbox_run(algorithm_id: str, parameters: dict, feedback=None) -> bool:
    """What the Processing toolbox's Run does: the algorithm's task, processAlgorithm on a worker thread; whether
    it succeeded. (Its loading of the outputs is left out: the task's bindings here turn a
    QgsProcessingOutputLayerDefinition into text.)"""
    from processing.tools import dataobjects
    from qgis.core import QgsApplication, QgsProcessingAlgRunnerTask, QgsProcessingFeedback

    feedback = feedback or QgsProcessingFeedback()
    context = dataobjects.createContext(feedback)
    algorithm = QgsApplication.processingRegistry().createAlgorithmById(algorithm_id)
    task = QgsProcessingAlgRunnerTask(algorithm, parameters, context, feedback)
    ended = []
    task.executed.connect(lambda ok, results: ended.append(ok))
    QgsApplication.taskManager().addTask(task)
    wait_for(lambda: ended)
    return ended[0]


def test_a_toolbox_rerun_of_fuse_into_the_loaded_output_replaces_it(plugin, sample_layers, sample_paths, tmp_path,
                                                                    windows_files):
    """The loaded layers of the files the run replaced read the new ones; those of maps it removed go."""
    import processing

    out, maps = tmp_path / "fused.tif", str(tmp_path / "maps")
    processing.runAndLoadResults("stf:fuse", fuse_parameters(sample_paths, out, ERROR_MAPS=maps,
                                                             TRUTH=sample_paths["truth"]))
    [group] = fusion_groups()
    loaded = group.findLayers()[0].layer()
    before = read(loaded)
    assert toolbox_run("stf:fuse", fuse_parameters(sample_paths, str(out), ERROR_MAPS=maps, METHOD="cubic"))
    assert fusion_groups() == [group] and group.findLayers()[0].layer() is loaded
    assert shows(loaded, out) and read(loaded) != before
    assert all(layer.isValid() and os.path.exists(layer.source()) for layer in project_layers())
    assert gone_files_held(tmp_path) == []


def test_a_rerun_of_fuse_loading_its_output_replaces_the_loaded_result(plugin, sample_layers, sample_paths,
                                                                       tmp_path, windows_files):
    """processing.runAndLoadResults (on the main thread) into the files of the result it loaded before. A run
    that reads the loaded layer keeps it open, and the engine refuses to write over it."""
    import processing
    from qgis.core import QgsProcessingException

    out, maps = tmp_path / "fused.tif", str(tmp_path / "maps")
    processing.runAndLoadResults("stf:fuse", fuse_parameters(sample_paths, out, ERROR_MAPS=maps,
                                                             TRUTH=sample_paths["truth"]))
    [loaded] = [layer for layer in project_layers() if layer.source() == str(out)]
    with pytest.raises(QgsProcessingException, match="would overwrite the fine reference"):
        processing.run("stf:fuse", fuse_parameters(sample_paths, out, FINE_REFERENCE=loaded.id()))
    assert loaded.isValid()
    processing.runAndLoadResults("stf:fuse", fuse_parameters(sample_paths, out, ERROR_MAPS=maps, METHOD="cubic"))
    [group] = fusion_groups()
    assert group.name().startswith("Fusion cubic ") and group.findLayers()[0].layer() is loaded and shows(loaded, out)
    assert all(layer.isValid() and os.path.exists(layer.source()) for layer in project_layers())
    assert gone_files_held(tmp_path) == []


def test_a_cancelled_toolbox_rerun_of_fuse_leaves_the_loaded_output_as_it_was(plugin, sample_layers, sample_paths,
                                                                              tmp_path, windows_files):
    """Cancelled on its worker thread, the run gives the layers back through the main thread's event loop."""
    import processing
    from qgis.core import QgsProcessingFeedback

    out, maps = tmp_path / "fused.tif", str(tmp_path / "maps")
    processing.runAndLoadResults("stf:fuse", fuse_parameters(sample_paths, out, ERROR_MAPS=maps))
    layers = [node.layer() for node in fusion_groups()[0].findLayers()]
    before = [read(layer) for layer in layers]
    feedback, held = QgsProcessingFeedback(), []

    def progressed(value):
        if value > 0 and not held:
            held.append(sorted(open_files() & {layer.source() for layer in layers}))
            feedback.cancel()

    feedback.progressChanged.connect(progressed)
    rerun = fuse_parameters(sample_paths, str(out), ERROR_MAPS=maps, METHOD="starfm", TILE_SIZE=64, BATCH=1,
                            OPTIONS="window=5")
    assert not toolbox_run("stf:fuse", rerun, feedback)
    assert held == [[]]
    wait_for(lambda: all(layer.isValid() for layer in layers))
    assert [read(layer) for layer in layers] == before and len(fusion_groups()) == 1


def test_a_series_rerun_into_its_shown_folder_replaces_its_layers(plugin, qgis_new_project, series_csv, tmp_path,
                                                                  iface, windows_files):
    """The dialog's Series run again into the folder it showed (OVERWRITE): every date is fused again; the layers
    of the folder's files outside result groups (series.vrt, which reads the dated rasters) read the new ones."""
    import dataclasses

    from qgis.core import Qgis, QgsProject, QgsRasterLayer

    output = tmp_path / "kranj"
    request = delta_series(plugin.status.engine, series_csv, output)
    assert run_task(plugin, request) == "completed", iface.messageBar().get_messages(Qgis.Critical)[-1:]
    own = [QgsRasterLayer(str(output / name), name) for name in ("series.vrt", f"fused_{DATES[1]}.tif")]
    QgsProject.instance().addMapLayers(own)
    rerun = dataclasses.replace(request, overwrite=True)
    assert run_task(plugin, rerun) == "completed", iface.messageBar().get_messages(Qgis.Critical)[-1:]
    [group] = series_groups()
    assert [node.layer().source() for node in group.findLayers()[:3]] == [
        str(output / f"fused_{date}.tif") for date in DATES]
    assert all(QgsProject.instance().mapLayer(layer.id()) is layer and shows(layer, layer.source()) for layer in own)
    assert all(layer.isValid() and os.path.exists(layer.source()) for layer in project_layers())
    assert gone_files_held(tmp_path) == []


def test_a_toolbox_rerun_of_fuse_series_into_the_shown_folder_replaces_its_files(plugin, qgis_new_project,
                                                                                 series_csv, tmp_path, iface,
                                                                                 windows_files):
    """stf:fuse_series with OVERWRITE into the folder of a series the dialog shows, on the toolbox's worker
    thread: the series' layers read the new files."""
    from qgis.core import Qgis

    output = tmp_path / "kranj"
    assert run_task(plugin, delta_series(plugin.status.engine, series_csv, output)) == "completed", \
        iface.messageBar().get_messages(Qgis.Critical)[-1:]
    layers = [node.layer() for node in series_groups()[0].findLayers()]
    assert toolbox_run("stf:fuse_series", series_parameters(series_csv, output, OVERWRITE=True))
    assert all(shows(layer, layer.source()) for layer in layers) and len(project_layers()) == len(layers)
    assert gone_files_held(tmp_path) == []


def test_what_a_failed_run_cannot_remove_stays_with_a_log_line(plugin, sample_paths, tmp_path, monkeypatch):
    """On the main thread, after a failed run: a checkpoint or a folder held open (Windows) is left in place and
    logged, not raised into QGIS's Python error dialog."""
    from stf_qgis_plugin import task as task_module
    from stf_qgis_plugin.task import FusionTask
    from test_plugin_task import stf_log

    engine = plugin.status.engine
    out, maps = tmp_path / "new" / "out", tmp_path / "new" / "maps"
    request = request_for(plugin, sample_paths, out, error_maps_dir=str(maps))
    training = engine.TrainingRequest(model="ganstfm", output=str(out / "fused.pt"),
                                      coarse_target=sample_paths["coarse_target"],
                                      fine_reference=sample_paths["fine_reference"])
    outcomes, log = [], stf_log()
    task = FusionTask(engine, request, outcomes.append, training)
    maps.mkdir(parents=True)
    out.mkdir()
    (out / "fused.pt").write_bytes(b"a checkpoint another program holds open")
    remove, rmdir = task_module.os.remove, task_module.os.rmdir

    def held(function):
        def refuse_under_tmp_path(path, **kwargs):
            if str(path).startswith(str(tmp_path)):
                raise sharing_violation(str(path))
            return function(path, **kwargs)

        return refuse_under_tmp_path

    monkeypatch.setattr(task_module.os, "remove", held(remove))
    monkeypatch.setattr(task_module.os, "rmdir", held(rmdir))
    task.finished(False)
    assert [outcome.reason for outcome in outcomes] == ["cancelled"]
    assert (out / "fused.pt").exists() and maps.is_dir()
    assert [line for line in log if line.startswith("left ")] == [
        f"left {out / 'fused.pt'} in place after the failed run: {sharing_violation('').strerror}",
        f"left {maps} in place after the failed run: {sharing_violation('').strerror}"]
