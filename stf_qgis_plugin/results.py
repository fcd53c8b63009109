"""Turning a finished run into styled layers in a new group (after the dialog's task, or after `stf:fuse` in
Processing; a series as dated layers the Temporal Controller animates), keeping the legend's band names current,
and reporting the run in the message bar and log."""
from __future__ import annotations

import contextlib
import os
import time
from collections import Counter
from typing import Dict, Iterable, Iterator, List, Optional

from qgis.core import (
    Qgis,
    QgsDataProvider,
    QgsDateTimeRange,
    QgsLayerTreeGroup,
    QgsLayerTreeLayer,
    QgsMapLayer,
    QgsProject,
    QgsRasterLayer,
    QgsRasterLayerTemporalProperties,
    QgsReadWriteContext,
)
from qgis.PyQt import sip
from qgis.PyQt.QtCore import QDate, QDateTime, QObject, Qt, QTime, pyqtSlot
from qgis.PyQt.QtXml import QDomDocument

from . import log
from .styling import (
    copy_style, error_map_name, file_tags, is_flat, label_legend, ramp_kind, style_error_map, style_fused,
)
from .task import TaskOutcome
from .wording import in_dialog_terms

MESSAGE_TITLE = "Spatiotemporal fusion"
BASELINE = "delta"
"""The baseline every method is measured against (always one of auto's candidates)."""
SHOWN_ERROR_MAPS = ("rms_error", "coarse_residual_rms")
"""The error map switched on in a result group: the first of these the run wrote (else its first map), passing
over flat ones (one value everywhere, e.g. the coarse residual of a run without the real coarse pixel size, which
would read as no error); the others are added switched off with their legends collapsed."""
RELIABILITY_GROUP = "reliability"
"""The subgroup of a series group holding the reliability maps (switched off: the fused dates show)."""
RESULT_GROUP = "stf/result_group"
"""Custom property of a result group: what a later run into the same files replaces layers in."""


def add_result_layers(result, project: QgsProject, canvas=None) -> QgsLayerTreeGroup:
    """A group "Fusion <method> <time>" at the top of the layer tree: the fused raster, then each error map.
    In a project with no layers or no CRS yet, the project takes the fused raster's CRS and `canvas` shows it.
    Layers of earlier results that show the files this run overwrote go (see `replace_layers_of`)."""
    new_view = has_no_view(project)
    replace_layers_of(project, [result.output, *result.error_maps.values()])
    fused = QgsRasterLayer(result.output, f"fused ({result.method})")
    error_maps = open_error_maps(result.error_maps)
    invalid = [layer.source() for layer in [fused, *error_maps.values()] if not layer.isValid()]
    if invalid:
        raise RuntimeError(f"QGIS could not open the output {invalid[0]}")
    group = insert_result_group(project.layerTreeRoot(), 0, result.method)
    project.addMapLayer(fused, False)
    fill_group(group, QgsLayerTreeLayer(fused), error_maps, project)
    drop_empty_result_groups(project.layerTreeRoot())
    if new_view:
        show_on_canvas(fused, project, canvas)
    return group


