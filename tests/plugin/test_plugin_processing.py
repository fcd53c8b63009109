"""`stf:fuse` from processing.run (method by name or index), in batch runs and inside a Graphical Modeler model."""
from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio

pytest.importorskip("qgis")

from conftest import write_bands  # noqa: E402
from helpers.clusters import loopback_cluster  # noqa: E402
from helpers.option_cases import BAD_OPTIONS  # noqa: E402
from helpers.rasters import pixels  # noqa: E402


def fuse_parameters(sample_paths, output, **changes):
    parameters = {
        "COARSE_TARGET": sample_paths["coarse_target"],
        "FINE_REFERENCE": sample_paths["fine_reference"],
        "COARSE_REFERENCE": sample_paths["coarse_reference"],
        "METHOD": "delta",
        "DEVICE": "cpu",
        "TILE_SIZE": 256,
        "OUTPUT": str(output),
    }
    parameters.update(changes)
    return parameters


def read_tags(path):
    import rasterio

    with rasterio.open(path) as dataset:
        return dataset.tags(), dataset.count, dataset.width


def test_processing_run_writes_the_output_and_error_maps(plugin, sample_paths, tmp_path):
    import processing

    result = processing.run(
        "stf:fuse", fuse_parameters(sample_paths, tmp_path / "fused.tif", ERROR_MAPS=str(tmp_path / "maps"), HALO=3)
    )
    assert result["OUTPUT"] == str(tmp_path / "fused.tif")
    tags, count, width = read_tags(result["OUTPUT"])
    assert (tags["STF_METHOD"], tags["STF_HALO"], count, width) == ("delta", "3", 3, 500)
    written = {p.name for p in (tmp_path / "maps").iterdir()}
    assert {"coarse_residual.tif", "coarse_residual_rms.tif"} <= written
    assert not [name for name in written if "partial" in name]


def test_with_a_truth_the_rmse_against_it_is_an_output_for_models(plugin, sample_paths, tmp_path):
    """The engine's score against the truth, as a number a Graphical Modeler model can use; NULL without a truth."""
    import processing

    maps = tmp_path / "maps"
    result = processing.run("stf:fuse", fuse_parameters(sample_paths, tmp_path / "fused.tif", ERROR_MAPS=str(maps),
                                                        TRUTH=sample_paths["truth"]))
    with rasterio.open(maps / "abs_error.tif") as errors:
        expected = float(np.sqrt(np.nanmean(errors.read().astype("float64") ** 2)))
    assert result["TRUTH_RMSE"] == pytest.approx(expected, rel=1e-5)
    assert processing.run("stf:fuse", fuse_parameters(sample_paths, tmp_path / "plain.tif"))["TRUTH_RMSE"] is None


def test_method_by_index_and_engine_errors_as_processing_errors(plugin, sample_paths, tmp_path):
    import processing
    from qgis.core import QgsProcessingException

    methods = list(plugin.status.engine.list_methods())
    result = processing.run("stf:fuse", fuse_parameters(sample_paths, tmp_path / "c.tif", METHOD=methods.index("cubic")))
    assert read_tags(result["OUTPUT"])[0]["STF_METHOD"] == "cubic"
    with pytest.raises(QgsProcessingException, match="unknown|Incorrect parameter value for METHOD"):
        processing.run("stf:fuse", fuse_parameters(sample_paths, tmp_path / "x.tif", METHOD="nonsense"))
    write_bands(sample_paths["coarse_target"], tmp_path / "two.tif", [1, 2])
    with pytest.raises(QgsProcessingException, match="band mismatch: the coarse target has 2 bands"):
        two_bands = fuse_parameters(sample_paths, tmp_path / "y.tif", COARSE_TARGET=str(tmp_path / "two.tif"))
        processing.run("stf:fuse", two_bands)
    with pytest.raises(QgsProcessingException, match=r"set 'Error maps folder' \(ERROR_MAPS\)"):
        processing.run("stf:fuse", fuse_parameters(sample_paths, tmp_path / "z.tif", TRUTH=sample_paths["truth"]))
    assert not (tmp_path / "x.tif").exists() and not (tmp_path / "y.tif").exists() and not (tmp_path / "z.tif").exists()


def test_feedback_cancel_stops_the_run_and_leaves_nothing(plugin, sample_paths, tmp_path):
    import processing
    from qgis.core import QgsProcessingException, QgsProcessingFeedback

    feedback = QgsProcessingFeedback()
    feedback.progressChanged.connect(lambda value: feedback.cancel() if value > 0 else None)
    parameters = fuse_parameters(sample_paths, tmp_path / "fused.tif", METHOD="starfm", TILE_SIZE=64, BATCH=1)
    with pytest.raises(QgsProcessingException, match="cancelled"):
        processing.run("stf:fuse", parameters, feedback=feedback)
    assert list(tmp_path.iterdir()) == []


def test_batch_runs_one_instance_per_row(plugin, sample_paths, tmp_path):
    """What the batch dialog does: a fresh algorithm instance per row, all in one context."""
    from qgis.core import QgsApplication, QgsProcessingContext, QgsProcessingFeedback

    context, feedback = QgsProcessingContext(), QgsProcessingFeedback()
    rows = [fuse_parameters(sample_paths, tmp_path / f"{m}.tif", METHOD=m) for m in ("delta", "cubic")]
    for row in rows:
        algorithm = QgsApplication.processingRegistry().createAlgorithmById("stf:fuse")
        ok, message = algorithm.checkParameterValues(row, context)
        assert ok, message
        results, ok = algorithm.run(row, context, feedback)
        assert ok and results["OUTPUT"] == row["OUTPUT"]
    assert [read_tags(tmp_path / f"{m}.tif")[0]["STF_METHOD"] for m in ("delta", "cubic")] == ["delta", "cubic"]


