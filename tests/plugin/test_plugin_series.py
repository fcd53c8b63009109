"""Series in QGIS on three real Kranj dates (Landsat on days 068 and 093 with their gaps, MODIS on 068, 077 and
093): `stf:fuse_series`, the dialog's Series mode, and a series task's dated layers for the Temporal Controller."""
from __future__ import annotations

import dataclasses
import re
import shutil

import pytest

pytest.importorskip("qgis")

from conftest import run_task  # noqa: E402
from helpers.paths import TEST_DATA  # noqa: E402
from test_plugin_gui import capture_runs, cut_off  # noqa: E402
from test_plugin_processing import RecordingFeedback  # noqa: E402
from test_plugin_task import cancel_after_first_batch  # noqa: E402

KRANJ = TEST_DATA / "kranj"
DATES = ("2020-03-08", "2020-03-17", "2020-04-02")
SCALES = "fine=1e-4"
"""The Landsat files hold reflectance ×10000; MODIS holds 0–1 reflectance."""


@pytest.fixture
def series_csv(tmp_path):
    """date,coarse,fine with absolute paths; 2020-03-17 has MODIS only (the date the references predict)."""
    rows = [
        (DATES[0], KRANJ / "modis" / "modis_2020068.tif", KRANJ / "landsat_unfilled" / "landsat_2020068.tif"),
        (DATES[1], KRANJ / "modis" / "modis_2020077.tif", ""),
        (DATES[2], KRANJ / "modis" / "modis_2020093.tif", KRANJ / "landsat_unfilled" / "landsat_2020093.tif"),
    ]
    path = tmp_path / "kranj.csv"
    path.write_text("date,coarse,fine\n" + "".join(f"{d},{c},{f}\n" for d, c, f in rows))
    return str(path)


@pytest.fixture
def series_settings():
    """The dialog remembers its mode and series fields: forget them afterwards, so other tests open one date."""
    from qgis.core import QgsSettings

    from stf_qgis_plugin.dialog import SETTINGS

    yield
    for key in ("mode", "series"):
        QgsSettings().remove(SETTINGS + key)


def series_parameters(series, output, **changes):
    parameters = {"SERIES": series, "METHOD": "delta", "COARSE_RESOLUTION": 480, "SCALES": SCALES, "DEVICE": "cpu",
                  "OUTPUT_FOLDER": str(output)}
    parameters.update(changes)
    return parameters


def test_fuse_series_writes_every_date_logs_its_table_and_resumes(plugin, series_csv, tmp_path):
    import processing

    out = tmp_path / "out"
    feedback = RecordingFeedback()
    result = processing.run("stf:fuse_series", series_parameters(series_csv, out), feedback=feedback)
    for date in DATES:
        assert (out / f"fused_{date}.tif").is_file() and (out / f"reliability_{date}.tif").is_file()
    assert (result["FUSED_DATES"], result["KEPT_DATES"], result["SKIPPED_DATES"]) == (3, 0, 0)
    assert (result["OUTPUT_FOLDER"], result["MANIFEST"], result["STACK"]) == (
        str(out), str(out / "series.json"), str(out / "series.vrt"))
    header = next(line for line in feedback.lines if line.startswith("date "))
    assert header.split() == ["date", "references", "method", "expected", "error", "status"]
    [row] = [line for line in feedback.lines if line.startswith(DATES[1])]
    assert re.match(r"2020-03-17\s+2020-03-08, 2020-04-02\s+delta\s+0\.\d+\s+fused$", row), row
    assert any(line.startswith("series out: 3 date(s) fused, 0 kept, 0 skipped") for line in feedback.lines)

    again = processing.run("stf:fuse_series", series_parameters(series_csv, out))  # resumes: nothing left to do
    assert (again["FUSED_DATES"], again["KEPT_DATES"], again["SKIPPED_DATES"]) == (0, 3, 0)


