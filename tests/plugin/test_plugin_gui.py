"""Plugin load/unload in a QGIS interface, and the dialog's pickers, method-driven inputs and validation."""
from __future__ import annotations

import pytest

pytest.importorskip("qgis")

from conftest import write_bands  # noqa: E402
from helpers.option_cases import BAD_OPTIONS  # noqa: E402


def menu_actions(iface):
    submenus = [entry.menu() for entry in iface.raster_menu.actions() if entry.menu()]
    return [action for menu in submenus for action in menu.actions()]


def test_init_gui_adds_and_unload_removes_menu_toolbar_and_provider(iface, qgis_processing):
    import stf_qgis_plugin
    from qgis.core import QgsApplication

    plugin = stf_qgis_plugin.classFactory(iface)
    plugin.initGui()
    assert plugin.action in menu_actions(iface)
    assert plugin.action in iface.raster_toolbar.actions()
    assert QgsApplication.processingRegistry().providerById("stf") is not None
    assert QgsApplication.processingRegistry().algorithmById("stf:fuse") is not None

    plugin.unload()
    assert menu_actions(iface) == []
    assert iface.raster_toolbar.actions() == []
    assert QgsApplication.processingRegistry().providerById("stf") is None


def test_dialog_lists_the_projects_raster_layers(plugin, sample_layers):
    plugin.show_dialog()
    dialog = plugin.dialog
    picker = dialog.pickers["coarse_target"]
    listed = {picker.layer(i).id() for i in range(picker.count()) if picker.layer(i) is not None}
    assert listed == {layer.id() for layer in sample_layers.values()}
    picker.setLayer(sample_layers["fine_reference"])
    info = dialog.layer_infos["coarse_target"].text()
    assert "500×500 px" in info and "EPSG:32649" in info and "3 bands" in info and "30×30" in info
    dialog.close()


def test_method_choice_enables_and_marks_inputs(plugin, sample_layers):
    plugin.show_dialog()
    dialog = plugin.dialog
    dialog.method_combo.setCurrentIndex(dialog.method_combo.findData("cubic"))
    assert not dialog.pickers["coarse_reference"].isEnabled()
    assert "*" in dialog.role_labels["coarse_target"].text()
    assert "not used" in dialog.role_labels["coarse_reference"].text()
    dialog.method_combo.setCurrentIndex(dialog.method_combo.findData("delta"))
    assert dialog.pickers["coarse_reference"].isEnabled()
    assert "optional" in dialog.role_labels["coarse_reference"].text()
    assert dialog.method_description.text() == dialog.methods["delta"].description
    assert not dialog.weights.isEnabled()
    dialog.close()


def test_dialog_preselects_the_recommended_method_unless_one_is_remembered(plugin):
    from qgis.core import QgsSettings

    from stf_qgis_plugin.dialog import SETTINGS, FusionDialog

    engine = plugin.status.engine
    QgsSettings().remove(SETTINGS + "method")
    assert FusionDialog(engine).method.name == engine.RECOMMENDED_METHOD == "auto"
    QgsSettings().setValue(SETTINGS + "method", "fitfc")
    assert FusionDialog(engine).method.name == "fitfc"


def test_second_reference_pair_is_labelled_enabled_per_method_and_reaches_the_request(plugin, sample_layers, tmp_path):
    """ESTARFM needs both pairs, auto may use them, one-pair methods do not take them (their pickers are off)."""
    plugin.show_dialog()
    dialog = plugin.dialog
    second = {"fine_reference_2": sample_layers["truth"], "coarse_reference_2": sample_layers["coarse_target"]}
    for role, layer in {**sample_layers, **second}.items():
        if role != "truth":
            dialog.pickers[role].setLayer(layer)
    dialog.output_folder.setFilePath(str(tmp_path))

    dialog.method_combo.setCurrentIndex(dialog.method_combo.findData("estarfm"))
    assert dialog.role_labels["fine_reference_2"].text() == "<b>Second fine reference *</b>"
    assert dialog.role_labels["coarse_reference_2"].text() == "<b>Second coarse reference *</b>"
    assert "other side of the target date" in dialog.role_labels["fine_reference_2"].toolTip()
    request = dialog.build_request()
    assert (request.fine_reference_2, request.coarse_reference_2) == (
        sample_layers["truth"].source(), sample_layers["coarse_target"].source())
    assert request.coarse_reference == sample_layers["coarse_reference"].source()

    dialog.method_combo.setCurrentIndex(dialog.method_combo.findData("auto"))
    assert dialog.role_labels["fine_reference_2"].text() == "Second fine reference (optional)"
    assert dialog.build_request().fine_reference_2 == sample_layers["truth"].source()

    dialog.method_combo.setCurrentIndex(dialog.method_combo.findData("fitfc"))  # one pair only (STARFM takes two)
    assert dialog.role_labels["coarse_reference_2"].text() == "Second coarse reference (not used)"
    assert not dialog.pickers["fine_reference_2"].isEnabled() and not dialog.pickers["coarse_reference_2"].isEnabled()
    request = dialog.build_request()
    assert (request.fine_reference_2, request.coarse_reference_2) == (None, None)
    dialog.close()


