"""Startup code for the real QGIS desktop (`qgis --code`): drive the installed plugin like a user and record the outcome.

Loads the sample, opens the dialog from the Raster menu, sets the pickers, presses Run, waits for the task,
checks the result group (styles, legend names, visibility), runs stf:fuse through Processing and loads its result,
saves screenshots and result.json into $STF_E2E_OUT, then quits with File → Exit (run_e2e.py checks QGIS's exit
status: QGIS 3.22 has crashed at exit in QgisApp::setMapStyleDockLayer, so the style dock is open with a result
layer current when it quits).
"""
import json
import os
import time
import traceback

from qgis.core import (
    QgsApplication,
    QgsMultiBandColorRenderer,
    QgsProject,
    QgsSingleBandPseudoColorRenderer,
)
from qgis.PyQt.QtCore import QTimer
from qgis.PyQt.QtGui import QColor, QImage, QPainter, QPixmap
from qgis.PyQt.QtWidgets import QDockWidget
from qgis.utils import iface, plugins

OUT = os.environ["STF_E2E_OUT"]
SAMPLE = os.environ["STF_E2E_SAMPLE"]
INPUTS = {
    "coarse_target": "MOD09_2002311_SZ_B214_250m.tif",
    "fine_reference": "L72000306_SZ_B432_30m.tif",
    "coarse_reference": "MOD09_2000306_SZ_B214_250m.tif",
    "truth": "L72002311_SZ_B432_30m.tif",
}
METHOD = "delta"
"""Fast on the sample, so `make test` stays quick; any method exercises the same dialog, task and styling."""
TASK_TIMEOUT = 180
MAX_DIALOG_HEIGHT = 740
"""The dialog must fit a 768-pixel-high screen."""
EXIT_TIMEOUT_MS = 60_000
"""After File → Exit QGIS must be gone within this; otherwise (a modal question?) the script ends it with status 3."""