def dated_folder(tmp_path):
    """Kranj as a folder of rasters named with year and day of year: MODIS 068, 077 and 093, Landsat 068 and 093."""
    folder = tmp_path / "dated"
    folder.mkdir()
    for day in ("068", "077", "093"):
        shutil.copy(KRANJ / "modis" / f"modis_2020{day}.tif", folder / f"2020{day}_coarse.tif")
    for day in ("068", "093"):
        shutil.copy(KRANJ / "landsat_unfilled" / f"landsat_2020{day}.tif", folder / f"2020{day}_fine.tif")
    return folder


def test_dates_and_max_gap_reach_the_engine_and_a_folder_is_a_series(plugin, tmp_path):
    """A folder of rasters named with year and day of year; from day 076 with a 10-day gap, 2020-03-17 has its
    reference (9 days before) and 2020-04-02 none (25 days). A date that is not one is refused naming its
    parameter."""
    import processing
    from qgis.core import QgsProcessingException

    parameters = series_parameters(None, tmp_path / "out", SERIES_FOLDER=str(dated_folder(tmp_path)),
                                   DATE_FROM="2020076", MAX_GAP=10)
    del parameters["SERIES"]
    result = processing.run("stf:fuse_series", parameters)
    assert (result["FUSED_DATES"], result["KEPT_DATES"], result["SKIPPED_DATES"]) == (1, 0, 1)
    assert sorted(p.name for p in (tmp_path / "out").glob("*.tif")) == [
        "fused_2020-03-17.tif", "reliability_2020-03-17.tif"]
    with pytest.raises(QgsProcessingException, match=r"^'Last date[^']*' \(DATE_TO\): '2020-04-31' is not a date"):
        processing.run("stf:fuse_series", {**parameters, "DATE_TO": "2020-04-31", "OUTPUT_FOLDER": str(tmp_path / "x")})
    assert not (tmp_path / "x").exists()


def test_train_takes_a_series_folder_or_a_csv_but_not_both(plugin, series_csv, tmp_path):
    import processing
    from qgis.core import QgsProcessingException

    parameters = {"MODEL": "ganstfm", "MODE": "series", "SERIES_FOLDER": str(dated_folder(tmp_path)), "EPOCHS": 1,
                  "PATCH": 16, "BATCH": 2, "STEPS": 1, "COARSE_RESOLUTION": 480, "DEVICE": "cpu",
                  "OUTPUT": str(tmp_path / "series.pt")}
    trained = processing.run("stf:train", parameters)
    assert trained["OUTPUT"] == str(tmp_path / "series.pt") and trained["BEST_EPOCH"] == 1
    with pytest.raises(QgsProcessingException, match="SERIES .* or as SERIES_FOLDER, not both"):
        processing.run("stf:train", {**parameters, "SERIES": series_csv, "OUTPUT": str(tmp_path / "both.pt")})
    assert not (tmp_path / "both.pt").exists()


@pytest.mark.parametrize("key, text, parse", [
    ("MASK_RULES", "fine=clouds", lambda engine, text: engine.parse_mask_rules(text)),
    ("SCALES", "fine=abc", lambda engine, text: engine.parse_scales(text)),
    ("OPTIONS", "window", lambda engine, text: engine.parse_options("delta", text)),
])
def test_bad_text_parameters_are_refused_before_the_run_naming_them(plugin, series_csv, tmp_path, key, text, parse):
    """The engine's one line, after the parameter: from checkParameterValues, so nothing runs."""
    import processing
    from qgis.core import QgsApplication, QgsProcessingContext, QgsProcessingException

    engine = plugin.status.engine
    with pytest.raises(engine.StfError) as expected:
        parse(engine, text)
    said = f"({key}): {expected.value}"
    assert "\n" not in said
    parameters = series_parameters(series_csv, tmp_path / "out", **{key: text})
    algorithm = QgsApplication.processingRegistry().algorithmById("stf:fuse_series")
    ok, message = algorithm.checkParameterValues(parameters, QgsProcessingContext())
    assert not ok and message.startswith("'") and message.endswith(said)
    with pytest.raises(QgsProcessingException) as raised:
        processing.run("stf:fuse_series", parameters)
    assert str(raised.value).splitlines()[-1] == message
    assert not (tmp_path / "out").exists()