def test_run_shows_the_engines_message_instead_of_starting(plugin, sample_layers, qgis_new_project, tmp_path):
    from qgis.core import QgsProject, QgsRasterLayer

    plugin.show_dialog()
    dialog = plugin.dialog
    started = []
    dialog.run_requested.connect(started.append)
    dialog.method_combo.setCurrentIndex(dialog.method_combo.findData("delta"))
    dialog.output_folder.setFilePath(str(tmp_path))
    dialog.run()
    assert "needs a coarse target" in dialog.message.text()

    # A two-band raster as coarse target: the engine's band-mismatch message appears in the dialog.
    two_bands = tmp_path / "two_bands.tif"
    write_bands(sample_layers["coarse_target"].source(), two_bands, [1, 2])
    layer = QgsRasterLayer(str(two_bands), "two bands")
    QgsProject.instance().addMapLayer(layer)
    dialog.pickers["coarse_target"].setLayer(layer)
    dialog.pickers["fine_reference"].setLayer(sample_layers["fine_reference"])
    dialog.run()
    assert "band mismatch" in dialog.message.text()
    assert "--bands" not in dialog.message.text()
    assert ("or fuse a copy of the fine reference with only the 2 bands the coarse target has (Processing → GDAL → "
            "Raster conversion → Rearrange bands makes it)") in dialog.message.text()

    dialog.pickers["coarse_target"].setLayer(sample_layers["coarse_target"])
    dialog.pickers["truth"].setLayer(sample_layers["truth"])
    dialog.write_error_maps.setChecked(False)
    dialog.run()
    assert "tick 'Write error maps'" in dialog.message.text()
    dialog.pickers["truth"].setLayer(None)

    far_away = tmp_path / "far_away.tif"
    _write_shifted_copy(sample_layers["coarse_target"].source(), far_away, 1_000_000)
    layer = QgsRasterLayer(str(far_away), "far away")
    QgsProject.instance().addMapLayer(layer)
    dialog.pickers["coarse_target"].setLayer(layer)
    dialog.run()
    assert "does not overlap the fine reference" in dialog.message.text()

    wms = QgsRasterLayer("type=xyz&url=http://localhost/{z}/{x}/{y}.png", "tiles", "wms")
    QgsProject.instance().addMapLayer(wms)
    dialog.pickers["coarse_target"].setLayer(wms)
    dialog.run()
    assert "not a local raster file" in dialog.message.text()
    assert started == [] and sorted(tmp_path.iterdir()) == sorted([two_bands, far_away])
    dialog.close()


def _write_shifted_copy(source, target, metres) -> None:
    import rasterio
    from rasterio.transform import Affine

    with rasterio.open(source) as src:
        profile = {**src.profile, "transform": Affine.translation(metres, 0) * src.transform}
        with rasterio.open(target, "w", **profile) as dst:
            dst.write(src.read())


def test_last_choices_persist(plugin, sample_layers, tmp_path):
    plugin.show_dialog()
    dialog = plugin.dialog
    dialog.method_combo.setCurrentIndex(dialog.method_combo.findData("cubic"))
    dialog.pickers["coarse_target"].setLayer(sample_layers["coarse_target"])
    dialog.pickers["fine_reference"].setLayer(sample_layers["fine_reference"])
    dialog.output_folder.setFilePath(str(tmp_path / "out"))
    dialog.tile.setValue(128)
    dialog.run_requested.connect(lambda *request: None)
    plugin.dialog.run_requested.disconnect(plugin.start)
    dialog.run()
    assert dialog.message.text() == ""

    from stf_qgis_plugin.dialog import FusionDialog

    again = FusionDialog(plugin.status.engine)
    assert again.method.name == "cubic"
    assert again.tile.value() == 128
    assert again.output_folder.filePath() == str(tmp_path / "out")
    assert again.pickers["coarse_target"].currentLayer() == sample_layers["coarse_target"]


def test_the_default_output_folder_is_beside_the_project_else_in_documents(tmp_path, monkeypatch):
    """Never in the temp folder, whose old files Windows' Storage Sense and macOS delete (a series folder is meant
    to be resumed): in the user's Documents folder (the home folder without one) until the project is saved."""
    from qgis.core import QgsProject

    from stf_qgis_plugin.dialog import default_output_folder

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)  # Qt reads the Documents folder from ~/.config then
    project = QgsProject()
    assert default_output_folder(project) == str(home / "stf_output")
    (home / "Documents").mkdir()
    assert default_output_folder(project) == str(home / "Documents" / "stf_output")
    project.setFileName(str(tmp_path / "work" / "map.qgz"))
    assert default_output_folder(project) == str(tmp_path / "work" / "stf_output")