def test_fuse_runs_inside_a_model(plugin, sample_paths, tmp_path):
    import processing
    from qgis.core import (
        QgsProcessingModelAlgorithm,
        QgsProcessingModelChildAlgorithm,
        QgsProcessingModelChildParameterSource,
        QgsProcessingModelOutput,
        QgsProcessingModelParameter,
        QgsProcessingParameterRasterLayer,
    )

    model = QgsProcessingModelAlgorithm("fusion model", "stf tests")
    for name in ("coarse", "fine"):
        model.addModelParameter(QgsProcessingParameterRasterLayer(name, name), QgsProcessingModelParameter(name))
    child = QgsProcessingModelChildAlgorithm("stf:fuse")
    child.setChildId("fuse")
    child.addParameterSources("COARSE_TARGET", [QgsProcessingModelChildParameterSource.fromModelParameter("coarse")])
    child.addParameterSources("FINE_REFERENCE", [QgsProcessingModelChildParameterSource.fromModelParameter("fine")])
    child.addParameterSources("METHOD", [QgsProcessingModelChildParameterSource.fromStaticValue("cubic")])
    child.addParameterSources("DEVICE", [QgsProcessingModelChildParameterSource.fromStaticValue(1)])
    output = QgsProcessingModelOutput("fused", "Fused")
    output.setChildOutputName("OUTPUT")
    child.setModelOutputs({"fused": output})
    model.addChildAlgorithm(child)

    target = tmp_path / "model_fused.tif"
    result = processing.run(
        model, {"coarse": sample_paths["coarse_target"], "fine": sample_paths["fine_reference"], "fuse:fused": str(target)}
    )
    assert result["fuse:fused"] == str(target)
    assert read_tags(target)[0]["STF_METHOD"] == "cubic"


def test_evaluate_gives_metrics_as_outputs_and_files(plugin, sample_paths, tmp_path):
    import processing

    fused = processing.run("stf:fuse", fuse_parameters(sample_paths, tmp_path / "fused.tif"))["OUTPUT"]
    result = processing.run("stf:evaluate", {
        "PREDICTION": fused, "TRUTH": sample_paths["truth"], "COARSE": sample_paths["coarse_target"],
        "PLOTS": False, "DEVICE": "cpu", "OUTPUT_FOLDER": str(tmp_path / "report"),
    })
    assert 0 < result["RMSE"] < 0.2 and 0 < result["SSIM"] <= 1
    assert '"rmse"' in result["REPORT"]
    assert (tmp_path / "report" / "metrics.json").exists()


def test_evaluate_logs_a_measure_the_images_leave_undefined_as_n_a_and_outputs_it_as_null(plugin, sample_paths,
                                                                                          tmp_path):
    import processing
    import rasterio
    from qgis.core import QgsProcessingFeedback

    with rasterio.open(sample_paths["truth"]) as truth:
        profile, shape = truth.profile, (truth.count, truth.height, truth.width)
    profile.update(dtype="float32", nodata=None)
    with rasterio.open(tmp_path / "flat.tif", "w", **profile) as flat:  # a constant truth: R² has no variance
        flat.write(np.full(shape, 0.2, np.float32))

    class Logged(QgsProcessingFeedback):
        lines: list = []

        def pushInfo(self, info):  # noqa: N802
            self.lines.append(info)

    logged = Logged()
    parameters = {"PREDICTION": sample_paths["truth"], "TRUTH": str(tmp_path / "flat.tif"), "PLOTS": False,
                  "DEVICE": "cpu", "OUTPUT_FOLDER": str(tmp_path / "report")}
    result = processing.run("stf:evaluate", parameters, feedback=logged)
    assert "r2: n/a (undefined on these images)" in logged.lines, logged.lines
    assert result["R2"] is None and result["RMSE"] > 0  # NULL for a model's next step, not NaN


def test_train_writes_a_checkpoint_that_fuse_uses(plugin, small_scene, tmp_path):
    import processing

    checkpoint = tmp_path / "ganstfm.pt"
    trained = processing.run("stf:train", {
        "MODEL": "ganstfm", "MODE": "self", "COARSE_TARGET": small_scene["coarse_target"],
        "FINE_REFERENCE": small_scene["fine_reference"], "EPOCHS": 1, "PATCH": 8, "BATCH": 2, "STEPS": 1,
        "COARSE_RESOLUTION": 250, "DEVICE": "cpu", "OUTPUT": str(checkpoint),
    })
    assert trained["OUTPUT"] == str(checkpoint) and checkpoint.exists()
    assert trained["BEST_EPOCH"] == 1 and trained["VALIDATION_RMSE"] > 0
    fused = processing.run("stf:fuse", {
        "COARSE_TARGET": small_scene["coarse_target"], "FINE_REFERENCE": small_scene["fine_reference"],
        "METHOD": "ganstfm", "WEIGHTS": str(checkpoint), "DEVICE": "cpu", "TILE_SIZE": 0,
        "COARSE_RESOLUTION": 250, "OUTPUT": str(tmp_path / "fused.tif"),
    })
    assert read_tags(fused["OUTPUT"])[0]["STF_METHOD"] == "ganstfm"


def test_method_options_reach_the_method_and_unknown_ones_are_refused(plugin, sample_paths, tmp_path):
    import numpy as np
    import processing
    import rasterio
    from qgis.core import QgsProcessingException

    small, large = (
        processing.run("stf:fuse", fuse_parameters(
            sample_paths, tmp_path / f"w{window}.tif", METHOD="starfm", TILE_SIZE=0, OPTIONS=f"window={window}"
        ))["OUTPUT"]
        for window in (3, 9)
    )
    with rasterio.open(small) as a, rasterio.open(large) as b:
        assert not np.array_equal(a.read(), b.read())
    with pytest.raises(QgsProcessingException, match="unknown option 'size' for method 'starfm'; valid options: window=31"):
        processing.run("stf:fuse", fuse_parameters(sample_paths, tmp_path / "x.tif", METHOD="starfm", OPTIONS="size=3"))


