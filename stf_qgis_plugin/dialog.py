"""The fusion dialog: pick layers, method and device, validate, and hand a FusionRequest to whoever runs it.

The dialog never runs the engine itself; `run_requested` carries the request to the plugin, which starts a task.
"""
from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from types import ModuleType
from typing import Dict, Optional

from qgis.core import QgsMapLayerProxyModel, QgsProject, QgsSettings, QgsUnitTypes
from qgis.gui import QgsCollapsibleGroupBox, QgsDoubleSpinBox, QgsFileWidget, QgsMapLayerComboBox, QgsSpinBox
from qgis.PyQt.QtCore import QSize, pyqtSignal
from qgis.PyQt.QtGui import QIcon
from qgis.PyQt.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from .layer_info import describe, file_path
from .paths import icon_path
from .wording import in_dialog_terms

SETTINGS = "stf/dialog/"
TRUTH = "truth"
MAX_HEIGHT = 700
"""Most the dialog asks for (sizeHint), so it fits a 768-pixel-high screen with its title bar; the form scrolls."""
NOTE_STYLE = "color: palette(mid);"


def note(text: str = "") -> QLabel:
    """A grey, word-wrapped line under a field: never cut off, whatever the dialog's width."""
    label = QLabel(text)
    label.setWordWrap(True)
    label.setStyleSheet(NOTE_STYLE)
    return label


def show_text(label: QLabel, text: str) -> None:
    """A line that takes no room while it has nothing to say."""
    label.setText(text)
    label.setVisible(bool(text))


class FormScrollArea(QScrollArea):
    """Scrolls the form when the screen is too small; asks for the whole form's size (a plain QScrollArea asks for
    at most 24 lines), so the dialog only scrolls when it has to."""

    def sizeHint(self) -> QSize:  # noqa: N802
        content = self.widget().sizeHint()
        frame = 2 * self.frameWidth()
        return QSize(content.width() + self.verticalScrollBar().sizeHint().width() + frame, content.height() + frame)


def default_output_folder(project: QgsProject) -> str:
    """Beside the saved project, else in the user's temp folder (never a folder QGIS empties on exit)."""
    home = project.homePath()
    return os.path.join(home, "stf_output") if home else os.path.join(tempfile.gettempdir(), "stf_output")