def group_loaded_layer(fused: QgsRasterLayer, method: str, error_map_paths: Dict[str, str], project: QgsProject,
                       canvas=None) -> QgsLayerTreeGroup:
    """The same group for a fused raster Processing has already loaded into `project`: the layer moves from where
    Processing put it into a new group at that place, with the error maps that could be opened. A run into the
    file of a layer already in the project gets that layer back from Processing: it is read afresh, and its new
    group goes in the place of the earlier result group it was in (result groups never nest)."""
    root = project.layerTreeRoot()
    new_view = not [layer for layer in project.mapLayers().values() if layer.id() != fused.id()]
    new_view = new_view or not project.crs().isValid()
    replace_layers_of(project, [fused.source(), *error_map_paths.values()], keep=fused)
    fused.setName(f"fused ({method})")
    error_maps = open_error_maps(error_map_paths)
    for name, layer in list(error_maps.items()):
        if not layer.isValid():
            log.warning(f"QGIS could not open the error map {layer.source()}")
            del error_maps[name]
    loaded = root.findLayer(fused.id())
    place = loaded.parent() if loaded is not None and in_result_group(loaded) else loaded
    parent = place.parent() if place is not None else root
    index = next((i for i, child in enumerate(parent.children()) if child is place), 0)
    group = insert_result_group(parent, index, method)
    fill_group(group, loaded.clone() if loaded is not None else QgsLayerTreeLayer(fused), error_maps, project)
    if loaded is not None:
        loaded.parent().removeChildNode(loaded)  # after the clone is in the tree, so the layer stays in the project
    drop_empty_result_groups(root)
    if new_view:
        show_on_canvas(fused, project, canvas)
    return group


def insert_result_group(parent: QgsLayerTreeGroup, index: int, method: str) -> QgsLayerTreeGroup:
    """A new group "Fusion <method> <time>" at `index` of `parent`, marked as a result group."""
    group = parent.insertGroup(index, f"Fusion {method} {time.strftime('%Y-%m-%d %H:%M:%S')}")
    group.setCustomProperty(RESULT_GROUP, True)
    return group


def in_result_group(node: QgsLayerTreeLayer) -> bool:
    parent = node.parent()
    return isinstance(parent, QgsLayerTreeGroup) and bool(parent.customProperty(RESULT_GROUP))


def replace_layers_of(project: QgsProject, paths: List[str], keep: Optional[QgsRasterLayer] = None) -> None:
    """Before showing the files this run has just overwritten: remove the layers of earlier result groups that show
    them (they keep the earlier run's names and styles; `keep`, the layer Processing gives back, stays), read the
    project's other layers of them afresh, and delete the statistics GDAL keeps beside them (.aux.xml): a layer
    opened before the run writes those of the old pixels as it closes, and every later reader would take them for
    the new file's (the engine writes no .aux.xml of its own)."""
    written = {os.path.realpath(path) for path in paths}
    nodes = [node for node in project.layerTreeRoot().findLayers()
             if node.layer() is not None and os.path.realpath(node.layer().source()) in written]
    dropped = {node.layerId() for node in nodes if in_result_group(node) and node.layer() is not keep}
    kept = {node.layer() for node in nodes if node.layerId() not in dropped} | ({keep} if keep else set())
    with contextlib.ExitStack() as stack:
        for layer in kept:
            stack.enter_context(closed(layer))
        project.removeMapLayers(list(dropped))
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                os.remove(f"{path}.aux.xml")


@contextlib.contextmanager
def closed(layer: QgsRasterLayer) -> Iterator[None]:
    """The layer's file closed for the block, then read afresh (its provider keeps the statistics it had, even
    through reloading its data); a layer deleted meanwhile (removed from the project) is left alone. A project
    saved meanwhile keeps the layer as it was, source and style, as QGIS keeps a layer it could not open (the
    closed layer has neither)."""
    source, provider, kept = layer.source(), layer.providerType(), layer.originalXmlProperties()
    layer.setOriginalXmlProperties(layer_xml(layer))
    layer.setDataSource("", layer.name(), provider, QgsDataProvider.ProviderOptions())
    try:
        yield
    finally:
        if not sip.isdeleted(layer):
            layer.setDataSource(source, layer.name(), provider, QgsDataProvider.ProviderOptions())
            layer.setOriginalXmlProperties(kept)


def layer_xml(layer: QgsMapLayer) -> str:
    """The layer as a project file holds it (with its absolute path, right wherever the project is saved)."""
    document = QDomDocument("qgis-layer-definition")
    element = document.createElement("maplayer")
    layer.writeLayerXml(element, document, QgsReadWriteContext())
    document.appendChild(element)
    return document.toString()