@pytest.mark.parametrize("method, options, text", BAD_OPTIONS)
def test_bad_options_are_refused_with_the_engines_message(plugin, sample_paths, tmp_path, method, options, text):
    import re

    import processing
    from qgis.core import QgsProcessingException

    output = tmp_path / "x.tif"
    with pytest.raises(QgsProcessingException, match=re.escape(text)):
        processing.run("stf:fuse", fuse_parameters(sample_paths, output, METHOD=method, OPTIONS=options))
    assert not output.exists()


def test_evaluate_ratio_gives_ergas_for_coarse_data_resampled_to_the_fine_grid(plugin, sample_paths, tmp_path):
    """The sample's MODIS is already on 30 m pixels: from its pixel size the ratio would be 1 (ERGAS about 30);
    RATIO gives the real 250/30, as a number or as the fraction its label suggests (a text Processing would read
    as 0). (3.68 here for delta; the README's 3.58 is with --register, which stf:fuse lacks.)"""
    import processing
    from qgis.core import QgsProcessingException

    fused = processing.run("stf:fuse", fuse_parameters(sample_paths, tmp_path / "fused.tif"))["OUTPUT"]
    common = {"PREDICTION": fused, "TRUTH": sample_paths["truth"], "COARSE": sample_paths["coarse_target"],
              "PLOTS": False, "DEVICE": "cpu"}
    unknown = processing.run("stf:evaluate", {**common, "OUTPUT_FOLDER": str(tmp_path / "r1")})["ERGAS"]
    without = processing.run("stf:evaluate", {**{k: v for k, v in common.items() if k != "COARSE"},
                                              "OUTPUT_FOLDER": str(tmp_path / "r0")})
    [note] = [n for n in json.loads(without["REPORT"])["notes"] if n.startswith("ERGAS needs")]
    assert "--" not in note and "(RATIO)" in note  # the report, an output for the next step, in Processing's words
    given = processing.run("stf:evaluate", {**common, "RATIO": 250 / 30, "OUTPUT_FOLDER": str(tmp_path / "r2")})
    assert unknown > 20 and 3.4 <= given["ERGAS"] <= 3.8
    as_text = processing.run("stf:evaluate", {**common, "RATIO": " 250/30", "OUTPUT_FOLDER": str(tmp_path / "r3")})
    assert as_text["ERGAS"] == pytest.approx(given["ERGAS"], rel=1e-6)
    with pytest.raises(QgsProcessingException, match=r"'Coarse/fine pixel-size ratio for ERGAS' \(RATIO\): expected "
                                                     r"a number or a fraction such as 500/30, got '250:30'"):
        processing.run("stf:evaluate", {**common, "RATIO": "250:30", "OUTPUT_FOLDER": str(tmp_path / "r4")})


class RecordingFeedback:
    """A Processing feedback that keeps the info lines and the warnings."""

    def __new__(cls):
        from qgis.core import QgsProcessingFeedback

        class Recording(QgsProcessingFeedback):
            def __init__(self):
                super().__init__()
                self.lines, self.warnings = [], []

            def pushInfo(self, info):  # noqa: N802
                self.lines.append(info)
                super().pushInfo(info)

            def pushWarning(self, warning):  # noqa: N802
                self.warnings.append(warning)
                super().pushWarning(warning)

        return Recording()


def test_evaluate_of_a_single_band_outputs_sam_as_null_and_says_why(plugin, tmp_path):
    """Yanco land-surface temperature has one band: no spectral angle, so SAM is NULL with the engine's note."""
    import processing

    from helpers.paths import TEST_DATA

    yanco = TEST_DATA / "yanco_lst"
    feedback = RecordingFeedback()
    result = processing.run("stf:evaluate", {
        "PREDICTION": str(yanco / "MOD11A1_LST_cloudrm_20160308.tif"),
        "TRUTH": str(yanco / "Landsat_LST_cloudrm_20160308.tif"), "DEVICE": "cpu",
        "OUTPUT_FOLDER": str(tmp_path / "report"),
    }, feedback=feedback)
    assert result["SAM"] is None and result["RMSE"] > 0 and json.loads(result["REPORT"])["overall"]["sam"] is None
    assert "sam: n/a (undefined on these images)" in feedback.lines
    assert [w for w in feedback.warnings if w.startswith("SAM needs at least 2 bands")], feedback.warnings
    assert (tmp_path / "report" / "apa_diagram.png").exists()


def test_evaluate_refuses_one_file_as_prediction_and_truth(plugin, sample_paths, tmp_path):
    import processing
    from qgis.core import QgsProcessingException

    with pytest.raises(QgsProcessingException, match="the prediction and the truth are the same file"):
        processing.run("stf:evaluate", {"PREDICTION": sample_paths["truth"], "TRUTH": sample_paths["truth"],
                                        "PLOTS": False, "OUTPUT_FOLDER": str(tmp_path / "report")})
    assert not (tmp_path / "report").exists()


def test_threads_reach_the_engine_from_every_algorithm(plugin, sample_paths, small_scene, tmp_path, monkeypatch):
    import processing
    from qgis.core import QgsProcessingException

    engine = plugin.status.engine
    default = engine.fuse(engine.FusionRequest(
        coarse_target=sample_paths["coarse_target"], fine_reference=sample_paths["fine_reference"],
        output=str(tmp_path / "default.tif"), method="cubic", device="cpu")).threads
    feedback = RecordingFeedback()
    processing.run("stf:fuse", fuse_parameters(sample_paths, tmp_path / "f.tif", THREADS=default + 1), feedback=feedback)
    assert any(f"delta on cpu ({default + 1} CPU threads)" in line for line in feedback.lines), feedback.lines
    feedback = RecordingFeedback()
    processing.run("stf:fuse", fuse_parameters(sample_paths, tmp_path / "g.tif"), feedback=feedback)
    assert any(f"delta on cpu ({default} CPU threads)" in line for line in feedback.lines), feedback.lines
    with pytest.raises(QgsProcessingException, match="THREADS"):
        processing.run("stf:fuse", fuse_parameters(sample_paths, tmp_path / "x.tif", THREADS=0))

    requests = []
    for name in ("train", "evaluate"):
        real = getattr(engine, name)
        monkeypatch.setattr(engine, name, lambda request, real=real, **kw: requests.append(request) or real(request, **kw))
    processing.run("stf:evaluate", {"PREDICTION": str(tmp_path / "f.tif"), "TRUTH": sample_paths["truth"],
                                    "PLOTS": False, "THREADS": 2, "OUTPUT_FOLDER": str(tmp_path / "report")})
    processing.run("stf:train", {
        "MODEL": "ganstfm", "MODE": "self", "COARSE_TARGET": small_scene["coarse_target"],
        "FINE_REFERENCE": small_scene["fine_reference"], "EPOCHS": 1, "PATCH": 8, "BATCH": 2, "STEPS": 1,
        "COARSE_RESOLUTION": 250, "DEVICE": "cpu", "THREADS": 1, "OUTPUT": str(tmp_path / "m.pt"),
    })
    assert [(type(r).__name__, r.threads) for r in requests] == [("EvaluationRequest", 2), ("TrainingRequest", 1)]