def test_a_series_is_needed(plugin, tmp_path):
    import processing
    from qgis.core import QgsProcessingException

    with pytest.raises(QgsProcessingException, match="give the series"):
        processing.run("stf:fuse_series", series_parameters("", tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def series_dialog(plugin):
    """The plugin's dialog in Series mode, its Run captured instead of started: (dialog, emitted)."""
    dialog, emitted = capture_runs(plugin)
    dialog.mode_combo.setCurrentIndex(dialog.mode_combo.findData("series"))
    return dialog, emitted


def test_series_mode_lists_the_dates_and_emits_a_series_request(plugin, series_settings, series_csv, tmp_path):
    from qgis.PyQt.QtCore import QDate

    from stf_qgis_plugin.dialog import FusionDialog

    engine = plugin.status.engine
    dialog, emitted = series_dialog(plugin)
    assert dialog.series_box.isVisibleTo(dialog) and not dialog.inputs_box.isVisibleTo(dialog)
    assert not dialog.weights.isVisibleTo(dialog) and not dialog.halo.isVisibleTo(dialog)
    assert dialog.method_combo.isVisibleTo(dialog) and dialog.advanced.isVisibleTo(dialog)
    dialog.whole_series.setChecked(True)
    dialog.max_gap.clear()
    assert dialog.max_gap.value() == engine.DEFAULT_MAX_GAP == 60
    dialog.series_path.setFilePath(series_csv)
    assert dialog.series_plan.text() == (
        "3 dates (2020-03-08 to 2020-04-02), all with references; 2 with a fine image of their own (kept where "
        "clear, scored against it)")
    assert "2020-03-17: 2020-03-08, 2020-04-02" in dialog.series_plan.toolTip().splitlines()
    assert (dialog.date_from.date(), dialog.date_to.date()) == (QDate(2020, 3, 8), QDate(2020, 4, 2))
    assert dialog.series_output.filePath().endswith("series_kranj")
    dialog.max_gap.setValue(10)
    assert dialog.series_plan.text().startswith(
        "3 dates (2020-03-08 to 2020-04-02): 1 with references, 2 skipped (2020-03-08, 2020-04-02: no other fine "
        "image within 10 days)")  # their own fine images are no references for them: not 'kept where clear'
    assert "2020-03-08: skipped, no other fine image within the gap" in dialog.series_plan.toolTip().splitlines()

    dialog.method_combo.setCurrentIndex(dialog.method_combo.findData("delta"))
    dialog.whole_series.setChecked(False)
    dialog.date_from.setDate(QDate(2020, 3, 10))
    assert dialog.series_plan.text().startswith("2 dates (2020-03-17 to 2020-04-02): 1 with references")
    dialog.mask_combos["fine"].setCurrentIndex(dialog.mask_combos["fine"].findData("landsat-qa"))
    dialog.series_scales.setText(SCALES)
    dialog.series_output.setFilePath(str(tmp_path / "out"))
    dialog.coarse_resolution.setValue(480)
    dialog.overwrite.setChecked(True)
    dialog.run()
    assert dialog.message.text() == ""
    [(request, training)] = emitted
    assert isinstance(request, engine.SeriesRequest) and training is None
    assert (request.series, request.output_dir, request.method) == (series_csv, str(tmp_path / "out"), "delta")
    assert (request.date_from, request.date_to, request.max_gap) == ("2020-03-10", "2020-04-02", 10)
    assert request.mask_rules == {"fine": "landsat-qa"} and request.scales == engine.parse_scales(SCALES)
    assert (request.coarse_resolution, request.overwrite) == (480, True)

    again = FusionDialog(engine)
    assert again.series_mode and again.series_path.filePath() == series_csv
    assert again.mask_combos["fine"].currentData() == "landsat-qa" and again.mask_combos["coarse"].currentData() is None
    assert again.series_plan.text().startswith("2 dates (2020-03-17 to 2020-04-02)")


def test_series_mode_shows_the_engines_line_and_refuses_what_cannot_run(plugin, series_settings, series_csv,
                                                                        tmp_path):
    from qgis.PyQt.QtCore import QDate

    dialog, emitted = series_dialog(plugin)
    dialog.series_path.setFilePath(str(tmp_path / "absent.csv"))
    assert dialog.series_plan.text() == f"series not found: {tmp_path / 'absent.csv'}"
    dialog.run()
    assert dialog.message.text() == f"Cannot run: series not found: {tmp_path / 'absent.csv'}"

    dialog.series_path.setFilePath(series_csv)
    dialog.whole_series.setChecked(False)
    dialog.date_from.setDate(QDate(2020, 3, 20))
    dialog.date_to.setDate(QDate(2020, 4, 30))
    dialog.max_gap.setValue(10)
    assert dialog.series_plan.text().startswith("1 date (2020-04-02): 0 with references, 1 skipped")
    dialog.run()
    assert dialog.message.text() == (
        "Cannot run: no date of the series has a fine reference within 10 days; raise Series → 'Max gap'")
    dialog.max_gap.setValue(60)
    dialog.series_scales.setText("fine=zero")
    dialog.run()
    assert dialog.message.text().startswith("Cannot run: scale fine=zero") and emitted == []


def test_series_mode_cuts_no_text_off(plugin, series_settings, series_csv):
    from qgis.core import QgsApplication

    dialog, _ = series_dialog(plugin)
    dialog.series_path.setFilePath(series_csv)
    dialog.message.setText("Cannot run: no date of the series has a fine reference within 10 days")
    dialog.show()
    for width in (dialog.sizeHint().width(), dialog.minimumWidth()):
        dialog.resize(width, dialog.sizeHint().height())
        QgsApplication.processEvents()
        assert dialog.height() <= 740 and cut_off(dialog) == [], width
    dialog.close()


def delta_series(engine, series_csv, output):
    """The Kranj series fused by delta on the CPU into `output`."""
    return engine.SeriesRequest(series=series_csv, output_dir=str(output), method="delta", coarse_resolution=480,
                                scales=engine.parse_scales(SCALES), device="cpu")


def series_groups():
    from qgis.core import QgsProject

    return [g for g in QgsProject.instance().layerTreeRoot().children() if g.name().startswith("STF series ")]


def test_a_series_task_loads_dated_layers_for_the_temporal_controller(plugin, qgis_new_project, series_csv, tmp_path,
                                                                      iface):
    from qgis.core import (
        Qgis,
        QgsDateTimeRange,
        QgsLayerTreeLayer,
        QgsMultiBandColorRenderer,
        QgsRasterLayerTemporalProperties,
        QgsSingleBandPseudoColorRenderer,
    )
    from qgis.PyQt.QtCore import QDate, QDateTime, QTime

    engine = plugin.status.engine
    request = delta_series(engine, series_csv, tmp_path / "kranj")
    assert run_task(plugin, request) == "completed", iface.messageBar().get_messages(Qgis.Critical)[-1:]
    [group] = series_groups()
    assert group.name() == "STF series kranj" and group.isVisible()
    fused = [node for node in group.children() if isinstance(node, QgsLayerTreeLayer)]
    [maps] = [node for node in group.children() if not isinstance(node, QgsLayerTreeLayer)]
    assert [node.layer().name() for node in fused] == [f"fused {date} (delta)" for date in DATES]
    assert maps.name() == "reliability" and not maps.itemVisibilityChecked()
    assert [node.layer().source() for node in maps.findLayers()] == [
        str(tmp_path / "kranj" / f"reliability_{date}.tif") for date in DATES]

    for date, node in zip(DATES * 2, fused + maps.findLayers()):
        properties = node.layer().temporalProperties()
        assert properties.isActive() and properties.mode() == QgsRasterLayerTemporalProperties.ModeFixedTemporalRange
        day = QDate.fromString(date, "yyyy-MM-dd")
        span = properties.fixedTemporalRange()
        assert span.begin().date() == span.end().date() == day, (date, span.begin(), span.end())
        noon = QgsDateTimeRange(QDateTime(day, QTime(12, 0)), QDateTime(day, QTime(13, 0)))
        next_day = QgsDateTimeRange(QDateTime(day.addDays(1), QTime(12, 0)), QDateTime(day.addDays(1), QTime(13, 0)))
        assert properties.isVisibleInTemporalRange(noon) and not properties.isVisibleInTemporalRange(next_day)

    renderers = [node.layer().renderer() for node in fused]
    assert all(isinstance(renderer, QgsMultiBandColorRenderer) for renderer in renderers)
    stretches = {(r.redContrastEnhancement().minimumValue(), r.redContrastEnhancement().maximumValue())
                 for r in renderers}
    assert len(stretches) == 1 and 0 < min(stretches)[0] < min(stretches)[1] < 1, "one stretch for every date"
    ramps = {(layer.renderer().classificationMin(), layer.renderer().classificationMax())
             for layer in (node.layer() for node in maps.findLayers())}
    assert all(isinstance(node.layer().renderer(), QgsSingleBandPseudoColorRenderer) for node in maps.findLayers())
    assert len(ramps) == 1 and list(ramps)[0][1] > 0, "one colour ramp for every date"
    assert maps.findLayers()[0].layer().name().startswith(f"reliability {DATES[0]}")
    message = iface.messageBar().get_messages(Qgis.Success)[-1]
    assert "series kranj: 3 date(s) fused, 0 kept, 0 skipped" in message and "Temporal Controller" in message


def test_a_rerun_into_the_same_folder_replaces_the_earlier_series_group(plugin, qgis_new_project, series_csv,
                                                                         tmp_path, iface):
    from qgis.core import Qgis, QgsProject, QgsRasterLayer

    engine = plugin.status.engine
    output = tmp_path / "kranj"
    request = delta_series(engine, series_csv, output)
    assert run_task(plugin, request) == "completed", iface.messageBar().get_messages(Qgis.Critical)[-1:]
    own = QgsRasterLayer(str(output / f"fused_{DATES[1]}.tif"), "my own copy")  # a layer outside any result group
    QgsProject.instance().addMapLayer(own)
    rerun = dataclasses.replace(request, overwrite=True)
    assert run_task(plugin, rerun) == "completed", iface.messageBar().get_messages(Qgis.Critical)[-1:]
    [group] = series_groups()
    assert [node.layer().name() for node in group.findLayers()[:3]] == [f"fused {date} (delta)" for date in DATES]
    assert [node.layer().source() for node in group.findLayers()[3:]] == [
        str(output / f"reliability_{date}.tif") for date in DATES]
    assert own.isValid() and QgsProject.instance().mapLayer(own.id()) is own
    assert len(QgsProject.instance().mapLayers()) == 2 * len(DATES) + 1


def test_a_failed_series_is_one_line_and_adds_nothing(plugin, qgis_new_project, tmp_path, iface):
    from qgis.core import Qgis

    engine = plugin.status.engine
    request = engine.SeriesRequest(series=str(tmp_path / "absent.csv"), output_dir=str(tmp_path / "out"))
    assert run_task(plugin, request) == "terminated"
    message = iface.messageBar().get_messages(Qgis.Critical)[-1]
    assert message.endswith(f"not run: series not found: {tmp_path / 'absent.csv'}") and "\n" not in message
    assert series_groups() == [] and not (tmp_path / "out").exists()


def test_a_series_that_cannot_run_into_the_folder_does_not_say_to_run_it_again(plugin, qgis_new_project, series_csv,
                                                                               tmp_path, iface):
    """Another method into a folder of delta's dates fails the same way again: tick Overwrite (a checkbox) or choose
    another folder; running again would not help."""
    from qgis.core import Qgis

    engine = plugin.status.engine
    request = delta_series(engine, series_csv, tmp_path / "kranj")
    assert run_task(plugin, request) == "completed", iface.messageBar().get_messages(Qgis.Critical)[-1:]
    assert run_task(plugin, dataclasses.replace(request, method="starfm")) == "terminated"
    message = iface.messageBar().get_messages(Qgis.Critical)[-1]
    assert message.endswith("; tick Series → 'Overwrite the dates already fused' to fuse them again with these, or "
                            "choose another output folder"), message


@pytest.mark.parametrize("overwrite, go_on", [(False, "run again"),
                                              (True, "untick Series → 'Overwrite the dates already fused' and run "
                                                     "again")])
def test_a_series_stopped_midway_says_what_it_kept_and_how_to_go_on(plugin, qgis_new_project, series_csv, tmp_path,
                                                                    iface, monkeypatch, overwrite, go_on):
    """The engine's account of the dates a run finished before it stopped (a failure midway here) follows the
    reason, in the dialog's words."""
    from qgis.core import Qgis
    from stf_engine.series.request import KeptDates

    engine = plugin.status.engine
    out = str(tmp_path / "kranj")

    def stops(request, **kwargs):
        stop = engine.StfError("cannot write fused_2020-03-17.tif: no space left on the device")
        stop.left_behind = KeptDates(out, (DATES[0],), DATES[1:], overwrite)
        raise stop

    monkeypatch.setattr(engine, "fuse_series", stops)
    assert run_task(plugin, delta_series(engine, series_csv, out)) == "terminated"
    assert iface.messageBar().get_messages(Qgis.Critical)[-1].endswith(
        f"not run: cannot write fused_2020-03-17.tif: no space left on the device; the finished date {DATES[0]} is "
        f"kept in {out} (see series.json), nothing partial was left; {go_on} to fuse the 2 unfinished")


def test_cancel_stops_the_series_and_removes_the_folder_it_left_empty(plugin, qgis_new_project, series_csv,
                                                                     tmp_path, iface):
    from qgis.core import Qgis

    engine = plugin.status.engine
    out = tmp_path / "cancelled"
    request = delta_series(engine, series_csv, out)
    assert run_task(plugin, request, started=cancel_after_first_batch) == "terminated"
    assert series_groups() == [] and not out.exists()
    assert iface.messageBar().get_messages(Qgis.Warning)[-1].endswith("not run: cancelled")


def test_tile_batch_and_date_batch_reach_the_engine(plugin, series_csv, tmp_path, monkeypatch):
    import processing

    engine, seen = plugin.status.engine, []
    fuse_series = engine.fuse_series
    monkeypatch.setattr(engine, "fuse_series", lambda request, **kw: seen.append(request) or fuse_series(request, **kw))
    result = processing.run("stf:fuse_series", series_parameters(series_csv, tmp_path / "out", METHOD="starfm",
                                                                 TILE_SIZE=16, BATCH=3, DATE_BATCH=2))
    assert result["FUSED_DATES"] == 3 and [(r.tile, r.batch, r.date_batch) for r in seen] == [(16, 3, 2)]
    default = processing.run("stf:fuse_series", series_parameters(series_csv, tmp_path / "again"))
    assert default["FUSED_DATES"] == 3
    assert (seen[-1].tile, seen[-1].batch, seen[-1].date_batch) == (engine.DEFAULT_TILE, engine.DEFAULT_BATCH, None)