def release_layers(project: QgsProject, files: Iterable[Optional[str]], folders: Iterable[Optional[str]],
                   inputs: Iterable[Optional[QgsMapLayer]] = ()) -> contextlib.ExitStack:
    """On the main thread, before a run: the project's raster layers showing one of `files`, or any file in one of
    `folders` (empty or None ones stand for none), closed (see `closed`) until the returned stack is closed, on the
    main thread, once the run has ended however it ended. On Windows a file GDAL holds open can be neither replaced
    nor removed, and the run would fail at its end; on closing the stack the layers read their files afresh (the
    new ones, or the old ones a failed run left untouched), and the layers of earlier results whose files the run
    removed go (`drop_removed`). The run's `inputs` stay open: it reads them (and the engine refuses, naming the
    input, to write over one).

    A folder stands for every file in it: the engine names beforehand neither the error maps a run writes nor those
    of an earlier run it removes, and a series' folder holds its dated rasters and series.vrt, which reads them."""
    files = {os.path.realpath(path) for path in files if path}
    folders = {os.path.realpath(folder) for folder in folders if folder}
    inputs = set(inputs)
    shown = [layer for layer in project.mapLayers().values()
             if isinstance(layer, QgsRasterLayer) and layer.source() and layer not in inputs and (
                 os.path.realpath(layer.source()) in files or
                 os.path.dirname(os.path.realpath(layer.source())) in folders)]
    stack = contextlib.ExitStack()
    stack.callback(drop_removed, project, shown)  # the last thing on closing: after every layer is read afresh
    for layer in shown:
        stack.enter_context(closed(layer))
    return stack


def drop_removed(project: QgsProject, layers: Iterable[QgsRasterLayer]) -> None:
    """The layers of earlier result groups whose files are gone leave the project (an error-maps folder keeps only
    the maps of the fused raster beside it: a run removes those of an earlier run that it does not write), and so
    do the groups they leave empty; other layers of such files stay, for their owner to see."""
    root = project.layerTreeRoot()
    nodes = [root.findLayer(layer.id()) for layer in layers
             if not sip.isdeleted(layer) and not os.path.exists(layer.source())]
    project.removeMapLayers([node.layerId() for node in nodes if node is not None and in_result_group(node)])
    drop_empty_result_groups(root)


def drop_empty_result_groups(root: QgsLayerTreeGroup) -> None:
    """Result groups left empty by `replace_layers_of` or `drop_removed` (or by moving their fused raster to a new
    group) go; a subgroup before its parent, which may be left empty by it."""
    for group in reversed(root.findGroups(True)):
        if group.customProperty(RESULT_GROUP) and not group.children():
            group.parent().removeChildNode(group)


def open_error_maps(paths: Dict[str, str]) -> Dict[str, QgsRasterLayer]:
    return {name: QgsRasterLayer(path, name) for name, path in paths.items()}


def fill_group(group: QgsLayerTreeGroup, fused_node: QgsLayerTreeLayer, error_maps: Dict[str, QgsRasterLayer],
               project: QgsProject) -> None:
    """Style and add the fused raster (switched on, legend open, channels named by band) and the error maps (named
    with their units, in the layer name and the legend; one switched on with its legend open, the others off and
    collapsed)."""
    fused = fused_node.layer()
    style_fused(fused)
    label_legend(fused_node)  # before the node is in the tree, so every legend model sees the labels
    fused_node.setItemVisibilityChecked(True)
    fused_node.setExpanded(True)
    group.insertChildNode(0, fused_node)
    legend_band_names().watch(fused)
    shown = shown_error_map(error_maps)
    for name, layer in error_maps.items():
        style_error_map(layer)
        layer.setName(error_map_name(layer, name))
        layer.setAbstract(file_tags(layer).get("DESCRIPTION", ""))
        project.addMapLayer(layer, False)
        node = QgsLayerTreeLayer(layer)
        label_legend(node)
        node.setItemVisibilityChecked(name == shown)
        node.setExpanded(name == shown)
        group.addChildNode(node)
        legend_band_names().watch(layer)
    group.setItemVisibilityChecked(True)
    group.setExpanded(True)