def test_fuse_results_loaded_by_processing_get_the_result_group(plugin, sample_layers, sample_paths, tmp_path):
    """What the toolbox's "Open output file after running" does: the fused layer styled like the dialog's result,
    with its error maps, in a result group where Processing put the layer."""
    import processing
    from qgis.core import QgsProject

    from helpers.result_group import check_result_group

    root = QgsProject.instance().layerTreeRoot()
    before = len(root.children())
    out = tmp_path / "loaded"
    processing.runAndLoadResults(
        "stf:fuse", fuse_parameters(sample_paths, out / "fused.tif", ERROR_MAPS=str(out / "maps"))
    )
    groups = [node for node in root.children() if node.name().startswith("Fusion ")]
    assert len(groups) == 1 and len(root.children()) == before + 1 and root.children()[0] is groups[0]
    check_result_group(groups[0], "delta", out / "fused.tif", out / "maps", shown="coarse_residual_rms")
    assert len(QgsProject.instance().mapLayers()) == len(sample_layers) + 1 + len(list((out / "maps").iterdir()))


def test_fuse_loaded_into_an_empty_project_sets_its_crs_and_the_canvas_shows_it(plugin, qgis_new_project, iface,
                                                                               sample_paths, tmp_path):
    import processing
    from qgis.core import QgsProject

    project, canvas = QgsProject.instance(), iface.mapCanvas()
    assert project.mapLayers() == {}
    processing.runAndLoadResults("stf:fuse", fuse_parameters(sample_paths, tmp_path / "fused.tif", METHOD="cubic"))
    [layer] = project.mapLayers().values()
    assert project.crs().authid() == canvas.mapSettings().destinationCrs().authid() == "EPSG:32649"
    assert canvas.extent().contains(layer.extent())
    project.removeAllMapLayers()
    project.layerTreeRoot().removeAllChildren()


def test_fuse_preselects_auto_and_reports_its_choice_and_validation_table(plugin, sample_paths, tmp_path):
    """METHOD defaults to the engine's recommendation (auto); the log gets what it ran and the whole table."""
    import json

    import processing
    from qgis.core import QgsApplication

    engine = plugin.status.engine
    algorithm = QgsApplication.processingRegistry().algorithmById("stf:fuse")
    methods = list(engine.list_methods())
    assert methods[algorithm.parameterDefinition("METHOD").defaultValue()] == engine.RECOMMENDED_METHOD == "auto"

    parameters = fuse_parameters(sample_paths, tmp_path / "auto.tif", COARSE_RESOLUTION=250)
    del parameters["METHOD"]
    feedback = RecordingFeedback()
    result = processing.run("stf:fuse", parameters, feedback=feedback)
    recorded = json.loads(read_tags(result["OUTPUT"])[0]["STF_AUTO"])  # the engine's record in the output
    ran, table = recorded["chosen"], recorded["validation_rmse"]
    ranked = sorted(table, key=table.get)
    start = feedback.lines.index("Wald's reduced-resolution validation on the scene (RMSE, best first):")
    rows = feedback.lines[start + 1:start + 1 + len(table)]
    assert [row.split(":")[0].strip() for row in rows] == ranked
    assert all(f"{method}: {table[method]:.4g}" in row for method, row in zip(ranked, rows))
    assert any(line.startswith(f"auto ran {ran} (Wald validation RMSE {table[ran]:.4g}, delta {table['delta']:.4g}) "
                                f"on cpu") for line in feedback.lines), feedback.lines
    assert recorded["reason"] in feedback.lines and recorded["reason"] not in feedback.warnings  # a note, not a fault


def scaled_copy(source, target, scale: float) -> str:
    """The raster with a scale in its GDAL metadata, as `gdal_edit.py -scale` (or GDAL's Translate with -a_scale)
    gives it: how a float raster tells every tool its units (stf:fuse's SCALES tells only the engine)."""
    import rasterio

    with rasterio.open(source) as src:
        with rasterio.open(target, "w", **src.profile) as dst:
            dst.write(src.read())
            dst.scales = (scale,) * src.count
    return str(target)


C2_L2 = "fine=2.75e-5:-0.2"
"""SCALES for Landsat Collection 2 Level-2 surface reflectance: stored × 2.75e-5 − 0.2."""


def landsat_c2_copy(source, target) -> str:
    """The fine reference (integers: reflectance ×10000) as Landsat Collection 2 Level-2 ships surface reflectance:
    uint16 (reflectance + 0.2) / 2.75e-5, 0 for no data, and no scale in its metadata."""
    import rasterio

    with rasterio.open(source) as src:
        reflectance = src.read(masked=True).astype(np.float64) * 1e-4
        with rasterio.open(target, "w", **{**src.profile, "dtype": "uint16", "nodata": 0}) as dst:
            dst.write(np.round((reflectance + 0.2) / 2.75e-5).filled(0).astype(np.uint16))
    return str(target)