def test_deep_models_take_weights_or_train_first(plugin, sample_layers, tmp_path):
    dialog, emitted = capture_runs(plugin)
    dialog.method_combo.setCurrentIndex(dialog.method_combo.findData("ganstfm"))
    dialog.pickers["coarse_target"].setLayer(sample_layers["coarse_target"])
    dialog.pickers["fine_reference"].setLayer(sample_layers["fine_reference"])
    dialog.output_folder.setFilePath(str(tmp_path))
    dialog.train_first.setChecked(False)
    assert dialog.weights.isEnabled() and dialog.train_first.isEnabled()
    dialog.weights.setFilePath(str(tmp_path / "absent.pt"))
    dialog.run()
    assert "weights file not found" in dialog.message.text() and emitted == []

    training_fields = (dialog.train_epochs, dialog.train_patch, dialog.train_minutes)
    assert not any(field.isEnabled() for field in training_fields)
    dialog.train_first.setChecked(True)
    assert all(field.isEnabled() for field in training_fields)
    dialog.train_epochs.setValue(3)
    dialog.train_patch.setValue(64)
    dialog.train_minutes.setValue(2.5)
    dialog.threads.setValue(2)
    assert not dialog.weights.isEnabled()
    dialog.run()  # the sample's MODIS is on the fine grid: the training needs its real pixel size, before closing
    assert dialog.message.text().startswith("Cannot run: self-training needs a coarse/fine ratio of at least 2")
    assert "(Advanced → 'Real coarse pixel size')" in dialog.message.text() and emitted == []
    dialog.coarse_resolution.setValue(250)
    dialog.run()
    [(request, training)] = emitted
    assert request.method == training.model == "ganstfm" and request.weights is None
    assert request.threads == training.threads == 2
    assert (training.mode, training.epochs, training.coarse_resolution) == ("self", 3, 250)
    assert (training.patch, training.minutes) == (64, 2.5)
    assert training.output == request.output[:-4] + ".pt"
    assert (training.coarse_target, training.fine_reference) == (request.coarse_target, request.fine_reference)

    from stf_qgis_plugin.dialog import FusionDialog

    again = FusionDialog(plugin.status.engine)
    assert (again.train_epochs.value(), again.train_patch.value(), again.train_minutes.value()) == (3, 64, 2.5)
    again.train_minutes.clear()  # back to the engine's default budget
    assert again.train_minutes.value() == plugin.status.engine.DEFAULT_TRAINING_MINUTES
    dialog.show()
    dialog.train_minutes.setValue(0)
    assert dialog.train_minutes.text() == "no limit"
    dialog.run()
    assert emitted[-1][1].minutes is None

    dialog.method_combo.setCurrentIndex(dialog.method_combo.findData("starfm"))
    assert not dialog.train_first.isEnabled() and not dialog.weights.isEnabled()
    assert not any(field.isEnabled() for field in training_fields)
    dialog.close()


@pytest.fixture
def forget_scales():
    """The dialog remembers its scales: forget them afterwards, so that other tests read the sample unscaled."""
    from qgis.core import QgsSettings

    from stf_qgis_plugin.dialog import SETTINGS

    yield
    QgsSettings().remove(SETTINGS + "scales")


def test_scales_reach_the_fusion_and_the_training_first_and_are_remembered(plugin, sample_layers, tmp_path,
                                                                           forget_scales):
    """The single-date form's 'Scales' (Landsat Collection 2 Level-2's here) become the FusionRequest's and the
    TrainingRequest's scales as the engine parses them; a malformed one is the engine's one line, nothing runs."""
    from stf_qgis_plugin.dialog import FusionDialog

    engine = plugin.status.engine
    dialog, emitted = capture_runs(plugin)
    dialog.method_combo.setCurrentIndex(dialog.method_combo.findData("ganstfm"))
    for role in ("coarse_target", "fine_reference"):
        dialog.pickers[role].setLayer(sample_layers[role])
    dialog.output_folder.setFilePath(str(tmp_path))
    dialog.train_first.setChecked(True)
    dialog.coarse_resolution.setValue(250)
    assert dialog.scales.isVisibleTo(dialog) and "coarse-target" in dialog.scales.toolTip()
    dialog.scales.setText(" fine=2.75e-5:-0.2 ")
    dialog.run()
    [(request, training)] = emitted
    assert request.scales == training.scales == engine.parse_scales("fine=2.75e-5:-0.2")
    assert FusionDialog(engine).scales.text() == " fine=2.75e-5:-0.2 "

    with pytest.raises(engine.StfError) as expected:
        engine.parse_scales("fine=zero")
    dialog.scales.setText("fine=zero")
    dialog.run()
    assert dialog.message.text() == f"Cannot run: {expected.value}" and len(emitted) == 1
    dialog.close()


def test_training_fields_start_at_the_engines_defaults(plugin):
    from qgis.core import QgsSettings

    from stf_qgis_plugin.dialog import SETTINGS, FusionDialog

    engine = plugin.status.engine
    for key in ("train_epochs", "train_patch", "train_minutes"):
        QgsSettings().remove(SETTINGS + key)
    dialog = FusionDialog(engine)
    defaults = engine.TrainingRequest(model="ganstfm", output="x.pt")
    assert (dialog.train_epochs.value(), dialog.train_patch.value(), dialog.train_minutes.value()) == (
        defaults.epochs, defaults.patch, engine.DEFAULT_TRAINING_MINUTES)


