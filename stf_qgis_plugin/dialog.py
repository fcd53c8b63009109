"""The fusion dialog: pick layers, method and device, validate, and hand a FusionRequest to whoever runs it; in
Series mode, a dated series (its dates and their references listed as soon as it is picked) and a SeriesRequest.

The dialog never runs the engine itself; `run_requested` carries the request to the plugin, which starts a task.
"""
from __future__ import annotations

import dataclasses
import os
import time
from types import ModuleType
from pathlib import Path
from typing import Collection, Dict, Optional, Sequence

from qgis.core import QgsMapLayerProxyModel, QgsProject, QgsRasterLayer, QgsSettings, QgsUnitTypes
from qgis.gui import QgsCollapsibleGroupBox, QgsDoubleSpinBox, QgsFileWidget, QgsMapLayerComboBox, QgsSpinBox
from qgis.PyQt.QtCore import QDate, QEvent, QSize, QStandardPaths, pyqtSignal
from qgis.PyQt.QtGui import QIcon
from qgis.PyQt.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QCheckBox,
    QComboBox,
    QDateEdit,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QScrollArea,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from .layer_info import describe, file_path, unusable
from .paths import icon_path
from .results import series_day
from .wording import in_dialog_terms

SETTINGS = "stf/dialog/"
TRUTH = "truth"
SINGLE, SERIES = "single", "series"
"""The dialog's modes: one target date from layers, or every date of a series."""
SERIES_FILTER = "Series lists (*.csv);;All files (*)"
SHOWN_UNUSABLE = 3
"""Dates without a reference the series summary names; it counts the rest."""
MAX_HEIGHT = 700
"""Most the dialog asks for (sizeHint), so it fits a 768-pixel-high screen with its title bar; the form scrolls."""
CHANGED = (
    (QLineEdit, "textChanged"),
    (QComboBox, "currentIndexChanged"),
    (QCheckBox, "toggled"),
    (QSpinBox, "valueChanged"),
    (QDoubleSpinBox, "valueChanged"),
    (QDateEdit, "dateChanged"),
)
"""The signal each kind of field sends when it changes (a file field's is its line edit's; a layer picker is a combo
box; a spin box's own line edit is changed with its signals blocked)."""
RASTER_FILTER = "Rasters (*.tif *.tiff *.vrt *.img *.jp2 *.nc *.hdf *.h5 *.gpkg);;All files (*)"
"""What the browse buttons beside the layer pickers list (any file GDAL opens is taken)."""
NOTE_STYLE = "color: palette(mid);"
ERROR_STYLE = "color: #b00020;"


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

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        """At least the form's narrowest width beside the scroll bar, so the dialog is never so narrow that the form
        scrolls sideways and every field is cut off on the right."""
        content = self.widget().minimumSizeHint()
        width = content.width() + self.verticalScrollBar().sizeHint().width() + 2 * self.frameWidth()
        return QSize(width, super().minimumSizeHint().height())

    def eventFilter(self, watched, event) -> bool:  # noqa: N802
        """The form's layout changed (Advanced opened, another mode): the dialog's minimum width follows it."""
        if watched is self.widget() and event.type() == QEvent.LayoutRequest:
            self.updateGeometry()
        return super().eventFilter(watched, event)


def empty_if_removed(picker: QgsMapLayerComboBox, first: int, last: int) -> None:
    """A picked layer leaving the project (rows `first` to `last` of the picker's list) empties its picker: the
    combo box would otherwise move on to the next layer of the list (without telling: layerChanged follows only
    the user's choices and setLayer), and Run take that layer in the wrong role."""
    if first <= picker.currentIndex() <= last:
        picker.setLayer(None)  # layerChanged(None): the layer's line under the picker goes
        picker.setCurrentIndex(0)  # the empty entry, first in the list: with no entry the combo box picks one


def scales_field(roles: Sequence[str]) -> QLineEdit:
    """A field for the inputs' scales to reflectance, as text the engine parses: what a raster's metadata does not
    say (Landsat Collection 2 Level-2 has no scale there); `roles` are the scale roles it takes."""
    field = QLineEdit()
    field.setPlaceholderText("e.g. fine=1e-4; empty: from the rasters' metadata")
    field.setToolTip("Stored value × scale (+ offset) = reflectance, per role: fine=1e-4 for reflectance ×10000, "
                     "fine=2.75e-5:-0.2 for Landsat Collection 2 Level-2; "
                     f"roles: {', '.join(roles)}; a value without a role sets every role")
    return field


def whole_text(spin: QAbstractSpinBox) -> None:
    """A spin box never narrower than its longest text: QGIS's spin boxes set a minimum width of their own, which
    leaves out a special value text (the Halo's 'auto (the method's receptive radius)' showed cut off)."""
    spin.setMinimumWidth(spin.minimumSizeHint().width())


