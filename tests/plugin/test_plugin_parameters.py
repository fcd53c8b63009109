"""How the Processing algorithms read their parameters: NULL and blank optional values mean unset, numbers are not
cut, OPTIONS may be a mapping, enum names in any case, outputs without an extension get the default one; the checks
before the run build the engine's request; progress texts are set when they change."""
from __future__ import annotations

import re

import pytest

from helpers.paths import WEIGHTS

pytest.importorskip("qgis")


def fuse_parameters(sample_paths, output, **changes):
    """stf:fuse of the sample with delta on the CPU into `output`, with `changes`."""
    return {"COARSE_TARGET": sample_paths["coarse_target"], "FINE_REFERENCE": sample_paths["fine_reference"],
            "COARSE_REFERENCE": sample_paths["coarse_reference"], "METHOD": "delta", "DEVICE": "cpu",
            "OUTPUT": str(output), **changes}


@pytest.fixture
def captured(plugin, monkeypatch):
    """The requests the algorithms hand to the engine's fuse and train, which then refuse them ('captured')."""
    engine, requests = plugin.status.engine, []

    def refuse(request, **kwargs):
        requests.append(request)
        raise engine.StfError("captured")

    for name in ("fuse", "train"):
        monkeypatch.setattr(engine, name, refuse)
    return requests


def null():
    """QGIS NULL, what qgis_process passes for `HALO=`."""
    from qgis.core import NULL

    return NULL


OPTIONAL_FUSE = ("HALO", "COARSE_RESOLUTION", "THREADS", "WORKERS", "SCALES", "OPTIONS", "WEIGHTS", "ERROR_MAPS",
                 "SCHEDULER", "PAN")
"""stf:fuse's optional parameters a request field takes."""
FIELDS = ("halo", "coarse_resolution", "threads", "workers", "scales", "options", "weights", "error_maps_dir",
          "scheduler", "pan")


@pytest.mark.parametrize("given", [null, lambda: "", lambda: "  "], ids=["NULL", "empty", "blank"])
def test_an_optional_parameter_given_null_or_blank_is_unset(plugin, sample_paths, tmp_path, captured, given):
    """qgis_process passes NULL for `HALO=`: like leaving HALO out, the method's radius, not 0 (tile seams)."""
    import processing
    from qgis.core import QgsProcessingException

    for parameters in (fuse_parameters(sample_paths, tmp_path / "f.tif", METHOD="starfm"),
                       fuse_parameters(sample_paths, tmp_path / "f.tif", METHOD="starfm",
                                       **{key: given() for key in OPTIONAL_FUSE})):
        with pytest.raises(QgsProcessingException, match="captured"):
            processing.run("stf:fuse", parameters)
    left_out, unset = ({field: getattr(request, field) for field in FIELDS} for request in captured)
    assert unset == left_out == {**dict.fromkeys(FIELDS), "scales": {}, "options": {}}
    training = {"MODEL": "ganstfm", "COARSE_TARGET": sample_paths["coarse_target"], "STEPS": given(),
                "FINE_REFERENCE": sample_paths["fine_reference"], "COARSE_RESOLUTION": 250, "DEVICE": "cpu",
                "THREADS": given(), "SCALES": given(), "RESUME": given(), "OUTPUT": str(tmp_path / "m.pt")}
    with pytest.raises(QgsProcessingException, match="captured"):
        processing.run("stf:train", training)
    request = captured[-1]
    assert (request.steps_per_epoch, request.threads, request.resume, request.scales) == (None, None, None, {})