def test_dialog_names_its_own_fields_not_command_line_flags(plugin, sample_layers, tmp_path, monkeypatch):
    """Where no demo checkpoint is installed (e.g. a plugin zip without weights), the engine's check says a deep
    model "needs a weights file (--weights); train one with `stf train`": the dialog names its field instead."""
    import dataclasses

    from stf_engine.methods import catalog

    engine = plugin.status.engine
    spec = engine.list_methods()["ganstfm"]
    monkeypatch.setitem(catalog.METHODS, "ganstfm", dataclasses.replace(spec, default_weights=None))
    with pytest.raises(engine.StfError, match=r"needs a weights file \(--weights\)"):  # what the engine says
        engine.check(engine.FusionRequest(
            coarse_target=sample_layers["coarse_target"].source(), fine_reference=sample_layers["fine_reference"].source(),
            output=str(tmp_path / "x.tif"), method="ganstfm"))
    dialog, emitted = captured_dialog(plugin, sample_layers, tmp_path, "ganstfm")
    dialog.weights.setFilePath("")
    dialog.train_first.setChecked(False)
    dialog.run()
    text = dialog.message.text()
    assert "needs a weights file ('Weights file')" in text and "'Train on these layers first'" in text, text
    assert "--" not in text and "`stf train`" not in text and emitted == []


@pytest.mark.parametrize("engine_says, dialog_shows", [
    ("give its real pixel size (--coarse-res)", "give its real pixel size (Advanced → 'Real coarse pixel size')"),
    ("lower the halo (--halo), the tile size (--tile) or the batch (--batch)",
     "lower the halo (Advanced → 'Halo'), the tile size (Advanced → 'Tile size') or the batch (Advanced → 'Batch')"),
    ("--truth needs a folder for the error maps: add --error-maps DIR",
     "the 'Truth' layer needs a folder for the error maps: tick 'Write error maps'"),
    ("set --patch lower", "set the training 'Patch' lower"),
    ("check units and set --scale", "check units and set 'Scales'"),
    ("use --method marstfn or other weights", "use the method 'marstfn' or other weights"),
])
def test_flags_map_to_the_dialogs_field_names(engine_says, dialog_shows):
    from stf_qgis_plugin.wording import in_dialog_terms

    assert in_dialog_terms(engine_says).startswith(dialog_shows)
    assert "--" not in in_dialog_terms(engine_says)


def test_dialog_labels_exist_for_every_field_the_mapping_names(plugin):
    """The mapping's names are the dialog's own labels (a renamed field must rename its entry too)."""
    import re

    from qgis.PyQt.QtWidgets import QCheckBox, QLabel

    from stf_qgis_plugin.wording import DIALOG_TERMS

    plugin.show_dialog()
    dialog = plugin.dialog
    shown = [widget.text() for widget in dialog.findChildren(QLabel) + dialog.findChildren(QCheckBox)]
    named = {name for _, replacement in DIALOG_TERMS for name in re.findall(r"'([A-Z][^'\\]*)'", replacement)}
    assert {"Weights file", "Real coarse pixel size", "Patch", "Time budget", "Halo"} <= named
    missing = [name for name in named if not any(text.startswith(name) for text in shown)]
    assert missing == [], missing


def test_method_options_are_typed_checked_and_remembered_per_method(plugin, sample_layers, tmp_path):
    from stf_qgis_plugin.dialog import FusionDialog

    plugin.show_dialog()
    dialog = plugin.dialog
    dialog.run_requested.disconnect(plugin.start)
    emitted = []
    dialog.run_requested.connect(lambda request, training: emitted.append(request))
    without = [name for name, spec in dialog.methods.items() if not spec.options]  # every method but auto has some
    for name in without:
        dialog.method_combo.setCurrentIndex(dialog.method_combo.findData(name))
        assert not dialog.method_options.isEnabled() and "no options" in dialog.method_options.placeholderText()
    dialog.method_combo.setCurrentIndex(dialog.method_combo.findData("starfm"))
    assert "window=31" in dialog.method_options.placeholderText()
    dialog.pickers["coarse_target"].setLayer(sample_layers["coarse_target"])
    dialog.pickers["fine_reference"].setLayer(sample_layers["fine_reference"])
    dialog.output_folder.setFilePath(str(tmp_path))
    dialog.method_options.setText("window 5")
    dialog.run()
    assert "key=value" in dialog.message.text() and emitted == []
    dialog.method_options.setText("window=5; classes=3")
    dialog.run()
    assert emitted[0].options == {"window": 5, "classes": 3}
    again = FusionDialog(plugin.status.engine)
    assert again.method.name == "starfm" and again.method_options.text() == "window=5; classes=3"


def capture_runs(plugin, keep=lambda request, training: (request, training)):
    """The plugin's dialog with its Run captured instead of started: (dialog, what `keep` makes of each run)."""
    plugin.show_dialog()
    dialog = plugin.dialog
    dialog.run_requested.disconnect(plugin.start)
    emitted = []
    dialog.run_requested.connect(lambda request, training: emitted.append(keep(request, training)))
    return dialog, emitted


def captured_dialog(plugin, sample_layers, tmp_path, method="starfm"):
    """The plugin's dialog set to `method` on the sample, its Run captured instead of started: (dialog, requests)."""
    dialog, emitted = capture_runs(plugin, keep=lambda request, training: request)
    dialog.method_combo.setCurrentIndex(dialog.method_combo.findData(method))
    dialog.pickers["coarse_target"].setLayer(sample_layers["coarse_target"])
    dialog.pickers["fine_reference"].setLayer(sample_layers["fine_reference"])
    dialog.output_folder.setFilePath(str(tmp_path))
    return dialog, emitted