def show_row(form: QFormLayout, field: QWidget, visible: bool) -> None:
    """Show or hide a form row: its field and its label."""
    label = form.labelForField(field)
    for widget in (label, field):
        if widget is not None:
            widget.setVisible(visible)


def plan_summary(planned: Sequence, max_gap: int) -> str:
    """'3 dates (2020-03-08 to 2020-04-02): 1 with references, 2 skipped (2020-03-08, 2020-04-02: no other fine
    image within 10 days)' from `plan_series`. A date's own fine image is no reference for it: such a date without
    another within the gap is skipped like the rest."""
    if not planned:
        return ""
    count = len(planned)
    span = f"{planned[0].date} to {planned[-1].date}" if count > 1 else planned[0].date
    head = f"{count} date{'s' if count != 1 else ''} ({span})"
    without = [date.date for date in planned if not date.usable]
    own = sum(1 for date in planned if date.has_fine and date.usable)
    own = f"; {own} with a fine image of their own (kept where clear, scored against it)" if own else ""
    if not without:
        return f"{head}, all with references{own}"
    named = ", ".join(without[:SHOWN_UNUSABLE])
    named += f" and {len(without) - SHOWN_UNUSABLE} more" if len(without) > SHOWN_UNUSABLE else ""
    return (f"{head}: {count - len(without)} with references, {len(without)} skipped ({named}: no other fine image "
            f"within {max_gap} days){own}")


def plan_details(planned: Sequence) -> str:
    """One line per date: its references, best first (the tooltip of the summary)."""
    return "\n".join(f"{date.date}: {', '.join(date.references) or 'skipped, no other fine image within the gap'}"
                     for date in planned)


def series_name(path: str) -> str:
    """What names a series: its folder, or its CSV's name (the folder's for a series.csv)."""
    source = Path(path)
    if source.suffix.lower() == ".csv":
        return source.parent.name if source.stem.lower() == "series" else source.stem
    return source.name


def full_path(typed: str, project: QgsProject) -> str:
    """A typed folder with `~` expanded and, when relative, taken from the saved project's folder: QGIS's working
    directory is wherever QGIS started. Still relative when the project is not saved (`relative_folder` says so)."""
    path = os.path.expanduser(typed.strip())
    home = project.homePath()
    return os.path.join(home, path) if path and home else path


def relative_folder(folder: str, field: str, project: QgsProject) -> str:
    """Why `folder` (typed in `field`) cannot be used: a relative path with no saved project to take it from; ''
    when it is a full path."""
    if os.path.isabs(folder):
        return ""
    return (f"the output folder '{folder}' ({field}) is not a full path and the project is not saved, so there is "
            f"no project folder to take it from; give a full folder path, such as {default_output_folder(project)}")


def free_stem(folder: str, stem: str, given: Collection[str]) -> str:
    """`stem`, else the first free of `stem_2`, `stem_3`, …: free when no name in `folder` contains it (its output,
    error maps, checkpoint, or the lock a run holds beside its output) and no run was given it (a run just started
    may not hold its lock yet). Two runs started within one second would otherwise share their time-stamped name,
    and the second fail on the first's lock."""
    names = os.listdir(folder) if os.path.isdir(folder) else []
    candidate, count = stem, 1
    while os.path.join(folder, candidate) in given or any(candidate in name for name in names):
        count += 1
        candidate = f"{stem}_{count}"
    return candidate


def default_output_folder(project: QgsProject) -> str:
    """Beside the saved project, else in the user's Documents folder (the home folder where there is none). Never a
    temp folder: Windows' Storage Sense and macOS delete old files there, and a series folder is meant to be
    resumed."""
    home = project.homePath()
    if home:
        return os.path.join(home, "stf_output")
    documents = QStandardPaths.writableLocation(QStandardPaths.DocumentsLocation)
    return os.path.join(documents if documents and os.path.isdir(documents) else os.path.expanduser("~"), "stf_output")