@pytest.mark.parametrize("key, value, named", [
    ("HALO", 2.5, r"'Halo in pixels' \(HALO\) must be at least 0, a whole number; got 2.5"),
    ("THREADS", 1.5, r"'CPU threads' \(THREADS\) must be at least 1, a whole number; got 1.5"),
    ("TILE_SIZE", 64.7, r"'Tile size in pixels' \(TILE_SIZE\) must be at least 0, a whole number; got 64.7"),
    ("TILE_SIZE", 8, r"'Tile size in pixels' \(TILE_SIZE\) must be 0 \(the whole raster\) or at least 16"),
    ("HALO", "abc", r"'Halo in pixels' \(HALO\): expected a number"),
    ("COARSE_RESOLUTION", 0, r"\(COARSE_RESOLUTION\) must be a finite number > 0"),
])
def test_the_check_before_the_run_refuses_what_the_request_refuses(plugin, sample_paths, tmp_path, captured, key,
                                                                   value, named):
    """checkParameterValues builds the engine's request: a fraction for an integer (which Processing would cut) or a
    number out of range is refused there, naming the parameter, so that a model stops before its first step."""
    from qgis.core import QgsApplication, QgsProcessingContext

    algorithm = QgsApplication.processingRegistry().createAlgorithmById("stf:fuse")
    ok, message = algorithm.checkParameterValues(fuse_parameters(sample_paths, tmp_path / "f.tif", **{key: value}),
                                                 QgsProcessingContext())
    assert not ok and re.search(named, message), message
    assert captured == [] and not (tmp_path / "f.tif").exists()


@pytest.mark.parametrize("changes, named", [
    ({"TRUTH": "truth"}, r"needs a folder for the error maps: set 'Error maps folder' \(ERROR_MAPS\)"),
    ({"WEIGHTS": "weights"}, r"method 'delta' takes no 'Weights file' \(WEIGHTS\)"),
    ({"OUTPUT": "fine_reference"}, r"the 'Fused raster' \(OUTPUT\) would overwrite the fine reference"),
    ({"COARSE_REFERENCE": "coarse_target"}, r"the coarse target and the coarse reference are the same file"),
    ({"METHOD": "estarfm"}, r"method 'estarfm' needs a second fine reference"),
    ({"METHOD": "edcstfn", "WEIGHTS": "weights"}, r"'Weights file' \(WEIGHTS\) .*w\.pt is not a checkpoint STF wrote: "
                                                  r"the file is empty"),
    ({"METHOD": "ganstfm", "WEIGHTS": "edcstfn_weights"}, r"edcstfn\.pt is a 'edcstfn' checkpoint"),
])
def test_the_check_before_the_run_refuses_what_the_fusion_refuses_without_reading_a_pixel(
        plugin, sample_paths, tmp_path, captured, changes, named):
    """The engine's check of the settings (check_settings): a model stops at its check, not at this step's run."""
    from qgis.core import QgsApplication, QgsProcessingContext

    weights = tmp_path / "w.pt"
    weights.write_bytes(b"")
    shipped = str(WEIGHTS / "edcstfn.pt")
    files = {**sample_paths, "weights": str(weights), "edcstfn_weights": shipped,
             **{method: method for method in ("estarfm", "edcstfn", "ganstfm")}}
    parameters = fuse_parameters(sample_paths, tmp_path / "f.tif", **{key: files[role] for key, role in changes.items()})
    algorithm = QgsApplication.processingRegistry().createAlgorithmById("stf:fuse")
    ok, message = algorithm.checkParameterValues(parameters, QgsProcessingContext())
    assert not ok and re.search(named, message), message
    assert captured == []


def test_the_training_check_refuses_self_mode_without_its_layers_naming_them(plugin, tmp_path):
    from qgis.core import QgsApplication, QgsProcessingContext

    algorithm = QgsApplication.processingRegistry().createAlgorithmById("stf:train")
    ok, message = algorithm.checkParameterValues({"MODEL": "edcstfn", "MODE": "self", "OUTPUT": str(tmp_path / "m.pt")},
                                                 QgsProcessingContext())
    assert not ok and "(COARSE_TARGET)" in message and "(FINE_REFERENCE)" in message, message