def reflectance(path) -> np.ma.MaskedArray:
    """A raster as the engine reads it without SCALES: stored × its metadata's scale + offset (integers without
    one × 1e-4), its nodata masked."""
    import rasterio

    from stf_engine.raster.reader import units_of

    with rasterio.open(path) as dataset:
        units = units_of(dataset)
        return dataset.read(masked=True).astype(np.float64) * units.scale + units.offset


def test_scales_read_a_landsat_c2_fine_reference_as_the_reflectance_it_holds(plugin, small_scene, tmp_path):
    """With SCALES fine=2.75e-5:-0.2 a Collection 2 Level-2 copy of the fine reference fuses as the original does
    (within 1e-3 reflectance); without, the engine's warning names SCALES and the value to give it."""
    import processing

    c2 = landsat_c2_copy(small_scene["fine_reference"], tmp_path / "c2.tif")
    common = fuse_parameters(small_scene, "", TILE_SIZE=0)
    original = processing.run("stf:fuse", {**common, "OUTPUT": str(tmp_path / "original.tif")})["OUTPUT"]
    feedback = RecordingFeedback()
    scaled = processing.run("stf:fuse", {**common, "FINE_REFERENCE": c2, "SCALES": C2_L2,
                                         "OUTPUT": str(tmp_path / "scaled.tif")}, feedback=feedback)["OUTPUT"]
    scaled, original = reflectance(scaled), reflectance(original)
    assert np.array_equal(scaled.mask, original.mask) and original.count() > 0.9 * original.size
    np.testing.assert_allclose(scaled.compressed(), original.compressed(), atol=1e-3)
    assert not [w for w in feedback.warnings if "Level-2" in w], feedback.warnings
    feedback = RecordingFeedback()
    processing.run("stf:fuse", {**common, "FINE_REFERENCE": c2, "OUTPUT": str(tmp_path / "unscaled.tif")},
                   feedback=feedback)
    advice = f"set 'Scales to reflectance' (SCALES) to {C2_L2} for its surface reflectance"
    assert [w for w in feedback.warnings if advice in w and "--" not in w], feedback.warnings


def test_train_takes_scales_for_a_landsat_c2_fine_reference(plugin, small_scene, tmp_path, monkeypatch):
    """SCALES reach the training request parsed, and the training reads the Collection 2 Level-2 copy as the
    original: the delta baseline on the same held-out data scores the same."""
    import processing

    engine = plugin.status.engine
    requests = []
    real = engine.train
    monkeypatch.setattr(engine, "train", lambda request, **kw: requests.append(request) or real(request, **kw))
    c2 = landsat_c2_copy(small_scene["fine_reference"], tmp_path / "c2.tif")
    common = {"MODEL": "ganstfm", "MODE": "self", "COARSE_TARGET": small_scene["coarse_target"], "EPOCHS": 1,
              "PATCH": 8, "BATCH": 2, "STEPS": 1, "COARSE_RESOLUTION": 250, "DEVICE": "cpu"}
    original, scaled = (
        processing.run("stf:train", {**common, **changes, "OUTPUT": str(tmp_path / f"{name}.pt")})
        for name, changes in (("original", {"FINE_REFERENCE": small_scene["fine_reference"]}),
                              ("scaled", {"FINE_REFERENCE": c2, "SCALES": C2_L2}))
    )
    assert [request.scales for request in requests] == [{}, engine.parse_scales(C2_L2)]
    assert scaled["VALIDATION_RMSE_DELTA"] == pytest.approx(original["VALIDATION_RMSE_DELTA"], abs=1e-3)


@pytest.mark.parametrize("algorithm", ["fuse", "train"])
def test_malformed_scales_are_refused_before_the_run_naming_scales(plugin, sample_paths, tmp_path, algorithm):
    """The engine's one line after the parameter, from checkParameterValues: nothing runs."""
    import processing
    from qgis.core import QgsApplication, QgsProcessingContext, QgsProcessingException

    engine = plugin.status.engine
    with pytest.raises(engine.StfError) as expected:
        engine.parse_scales("fine=zero")
    output = tmp_path / "x.out"
    parameters = {
        "fuse": fuse_parameters(sample_paths, output),
        "train": {"MODEL": "ganstfm", "MODE": "self", "COARSE_TARGET": sample_paths["coarse_target"],
                  "FINE_REFERENCE": sample_paths["fine_reference"], "DEVICE": "cpu", "OUTPUT": str(output)},
    }[algorithm]
    parameters["SCALES"] = "fine=zero"
    checked = QgsApplication.processingRegistry().algorithmById(f"stf:{algorithm}")
    ok, message = checked.checkParameterValues(parameters, QgsProcessingContext())
    assert (ok, message) == (False, f"'Scales to reflectance' (SCALES): {expected.value}")
    with pytest.raises(QgsProcessingException) as raised:
        processing.run(f"stf:{algorithm}", parameters)
    assert str(raised.value).splitlines()[-1] == message and not output.exists()