class EndToEnd:
    """Each step runs from the event loop, so QGIS keeps painting and the task manager keeps running."""

    def __init__(self):
        self.result = {"ok": False, "checks": []}
        self.started = time.monotonic()
        self.plugin = None
        self.layers = {}

    def check(self, condition, what):
        if not condition:
            raise AssertionError(what)
        self.result["checks"].append(what)

    def later(self, step, ms=200):
        def guarded():
            try:
                step()
            except Exception:  # noqa: BLE001  (every failure ends the run with its traceback in result.json)
                self.finish(traceback.format_exc())

        QTimer.singleShot(ms, guarded)

    def wait_for_plugin(self):
        if "stf_qgis_plugin" not in plugins:
            if time.monotonic() - self.started > 60:
                raise AssertionError("the plugin was not loaded within 60 s")
            return self.later(self.wait_for_plugin, 500)
        self.plugin = plugins["stf_qgis_plugin"]
        self.check(self.plugin.status.ok, f"engine loads in QGIS ({self.plugin.status.problem})")
        self.check(self.plugin.status.engine.__name__ == "stf_qgis_plugin.stf_engine", "the bundled engine is used")
        self.later(self.open_dialog)

    def open_dialog(self):
        window = iface.mainWindow()
        window.resize(1280, 800)
        for dock in window.findChildren(QDockWidget):
            if dock.objectName() != "Layers":
                dock.hide()
        for role, name in INPUTS.items():
            self.layers[role] = iface.addRasterLayer(os.path.join(SAMPLE, name), name[:-4])
        self.check(all(layer.isValid() for layer in self.layers.values()), "sample layers loaded")
        menu_actions = [a for m in iface.rasterMenu().actions() if m.menu() for a in m.menu().actions()]
        self.check(self.plugin.action in menu_actions, "action in the Raster menu")
        toolbar = iface.rasterToolBar().actions()
        self.check(self.plugin.action in toolbar, "action in the Raster toolbar")
        self.plugin.action.trigger()
        dialog = self.plugin.dialog
        self.check(dialog is not None and dialog.isVisible(), "dialog opened from the menu action")
        dialog.method_combo.setCurrentIndex(dialog.method_combo.findData(METHOD))
        for role, layer in self.layers.items():
            dialog.pickers[role].setLayer(layer)
        dialog.output_folder.setFilePath(os.path.join(OUT, "output"))
        dialog.write_error_maps.setChecked(True)
        dialog.tile.setValue(256)
        dialog.coarse_resolution.setValue(250)  # the sample's MODIS, resampled to 30 m: its real pixel size
        dialog.advanced.setCollapsed(False)
        QgsApplication.processEvents()
        heights = (dialog.sizeHint().height(), dialog.minimumSizeHint().height(), dialog.height())
        self.result["dialog_heights"] = heights
        self.check(max(heights) <= MAX_DIALOG_HEIGHT, f"the dialog fits a 768-px screen {heights}")
        dialog.advanced.setCollapsed(True)
        dialog.scroll.verticalScrollBar().setValue(0)
        self.later(self.run_dialog, 800)

    def run_dialog(self):
        dialog = self.plugin.dialog
        dialog.grab().save(os.path.join(OUT, "dialog.png"))
        self.dialog_image = dialog.grab()
        dialog.run_button.click()
        self.check(dialog.message.text() == "", f"dialog validated the inputs ({dialog.message.text()})")
        self.check(len(self.plugin.tasks) == 1, "a task was started")
        self.check(QgsApplication.taskManager().count() >= 1, "the task is in QGIS's task manager")
        self.run_started = time.monotonic()
        self.later(self.wait_for_task, 500)

    def wait_for_task(self):
        if self.plugin.tasks:
            if time.monotonic() - self.run_started > TASK_TIMEOUT:
                raise AssertionError(f"the task did not finish within {TASK_TIMEOUT} s")
            return self.later(self.wait_for_task, 500)
        self.result["task_seconds"] = round(time.monotonic() - self.run_started, 1)
        groups = [g for g in QgsProject.instance().layerTreeRoot().children() if g.name().startswith(f"Fusion {METHOD} ")]
        self.check(len(groups) == 1, f"one 'Fusion {METHOD} <time>' group")
        self.check_group(groups[0], "rms_error")
        layers = [node.layer() for node in groups[0].findLayers()]
        self.result["layers"] = [layer.name() for layer in layers]
        root = QgsProject.instance().layerTreeRoot()
        for layer in self.layers.values():
            root.findLayer(layer).setItemVisibilityChecked(False)
            root.findLayer(layer).setExpanded(False)
        canvas = iface.mapCanvas()
        canvas.setExtent(layers[0].extent())
        canvas.refresh()
        self.later(self.screenshots, 3000)

    def check_group(self, group, shown):
        """Styles, legend names and visibility of a result group, as the layer panel shows them."""
        nodes = group.findLayers()
        layers = [node.layer() for node in nodes]
        self.check(isinstance(layers[0].renderer(), QgsMultiBandColorRenderer), "fused raster as RGB composite")
        self.check(
            len(layers) >= 3 and all(isinstance(l.renderer(), QgsSingleBandPseudoColorRenderer) for l in layers[1:]),
            "error maps as pseudocolour",
        )
        model = iface.layerTreeView().layerTreeModel()
        legend = [entry.data(0) for entry in model.layerLegendNodes(nodes[0])]
        self.result.setdefault("fused_legends", []).append(legend)
        self.check(legend == ["Band 1", "Band 2", "Band 3"], f"fused legend names the bands ({legend})")
        grey = [str(e.data(0)) for n in nodes for e in model.layerLegendNodes(n) if "(Gray)" in str(e.data(0))]
        self.check(not grey, f"no legend entry says '(Gray)' ({grey})")
        units = [layer.name() for layer in layers[1:] if not layer.name().endswith(("reflectance)", "seam pixel)"))]
        self.check(not units, f"error maps named with their units (not: {units})")
        on = [node.layer().name().split(" ")[0] for node in nodes[1:] if node.itemVisibilityChecked()]
        expanded = [node.layer().name().split(" ")[0] for node in nodes[1:] if node.isExpanded()]
        self.check(nodes[0].itemVisibilityChecked() and nodes[0].isExpanded(), "fused layer on, legend open")
        self.check(on == expanded == [shown], f"only {shown} on, others off and collapsed (on: {on})")

    def screenshots(self):
        canvas = iface.mapCanvas()
        canvas.saveAsImage(os.path.join(OUT, "map.png"))
        window = iface.mainWindow().grab()
        window.save(os.path.join(OUT, "qgis.png"))
        readme = self.side_by_side(window, self.dialog_image).toImage().convertToFormat(QImage.Format_Indexed8)
        readme.save(os.path.join(OUT, "qgis_with_dialog.png"))
        self.check(all(os.path.getsize(os.path.join(OUT, n)) > 10000 for n in ("dialog.png", "map.png", "qgis.png")),
                   "screenshots saved")
        self.later(self.processing_run)

    @staticmethod
    def side_by_side(window, dialog):
        """The main window with the result and, to its right, the dialog as it was before Run (for the README)."""
        gap = 12
        image = QPixmap(window.width() + gap + dialog.width(), max(window.height(), dialog.height()))
        image.fill(QColor("#d9d9d9"))
        painter = QPainter(image)
        painter.drawPixmap(0, 0, window)
        painter.drawPixmap(window.width() + gap, 0, dialog)
        painter.end()
        return image.scaledToWidth(1200, 1)  # Qt.SmoothTransformation

    def processing_run(self):
        """What the toolbox does with "Open output file after running": the result gets the dialog's group."""
        import processing

        target = os.path.join(OUT, "output", "processing_starfm.tif")
        result = processing.runAndLoadResults("stf:fuse", {
            "COARSE_TARGET": self.layers["coarse_target"], "FINE_REFERENCE": self.layers["fine_reference"],
            "METHOD": "starfm", "TILE_SIZE": 256, "COARSE_RESOLUTION": 250, "OUTPUT": target,
            "ERROR_MAPS": os.path.join(OUT, "output", "processing_starfm_error_maps"),
        })
        self.check(result["OUTPUT"] == target, "processing.runAndLoadResults('stf:fuse') output")
        groups = [g for g in QgsProject.instance().layerTreeRoot().children() if g.name().startswith("Fusion starfm ")]
        self.check(len(groups) == 1, "Processing's result in a 'Fusion starfm <time>' group")
        self.check_group(groups[0], "coarse_residual_rms")
        self.later(self.quit)

    def quit(self):
        """As a user would leave it: the Layer Styling dock open on a result layer; then File → Exit."""
        styling = iface.mainWindow().findChild(QDockWidget, "LayerStyling")
        self.check(styling is not None, "the Layer Styling dock exists")
        styling.show()
        root = QgsProject.instance().layerTreeRoot()
        iface.layerTreeView().setCurrentLayer(root.findLayers()[0].layer())
        self.later(lambda: self.finish(None), 500)

    def finish(self, error):
        self.result["ok"] = error is None
        self.result["error"] = error
        self.result["seconds"] = round(time.monotonic() - self.started, 1)
        with open(os.path.join(OUT, "result.json"), "w") as handle:
            json.dump(self.result, handle, indent=2)
        QgsProject.instance().setDirty(False)
        QTimer.singleShot(500, iface.actionExit().trigger)
        QTimer.singleShot(EXIT_TIMEOUT_MS, lambda: os._exit(3))  # still here: QGIS did not exit by itself


E2E = EndToEnd()
E2E.later(E2E.wait_for_plugin, 1000)