def test_the_check_passes_temporary_outputs_and_layers_and_registers_nothing_to_load(plugin, sample_layers,
                                                                                       sample_paths):
    """Layers by id, a temporary output given as Processing's output definition (as the toolbox gives it) pass; the
    check names no file for Processing to load (the run does, with its own temporary name)."""
    from qgis.core import QgsApplication, QgsProcessingContext, QgsProcessingOutputLayerDefinition, QgsProject

    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    layers = {key: sample_layers[role].id() for key, role in (("COARSE_TARGET", "coarse_target"),
                                                               ("FINE_REFERENCE", "fine_reference"))}
    output = QgsProcessingOutputLayerDefinition("TEMPORARY_OUTPUT", QgsProject.instance())
    parameters = {**fuse_parameters(sample_paths, "", OUTPUT=output, ERROR_MAPS="TEMPORARY_OUTPUT"), **layers}
    algorithm = QgsApplication.processingRegistry().createAlgorithmById("stf:fuse")
    assert algorithm.checkParameterValues(parameters, context) == (True, "")
    assert context.layersToLoadOnCompletion() == {}


def test_options_given_as_a_mapping_are_its_key_value_pairs(plugin, sample_paths, tmp_path, captured):
    """From Python, OPTIONS={"window": 15} is window=15 (Processing reads a mapping as empty text: the defaults)."""
    import processing
    from qgis.core import QgsProcessingException

    with pytest.raises(QgsProcessingException, match="captured"):
        processing.run("stf:fuse", fuse_parameters(sample_paths, tmp_path / "f.tif", METHOD="starfm",
                                                   OPTIONS={"window": 15}))
    assert captured[-1].options == {"window": 15}
    with pytest.raises(QgsProcessingException, match=r"\(OPTIONS\): unknown option 'bogus'"):
        processing.run("stf:fuse", fuse_parameters(sample_paths, tmp_path / "f.tif", METHOD="starfm",
                                                   OPTIONS={"bogus": 1}))


def test_enum_names_in_another_case_and_outputs_without_an_extension(plugin, sample_paths, tmp_path, captured):
    """METHOD 'STARFM' and MODEL 'MARSTFN' are the options; an output named without an extension gets the
    parameter's default one (.tif, .pt), as QGIS's raster algorithms do."""
    import processing
    from qgis.core import QgsProcessingException

    with pytest.raises(QgsProcessingException, match="captured"):
        processing.run("stf:fuse", fuse_parameters(sample_paths, tmp_path / "fused", METHOD="STARFM"))
    with pytest.raises(QgsProcessingException, match="captured"):
        processing.run("stf:train", {"MODEL": "MARSTFN", "COARSE_TARGET": sample_paths["coarse_target"],
                                     "FINE_REFERENCE": sample_paths["fine_reference"], "COARSE_RESOLUTION": 250,
                                     "DEVICE": "cpu", "OUTPUT": str(tmp_path / "model")})
    assert [(type(r).__name__, getattr(r, "method", getattr(r, "model", None)), r.output) for r in captured] == [
        ("FusionRequest", "starfm", str(tmp_path / "fused.tif")),
        ("TrainingRequest", "marstfn", str(tmp_path / "model.pt")),
    ]


def test_a_progress_text_is_set_only_when_it_changes(plugin):
    """The toolbox log and qgis_process print every text set: a tile's text once, not once per tick."""
    from qgis.core import QgsProcessingFeedback

    from stf_qgis_plugin.algorithms.common import engine_callbacks

    class Texts(QgsProcessingFeedback):
        def __init__(self):
            super().__init__()
            self.texts = []

        def setProgressText(self, text):  # noqa: N802
            self.texts.append(text)

    feedback = Texts()
    progress, _ = engine_callbacks(feedback)
    for fraction, text in ((0.1, "tile 1/2"), (0.2, "tile 1/2"), (0.3, "tile 1/2"), (0.6, "tile 2/2"), (1, "tile 2/2")):
        progress(fraction, text)
    assert feedback.texts == ["tile 1/2", "tile 2/2"]
    assert feedback.progress() == 100