def shown_error_map(error_maps: Dict[str, QgsRasterLayer]) -> Optional[str]:
    """The error map to switch on (see SHOWN_ERROR_MAPS): a flat one shows nothing, and the seam mask is where tiles
    join, not an error, so none when no other map varies."""
    telling = [name for name, layer in error_maps.items() if not is_flat(layer) and ramp_kind(layer) != "mask"]
    return next((name for name in SHOWN_ERROR_MAPS if name in telling), next(iter(telling), None))


def has_no_view(project: QgsProject) -> bool:
    """A project with no layers or no CRS yet: nothing on the canvas tells where a new result should be shown."""
    return not project.mapLayers() or not project.crs().isValid()


def show_on_canvas(layer: QgsMapLayer, project: QgsProject, canvas=None) -> None:
    """The project takes the layer's CRS, and the canvas (when there is one) shows the whole layer."""
    project.setCrs(layer.crs())
    if canvas is None:
        return
    canvas.setDestinationCrs(layer.crs())
    canvas.setExtent(layer.extent())
    canvas.refresh()


class LegendBandNames(QObject):
    """Keeps the band names in the legends of fused layers right when their renderer changes (the labels are kept
    per legend entry, so a composite switched to other bands would otherwise show the old names).

    One instance for the plugin; `release()` deletes it when the plugin unloads, and with it every connection to
    a layer's signal, so nothing of the plugin is called once it is gone."""

    def watch(self, layer: QgsRasterLayer) -> None:
        """Relabel the layer's legends when its renderer changes (once, however often the layer is watched: a run
        into the file of a layer already in the project gets that layer back)."""
        with contextlib.suppress(TypeError):  # PyQt's answer to a unique connection made again
            layer.rendererChanged.connect(self.relabel, Qt.UniqueConnection)

    @pyqtSlot()
    def relabel(self) -> None:
        layer = self.sender()
        if not isinstance(layer, QgsMapLayer):
            return
        project = layer.project() or QgsProject.instance()
        for node in project.layerTreeRoot().findLayers():
            if node.layerId() == layer.id():
                label_legend(node)
        layer.legendChanged.emit()  # the layer tree and layout legends rebuild their entries with the new labels


_band_names: Optional[LegendBandNames] = None


def legend_band_names() -> LegendBandNames:
    global _band_names
    if _band_names is None or sip.isdeleted(_band_names):
        _band_names = LegendBandNames()
    return _band_names


def release() -> None:
    """Disconnect the plugin from every layer it watches (on unload)."""
    global _band_names
    if _band_names is not None and not sip.isdeleted(_band_names):
        sip.delete(_band_names)
    _band_names = None


def chosen(requested: str, result) -> str:
    """For a method that picks another one on the scene (auto): what it ran and how that scored in the validation,
    e.g. "auto ran fsdaf+fitfc (Wald validation RMSE 0.0123, delta 0.0145)"; "" when the method ran as asked."""
    if result.method == requested:
        return ""
    scores = dict(result.validation)
    if result.method not in scores:
        return f"{requested} ran {result.method} (not validated on this scene; why: in the log)"
    baseline = f", {BASELINE} {scores[BASELINE]:.4g}" if BASELINE in scores and result.method != BASELINE else ""
    return f"{requested} ran {result.method} (Wald validation RMSE {scores[result.method]:.4g}{baseline})"


def validation_table(result) -> List[str]:
    """auto's whole validation table, best first, one line per candidate (none for other methods)."""
    if not result.validation:
        return []
    lines = ["Wald's reduced-resolution validation on the scene (RMSE, best first):"]
    for method, rmse in result.validation:
        notes = [note for note, applies in (("ran", method == result.method), ("baseline", method == BASELINE))
                 if applies]
        lines.append(f"  {method}: {rmse:.4g}" + (f" ({', '.join(notes)})" if notes else ""))
    return lines + ([result.choice] if result.choice else [])


