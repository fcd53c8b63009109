"""The plugin object QGIS loads: menu and toolbar entry, Processing provider, and starting fusion (and series)
tasks."""
from __future__ import annotations

from typing import List, Optional

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

    def initProcessing(self) -> None:  # noqa: N802
        """Called by initGui, and by QGIS itself where there is no GUI (qgis_process); registers once."""
        if self.provider is not None:
            return
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
            log.warning(self.status.problem)
            self.iface.messageBar().pushMessage(MESSAGE_TITLE, self.status.problem, Qgis.Warning, 0)

    def unload(self) -> None:
        """Undo initGui and leave nothing of the plugin connected to QGIS: running tasks are cancelled and no
        longer report back (they would add layers to a project QGIS may be closing), the dialog is deleted (not
        only hidden: its layer pickers follow the project's layers), and fused layers' legends stop being watched."""
        for task in self.tasks:
            task.detach()
            task.cancel()
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
        QGIS's task manager; its outcome becomes layers or a message."""
        if self.is_series(request):
            task = SeriesTask(self.status.engine, request, self._finished)
            log.info(f"started the series {request.series} with {request.method}: {request.output_dir}")
        else:
            task = FusionTask(self.status.engine, request, self._finished, training)
            log.info(f"started {request.method}{' after training' if training else ''}: {request.output}")
        self.tasks.append(task)
        QgsApplication.taskManager().addTask(task)
        return task

    def is_series(self, request) -> bool:
        return isinstance(request, self.status.engine.SeriesRequest)

    def _finished(self, outcome: TaskOutcome) -> None:
        self.tasks = [task for task in self.tasks if task.outcome is not outcome]
        reporter = report_series if self.is_series(outcome.request) else report
        reporter(outcome, self.iface, QgsProject.instance())