def test_estarfm_takes_the_second_pair_on_real_kranj_data(plugin, tmp_path):
    """Kranj, Slovenia, 2020: predict the Landsat image of day 077 from the Landsat/MODIS pairs of days 068 and 093,
    one on each side of the target date (what ESTARFM is made for), with the MODIS image of day 077. The Landsat
    files are reflectance ×10000 stored as float and MODIS is 0–1 reflectance; the Landsat copies carry their scale
    (1e-4) in their metadata (what SCALES 'fine=1e-4' would say). MODIS was resampled to the Landsat grid: its real
    pixel size (480 m) is COARSE_RESOLUTION. The prediction must be closer to the real Landsat of day 077 than the
    nearer reference (068) is, and ESTARFM refuses to run without the second pair."""
    import numpy as np
    import processing
    import rasterio
    from qgis.core import QgsProcessingException

    from helpers.paths import TEST_DATA

    kranj = TEST_DATA / "kranj"
    landsat = {day: scaled_copy(kranj / "landsat_filled" / f"landsat_2020{day}.tif", tmp_path / f"l{day}.tif", 1e-4)
               for day in ("068", "093")}
    modis = {day: str(kranj / "modis" / f"modis_2020{day}.tif") for day in ("068", "077", "093")}
    parameters = {
        "COARSE_TARGET": modis["077"], "FINE_REFERENCE": landsat["068"], "COARSE_REFERENCE": modis["068"],
        "FINE_REFERENCE_2": landsat["093"], "COARSE_REFERENCE_2": modis["093"],
        "METHOD": "estarfm", "COARSE_RESOLUTION": 480, "DEVICE": "cpu", "TILE_SIZE": 0,
        "OUTPUT": str(tmp_path / "estarfm_077.tif"),
    }
    feedback = RecordingFeedback()
    result = processing.run("stf:fuse", parameters, feedback=feedback)
    assert read_tags(result["OUTPUT"])[0]["STF_METHOD"] == "estarfm"
    assert not [w for w in feedback.warnings if "order of magnitude" in w], feedback.warnings  # units agree
    with rasterio.open(result["OUTPUT"]) as fused, \
            rasterio.open(kranj / "landsat_filled" / "landsat_2020077.tif") as truth, \
            rasterio.open(kranj / "landsat_filled" / "landsat_2020068.tif") as before:
        truth_values = truth.read().astype(float)
        rmse = np.sqrt(np.mean((fused.read().astype(float) - truth_values) ** 2))  # both ×10000
        unchanged = np.sqrt(np.mean((before.read().astype(float) - truth_values) ** 2))
    assert rmse < 0.8 * unchanged, (rmse, unchanged)

    one_pair = {key: value for key, value in parameters.items() if not key.endswith("_2")}
    asked = r"needs a second fine reference \('Second fine image[^']*' \(FINE_REFERENCE_2\)\)"
    with pytest.raises(QgsProcessingException, match=asked):
        processing.run("stf:fuse", {**one_pair, "OUTPUT": str(tmp_path / "one_pair.tif")})


def test_train_takes_a_time_budget_and_warns_when_the_model_does_not_beat_delta(plugin, small_scene, tmp_path,
                                                                                monkeypatch):
    """MINUTES reaches the engine (0 = no limit, unset = the engine's default); EDCSTFN after one step on the small
    scene does worse than delta on held-out data, which Processing shows as a warning (see the task test)."""
    import processing

    engine = plugin.status.engine
    requests = []
    real = engine.train
    monkeypatch.setattr(engine, "train", lambda request, **kw: requests.append(request) or real(request, **kw))
    common = {
        "MODEL": "edcstfn", "MODE": "self", "COARSE_TARGET": small_scene["coarse_target"],
        "FINE_REFERENCE": small_scene["fine_reference"], "COARSE_REFERENCE": small_scene["coarse_reference"],
        "EPOCHS": 1, "PATCH": 8, "BATCH": 2, "STEPS": 1, "COARSE_RESOLUTION": 250, "DEVICE": "cpu",
    }
    feedback = RecordingFeedback()
    trained = processing.run("stf:train", {**common, "MINUTES": 0.5, "OUTPUT": str(tmp_path / "a.pt")},
                             feedback=feedback)
    assert [w for w in feedback.warnings if "does not beat the delta baseline" in w], feedback.warnings
    assert trained["VALIDATION_RMSE"] >= trained["VALIDATION_RMSE_DELTA"] > 0
    verdict = (f"held-out RMSE {trained['VALIDATION_RMSE']:.4g} against delta's {trained['VALIDATION_RMSE_DELTA']:.4g}: "
               "the model does NOT beat delta; use delta or auto for this scene")
    assert any(verdict in line for line in feedback.lines), feedback.lines
    processing.run("stf:train", {**common, "MINUTES": 0, "OUTPUT": str(tmp_path / "b.pt")})
    processing.run("stf:train", {**common, "OUTPUT": str(tmp_path / "c.pt")})
    assert [request.minutes for request in requests] == [0.5, None, engine.DEFAULT_TRAINING_MINUTES]


def test_train_takes_mask_rules_for_the_series_masks_and_passes_on_the_series_warnings(plugin, tmp_path,
                                                                                     monkeypatch):
    """MASK_RULES reaches the request (every fine image has a Landsat QA mask, which the default rule would flag
    whole); what the series list skips is a Processing warning; a wrong rule is refused, naming MASK_RULES, before
    anything runs."""
    import processing
    from qgis.core import QgsApplication, QgsProcessingException

    from devkit.series import synthetic_series
    from devkit.synthetic import fine_transform, write

    engine = plugin.status.engine
    csv = synthetic_series(tmp_path, side=64, bands=2, dates=2, fine_dates=2, ratio=4)
    qa = np.full((1, 64, 64), 21824, np.uint16)  # Landsat QA_PIXEL clear
    qa[0, 20:36, 20:36] = 22280  # cloud
    write(tmp_path / "qa.tif", qa, fine_transform())
    lines = csv.read_text().splitlines()
    rows = [lines[0] + ",fine_mask"] + [line + ",qa.tif" for line in lines[1:]] + ["2021-03-01,,,"]
    csv.write_text("\n".join(rows) + "\n")
    requests = []
    real = engine.train
    monkeypatch.setattr(engine, "train", lambda request, **kw: requests.append(request) or real(request, **kw))
    parameters = {"MODEL": "ganstfm", "MODE": "series", "SERIES": str(csv), "MASK_RULES": "fine=landsat-qa",
                  "EPOCHS": 1, "PATCH": 16, "BATCH": 2, "STEPS": 1, "DEVICE": "cpu", "OUTPUT": str(tmp_path / "m.pt")}
    feedback = RecordingFeedback()
    trained = processing.run("stf:train", parameters, feedback=feedback)
    assert trained["BEST_EPOCH"] == 1 and [r.mask_rules for r in requests] == [{"fine": "landsat-qa"}]
    skipped = f"series list {csv}, row 4: 2021-03-01 has no coarse or fine image; the row is skipped"
    assert feedback.warnings.count(skipped) == 1, feedback.warnings
    with pytest.raises(QgsProcessingException, match=r"'Mask rules' \(MASK_RULES\): unknown mask rule 'cloudy'"):
        processing.run("stf:train", {**parameters, "MASK_RULES": "fine=cloudy", "OUTPUT": str(tmp_path / "x.pt")})
    assert len(requests) == 1 and not (tmp_path / "x.pt").exists()
    series = QgsApplication.processingRegistry().algorithmById("stf:train").parameterDefinition("SERIES")
    assert "coarse_mask, fine_mask" in series.description()