def held_out(training) -> str:
    """The engine's verdict on a trained model (its held-out RMSE against delta's, and what that means), else its
    held-out RMSE alone (a training resumed from a checkpoint that scored delta otherwise gets no verdict)."""
    if training.verdict:
        return training.verdict
    rmse = training.validation_metrics.get("rmse")
    return "" if rmse is None else f"held-out RMSE {rmse:.4g}"


def report(outcome: TaskOutcome, iface, project: QgsProject) -> None:
    """Layers and a success message, or the one-line reason (details in the log panel under STF); the training's
    and the result's warnings (e.g. a model that does not beat delta, a coarse target that covers part of the scene)
    as warnings next to the success. Engine messages name the dialog's fields."""
    bar = iface.messageBar()
    if outcome.result is None:
        report_failure(outcome, bar)
        return
    result = outcome.result
    try:
        add_result_layers(result, project, iface.mapCanvas())
    except RuntimeError as exc:
        log.error(str(exc))
        bar.pushMessage(MESSAGE_TITLE, str(exc), Qgis.Critical, 0)
        return
    outputs = [result.output, *result.error_maps.values()]
    summary = (
        f"{chosen(outcome.request.method, result) or result.method} on {result.device} ({result.threads} CPU "
        f"thread{'s' if result.threads != 1 else ''}) in {result.seconds:.1f} s, "
        f"{result.width}×{result.height}×{result.bands}: {os.path.basename(result.output)}"
        + (f" and {len(result.error_maps)} error map(s)" if result.error_maps else "")
        + (f"; RMSE against the truth {result.truth_rmse:.4g}" if result.truth_rmse is not None else "")
    )
    if outcome.training is not None:
        trained = outcome.training
        scores = ", ".join(filter(None, [f"{trained.epochs} epoch(s)", f"{trained.seconds:.0f} s", held_out(trained)]))
        summary = f"trained {trained.model} ({scores}), then {summary}"
        outputs.append(trained.checkpoint)
    log.info("\n".join([summary, *validation_table(result), *outputs]))
    bar.pushMessage(MESSAGE_TITLE, f"{summary} (paths in the log panel, STF)", Qgis.Success, 15)
    for warning in run_warnings(outcome):
        log.warning(warning)
        bar.pushMessage(MESSAGE_TITLE, warning, Qgis.Warning, 0)


def run_warnings(outcome: TaskOutcome) -> List[str]:
    """The training's warnings, then the result's that repeat none of them (a checkpoint trained in this run repeats
    its training's verdict), each once, in the dialog's words."""
    trained = [in_dialog_terms(w) for w in outcome.training.warnings] if outcome.training is not None else []
    fused = [in_dialog_terms(w) for w in outcome.result.warnings]
    return list(dict.fromkeys(trained + [w for w in fused if not any(said in w for said in trained)]))


def report_failure(outcome: TaskOutcome, bar, series: bool = False, note: str = "") -> None:
    """The one-line reason (and `note`) in the message bar, with the details in the log panel (a cancel as a
    warning: nothing went wrong)."""
    level = Qgis.Warning if outcome.cancelled else Qgis.Critical
    reason = in_dialog_terms(outcome.reason or "", series=series)
    logged = log.warning if outcome.cancelled else log.error
    logged(f"fusion failed: {reason}" + (f"\n{outcome.details}" if outcome.details else ""))
    bar.pushMessage(MESSAGE_TITLE, f"not run: {reason}" + (f"; {note}" if note else ""), level, 0)


# Series ------------------------------------------------------------------------------------------------------