class FusionDialog(QDialog):
    """Inputs, method, device and output of one fusion run, or of a series run (Series mode)."""

    run_requested = pyqtSignal(object, object)
    """Emitted with a validated FusionRequest, and a TrainingRequest or None, when the user presses Run; in Series
    mode with a SeriesRequest and None."""

    def __init__(self, engine: ModuleType, project: Optional[QgsProject] = None, parent: Optional[QWidget] = None):
        super().__init__(parent)
        self.engine = engine
        self.project = project or QgsProject.instance()
        self.methods = engine.list_methods()
        self.trainable = set(engine.TRAINABLE_MODELS)
        self.setWindowTitle("Spatiotemporal Fusion")
        self.setWindowIcon(QIcon(icon_path()))
        self.labels = {**engine.ROLE_LABELS, TRUTH: "truth"}
        self.role_tips = {
            engine.COARSE_TARGET: "Coarse image at the target date: the date the fused image is made for",
            engine.FINE_REFERENCE: "Fine image at a reference date, before or after the target date",
            engine.COARSE_REFERENCE: "Coarse image at the fine reference's date (not at the target date)",
            engine.PAN: "Panchromatic band at the target date",
            engine.FINE_REFERENCE_2: "Second fine image, on the other side of the target date from the first "
                                     "(two-pair methods such as ESTARFM)",
            engine.COARSE_REFERENCE_2: "Coarse image at the second fine reference's date",
            TRUTH: "Fine image at the target date, if you have one: adds error-against-truth maps",
        }
        self.pickers: Dict[str, QgsMapLayerComboBox] = {}
        self.role_labels: Dict[str, QLabel] = {}
        self.layer_infos: Dict[str, QLabel] = {}
        self.browse_buttons: Dict[str, QToolButton] = {}
        self.mask_combos: Dict[str, QComboBox] = {}
        self.planned = ()
        self._proposed_output = ""
        self._given_stems = set()
        """Outputs (without their extension) of the runs started from this dialog: `free_stem` skips them."""
        self._folder_project = ""
        """The project file the output folder shown was chosen for ('' for an unsaved project)."""

        form = QWidget()
        column = QVBoxLayout(form)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self._inputs_box())
        column.addWidget(self._series_box())
        column.addWidget(self._method_box())
        column.addWidget(self._output_box())
        column.addWidget(self._advanced_box())
        column.addStretch()
        self.scroll = FormScrollArea()
        self.scroll.setWidget(form)
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.NoFrame)
        layout = QVBoxLayout(self)
        layout.addLayout(self._mode_row())
        layout.addWidget(self.scroll)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setStyleSheet(ERROR_STYLE)
        layout.addWidget(self.message)
        self.buttons = QDialogButtonBox(QDialogButtonBox.Close)
        self.run_button = self.buttons.addButton("Run", QDialogButtonBox.AcceptRole)
        self.buttons.accepted.connect(self.run)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)

        self._restore()
        self.method_combo.currentIndexChanged.connect(self._method_changed)
        self.pickers[self.engine.FINE_REFERENCE].layerChanged.connect(self._fine_reference_changed)
        self.mode_combo.currentIndexChanged.connect(self._mode_changed)
        self.series_kind.currentIndexChanged.connect(self._series_kind_changed)
        self.series_path.fileChanged.connect(self._series_changed)
        self.whole_series.toggled.connect(self._whole_series_toggled)
        for field in (self.date_from, self.date_to):
            field.dateChanged.connect(self._plan)
        self.max_gap.valueChanged.connect(self._plan)
        self._method_changed()
        self._fine_reference_changed()
        self._series_kind_changed()
        self._mode_changed()
        self._clear_message_on_edits()
        self.resize(self.sizeHint())  # else Qt sizes a new window from its layout, past MAX_HEIGHT

    def sizeHint(self) -> QSize:  # noqa: N802
        """The form's size, but never taller than MAX_HEIGHT or the screen (the form scrolls instead)."""
        hint = super().sizeHint()
        screen = self.screen() if hasattr(self, "screen") else None
        screen = screen or QApplication.primaryScreen()
        available = screen.availableGeometry().height() - 60 if screen is not None else MAX_HEIGHT
        return QSize(max(hint.width(), self.minimumWidth()), min(hint.height(), MAX_HEIGHT, max(available, 300)))

    def showEvent(self, event) -> None:  # noqa: N802
        """Shown again: no 'Cannot run' line from before, and the output folder of the project now open."""
        self.message.setText("")
        if self.project.fileName() != self._folder_project:
            self._restore_output_folder(QgsSettings())
        super().showEvent(event)

    def _clear_message_on_edits(self) -> None:
        """A 'Cannot run' line speaks of the form as it was: any change to a field takes it away."""
        for kind, signal in CHANGED:
            for field in self.findChildren(kind):
                getattr(field, signal).connect(self._clear_message)

    def _clear_message(self) -> None:
        """No 'Cannot run' line (a slot: whatever a field's signal carries is not needed)."""
        self.message.setText("")

    # Building the form -------------------------------------------------------------------------------------

    def _mode_row(self) -> QHBoxLayout:
        self.mode_combo = QComboBox()
        self.mode_combo.addItem("One date: fuse chosen layers", SINGLE)
        self.mode_combo.addItem("Series: every coarse date of a dated series", SERIES)
        self.mode_combo.setToolTip("Series: a fused image and a reliability map per date, shown as layers the "
                                   "Temporal Controller animates")
        row = QHBoxLayout()
        label = QLabel("Mode")
        label.setBuddy(self.mode_combo)
        row.addWidget(label)
        row.addWidget(self.mode_combo, 1)
        return row

    def _inputs_box(self) -> QGroupBox:
        box = self.inputs_box = QGroupBox("Input layers")
        form = QFormLayout(box)
        form.addRow(note("Local raster files; everything is aligned to the fine reference's grid. The coarse target "
                         "is at the date to predict; a reference pair (a fine image and the coarse image of its "
                         "date) is at another date. Hover a layer's name for its date."))
        for role in (*self.engine.ALL_ROLES, TRUTH):
            picker = QgsMapLayerComboBox()
            picker.setFilters(QgsMapLayerProxyModel.RasterLayer)
            picker.setAllowEmptyLayer(True)
            picker.setLayer(None)
            info = note()
            info.setContentsMargins(12, 0, 0, 4)
            info.hide()
            picker.layerChanged.connect(lambda layer, label=info: show_text(label, describe(layer)))
            picker.model().rowsAboutToBeRemoved.connect(
                lambda parent, first, last, picker=picker: empty_if_removed(picker, first, last))
            label = QLabel()
            browse = QToolButton()
            browse.setText("…")
            browse.setToolTip("Add a raster file to the project and pick it here")
            browse.clicked.connect(self._add_raster_file)  # a bound method: a lambda holding self keeps the dialog
            row = QHBoxLayout()
            row.addWidget(picker, 1)
            row.addWidget(browse)
            form.addRow(label, row)
            form.addRow(info)  # the whole width, so size, pixel size, CRS and bands stay on one line
            self.pickers[role], self.role_labels[role], self.layer_infos[role] = picker, label, info
            self.browse_buttons[role] = browse
        self.scales = scales_field(self.engine.SCALE_ROLES)
        form.addRow("Scales", self.scales)
        return box

    def _add_raster_file(self) -> None:
        """A raster file the user browses to becomes a layer of the project, picked for the role of the browse button
        clicked: the pickers list the project's layers only, and an analyst had to close the dialog to add a file."""
        role = next(role for role, button in self.browse_buttons.items() if button is self.sender())
        settings = QgsSettings()
        start = settings.value(SETTINGS + "browse_folder", "") or default_output_folder(self.project)
        path, _ = QFileDialog.getOpenFileName(self, f"{self.labels[role][0].upper()}{self.labels[role][1:]}", start,
                                              RASTER_FILTER)
        if not path:
            return
        settings.setValue(SETTINGS + "browse_folder", os.path.dirname(path))
        layer = QgsRasterLayer(path, Path(path).stem)
        if not layer.isValid():
            self.message.setText(f"{path} is not a raster QGIS can open; pick another file")
            return
        self.project.addMapLayer(layer)
        self.pickers[role].setLayer(layer)

    def _series_box(self) -> QGroupBox:
        box = self.series_box = QGroupBox("Series")
        form = QFormLayout(box)
        form.addRow(note("A CSV with the columns date, coarse, fine (optionally pan, coarse_mask, fine_mask; fine "
                         "left empty on coarse-only dates), or a folder of rasters named with a date and coarse, "
                         "fine, coarse_mask or fine_mask (e.g. 2020-03-08_fine.tif)."))
        self.series_kind = QComboBox()
        self.series_kind.addItem("CSV file", QgsFileWidget.GetFile)
        self.series_kind.addItem("Folder", QgsFileWidget.GetDirectory)
        self.series_kind.setToolTip("Whether the browse button picks a CSV file or a folder")
        self.series_path = QgsFileWidget()
        self.series_path.setFilter(SERIES_FILTER)
        self.series_path.setToolTip("The dated series to fuse: a CSV listing its rasters, or a folder of rasters with "
                                    "a date in their names; its dates show below as soon as it is picked")
        row = QHBoxLayout()
        row.addWidget(self.series_kind)
        row.addWidget(self.series_path, 1)
        form.addRow("Series", row)
        self.series_plan = note()
        self.series_plan.hide()
        form.addRow(self.series_plan)
        self.whole_series = QCheckBox("Whole series")
        self.whole_series.setToolTip("Fuse every date of the series; untick to fuse only the dates From … To")
        self.date_from, self.date_to = QDateEdit(), QDateEdit()
        self.dates_fields = QWidget()
        row = QHBoxLayout(self.dates_fields)
        row.setContentsMargins(0, 0, 0, 0)
        for text, field in (("From", self.date_from), ("To", self.date_to)):
            field.setCalendarPopup(True)
            field.setDisplayFormat("yyyy-MM-dd")
            label = QLabel(text)
            label.setBuddy(field)
            row.addWidget(label)
            row.addWidget(field)
        row.addStretch()
        dates = QHBoxLayout()
        dates.addWidget(self.whole_series)
        dates.addWidget(self.dates_fields, 1)
        form.addRow("Dates", dates)
        self.max_gap = QgsSpinBox()
        self.max_gap.setRange(1, 3660)
        self.max_gap.setSuffix(" days")
        self.max_gap.setClearValue(self.engine.DEFAULT_MAX_GAP)
        self.max_gap.setToolTip("How far from a date its fine references may lie; dates with none are skipped")
        form.addRow("Max gap", self.max_gap)
        for role in self.engine.MASK_ROLES:
            combo = QComboBox()
            combo.addItem("not set (a mask marks its non-zero pixels)", None)
            for rule, description in self.engine.MASK_RULES.items():
                combo.addItem(rule, rule)
                combo.setItemData(combo.count() - 1, description, 3)  # tooltip
            combo.setToolTip(f"How the series' {role}_mask rasters are read (pixels marked are not used)")
            form.addRow(f"{role[0].upper()}{role[1:]} masks", combo)
            self.mask_combos[role] = combo
        self.series_scales = scales_field(self.engine.SCALE_ROLES)
        form.addRow("Scales", self.series_scales)
        self.series_output = QgsFileWidget()
        self.series_output.setStorageMode(QgsFileWidget.GetDirectory)
        self.series_output.setToolTip("Where each date's fused image and reliability map go (a run into it later goes "
                                      "on with the dates not yet fused); a relative path is taken from the saved "
                                      "project's folder")
        form.addRow("Output folder", self.series_output)
        self.overwrite = QCheckBox("Overwrite the dates already fused")
        self.overwrite.setToolTip("Otherwise a run into a folder with outputs keeps the dates done and fuses the rest")
        form.addRow("", self.overwrite)
        form.addRow("", note("Per date: fused_<date>.tif and reliability_<date>.tif (expected error), and "
                             "series.json and series.vrt for the whole series."))
        return box

    def _method_box(self) -> QGroupBox:
        box = QGroupBox("Method and device")
        form = self.method_form = QFormLayout(box)
        self.method_combo = QComboBox()
        for name, spec in self.methods.items():
            self.method_combo.addItem(name, name)
            self.method_combo.setItemData(self.method_combo.count() - 1, spec.description, 3)  # tooltip
        self.method_description = QLabel()
        self.method_description.setWordWrap(True)
        self.method_combo.setToolTip("How the fine image at the target date is predicted; auto tries the suitable "
                                     "methods on the scene itself and keeps the best. Hover a method in the list for "
                                     "what it does")
        form.addRow("Method", self.method_combo)
        form.addRow("", self.method_description)
        self.weights = QgsFileWidget()
        self.weights.setFilter("STF checkpoints (*.pt);;All files (*)")
        self.weights.setToolTip("The trained deep model (a .pt checkpoint), e.g. one from Processing's 'Train a deep "
                                "model'; empty takes the demo weights shipped with the method, where it has some")
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
        self.device_combo.setToolTip("Where the fusion runs: auto takes the GPU (CUDA) when one is usable, else the "
                                     "CPU; deep methods are much faster on a GPU")
        found = self.engine.devices_found()
        if not any(item.startswith("cuda") for item in found):
            self.device_combo.model().item(devices.index("cuda")).setEnabled(False)
        form.addRow("Device", self.device_combo)
        form.addRow("", note("Detected: " + ", ".join(found)))
        return box

    def _output_box(self) -> QGroupBox:
        box = self.output_box = QGroupBox("Output")
        form = QFormLayout(box)
        self.output_folder = QgsFileWidget()
        self.output_folder.setStorageMode(QgsFileWidget.GetDirectory)
        self.output_folder.setToolTip("Where the fused image (fused_<method>_<date and time>.tif) and its error maps "
                                      "go; a relative path is taken from the saved project's folder")
        form.addRow("Folder", self.output_folder)
        self.write_error_maps = QCheckBox("Write error maps")
        self.write_error_maps.setToolTip("Maps of where the fused image may be wrong, added to the project with it")
        form.addRow("", self.write_error_maps)
        form.addRow("", note("Coarse residual, temporal change, tile seams; error against the truth when a truth "
                             "layer is set."))
        self.uncertainty = QCheckBox("Uncertainty map (expected error; slower)")
        self.uncertainty.setToolTip("Also a map of each pixel's expected error, from the coarse change, the fine "
                                    "texture and how much the methods disagree (it runs the other methods too)")
        form.addRow("", self.uncertainty)
        self.write_error_maps.toggled.connect(self.uncertainty.setEnabled)
        return box

    def _advanced_box(self) -> QgsCollapsibleGroupBox:
        box = self.advanced = QgsCollapsibleGroupBox("Advanced")
        form = self.advanced_form = QFormLayout(box)
        self.tile = QgsSpinBox()
        self.tile.setRange(0, 16384)
        self.tile.setSingleStep(64)
        self.tile.setSpecialValueText("whole raster")
        self.tile.setClearValue(512)
        self.tile.setToolTip("The raster is fused in square tiles of this side, so memory stays bounded; lower it "
                             "when memory runs out")
        self.halo = QgsSpinBox()
        self.halo.setRange(-1, 1024)
        self.halo.setSpecialValueText("auto (the method's receptive radius)")
        self.halo.setClearValue(-1)
        self.halo.setToolTip("Pixels each tile reads beyond its edges, so tiles join without seams; auto takes what "
                             "the method needs")
        self.batch = QgsSpinBox()
        self.batch.setRange(1, 256)
        self.batch.setClearValue(4)
        self.batch.setToolTip("Tiles fused together: more is faster on a GPU but takes more memory")
        self.threads = QgsSpinBox()
        self.threads.setRange(0, os.cpu_count() or 1)
        self.threads.setSpecialValueText("automatic (the physical cores)")
        self.threads.setClearValue(0)
        self.threads.setToolTip("CPU threads the fusion uses, at most this computer's; more than its physical cores "
                                "is usually slower, not faster")
        self.coarse_resolution = QgsDoubleSpinBox()
        self.coarse_resolution.setRange(0, 1e7)
        self.coarse_resolution.setSpecialValueText("from the raster")
        self.coarse_resolution.setClearValue(0)
        self.coarse_resolution.setToolTip("The coarse sensor's own pixel size (e.g. 250 for 250 m MODIS), when the "
                                          "coarse raster was resampled to a finer grid; otherwise 'from the raster'")
        for spin in (self.tile, self.halo, self.threads, self.coarse_resolution):
            whole_text(spin)
        self.coarse_resolution_hint = note()
        self.coarse_resolution_label = QLabel()
        form.addRow("Tile size (px)", self.tile)
        form.addRow("Halo (px)", self.halo)
        form.addRow("Batch (tiles)", self.batch)
        form.addRow("CPU threads", self.threads)
        form.addRow(self.coarse_resolution_label, self.coarse_resolution)
        form.addRow(self.coarse_resolution_hint)  # the whole width: a QFormLayout field row can lose its last line
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
            tip = "; ".join(filter(None, [self.role_tips[role], f"required by {spec.name}" if required else ""]))
            label.setToolTip(tip)
            self.pickers[role].setToolTip(tip)
            self.pickers[role].setEnabled(used)
            self.browse_buttons[role].setEnabled(used)
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
    def series_mode(self) -> bool:
        return self.mode_combo.currentData() == SERIES

    def _mode_changed(self) -> None:
        """Series mode: the series box instead of the layers and output boxes, and no field a series run does not
        take (weights, training first, halo)."""
        series = self.series_mode
        self.inputs_box.setVisible(not series)
        self.output_box.setVisible(not series)
        self.series_box.setVisible(series)
        for field in (self.weights, self.train_first, self.training_fields):
            show_row(self.method_form, field, not series)
        show_row(self.advanced_form, self.halo, not series)
        self._plan()

    def _series_kind_changed(self) -> None:
        """The browse button picks a CSV file or a folder (a typed path may be either)."""
        mode = self.series_kind.currentData()
        self.series_path.setStorageMode(mode)
        self.series_path.setFilter(SERIES_FILTER if mode == QgsFileWidget.GetFile else "")

    def _series_changed(self) -> None:
        """A new series: propose an output folder named after it (unless one was chosen), and list its dates."""
        path = self.series_path.filePath().strip()
        output = self.series_output.filePath().strip()
        if path and (not output or output == self._proposed_output):
            self._proposed_output = os.path.join(default_output_folder(self.project), f"series_{series_name(path)}")
            self.series_output.setFilePath(self._proposed_output)
        self._plan()

    def _whole_series_toggled(self) -> None:
        self.dates_fields.setEnabled(not self.whole_series.isChecked())
        self._plan()

    def _plan(self) -> None:
        """Under the series: its dates, which have references within the max gap and which not (the tooltip lists
        each date's references), or why the series cannot be read. Reads the listing only, no raster."""
        self.planned = ()
        path = self.series_path.filePath().strip()
        if not self.series_mode or not path:
            self._show_plan("")
            return
        try:
            self.planned = self.engine.plan_series(self.engine.SeriesRequest(**self._series_scope()))
        except self.engine.StfError as exc:
            self._show_plan(in_dialog_terms(str(exc), series=True), error=True)
            return
        except (OSError, ValueError) as exc:  # e.g. a raster picked as the CSV
            self._show_plan(f"cannot read the series {path}: {exc}", error=True)
            return
        if self.whole_series.isChecked() and self.planned:
            for field, date in ((self.date_from, self.planned[0].date), (self.date_to, self.planned[-1].date)):
                day = series_day(date)
                if day.isValid():
                    field.blockSignals(True)
                    field.setDate(day)
                    field.blockSignals(False)
        self._show_plan(plan_summary(self.planned, self.max_gap.value()), details=plan_details(self.planned))

    def _show_plan(self, text: str, error: bool = False, details: str = "") -> None:
        self.series_plan.setStyleSheet(ERROR_STYLE if error else NOTE_STYLE)
        self.series_plan.setToolTip(details)
        show_text(self.series_plan, text)

    @property
    def training_first(self) -> bool:
        return self.train_first.isEnabled() and self.train_first.isChecked()

    def layer_path(self, role: str) -> Optional[str]:
        picker = self.pickers[role]
        return file_path(picker.currentLayer()) if picker.isEnabled() else None

    def parsed_scales(self, field: QLineEdit) -> dict:
        """The scales typed in `field` as the engine parses them, {} when empty; StfError for malformed ones."""
        text = field.text().strip()
        return self.engine.parse_scales(text) if text else {}

    def build_request(self):
        """The FusionRequest the form describes (not yet validated); StfError for malformed scales or method
        options."""
        spec = self.method
        folder = full_path(self.output_folder.filePath(), self.project)
        stem = free_stem(folder, f"fused_{spec.name}_{time.strftime('%Y%m%d_%H%M%S')}", self._given_stems)
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
            scales=self.parsed_scales(self.scales),
            options=self.engine.parse_options(spec.name, self.method_options.text()) if spec.options else {},
        )

    def _series_scope(self) -> dict:
        """Series, output folder, dates and max gap: the SeriesRequest fields `plan_series` reads."""
        whole = self.whole_series.isChecked()
        return dict(
            series=self.series_path.filePath().strip(),
            output_dir=full_path(self.series_output.filePath(), self.project),
            date_from=None if whole else self.date_from.date().toString("yyyy-MM-dd"),
            date_to=None if whole else self.date_to.date().toString("yyyy-MM-dd"),
            max_gap=self.max_gap.value(),
        )

    def build_series_request(self):
        """The SeriesRequest the Series mode describes (not yet validated); StfError for malformed scales or
        method options."""
        spec = self.method
        return self.engine.SeriesRequest(
            **self._series_scope(),
            method=spec.name,
            mask_rules={role: combo.currentData() for role, combo in self.mask_combos.items() if combo.currentData()},
            scales=self.parsed_scales(self.series_scales),
            coarse_resolution=self.coarse_resolution.value() or None,
            tile=self.tile.value(),
            batch=self.batch.value(),
            device=self.device_combo.currentText(),
            threads=self.threads.value() or None,
            options=self.engine.parse_options(spec.name, self.method_options.text()) if spec.options else {},
            overwrite=self.overwrite.isChecked(),
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
            scales=request.scales,
        )

    def validate(self, request) -> Optional[str]:
        """The first problem a run would hit, as the engine's one-line message; None when it can run."""
        for role, picker in self.pickers.items():
            problem = unusable(picker.currentLayer()) if picker.isEnabled() else ""
            if problem:
                return f"the {self.labels[role]} layer '{picker.currentLayer().name()}' {problem}"
        if not self.output_folder.filePath():
            return "choose an output folder"
        problem = relative_folder(os.path.dirname(request.output), "Output → 'Folder'", self.project)
        if problem:
            return problem
        try:
            self.engine.check(request, weights_from_training=self.training_first)
            training = self.build_training(request)
            if training is not None:
                self.engine.check_training(training)
        except self.engine.StfError as exc:
            return str(exc)
        return None

    def validate_series(self, request) -> Optional[str]:
        """The first problem a series run would hit before its first date; None when it can start."""
        if not request.series:
            return "choose a series: a CSV file or a folder of dated rasters"
        if not request.output_dir:
            return "choose an output folder"
        problem = relative_folder(request.output_dir, "Series → 'Output folder'", self.project)
        if problem:
            return problem
        spec = self.method
        if spec.needs_weights and not spec.default_weights:
            return f"{spec.name} needs a weights file, which a series run does not take; choose another method"
        if not any(date.usable for date in self.engine.plan_series(request)):
            return f"no date of the series has a fine reference within {request.max_gap} days; raise --max-gap"
        return None

    def run(self) -> None:
        series = self.series_mode
        try:
            request = self.build_series_request() if series else self.build_request()
            problem = self.validate_series(request) if series else self.validate(request)
        except self.engine.StfError as exc:
            problem = str(exc)
        self.message.setText(f"Cannot run: {in_dialog_terms(problem, series=series)}" if problem else "")
        if problem:
            return
        self._save()
        if not series:
            self._given_stems.add(os.path.splitext(request.output)[0])
        self.run_requested.emit(request, None if series else self.build_training(request))
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
        self._restore_output_folder(settings)
        self.write_error_maps.setChecked(settings.value(SETTINGS + "error_maps", True, type=bool))
        self.uncertainty.setChecked(settings.value(SETTINGS + "uncertainty", False, type=bool))
        self.train_first.setChecked(settings.value(SETTINGS + "train_first", False, type=bool))
        self.train_epochs.setValue(int(settings.value(SETTINGS + "train_epochs", self.train_epochs.clearValue())))
        self.train_patch.setValue(int(settings.value(SETTINGS + "train_patch", self.train_patch.clearValue())))
        self.train_minutes.setValue(float(settings.value(SETTINGS + "train_minutes", self.train_minutes.clearValue())))
        self.uncertainty.setEnabled(self.write_error_maps.isChecked())
        self.scales.setText(settings.value(SETTINGS + "scales", ""))
        for role, picker in self.pickers.items():
            source = settings.value(SETTINGS + f"layer/{role}", "")
            matches = [layer for layer in self.project.mapLayers().values() if source and layer.source() == source]
            if matches:
                picker.setLayer(matches[0])
        if self.layer_path(self.engine.COARSE_TARGET) == settings.value(SETTINGS + "coarse_resolution/layer", ""):
            self.coarse_resolution.setValue(float(settings.value(SETTINGS + "coarse_resolution/value", 0) or 0))
        self.mode_combo.setCurrentIndex(max(self.mode_combo.findData(settings.value(SETTINGS + "mode", SINGLE)), 0))
        series = settings.value(SETTINGS + "series/path", "")
        self.series_kind.setCurrentIndex(1 if series and os.path.isdir(series) else 0)
        self.series_path.setFilePath(series)
        self.series_output.setFilePath(settings.value(SETTINGS + "series/output", ""))
        self.whole_series.setChecked(settings.value(SETTINGS + "series/whole", True, type=bool))
        self.dates_fields.setEnabled(not self.whole_series.isChecked())
        for field, key in ((self.date_from, "from"), (self.date_to, "to")):
            day = series_day(settings.value(SETTINGS + f"series/{key}", ""))
            field.setDate(day if day.isValid() else QDate.currentDate())
        self.max_gap.setValue(int(settings.value(SETTINGS + "series/max_gap", self.engine.DEFAULT_MAX_GAP)))
        for role, combo in self.mask_combos.items():
            combo.setCurrentIndex(max(combo.findData(settings.value(SETTINGS + f"series/mask/{role}", "")), 0))
        self.series_scales.setText(settings.value(SETTINGS + "series/scales", ""))

    def _restore_output_folder(self, settings: QgsSettings) -> None:
        """The folder last run into, unless it was chosen in another project than the saved one open now: then that
        project's own folder (results of one project do not go into another's)."""
        folder = settings.value(SETTINGS + "output_folder", "")
        chosen_in = settings.value(SETTINGS + "output_folder_project", "")
        self._folder_project = self.project.fileName()
        if self.project.homePath() and chosen_in != self._folder_project:
            folder = ""
        self.output_folder.setFilePath(folder or default_output_folder(self.project))

    def _save(self) -> None:
        settings = QgsSettings()
        settings.setValue(SETTINGS + "method", self.method.name)
        settings.setValue(SETTINGS + f"options/{self.method.name}", self.method_options.text())
        settings.setValue(SETTINGS + "device", self.device_combo.currentText())
        settings.setValue(SETTINGS + "tile", self.tile.value())
        settings.setValue(SETTINGS + "halo", self.halo.value())
        settings.setValue(SETTINGS + "batch", self.batch.value())
        settings.setValue(SETTINGS + "threads", self.threads.value())
        # the real coarse pixel size belongs to its coarse raster: another one may be at its own size, or another's
        settings.setValue(SETTINGS + "coarse_resolution/value", self.coarse_resolution.value())
        settings.setValue(SETTINGS + "coarse_resolution/layer", self.layer_path(self.engine.COARSE_TARGET) or "")
        settings.setValue(SETTINGS + "weights", self.weights.filePath())
        settings.setValue(SETTINGS + "output_folder", self.output_folder.filePath())
        settings.setValue(SETTINGS + "output_folder_project", self.project.fileName())
        self._folder_project = self.project.fileName()
        settings.setValue(SETTINGS + "error_maps", self.write_error_maps.isChecked())
        settings.setValue(SETTINGS + "uncertainty", self.uncertainty.isChecked())
        settings.setValue(SETTINGS + "train_first", self.train_first.isChecked())
        settings.setValue(SETTINGS + "train_epochs", self.train_epochs.value())
        settings.setValue(SETTINGS + "train_patch", self.train_patch.value())
        settings.setValue(SETTINGS + "train_minutes", self.train_minutes.value())
        settings.setValue(SETTINGS + "scales", self.scales.text())
        for role, picker in self.pickers.items():
            layer = picker.currentLayer()
            settings.setValue(SETTINGS + f"layer/{role}", layer.source() if layer else "")
        settings.setValue(SETTINGS + "mode", self.mode_combo.currentData())
        settings.setValue(SETTINGS + "series/path", self.series_path.filePath())
        settings.setValue(SETTINGS + "series/output", self.series_output.filePath())
        settings.setValue(SETTINGS + "series/whole", self.whole_series.isChecked())
        settings.setValue(SETTINGS + "series/from", self.date_from.date().toString("yyyy-MM-dd"))
        settings.setValue(SETTINGS + "series/to", self.date_to.date().toString("yyyy-MM-dd"))
        settings.setValue(SETTINGS + "series/max_gap", self.max_gap.value())
        for role, combo in self.mask_combos.items():
            settings.setValue(SETTINGS + f"series/mask/{role}", combo.currentData() or "")
        settings.setValue(SETTINGS + "series/scales", self.series_scales.text())