def test_an_output_over_an_input_is_refused_and_the_input_untouched(plugin, sample_paths, tmp_path):
    import hashlib
    import shutil

    import processing
    from qgis.core import QgsProcessingException

    fine = tmp_path / "fine.tif"
    shutil.copy(sample_paths["fine_reference"], fine)
    before = hashlib.sha256(fine.read_bytes()).hexdigest()
    parameters = fuse_parameters(sample_paths, fine, FINE_REFERENCE=str(fine))
    with pytest.raises(QgsProcessingException, match="would overwrite the fine reference"):
        processing.run("stf:fuse", parameters)
    assert hashlib.sha256(fine.read_bytes()).hexdigest() == before


def test_cog_writes_a_cloud_optimized_geotiff(plugin, sample_paths, tmp_path):
    import processing
    import rasterio

    output = processing.run("stf:fuse", fuse_parameters(sample_paths, tmp_path / "cog.tif", METHOD="delta",
                                                        COG=True))["OUTPUT"]
    with rasterio.open(output) as dataset:
        assert dataset.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"


@pytest.mark.parametrize("option", ["SCHEDULER", "WORKERS"])
def test_dask_runs_the_tiles_and_gives_the_output_of_a_run_here(plugin, small_scene, tmp_path, option):
    """SCHEDULER: Processing predicts on an existing cluster; WORKERS=2: on a local cluster the engine starts."""
    import processing

    pytest.importorskip("distributed")
    parameters = {"COARSE_TARGET": small_scene["coarse_target"], "FINE_REFERENCE": small_scene["fine_reference"],
                  "COARSE_REFERENCE": small_scene["coarse_reference"], "COARSE_RESOLUTION": 250, "METHOD": "starfm",
                  "THREADS": 1}
    alone = processing.run("stf:fuse", {**parameters, "OUTPUT": str(tmp_path / "alone.tif")})["OUTPUT"]
    if option == "WORKERS":
        spread = processing.run("stf:fuse", {**parameters, "WORKERS": 2, "OUTPUT": str(tmp_path / "spread.tif")})
    else:
        with loopback_cluster(n_workers=1, processes=False) as cluster:
            spread = processing.run("stf:fuse", {**parameters, "SCHEDULER": cluster.scheduler_address,
                                                 "OUTPUT": str(tmp_path / "spread.tif")})
    np.testing.assert_array_equal(pixels(alone), pixels(spread["OUTPUT"]))


def test_every_algorithm_with_scheduler_takes_workers_as_an_advanced_optional_parameter(plugin):
    from qgis.core import QgsApplication, QgsProcessingParameterDefinition

    algorithms = [algorithm for algorithm in QgsApplication.processingRegistry().providerById("stf").algorithms()
                  if algorithm.parameterDefinition("SCHEDULER") is not None]
    assert sorted(algorithm.id() for algorithm in algorithms) == ["stf:fuse", "stf:fuse_series"]
    for algorithm in algorithms:
        flags = algorithm.parameterDefinition("WORKERS").flags()
        assert flags & QgsProcessingParameterDefinition.FlagOptional, algorithm.id()
        assert flags & QgsProcessingParameterDefinition.FlagAdvanced, algorithm.id()


@pytest.mark.parametrize("algorithm", ["fuse", "fuse_series"])
def test_workers_reach_the_request_and_with_a_scheduler_are_refused(plugin, sample_paths, tmp_path, monkeypatch,
                                                                    algorithm):
    """WORKERS becomes the request's `workers` (unset or 0: None); with SCHEDULER too, the engine's error."""
    import processing
    from qgis.core import QgsProcessingException

    engine = plugin.status.engine
    parameters = {"fuse": fuse_parameters(sample_paths, tmp_path / "fused.tif"),
                  "fuse_series": {"SERIES": sample_paths["coarse_target"], "OUTPUT_FOLDER": str(tmp_path / "series")},
                  }[algorithm]
    with pytest.raises(QgsProcessingException, match=r"give either .*\(WORKERS\) .* or .*\(SCHEDULER\) .*, not both"):
        processing.run(f"stf:{algorithm}", {**parameters, "WORKERS": 2, "SCHEDULER": "tcp://127.0.0.1:9"})
    requests = []

    def refuse(request, **kw):
        requests.append(request)
        raise engine.StfError("captured")

    monkeypatch.setattr(engine, algorithm, refuse)
    for workers in (3, 0, None):
        with pytest.raises(QgsProcessingException, match="captured"):
            processing.run(f"stf:{algorithm}", {**parameters, "WORKERS": workers})
    assert [(request.workers, request.scheduler) for request in requests] == [(3, None), (None, None), (None, None)]
    assert not (tmp_path / "fused.tif").exists() and not (tmp_path / "series").exists()