class FusionDialog(QDialog):
    """Inputs, method, device and output of one fusion run."""

    run_requested = pyqtSignal(object, object)
    """Emitted with a validated FusionRequest, and a TrainingRequest or None, when the user presses Run."""

    def __init__(self, engine: ModuleType, project: Optional[QgsProject] = None, parent: Optional[QWidget] = None):
        super().__init__(parent)
        self.engine = engine
        self.project = project or QgsProject.instance()
        self.methods = engine.list_methods()
        self.trainable = set(engine.TRAINABLE_MODELS)
        self.setWindowTitle("Spatiotemporal Fusion")
        self.setWindowIcon(QIcon(icon_path()))
        self.setMinimumWidth(620)
        self.labels = {**engine.ROLE_LABELS, TRUTH: "truth"}
        self.role_tips = {
            TRUTH: "the fine image at the target date, if you have one: adds error-against-truth maps",
            engine.FINE_REFERENCE_2: "a second fine image, on the other side of the target date from the first "
                                     "(two-pair methods such as ESTARFM)",
            engine.COARSE_REFERENCE_2: "the coarse image on the second fine reference's date",
        }
        self.pickers: Dict[str, QgsMapLayerComboBox] = {}
        self.role_labels: Dict[str, QLabel] = {}
        self.layer_infos: Dict[str, QLabel] = {}

        form = QWidget()
        column = QVBoxLayout(form)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self._inputs_box())
        column.addWidget(self._method_box())
        column.addWidget(self._output_box())
        column.addWidget(self._advanced_box())
        column.addStretch()
        self.scroll = FormScrollArea()
        self.scroll.setWidget(form)
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.NoFrame)
        layout = QVBoxLayout(self)
        layout.addWidget(self.scroll)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #b00020;")
        layout.addWidget(self.message)
        self.buttons = QDialogButtonBox(QDialogButtonBox.Close)
        self.run_button = self.buttons.addButton("Run", QDialogButtonBox.AcceptRole)
        self.buttons.accepted.connect(self.run)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)

        self._restore()
        self.method_combo.currentIndexChanged.connect(self._method_changed)
        self.pickers[self.engine.FINE_REFERENCE].layerChanged.connect(self._fine_reference_changed)
        self._method_changed()
        self._fine_reference_changed()
        self.resize(self.sizeHint())  # else Qt sizes a new window from its layout, past MAX_HEIGHT

    def sizeHint(self) -> QSize:  # noqa: N802
        """The form's size, but never taller than MAX_HEIGHT or the screen (the form scrolls instead)."""
        hint = super().sizeHint()
        screen = self.screen() if hasattr(self, "screen") else None
        screen = screen or QApplication.primaryScreen()
        available = screen.availableGeometry().height() - 60 if screen is not None else MAX_HEIGHT
        return QSize(max(hint.width(), self.minimumWidth()), min(hint.height(), MAX_HEIGHT, max(available, 300)))

    # Building the form -------------------------------------------------------------------------------------

    def _inputs_box(self) -> QGroupBox:
        box = QGroupBox("Input layers")
        form = QFormLayout(box)
        form.addRow(note("Local raster files; everything is aligned to the fine reference's grid."))
        for role in (*self.engine.ALL_ROLES, TRUTH):
            picker = QgsMapLayerComboBox()
            picker.setFilters(QgsMapLayerProxyModel.RasterLayer)
            picker.setAllowEmptyLayer(True)
            picker.setLayer(None)
            info = note()
            info.setContentsMargins(12, 0, 0, 4)
            info.hide()
            picker.layerChanged.connect(lambda layer, label=info: show_text(label, describe(layer)))
            label = QLabel()
            form.addRow(label, picker)
            form.addRow(info)  # the whole width, so size, pixel size, CRS and bands stay on one line
            self.pickers[role], self.role_labels[role], self.layer_infos[role] = picker, label, info
        return box

    def _method_box(self) -> QGroupBox:
        box = QGroupBox("Method and device")
        form = QFormLayout(box)
        self.method_combo = QComboBox()
        for name, spec in self.methods.items():
            self.method_combo.addItem(name, name)
            self.method_combo.setItemData(self.method_combo.count() - 1, spec.description, 3)  # tooltip
        self.method_description = QLabel()
        self.method_description.setWordWrap(True)
        form.addRow("Method", self.method_combo)
        form.addRow("", self.method_description)
        self.weights = QgsFileWidget()
        self.weights.setFilter("STF checkpoints (*.pt);;All files (*)")
        form.addRow("Weights file", self.weights)
        self.train_first = QCheckBox("Train on these layers first")
        self.train_first.setToolTip(
            "Self-training (Wald's protocol) on the chosen layers, then the fusion with the new checkpoint, "
            "saved beside the output as <output>.pt"
        )
        form.addRow("", self.train_first)
        defaults = {field.name: field.default for field in dataclasses.fields(self.engine.TrainingRequest)}
        self.train_epochs = QgsSpinBox()
        self.train_epochs.setRange(1, 1000)
        self.train_epochs.setClearValue(defaults["epochs"])
        self.train_epochs.setToolTip("Training stops earlier when the held-out score stops improving")
        self.train_patch = QgsSpinBox()
        self.train_patch.setRange(8, 4096)
        self.train_patch.setSingleStep(32)
        self.train_patch.setSuffix(" px")
        self.train_patch.setClearValue(defaults["patch"])
        self.train_patch.setToolTip("Side of the training patches; the engine takes less on a small scene")
        self.train_minutes = QgsDoubleSpinBox()
        self.train_minutes.setRange(0, 10000)
        self.train_minutes.setDecimals(1)
        self.train_minutes.setSuffix(" min")
        self.train_minutes.setSpecialValueText("no limit")
        self.train_minutes.setClearValue(self.engine.DEFAULT_TRAINING_MINUTES)
        self.train_minutes.setToolTip("Time budget: training stops after the epoch in which it runs out")
        self.training_fields = QWidget()
        row = QHBoxLayout(self.training_fields)
        row.setContentsMargins(0, 0, 0, 0)
        for text, widget in (("Epochs", self.train_epochs), ("Patch", self.train_patch),
                             ("Time budget", self.train_minutes)):
            label = QLabel(text)
            label.setBuddy(widget)
            row.addWidget(label)
            row.addWidget(widget)
        row.addStretch()
        form.addRow("", self.training_fields)
        self.train_first.toggled.connect(self._method_changed)
        self.device_combo = QComboBox()
        devices = list(self.engine.DEVICES)
        self.device_combo.addItems(devices)
        found = self.engine.devices_found()
        if not any(item.startswith("cuda") for item in found):
            self.device_combo.model().item(devices.index("cuda")).setEnabled(False)
        form.addRow("Device", self.device_combo)
        form.addRow("", note("Detected: " + ", ".join(found)))
        return box

    def _output_box(self) -> QGroupBox:
        box = QGroupBox("Output")
        form = QFormLayout(box)
        self.output_folder = QgsFileWidget()
        self.output_folder.setStorageMode(QgsFileWidget.GetDirectory)
        form.addRow("Folder", self.output_folder)
        self.write_error_maps = QCheckBox("Write error maps")
        form.addRow("", self.write_error_maps)
        form.addRow("", note("Coarse residual, temporal change, tile seams; error against the truth when a truth "
                             "layer is set."))
        self.uncertainty = QCheckBox("Uncertainty map (prediction spread; slower)")
        form.addRow("", self.uncertainty)
        self.write_error_maps.toggled.connect(self.uncertainty.setEnabled)
        return box

    def _advanced_box(self) -> QgsCollapsibleGroupBox:
        box = self.advanced = QgsCollapsibleGroupBox("Advanced")
        form = QFormLayout(box)
        self.tile = QgsSpinBox()
        self.tile.setRange(0, 16384)
        self.tile.setSingleStep(64)
        self.tile.setSpecialValueText("whole raster")
        self.tile.setClearValue(512)
        self.halo = QgsSpinBox()
        self.halo.setRange(-1, 1024)
        self.halo.setSpecialValueText("auto (the method's receptive radius)")
        self.halo.setClearValue(-1)
        self.batch = QgsSpinBox()
        self.batch.setRange(1, 256)
        self.batch.setClearValue(4)
        self.threads = QgsSpinBox()
        self.threads.setRange(0, 1024)
        self.threads.setSpecialValueText("automatic (the physical cores)")
        self.threads.setClearValue(0)
        self.coarse_resolution = QgsDoubleSpinBox()
        self.coarse_resolution.setRange(0, 1e7)
        self.coarse_resolution.setSpecialValueText("from the raster")
        self.coarse_resolution.setClearValue(0)
        self.coarse_resolution_hint = note()
        self.coarse_resolution_label = QLabel()
        form.addRow("Tile size (px)", self.tile)
        form.addRow("Halo (px)", self.halo)
        form.addRow("Batch (tiles)", self.batch)
        form.addRow("CPU threads", self.threads)
        form.addRow(self.coarse_resolution_label, self.coarse_resolution)
        form.addRow("", self.coarse_resolution_hint)
        self.method_options = QLineEdit()
        self.method_options.setToolTip("key=value pairs separated by commas; empty keeps the method's defaults")
        form.addRow("Method options", self.method_options)
        box.setCollapsed(True)
        return box

    # Behaviour ---------------------------------------------------------------------------------------------

    @property
    def method(self):
        return self.methods[self.method_combo.currentData()]

    def _method_changed(self) -> None:
        """Enable the inputs the method uses, mark the ones it needs, show its description and weights picker."""
        spec = self.method
        self.method_description.setText(spec.description)
        for role, label in self.role_labels.items():
            required = role in spec.required
            used = role == TRUTH or spec.accepts(role)
            text = self.labels[role][0].upper() + self.labels[role][1:]
            label.setText(f"<b>{text} *</b>" if required else f"{text} (optional)" if used else f"{text} (not used)")
            tip = self.role_tips.get(role, "")
            label.setToolTip("; ".join(filter(None, [tip, f"required by {spec.name}" if required else ""])))
            self.pickers[role].setEnabled(used)
            label.setEnabled(used)
        self.train_first.setEnabled(spec.name in self.trainable)
        training = self.training_first
        self.training_fields.setEnabled(training)
        self.weights.setEnabled(spec.needs_weights and not training)
        hint = ""
        if spec.needs_weights and not training:
            shipped = spec.default_weights
            hint = f"empty: shipped demo weights {shipped}" if shipped else "required (stf:train writes one)"
        self.weights.lineEdit().setPlaceholderText(hint)
        takes_options = bool(spec.options)
        self.method_options.setEnabled(takes_options)
        described = self.engine.describe_options(spec)
        self.method_options.setPlaceholderText(f"defaults: {described}" if takes_options else "this method has no options")
        self.method_options.setToolTip(described)
        saved = QgsSettings().value(SETTINGS + f"options/{spec.name}", "")
        self.method_options.setText(saved if takes_options else "")

    def _fine_reference_changed(self) -> None:
        """The real coarse pixel size is in the fine grid's units: show them, and when the field is needed."""
        layer = self.pickers[self.engine.FINE_REFERENCE].currentLayer()
        units = QgsUnitTypes.toAbbreviatedString(layer.crs().mapUnits()) if layer is not None else ""
        self.coarse_resolution.setSuffix(f" {units}" if units else "")
        self.coarse_resolution_label.setText(f"Real coarse pixel size ({units or 'fine-grid units'})")
        self.coarse_resolution_hint.setText(
            "Needed when the coarse raster was already resampled to the fine grid, as in the bundled sample: give "
            "the coarse sensor's real pixel size, e.g. 250 for 250 m MODIS (self-training needs it then too)."
        )

    @property
    def training_first(self) -> bool:
        return self.train_first.isEnabled() and self.train_first.isChecked()

    def layer_path(self, role: str) -> Optional[str]:
        picker = self.pickers[role]
        return file_path(picker.currentLayer()) if picker.isEnabled() else None

    def build_request(self):
        """The FusionRequest the form describes (not yet validated); StfError for malformed method options."""
        spec = self.method
        stem = f"fused_{spec.name}_{time.strftime('%Y%m%d_%H%M%S')}"
        folder = self.output_folder.filePath()
        return self.engine.FusionRequest(
            coarse_target=self.layer_path(self.engine.COARSE_TARGET),
            fine_reference=self.layer_path(self.engine.FINE_REFERENCE),
            coarse_reference=self.layer_path(self.engine.COARSE_REFERENCE),
            pan=self.layer_path(self.engine.PAN),
            fine_reference_2=self.layer_path(self.engine.FINE_REFERENCE_2),
            coarse_reference_2=self.layer_path(self.engine.COARSE_REFERENCE_2),
            truth=self.layer_path(TRUTH),
            output=os.path.join(folder, stem + ".tif"),
            method=spec.name,
            weights=(self.weights.filePath() or None) if spec.needs_weights and not self.training_first else None,
            error_maps_dir=os.path.join(folder, stem + "_error_maps") if self.write_error_maps.isChecked() else None,
            uncertainty=self.write_error_maps.isChecked() and self.uncertainty.isChecked(),
            tile=self.tile.value(),
            halo=None if self.halo.value() < 0 else self.halo.value(),
            batch=self.batch.value(),
            device=self.device_combo.currentText(),
            threads=self.threads.value() or None,
            coarse_resolution=self.coarse_resolution.value() or None,
            options=self.engine.parse_options(spec.name, self.method_options.text()) if spec.options else {},
        )

    def build_training(self, request):
        """The TrainingRequest for "train on these layers first" (the checkpoint goes beside the output), or None."""
        if not self.training_first:
            return None
        return self.engine.TrainingRequest(
            model=request.method,
            output=os.path.splitext(request.output)[0] + ".pt",
            mode="self",
            coarse_target=request.coarse_target,
            fine_reference=request.fine_reference,
            coarse_reference=request.coarse_reference,
            pan=request.pan,
            epochs=self.train_epochs.value(),
            patch=self.train_patch.value(),
            minutes=self.train_minutes.value() or None,
            device=request.device,
            threads=request.threads,
            coarse_resolution=request.coarse_resolution,
        )

    def validate(self, request) -> Optional[str]:
        """The first problem a run would hit, as the engine's one-line message; None when it can run."""
        for role, picker in self.pickers.items():
            layer = picker.currentLayer()
            if picker.isEnabled() and layer is not None and file_path(layer) is None:
                name = layer.name()
                return f"the {self.labels[role]} layer '{name}' is not a local raster file; save it as GeoTIFF first"
        if not self.output_folder.filePath():
            return "choose an output folder"
        try:
            self.engine.check(request, weights_from_training=self.training_first)
        except self.engine.StfError as exc:
            return str(exc)
        return None

    def run(self) -> None:
        try:
            request = self.build_request()
            problem = self.validate(request)
        except self.engine.StfError as exc:
            problem = str(exc)
        self.message.setText(f"Cannot run: {in_dialog_terms(problem)}" if problem else "")
        if problem:
            return
        self._save()
        self.run_requested.emit(request, self.build_training(request))
        self.accept()

    # Persistence -------------------------------------------------------------------------------------------

    def _restore(self) -> None:
        settings = QgsSettings()
        index = self.method_combo.findData(settings.value(SETTINGS + "method", self.engine.RECOMMENDED_METHOD))
        self.method_combo.setCurrentIndex(max(index, 0))
        self.device_combo.setCurrentText(settings.value(SETTINGS + "device", "auto"))
        self.tile.setValue(int(settings.value(SETTINGS + "tile", 512)))
        self.halo.setValue(int(settings.value(SETTINGS + "halo", -1)))
        self.batch.setValue(int(settings.value(SETTINGS + "batch", 4)))
        self.threads.setValue(int(settings.value(SETTINGS + "threads", 0) or 0))
        self.weights.setFilePath(settings.value(SETTINGS + "weights", ""))
        folder = settings.value(SETTINGS + "output_folder", "") or default_output_folder(self.project)
        self.output_folder.setFilePath(folder)
        self.write_error_maps.setChecked(settings.value(SETTINGS + "error_maps", True, type=bool))
        self.uncertainty.setChecked(settings.value(SETTINGS + "uncertainty", False, type=bool))
        self.train_first.setChecked(settings.value(SETTINGS + "train_first", False, type=bool))
        self.train_epochs.setValue(int(settings.value(SETTINGS + "train_epochs", self.train_epochs.clearValue())))
        self.train_patch.setValue(int(settings.value(SETTINGS + "train_patch", self.train_patch.clearValue())))
        self.train_minutes.setValue(float(settings.value(SETTINGS + "train_minutes", self.train_minutes.clearValue())))
        self.uncertainty.setEnabled(self.write_error_maps.isChecked())
        for role, picker in self.pickers.items():
            source = settings.value(SETTINGS + f"layer/{role}", "")
            matches = [layer for layer in self.project.mapLayers().values() if source and layer.source() == source]
            if matches:
                picker.setLayer(matches[0])

    def _save(self) -> None:
        settings = QgsSettings()
        settings.setValue(SETTINGS + "method", self.method.name)
        settings.setValue(SETTINGS + f"options/{self.method.name}", self.method_options.text())
        settings.setValue(SETTINGS + "device", self.device_combo.currentText())
        settings.setValue(SETTINGS + "tile", self.tile.value())
        settings.setValue(SETTINGS + "halo", self.halo.value())
        settings.setValue(SETTINGS + "batch", self.batch.value())
        settings.setValue(SETTINGS + "threads", self.threads.value())
        settings.setValue(SETTINGS + "weights", self.weights.filePath())
        settings.setValue(SETTINGS + "output_folder", self.output_folder.filePath())
        settings.setValue(SETTINGS + "error_maps", self.write_error_maps.isChecked())
        settings.setValue(SETTINGS + "uncertainty", self.uncertainty.isChecked())
        settings.setValue(SETTINGS + "train_first", self.train_first.isChecked())
        settings.setValue(SETTINGS + "train_epochs", self.train_epochs.value())
        settings.setValue(SETTINGS + "train_patch", self.train_patch.value())
        settings.setValue(SETTINGS + "train_minutes", self.train_minutes.value())
        for role, picker in self.pickers.items():
            layer = picker.currentLayer()
            settings.setValue(SETTINGS + f"layer/{role}", layer.source() if layer else "")