@pytest.mark.parametrize("options, text", [(o, t) for method, o, t in BAD_OPTIONS if method == "starfm"])
def test_dialog_refuses_bad_options_with_the_engines_message(plugin, sample_layers, tmp_path, options, text):
    """The dialog offers options only for methods that declare some; bad ones get the CLI's own line."""
    dialog, emitted = captured_dialog(plugin, sample_layers, tmp_path)
    dialog.method_options.setText(options)
    dialog.run()
    assert dialog.message.text().startswith("Cannot run: ") and text in dialog.message.text()
    assert emitted == []


def test_unload_deletes_the_dialog_so_nothing_of_it_follows_the_project(plugin, sample_layers, sample_paths,
                                                                        monkeypatch):
    """A closed dialog kept alive would still update its pickers (and call into the plugin) while QGIS clears the
    project on exit."""
    from qgis.core import QgsProject, QgsRasterLayer
    from qgis.PyQt import sip

    import stf_qgis_plugin.dialog as dialog_module

    project = QgsProject.instance()
    plugin.show_dialog()
    dialog = plugin.dialog
    picker = dialog.pickers["coarse_target"]
    picker.setLayer(sample_layers["coarse_target"])
    described = []
    monkeypatch.setattr(dialog_module, "describe", lambda layer: described.append(layer) or "")
    project.removeAllMapLayers()
    assert described and set(described) == {None}, "while the plugin is loaded, its pickers follow the project"
    layer = QgsRasterLayer(sample_paths["coarse_target"], "again")
    project.addMapLayer(layer)
    picker.setLayer(layer)
    plugin.unload()
    assert sip.isdeleted(dialog) and plugin.dialog is None
    described.clear()
    project.removeAllMapLayers()
    assert described == []


def cut_off(dialog) -> list:
    """Texts the dialog shows only in part: labels taller or wider than their room, checkbox texts and group
    titles wider than theirs."""
    from qgis.PyQt.QtWidgets import QCheckBox, QGroupBox, QLabel

    problems = []
    for label in dialog.findChildren(QLabel):
        if not label.isVisibleTo(dialog) or not label.text():
            continue
        if label.wordWrap():
            if label.height() < label.heightForWidth(label.width()):
                problems.append(f"label '{label.text()[:40]}' is {label.height()} px high for "
                                f"{label.heightForWidth(label.width())} px of text")
        elif label.width() < label.sizeHint().width():
            problems.append(f"label '{label.text()[:40]}' is {label.width()} px wide for {label.sizeHint().width()}")
    for box in dialog.findChildren(QCheckBox):
        if box.isVisibleTo(dialog) and box.width() < box.sizeHint().width():
            problems.append(f"checkbox '{box.text()}' is {box.width()} px wide for {box.sizeHint().width()}")
    for group in dialog.findChildren(QGroupBox):
        title = group.fontMetrics().horizontalAdvance(group.title()) + 40  # frame, indicator, margins
        if group.isVisibleTo(dialog) and group.width() < title:
            problems.append(f"group '{group.title()}' is {group.width()} px wide for its title ({title} px)")
    return problems


def test_dialog_fits_a_768_pixel_screen_and_cuts_no_text_off(plugin, sample_layers):
    """With every picker set, Advanced open and a message shown, the dialog asks for at most 740 px (the form
    scrolls), can be made that small, and every label, checkbox and title is shown whole, also at its narrowest."""
    from qgis.core import QgsApplication

    plugin.show_dialog()
    dialog = plugin.dialog
    others = {"fine_reference_2": sample_layers["truth"], "coarse_reference_2": sample_layers["coarse_target"],
              "pan": sample_layers["fine_reference"]}  # any layer: what counts here is the room its line takes
    for role, layer in {**sample_layers, **others}.items():
        dialog.pickers[role].setLayer(layer)
    assert all(dialog.layer_infos[role].isVisibleTo(dialog) for role in dialog.pickers), "every layer's line shows"
    dialog.method_combo.setCurrentIndex(dialog.method_combo.findData("ganstfm"))
    dialog.train_first.setChecked(True)  # the training fields enabled
    dialog.advanced.setCollapsed(False)
    dialog.message.setText("Cannot run: the coarse target has 2 bands but the fine reference has 3 (band mismatch)")
    QgsApplication.processEvents()
    assert dialog.scroll.widget().sizeHint().height() > 740, "the form itself is taller than the screen allows"
    assert dialog.sizeHint().height() <= 740 and dialog.minimumSizeHint().height() <= 740
    for width in (dialog.sizeHint().width(), dialog.minimumWidth()):
        dialog.resize(width, dialog.sizeHint().height())
        QgsApplication.processEvents()
        assert dialog.height() <= 740
        assert cut_off(dialog) == [], width
    dialog.scroll.ensureWidgetVisible(dialog.threads)
    QgsApplication.processEvents()
    assert not dialog.threads.visibleRegion().isEmpty(), "the last fields are reached by scrolling"


