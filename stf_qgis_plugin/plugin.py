"""The plugin object QGIS loads: menu and toolbar entry, Processing provider, and starting fusion (and series)
tasks."""
from __future__ import annotations

import contextlib
from typing import Dict, List, Optional, Tuple

from qgis.core import Qgis, QgsApplication, QgsProject
from qgis.PyQt import sip
from qgis.PyQt.QtGui import QIcon
from qgis.PyQt.QtWidgets import QAction, QMessageBox

from . import log, results
from .algorithms.provider import StfProvider
from .engine_loader import load_engine
from .paths import icon_path
from .results import MESSAGE_TITLE, report, report_series
from .task import FusionTask, SeriesTask, TaskOutcome

MENU = "Spatiotemporal Fusion"


class StfPlugin:
    """Raster menu and toolbar action opening the dialog; each Run becomes a FusionTask (a SeriesTask for a
    SeriesRequest) in QGIS's task manager."""

    def __init__(self, iface):
        self.iface = iface
        self.status = load_engine()
        self.action: Optional[QAction] = None
        self.provider: Optional[StfProvider] = None
        self.dialog = None
        self.tasks: List[FusionTask] = []
        """Python references to running tasks, so they are not garbage-collected before `finished`."""
        self.released: Dict[FusionTask, contextlib.ExitStack] = {}
        """Per running task, the project's layers that let go of the files it writes (`results.release_layers`)."""

    def initProcessing(self) -> None:  # noqa: N802
        """Called by initGui, and by QGIS itself where there is no GUI (qgis_process); registers once."""
        if self.provider is not None:
            return
        if not self.status.ok:  # said here too: qgis_process calls only this, and prints the log's warnings
            log.warning(self.status.problem + (f"\n{self.status.detail}" if self.status.detail else ""))
        self.provider = StfProvider(self.status)
        QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self) -> None:  # noqa: N802
        self.initProcessing()
        self.action = QAction(QIcon(icon_path()), "Spatiotemporal Fusion…", self.iface.mainWindow())
        self.action.setObjectName("stfFusionAction")
        self.action.setToolTip("Fuse a coarse image with a fine reference (STARFM, baselines, deep models)")
        self.action.triggered.connect(self.show_dialog)
        self.iface.addPluginToRasterMenu(MENU, self.action)
        self.iface.addRasterToolBarIcon(self.action)
        if not self.status.ok:
            self.iface.messageBar().pushMessage(MESSAGE_TITLE, self.status.problem, Qgis.Warning, 0)

    def unload(self) -> None:
        """Undo initGui and leave nothing of the plugin connected to QGIS: running tasks are cancelled and no
        longer report back (they would add layers to a project QGIS may be closing), the dialog is deleted (not
        only hidden: its layer pickers follow the project's layers), their layers show their files again, and fused
        layers' legends stop being watched."""
        for task in self.tasks:
            task.detach()
            task.cancel()
            self.released.pop(task).close()
        self.tasks = []
        if self.action is not None:
            self.iface.removePluginRasterMenu(MENU, self.action)
            self.iface.removeRasterToolBarIcon(self.action)
            self.action.deleteLater()
            self.action = None
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
        if self.dialog is not None:
            self.dialog.close()
            sip.delete(self.dialog)
            self.dialog = None
        results.release()

    def show_dialog(self) -> None:
        """Open (or raise) the dialog; without a usable engine, explain what to install instead."""
        if not self.status.ok:
            QMessageBox.warning(self.iface.mainWindow(), MESSAGE_TITLE, self.status.problem)
            return
        if self.dialog is None:
            from .dialog import FusionDialog

            self.dialog = FusionDialog(self.status.engine, QgsProject.instance(), self.iface.mainWindow())
            self.dialog.run_requested.connect(self.start)
        self.dialog.show()
        self.dialog.raise_()

    def start(self, request, training=None) -> FusionTask:
        """Queue one run (training first when given a TrainingRequest; a whole series for a SeriesRequest) in
        QGIS's task manager; its outcome becomes layers or a message. Until it ends, the project's layers showing
        the files it writes let go of them (Windows could replace none of them while a layer holds it open)."""
        if self.is_series(request):
            task = SeriesTask(self.status.engine, request, self._finished)
            log.info(f"started the series {request.series} with {request.method}: {request.output_dir}")
        else:
            task = FusionTask(self.status.engine, request, self._finished, training)
            log.info(f"started {request.method}{' after training' if training else ''}: {request.output}")
        self.tasks.append(task)
        self.released[task] = results.release_layers(QgsProject.instance(), *self.written_by(request))
        QgsApplication.taskManager().addTask(task)
        return task

    def is_series(self, request) -> bool:
        return isinstance(request, self.status.engine.SeriesRequest)

    def written_by(self, request) -> Tuple[List[Optional[str]], List[Optional[str]]]:
        """The files a run writes and the folders it may write or remove files in: a series' folder; the fused
        raster and the error-maps folder, if any (a trained checkpoint is no layer)."""
        if self.is_series(request):
            return [], [request.output_dir]
        return [request.output], [request.error_maps_dir]

    def _finished(self, outcome: TaskOutcome) -> None:
        """The task's layers show their files again (the new ones, or the old ones a failed run left), then the
        outcome becomes layers or a message."""
        [task] = [task for task in self.tasks if task.outcome is outcome]
        self.tasks.remove(task)
        self.released.pop(task).close()
        reporter = report_series if self.is_series(outcome.request) else report
        reporter(outcome, self.iface, QgsProject.instance())