def test_engine_errors_and_warnings_name_the_parameters_not_the_flags(plugin, sample_paths, tmp_path):
    """The sample's coarse rasters are resampled to the fine grid: training refuses them and fusing warns, each
    naming COARSE_RESOLUTION (the engine says --coarse-res); without COARSE or RATIO, stf:evaluate warns so."""
    import processing
    from qgis.core import QgsProcessingException

    training = {"MODEL": "ganstfm", "MODE": "self", "COARSE_TARGET": sample_paths["coarse_target"],
                "FINE_REFERENCE": sample_paths["fine_reference"], "DEVICE": "cpu", "OUTPUT": str(tmp_path / "m.pt")}
    with pytest.raises(QgsProcessingException, match=r"ratio of at least 2.*\(COARSE_RESOLUTION\)") as raised:
        processing.run("stf:train", training)
    assert "--" not in str(raised.value)
    feedback = RecordingFeedback()
    processing.run("stf:fuse", fuse_parameters(sample_paths, tmp_path / "f.tif"), feedback=feedback)
    assert [w for w in feedback.warnings if "'Real coarse pixel size" in w and "(COARSE_RESOLUTION)" in w], \
        feedback.warnings
    feedback = RecordingFeedback()
    processing.run("stf:evaluate", {"PREDICTION": str(tmp_path / "f.tif"), "TRUTH": sample_paths["truth"],
                                    "PLOTS": False, "OUTPUT_FOLDER": str(tmp_path / "report")}, feedback=feedback)
    assert [w for w in feedback.warnings if "(COARSE) or" in w and "(RATIO)" in w], feedback.warnings
    assert not [w for w in feedback.warnings if "--" in w]


def test_a_cancel_from_another_thread_stops_a_run_that_reports_no_progress(plugin, sample_paths, tmp_path,
                                                                         monkeypatch):
    """The toolbox cancels from the main thread while the algorithm runs on a worker thread (the `canceled` signal
    never reaches it there): the engine's cancel must read the feedback itself, not wait for a progress report."""
    import threading
    import time

    import processing
    from qgis.core import QgsProcessingException, QgsProcessingFeedback

    engine = plugin.status.engine

    def silent_fuse(request, progress, cancel):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # a long step that checks the cancel but reports no progress
            if cancel.is_set():
                raise engine.FusionCancelled("cancelled")
            time.sleep(0.01)
        raise engine.StfError("the cancel never reached the engine")

    monkeypatch.setattr(engine, "fuse", silent_fuse)
    feedback = QgsProcessingFeedback()
    threading.Timer(0.3, feedback.cancel).start()
    started = time.monotonic()
    with pytest.raises(QgsProcessingException, match="cancelled"):
        processing.run("stf:fuse", fuse_parameters(sample_paths, tmp_path / "fused.tif"), feedback=feedback)
    assert time.monotonic() - started < 2


def test_a_zipped_layer_reaches_the_request_as_its_gdal_path_and_open_options_are_refused(plugin, sample_paths,
                                                                                         tmp_path, monkeypatch):
    """As a layer or as its source text: a raster inside a zip goes to the engine as the GDAL path inside the
    archive; a layer QGIS opens with GDAL options is refused (the engine would read the file without them)."""
    import processing
    from qgis.core import QgsProcessingException, QgsProject, QgsRasterLayer

    from helpers.layer_sources import with_overview_option, zipped

    engine = plugin.status.engine
    requests = []

    def capture(request, **kw):
        requests.append(request)
        raise engine.StfError("captured")

    monkeypatch.setattr(engine, "fuse", capture)
    inside = zipped(sample_paths["coarse_target"], tmp_path)
    layer = QgsRasterLayer(inside, "zipped")
    QgsProject.instance().addMapLayer(layer)
    try:
        for value in (layer, inside):
            with pytest.raises(QgsProcessingException, match="captured"):
                processing.run("stf:fuse", fuse_parameters(sample_paths, tmp_path / "f.tif", COARSE_TARGET=value))
    finally:
        QgsProject.instance().removeMapLayer(layer.id())
    assert [request.coarse_target for request in requests] == [inside, inside]
    overview = with_overview_option(sample_paths["coarse_target"], tmp_path)
    refused = r"(?m)^'Coarse image at the target date' \(COARSE_TARGET\): .* is opened with GDAL options \(OVERVIEW_"
    with pytest.raises(QgsProcessingException, match=refused):
        processing.run("stf:fuse", fuse_parameters(sample_paths, tmp_path / "f.tif", COARSE_TARGET=overview))
    assert len(requests) == 2


def red_stretch(layer):
    enhancement = layer.renderer().redContrastEnhancement()
    return enhancement.minimumValue(), enhancement.maximumValue()


def test_a_rerun_into_the_loaded_output_is_read_afresh_in_a_new_top_level_group(plugin, sample_layers, sample_paths,
                                                                                tmp_path):
    """processing.runAndLoadResults (the toolbox's "Open output file") into the file of a result already loaded:
    Processing gives back the loaded layer, which is styled from the new pixels, in a group beside (not inside)
    the earlier one; that group keeps the maps the new run left alone (it writes its own into another folder)."""
    from pathlib import Path

    import processing
    from qgis.core import QgsLayerTreeGroup, QgsProject, QgsRasterLayer

    from stf_qgis_plugin.styling import style_fused

    root = QgsProject.instance().layerTreeRoot()
    out, maps = tmp_path / "fused.tif", str(tmp_path / "maps")
    processing.runAndLoadResults("stf:fuse", fuse_parameters(sample_paths, out, ERROR_MAPS=maps,
                                                             TRUTH=sample_paths["truth"]))
    [loaded] = [layer for layer in QgsProject.instance().mapLayers().values() if layer.source() == str(out)]
    before = red_stretch(loaded)
    processing.runAndLoadResults("stf:fuse", fuse_parameters(sample_paths, out, ERROR_MAPS=str(tmp_path / "cubic_maps"),
                                                             METHOD="cubic"))
    new, old = [node for node in root.children() if node.name().startswith("Fusion ")]
    assert new.name().startswith("Fusion cubic ") and root.children()[0] is new
    assert not [node for node in new.children() if isinstance(node, QgsLayerTreeGroup)]
    assert new.findLayers()[0].layer() is loaded and loaded.name() == "fused (cubic)"
    fresh = QgsRasterLayer(str(out), "fresh")
    style_fused(fresh)
    assert red_stretch(loaded) == red_stretch(fresh) != before
    assert sorted(Path(node.layer().source()).stem for node in old.findLayers()) == sorted(
        path.stem for path in Path(maps).glob("*.tif"))