def test_cpu_threads_reach_the_request_are_remembered_and_stop_at_the_machines(plugin, sample_layers, tmp_path):
    """At most the logical CPUs: more would only be reported back ('1024 CPU threads' on a 2-core machine)."""
    import os

    from stf_qgis_plugin.dialog import FusionDialog

    dialog, emitted = captured_dialog(plugin, sample_layers, tmp_path)
    assert dialog.threads.maximum() == os.cpu_count()
    dialog.threads.clear()
    assert dialog.threads.value() == dialog.threads.minimum() == 0
    assert dialog.threads.specialValueText().startswith("automatic")
    dialog.run()
    dialog.show()
    threads = min(3, os.cpu_count())
    dialog.threads.setValue(threads)
    dialog.run()
    assert [request.threads for request in emitted] == [None, threads]
    assert FusionDialog(plugin.status.engine).threads.value() == threads


def test_real_coarse_pixel_size_shows_the_fine_grids_unit_and_when_it_is_needed(plugin, sample_layers, tmp_path):
    dialog, emitted = captured_dialog(plugin, sample_layers, tmp_path)
    assert dialog.coarse_resolution_label.text() == "Real coarse pixel size (m)"
    dialog.coarse_resolution.setValue(250)
    assert dialog.coarse_resolution.text().endswith(" m")
    assert "already resampled to the fine grid" in dialog.coarse_resolution_hint.text()
    dialog.pickers["fine_reference"].setLayer(None)
    assert dialog.coarse_resolution_label.text() == "Real coarse pixel size (fine-grid units)"
    assert dialog.coarse_resolution.suffix() == ""


def test_a_picked_layer_removed_from_the_project_empties_its_picker(plugin, sample_layers, tmp_path):
    """The combo box would move on to the next layer of its list (here the fine reference as coarse target), and
    Run take it in the wrong role; instead the picker is empty and Run names the field that needs a layer."""
    from qgis.core import QgsProject

    dialog, emitted = captured_dialog(plugin, sample_layers, tmp_path)
    dialog.pickers["coarse_reference"].setLayer(sample_layers["coarse_reference"])
    QgsProject.instance().removeMapLayer(sample_layers["coarse_target"].id())
    assert dialog.pickers["coarse_target"].currentLayer() is None
    assert not dialog.layer_infos["coarse_target"].isVisibleTo(dialog)
    assert dialog.pickers["fine_reference"].currentLayer() is sample_layers["fine_reference"]
    assert dialog.pickers["coarse_reference"].currentLayer() is sample_layers["coarse_reference"]
    dialog.run()
    assert "needs a coarse target" in dialog.message.text() and emitted == []
    dialog.close()


def test_a_zipped_layer_reaches_the_request_as_its_gdal_path_and_open_options_are_refused(
        plugin, sample_layers, sample_paths, tmp_path, monkeypatch):
    """A raster QGIS reads inside a zip goes to the engine as the GDAL path inside the archive (not the archive);
    a layer QGIS opens with GDAL options (here an overview level) is refused, not fused at full resolution."""
    from qgis.core import QgsProject, QgsRasterLayer

    from helpers.layer_sources import with_overview_option, zipped

    monkeypatch.setattr(plugin.status.engine, "check", lambda request, **kw: None)  # the engine's rules: not tested
    dialog, emitted = captured_dialog(plugin, sample_layers, tmp_path, method="delta")
    inside = zipped(sample_paths["coarse_target"], tmp_path)
    overview = QgsRasterLayer(with_overview_option(sample_paths["coarse_target"], tmp_path), "overview")
    layers = [QgsRasterLayer(inside, "zipped"), overview]
    assert all(layer.isValid() for layer in layers) and overview.width() == 250
    QgsProject.instance().addMapLayers(layers)
    dialog.pickers["coarse_target"].setLayer(layers[0])
    assert dialog.layer_infos["coarse_target"].text().startswith("500×500 px")
    dialog.run()
    assert dialog.message.text() == "" and emitted[0].coarse_target == inside

    dialog.pickers["coarse_target"].setLayer(overview)
    assert "GDAL options (OVERVIEW_LEVEL=0)" in dialog.layer_infos["coarse_target"].text()
    dialog.run()
    assert dialog.message.text() == ("Cannot run: the coarse target layer 'overview' is opened with GDAL options "
                                     "(OVERVIEW_LEVEL=0) the fusion cannot apply; save it as GeoTIFF first")
    assert len(emitted) == 1
    dialog.close()


@pytest.fixture
def forget_coarse_resolution():
    """The dialog remembers the real coarse pixel size: forget it afterwards, so other tests start 'from the raster'."""
    from qgis.core import QgsSettings

    from stf_qgis_plugin.dialog import SETTINGS

    yield
    QgsSettings().remove(SETTINGS + "coarse_resolution")
    QgsSettings().remove(SETTINGS + "layer")