def series_day(text: str) -> QDate:
    """A series date as the engine reads it (2020-03-08, 20200308, or 2020068: year and day of year) as a QDate;
    an invalid QDate for anything else."""
    text = text.strip()
    if len(text) == 7 and text.isdigit():
        start = QDate(int(text[:4]), 1, 1)
        return start.addDays(int(text[4:]) - 1) if 1 <= int(text[4:]) <= start.daysInYear() else QDate()
    return QDate.fromString(text, "yyyyMMdd" if text.isdigit() else "yyyy-MM-dd")


def set_date(layer: QgsRasterLayer, date: str) -> bool:
    """Give the layer its date as a fixed temporal range (the whole day), so the Temporal Controller shows it on
    that date only; False when the date cannot be read."""
    day = series_day(date)
    if not day.isValid():
        return False
    properties = layer.temporalProperties()
    properties.setMode(QgsRasterLayerTemporalProperties.ModeFixedTemporalRange)
    properties.setFixedTemporalRange(
        QgsDateTimeRange(QDateTime(day, QTime(0, 0)), QDateTime(day, QTime(23, 59, 59, 999)))
    )
    properties.setIsActive(True)
    return True


def status_counts(result) -> Dict[str, int]:
    """How many dates were fused, kept (done by an earlier run) and skipped (no usable reference)."""
    counts = Counter(date.status for date in result.dates)
    return {status: counts.get(status, 0) for status in ("fused", "kept", "skipped")}


def series_summary(result, requested: str = "") -> str:
    """'series kranj: 2 date(s) fused, 1 kept, 0 skipped in 3.1 s; auto ran delta (2)'."""
    counts = status_counts(result)
    ran = Counter(date.method for date in result.dates if date.status == "fused" and date.method)
    methods = ", ".join(f"{method} ({count})" for method, count in ran.most_common())
    if methods and requested and set(ran) != {requested}:
        methods = f"{requested} ran {methods}"
    name = os.path.basename(os.path.normpath(result.output_dir))
    return (
        f"series {name}: {counts['fused']} date(s) fused, {counts['kept']} kept, {counts['skipped']} skipped in "
        f"{result.seconds:.1f} s" + (f"; {methods}" if methods else "")
    )


def series_table(result) -> List[str]:
    """One line per date: date, references, method, expected error (reflectance) and status (with the RMSE
    against the date's own fine image, and the engine's note, when there are)."""
    rows = [("date", "references", "method", "expected error", "status")]
    for date in result.dates:
        status = date.status
        if date.observed_rmse is not None:
            status += f" (observed RMSE {date.observed_rmse:.4g})"
        if date.note:
            status += f": {date.note}"
        error = f"{date.expected_error:.4g}" if date.fused else "-"
        rows.append((date.date, ", ".join(date.references) or "-", date.method or "-", error, status))
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[4] for row in rows]


def series_group_name(output_dir: str) -> str:
    return f"STF series {os.path.basename(os.path.normpath(output_dir))}"