def test_real_coarse_pixel_size_is_remembered_with_its_coarse_raster(plugin, sample_layers, tmp_path,
                                                                     forget_coarse_resolution):
    """Forgotten, the next session fuses resampled coarse rasters at the fine grid's size: a worse result, silently.
    It comes back only with the same coarse target: another raster may be at its own pixel size, or another's."""
    from qgis.core import QgsSettings

    from stf_qgis_plugin.dialog import SETTINGS, FusionDialog

    dialog, emitted = captured_dialog(plugin, sample_layers, tmp_path)
    dialog.coarse_resolution.setValue(250)
    dialog.run()
    assert [request.coarse_resolution for request in emitted] == [250]
    assert FusionDialog(plugin.status.engine).coarse_resolution.value() == 250
    other = sample_layers["coarse_reference"].source()
    QgsSettings().setValue(SETTINGS + "layer/coarse_target", other)  # as after a run on another coarse raster
    assert FusionDialog(plugin.status.engine).coarse_resolution.value() == 0


@pytest.fixture
def forget_series():
    """A run remembers the Series fields too: forget them afterwards, so Series tests start with none."""
    from qgis.core import QgsSettings

    from stf_qgis_plugin.dialog import SETTINGS

    yield
    QgsSettings().remove(SETTINGS + "series")


def test_a_typed_output_folder_is_taken_from_the_project_and_tilde_is_the_home_folder(plugin, sample_layers, tmp_path,
                                                                                       monkeypatch, forget_series):
    """QGIS's working directory is wherever QGIS started: 'results' landed there, and '~/x' made a folder named '~'.
    Without a saved project to take a relative folder from, the dialog asks for a full path (in Series mode too)."""
    import os

    from qgis.core import QgsProject

    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    dialog, emitted = captured_dialog(plugin, sample_layers, tmp_path)
    dialog.output_folder.setFilePath("results")
    dialog.run()
    assert "'results' (Output → 'Folder') is not a full path" in dialog.message.text() and emitted == []
    dialog.output_folder.setFilePath("~/stf_results")
    dialog.run()
    assert os.path.dirname(emitted[-1].output) == str(home / "stf_results")
    dialog.mode_combo.setCurrentIndex(dialog.mode_combo.findData("series"))
    dialog.series_path.setFilePath(str(tmp_path / "series.csv"))
    dialog.series_output.setFilePath("fused")
    dialog.run()
    assert "'fused' (Series → 'Output folder') is not a full path" in dialog.message.text() and len(emitted) == 1
    project = QgsProject.instance()
    project.setFileName(str(tmp_path / "work" / "map.qgz"))
    try:
        assert dialog.build_series_request().output_dir == str(tmp_path / "work" / "fused")
        dialog.mode_combo.setCurrentIndex(dialog.mode_combo.findData("single"))
        dialog.output_folder.setFilePath("results")
        dialog.run()
    finally:
        project.setFileName("")
    assert os.path.dirname(emitted[-1].output) == str(tmp_path / "work" / "results")
    assert emitted[-1].error_maps_dir.startswith(str(tmp_path / "work" / "results" / "fused_"))


def test_every_field_says_what_it_is_for_and_each_layer_its_date(plugin):
    """Swapping the coarse target and the coarse reference ran silently and 39% worse: each picker and its label
    say which date the layer is at, as Processing's parameters do; no tooltip names a command-line flag."""
    from qgis.PyQt.QtWidgets import QWidget

    plugin.show_dialog()
    dialog = plugin.dialog
    fields = [dialog.method_combo, dialog.device_combo, dialog.output_folder, dialog.write_error_maps,
              dialog.uncertainty, dialog.tile, dialog.halo, dialog.batch, dialog.threads, dialog.coarse_resolution,
              dialog.weights, dialog.series_path, dialog.series_kind, dialog.whole_series, dialog.series_output,
              *dialog.pickers.values()]
    assert [field for field in fields if not field.toolTip()] == []
    dates = {"coarse_target": "Coarse image at the target date", "fine_reference": "Fine image at a reference date",
             "coarse_reference": "Coarse image at the fine reference's date", "pan": "at the target date",
             "truth": "Fine image at the target date", "coarse_reference_2": "at the second fine reference's date"}
    for role, date in dates.items():
        assert date in dialog.pickers[role].toolTip() and date in dialog.role_labels[role].toolTip(), role
    assert not [widget.toolTip() for widget in dialog.findChildren(QWidget) if "--" in widget.toolTip()]


def test_runs_started_within_one_second_get_outputs_of_their_own(plugin, sample_layers, tmp_path, monkeypatch):
    """The output is named to the second: a second run in the same second got the first's name and failed on its
    lock. A name is taken when anything in the folder bears it (here the lock of a run elsewhere) or a run from this
    dialog was given it (its lock may not be there yet)."""
    from types import SimpleNamespace

    import stf_qgis_plugin.dialog as dialog_module

    monkeypatch.setattr(dialog_module, "time", SimpleNamespace(strftime=lambda pattern: "20260101_120000"))
    dialog, emitted = captured_dialog(plugin, sample_layers, tmp_path, "delta")
    (tmp_path / ".fused_delta_20260101_120000.tif.lock").write_text("")
    dialog.run()
    dialog.run()
    assert [request.output for request in emitted] == [
        str(tmp_path / "fused_delta_20260101_120000_2.tif"), str(tmp_path / "fused_delta_20260101_120000_3.tif")]
    assert emitted[1].error_maps_dir == str(tmp_path / "fused_delta_20260101_120000_3_error_maps")


@pytest.mark.parametrize("change", ["picker", "spin box", "text", "checkbox", "folder", "combo box", "shown again"])
def test_a_cannot_run_line_goes_when_a_field_changes_or_the_dialog_is_shown_again(plugin, sample_layers, tmp_path,
                                                                                  change):
    """It spoke of the form as it was: left there, it says the fixed form cannot run."""
    dialog, emitted = captured_dialog(plugin, sample_layers, tmp_path, "delta")
    dialog.pickers["coarse_target"].setLayer(None)
    dialog.run()
    assert dialog.message.text().startswith("Cannot run") and emitted == []
    {
        "picker": lambda: dialog.pickers["coarse_target"].setLayer(sample_layers["coarse_target"]),
        "spin box": lambda: dialog.tile.setValue(dialog.tile.value() + 64),
        "text": lambda: dialog.method_options.setText("window=11"),
        "checkbox": dialog.write_error_maps.toggle,
        "folder": lambda: dialog.output_folder.setFilePath(str(tmp_path / "elsewhere")),
        "combo box": lambda: dialog.device_combo.setCurrentText("cpu"),
        "shown again": lambda: (dialog.hide(), dialog.show()),
    }[change]()
    assert dialog.message.text() == ""


def test_the_narrowest_dialog_shows_the_whole_form(plugin):
    """The minimum width follows the form's, Advanced open too (at 620 px the form scrolled sideways, every field cut
    off on the right, the Halo's 'auto' out of sight); the hint under 'Real coarse pixel size' has its own full-width
    row (as a field it could lose its last line)."""
    from qgis.core import QgsApplication
    from qgis.PyQt.QtWidgets import QFormLayout

    plugin.show_dialog()
    dialog = plugin.dialog
    for collapsed in (True, False):
        dialog.advanced.setCollapsed(collapsed)
        QgsApplication.processEvents()
        dialog.resize(dialog.minimumWidth(), dialog.height())
        QgsApplication.processEvents()
        assert dialog.scroll.horizontalScrollBar().maximum() == 0, collapsed
    assert dialog.halo.width() >= dialog.halo.minimumSizeHint().width()
    _, role = dialog.advanced_form.getWidgetPosition(dialog.coarse_resolution_hint)
    assert role == QFormLayout.SpanningRole


def test_the_output_folder_is_remembered_with_the_project_it_was_chosen_in(plugin, sample_layers, tmp_path):
    """Another saved project's results go beside it (its stf_output), not into the folder of the project before;
    an unsaved project takes the folder last run into."""
    from qgis.core import QgsProject

    from stf_qgis_plugin.dialog import FusionDialog

    engine = plugin.status.engine
    project = QgsProject.instance()
    dialog, emitted = captured_dialog(plugin, sample_layers, tmp_path)
    dialog.run()
    project.setFileName(str(tmp_path / "projB" / "analysis.qgz"))
    try:
        assert FusionDialog(engine).output_folder.filePath() == str(tmp_path / "projB" / "stf_output")
        dialog.show()  # the plugin's dialog, opened again in the other project
        assert dialog.output_folder.filePath() == str(tmp_path / "projB" / "stf_output")
        dialog.output_folder.setFilePath(str(tmp_path / "b_results"))
        dialog.run()
        assert FusionDialog(engine).output_folder.filePath() == str(tmp_path / "b_results")
    finally:
        project.setFileName("")
    assert FusionDialog(engine).output_folder.filePath() == str(tmp_path / "b_results")
    assert len(emitted) == 2


def test_a_raster_file_browsed_to_beside_a_picker_is_added_to_the_project_and_picked(plugin, qgis_new_project,
                                                                                     sample_paths, tmp_path,
                                                                                     monkeypatch):
    """The pickers list the project's layers only: an analyst with files on disk had to close the dialog to add them."""
    from qgis.core import QgsProject
    from qgis.PyQt.QtWidgets import QFileDialog

    dialog, emitted = capture_runs(plugin, keep=lambda request, training: request)
    chosen = [sample_paths["coarse_target"], sample_paths["fine_reference"], str(tmp_path / "notes.tif")]
    (tmp_path / "notes.tif").write_text("not a raster")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *args: (chosen.pop(0), ""))
    dialog.browse_buttons["coarse_target"].click()
    dialog.browse_buttons["fine_reference"].click()
    assert dialog.layer_path("coarse_target") == sample_paths["coarse_target"]
    assert dialog.layer_path("fine_reference") == sample_paths["fine_reference"]
    assert len(QgsProject.instance().mapLayers()) == 2
    dialog.browse_buttons["truth"].click()
    assert dialog.message.text() == f"{tmp_path / 'notes.tif'} is not a raster QGIS can open; pick another file"
    assert len(QgsProject.instance().mapLayers()) == 2 and dialog.pickers["truth"].currentLayer() is None
    dialog.method_combo.setCurrentIndex(dialog.method_combo.findData("cubic"))
    assert not dialog.browse_buttons["coarse_reference"].isEnabled()  # a role the method does not use