def add_series_layers(result, project: QgsProject, canvas=None) -> Optional[QgsLayerTreeGroup]:
    """A group "STF series <folder>" at the top of the layer tree: each date's fused raster (one stretch for
    all, so the animation compares like with like), then a subgroup "reliability" (switched off) with the
    reliability maps (one colour ramp for all, from the least reliable date). Every layer has its date as a
    fixed temporal range for the Temporal Controller. None when no date has a fused raster."""
    done = [date for date in result.dates if date.fused]
    if not done:
        return None
    fused = {date.date: QgsRasterLayer(date.fused, f"fused {date.date} ({date.method})" if date.method else
                                       f"fused {date.date}") for date in done}
    reliability = {date.date: QgsRasterLayer(date.reliability, "reliability") for date in done if date.reliability}
    invalid = [layer.source() for layer in [*fused.values(), *reliability.values()] if not layer.isValid()]
    if invalid:
        raise RuntimeError(f"QGIS could not open the output {invalid[0]}")
    new_view = has_no_view(project)
    replace_layers_of(project, [layer.source() for layer in [*fused.values(), *reliability.values()]])
    group = project.layerTreeRoot().insertGroup(0, series_group_name(result.output_dir))
    group.setCustomProperty(RESULT_GROUP, True)
    first = next(iter(fused.values()))
    style_fused(first)
    for index, (date, layer) in enumerate(fused.items()):
        if layer is not first:
            copy_style(first, layer)
        add_dated(layer, date, group, project, expanded=index == 0)
    if reliability:
        worst = max(done, key=lambda date: date.expected_error if date.reliability else float("-inf"))
        style_error_map(reliability[worst.date])
        maps = group.addGroup(RELIABILITY_GROUP)
        maps.setCustomProperty(RESULT_GROUP, True)
        for date, layer in reliability.items():
            if date != worst.date:
                copy_style(reliability[worst.date], layer)
            layer.setName(error_map_name(layer, f"reliability {date}"))
            layer.setAbstract(file_tags(layer).get("DESCRIPTION", ""))
            add_dated(layer, date, maps, project, expanded=False)
        maps.setItemVisibilityChecked(False)
        maps.setExpanded(False)
    group.setItemVisibilityChecked(True)
    group.setExpanded(True)
    drop_empty_result_groups(project.layerTreeRoot())
    if new_view:
        show_on_canvas(first, project, canvas)
    return group


def add_dated(layer: QgsRasterLayer, date: str, group: QgsLayerTreeGroup, project: QgsProject,
              expanded: bool) -> None:
    """Date the layer (before it joins the project, so the Temporal Controller sees a temporal layer arrive) and
    add it at the end of the group, its legend naming the bands."""
    if not set_date(layer, date):
        log.warning(f"'{date}' is not a date QGIS reads: {layer.source()} is shown on every date")
    project.addMapLayer(layer, False)
    node = QgsLayerTreeLayer(layer)
    label_legend(node)
    node.setItemVisibilityChecked(True)
    node.setExpanded(expanded)
    group.addChildNode(node)
    legend_band_names().watch(layer)


def report_series(outcome: TaskOutcome, iface, project: QgsProject) -> None:
    """The series' layers and a summary (dates fused, kept, skipped), the per-date table in the log; or the
    one-line reason, with what a run stopped midway kept for the next run (`kept_note`)."""
    bar = iface.messageBar()
    if outcome.result is None:
        report_failure(outcome, bar, series=True, note=kept_note(outcome))
        return
    result = outcome.result
    try:
        group = add_series_layers(result, project, iface.mapCanvas())
    except RuntimeError as exc:
        log.error(str(exc))
        bar.pushMessage(MESSAGE_TITLE, str(exc), Qgis.Critical, 0)
        return
    summary = series_summary(result, outcome.request.method)
    outputs = [result.manifest, *([result.stack] if result.stack else [])]
    log.info("\n".join([summary, *series_table(result), *outputs]))
    for warning in dict.fromkeys(in_dialog_terms(w, series=True) for w in result.warnings):  # each once
        log.warning(warning)
    shown = "the Temporal Controller animates it" if group is not None else "no date has a fused image to show"
    bar.pushMessage(MESSAGE_TITLE, f"{summary}; {shown} (table and paths in the log panel, STF)",
                    Qgis.Success if group is not None else Qgis.Warning, 15)


def kept_note(outcome: TaskOutcome) -> str:
    """What a stopped series run kept and how to go on: the engine's account of the dates it finished (a cancel or
    a failure midway), else, after a cancel, the dates earlier runs fused; "" for a run that could not start,
    which running again would not help."""
    if outcome.left_behind is not None:
        return in_dialog_terms(str(outcome.left_behind), series=True)
    folder = outcome.request.output_dir
    if not outcome.cancelled or not os.path.isdir(folder):
        return ""
    written = any(name.startswith("fused_") for name in os.listdir(folder))
    return f"the dates fused so far stay in {folder}; run the series again to go on" if written else ""
