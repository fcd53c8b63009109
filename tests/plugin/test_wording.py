"""Engine messages in the front ends' words: every command-line flag an engine message can name becomes a dialog
field or a Processing parameter (or what to do in QGIS), and the parameters Processing's wording names exist."""
from __future__ import annotations

import ast
import re
from typing import Iterator, List

import pytest

from helpers.paths import ENGINE
from stf_qgis_plugin.wording import ALGORITHM_TERMS, PROCESSING_TERMS, in_dialog_terms, in_processing_terms

FLAG = re.compile(r"--[a-z][a-z0-9-]*")
ALGORITHMS = ("fuse", "fuse_series", "train", "evaluate")
NOT_IN_THE_DIALOG = ("cli", "evaluation")
"""Engine packages whose messages the dialog never shows: the command line's own, and the evaluation's (which is
Processing's stf:evaluate only)."""


def literals(tree: ast.AST) -> Iterator[str]:
    """Every string literal of a module but its docstrings (an f-string with '{}' for each value it formats)."""
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Expr):
            skipped.add(id(node.value))  # a docstring (of a module, class, function or attribute)
        elif isinstance(node, ast.JoinedStr):
            skipped.update(id(part) for part in ast.walk(node) if part is not node)
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.value
        elif isinstance(node, ast.JoinedStr):
            yield "".join(part.value if isinstance(part, ast.Constant) else "{}" for part in node.values)


def engine_messages(skipped_packages=("cli",)) -> List[str]:
    """The engine's string literals that name a command-line flag, outside `skipped_packages`."""
    messages = []
    for path in sorted(ENGINE.rglob("*.py")):
        if path.relative_to(ENGINE).parts[0] in skipped_packages:
            continue
        messages += [text for text in literals(ast.parse(path.read_text(encoding="utf-8"))) if FLAG.search(text)]
    return messages


def test_the_scan_finds_the_flags_of_engine_messages():
    """The scan sees messages (f-strings and implicitly joined literals too) and no docstring."""
    flags = {flag for message in engine_messages() for flag in FLAG.findall(message)}
    assert {"--workers", "--scheduler", "--coarse-res", "--tile", "--bands", "--fine2", "--coarse-ref2"} <= flags
    assert not [message for message in engine_messages() if "`--method auto`" in message]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_no_flag_survives_in_processing_terms(algorithm):
    left = {message: FLAG.findall(in_processing_terms(message, algorithm)) for message in engine_messages()}
    assert {message: flags for message, flags in left.items() if flags} == {}


@pytest.mark.parametrize("series", [False, True])
def test_no_flag_survives_in_dialog_terms(series):
    left = {message: FLAG.findall(in_dialog_terms(message, series)) for message in engine_messages(NOT_IN_THE_DIALOG)}
    assert {message: flags for message, flags in left.items() if flags} == {}


@pytest.mark.parametrize("engine_says, fuse_shows, series_shows", [
    ("give either --workers (a local Dask cluster) or --scheduler (a running one), not both",
     "give either 'Dask local worker processes' (WORKERS) (a local Dask cluster) or 'Dask scheduler address' "
     "(SCHEDULER) (a running one), not both", None),
    ("give its real pixel size (--coarse-res)",
     "give its real pixel size ('Real coarse pixel size in fine-grid units' (COARSE_RESOLUTION))", None),
    ("--truth needs a folder for the error maps: add --error-maps DIR",
     "'Truth: fine image at the target date' (TRUTH) needs a folder for the error maps: set 'Error maps folder' "
     "(ERROR_MAPS)", None),
    ("reorder with --bands 2,1,3: c.tif", "reorder in a copy of the coarse raster with bands 2,1,3 (no algorithm "
     "here has a band parameter: Processing → GDAL → Raster conversion → Rearrange bands makes the copy): c.tif", None),
    ("needs a weights file (--weights); train one with `stf train`",
     "needs a weights file ('Weights file' (WEIGHTS)); train one with 'Train a deep model' (stf:train)", None),
    ("use --method marstfn or other weights", "use the method 'marstfn' or other weights", None),
    ("check units and set --scale", "check units and set 'Scales to reflectance' (SCALES)", None),
    ("lower the halo (--halo), the tile size (--tile) or the batch (--batch)",
     "lower the halo ('Halo in pixels' (HALO)), the tile size ('Tile size in pixels' (TILE_SIZE)) or the batch "
     "('Tiles per batch' (BATCH))",
     "lower the halo (a series run takes the method's receptive radius), the tile size ('Tile size in pixels' "
     "(TILE_SIZE)) or the batch ('Tiles per batch' (BATCH))"),
])
def test_flags_map_to_the_algorithms_parameters(engine_says, fuse_shows, series_shows):
    """The same flag is one parameter in every algorithm, unless stf:fuse_series has another (or none: its halo)."""
    assert in_processing_terms(engine_says, "fuse").startswith(fuse_shows)
    assert in_processing_terms(engine_says, "fuse_series").startswith(series_shows or fuse_shows)


C2_ADVICE = ("if it is Landsat Collection 2 Level-2, set --scale fine=2.75e-5:-0.2 for its surface reflectance or "
             "fine=0.00341802:149 for its surface temperature (kelvin), else its own scale: f.tif")
"""The engine's advice for integers with no scale that read as more than reflectance can be."""
SCALES_FIELDS = {
    "the dialog": ("'Scales'", lambda text: in_dialog_terms(text)),
    "its Series mode": ("Series → 'Scales'", lambda text: in_dialog_terms(text, series=True)),
    **{f"stf:{name}": ("'Scales to reflectance' (SCALES)", lambda text, name=name: in_processing_terms(text, name))
       for name in ("fuse", "train", "fuse_series")},
}
"""Each front end with a field for the scales: (the field as its messages name it, its wording)."""


def test_a_scale_the_engine_advises_is_what_to_enter_in_each_front_ends_scales_field():
    """"set --scale fine=2.75e-5:-0.2" names the field and keeps the value to enter there; stf:evaluate, which has
    no scale parameter, still says what to do in QGIS instead."""
    assert [m for m in engine_messages() if "Level-2, set --scale {}=2.75e-5:-0.2 for its surface reflectance or "
            "{}=0.00341802:149 for its surface temperature (kelvin), else its own scale" in m]
    shown = {front_end: (said(C2_ADVICE), said("check units and set --scale"))
             for front_end, (_, said) in SCALES_FIELDS.items()}
    assert shown == {front_end: (C2_ADVICE.replace("--scale", f"{field} to"), f"check units and set {field}")
                     for front_end, (field, _) in SCALES_FIELDS.items()}
    assert in_processing_terms("check their units and set --scale truth=1e-4 if the truth holds reflectance",
                               "evaluate") == (
        "check their units and set a scale in the raster's metadata (this algorithm has no scale parameter; for "
        "reflectance ×10000: gdal_edit.py -scale 0.0001, or GDAL's Translate with the extra option -a_scale 0.0001) "
        "if the truth holds reflectance")


def test_the_parameters_the_processing_wording_names_exist(plugin):
    """Each "'description' (NAME)" is a parameter of an stf algorithm (of stf:fuse_series for its own terms) whose
    description starts so: a renamed or reworded parameter must change its entry too."""
    from qgis.core import QgsApplication

    provider = QgsApplication.processingRegistry().providerById("stf")
    named = re.compile(r"'(.+?)' \(([A-Z][A-Z0-9_]*)\)")
    wording = {"": PROCESSING_TERMS, **ALGORITHM_TERMS}
    missing = []
    for name, terms in wording.items():
        algorithms = [provider.algorithm(name)] if name else provider.algorithms()
        for description, key in (found for _, replacement in terms for found in named.findall(replacement)):
            definitions = [algorithm.parameterDefinition(key) for algorithm in algorithms]
            if not any(d is not None and d.description().startswith(description) for d in definitions):
                missing.append(f"{name or 'any'}: '{description}' ({key})")
    assert len(named.findall(" ".join(r for _, r in PROCESSING_TERMS))) > 20
    assert missing == []


@pytest.mark.parametrize("engine_says, dialog_shows", [
    ("--truth needs a folder for the error maps: add --error-maps DIR",
     "the 'Truth' layer needs a folder for the error maps: tick 'Write error maps'"),
    ("--truth and --uncertainty need a folder for the error maps: add --error-maps DIR",
     "the 'Truth' layer and 'Uncertainty map' need a folder for the error maps: tick 'Write error maps'"),
    ("reorder with --bands 2,1,3: c.tif", "reorder in a copy of the coarse raster with bands 2,1,3 (the dialog has "
     "no band field: Processing → GDAL → Raster conversion → Rearrange bands makes the copy): c.tif"),
    ("used other settings; add --overwrite to fuse them again with these",
     "used other settings; tick Series → 'Overwrite the dates already fused' to fuse them again with these"),
    ("nothing partial was left; run again without --overwrite to fuse the 2 unfinished",
     "nothing partial was left; untick Series → 'Overwrite the dates already fused' and run again to fuse the 2 "
     "unfinished"),
])
def test_flags_map_to_the_dialogs_fields(engine_says, dialog_shows):
    """What to add or tick in the dialog, where the engine names the command line's flags."""
    assert in_dialog_terms(engine_says) == dialog_shows


@pytest.mark.parametrize("engine_says, shown", [
    ("used other settings; add --overwrite to fuse them again with these",
     "used other settings; set 'Fuse again the dates already in the output folder' (OVERWRITE) to fuse them again "
     "with these"),
    ("nothing partial was left; run again without --overwrite to fuse the 2 unfinished",
     "nothing partial was left; run again with 'Fuse again the dates already in the output folder' (OVERWRITE) "
     "unset to fuse the 2 unfinished"),
])
def test_overwrite_is_a_checkbox_to_set_in_processing(engine_says, shown):
    """stf:fuse_series's OVERWRITE is a checkbox: set (or unset) it, nothing to "add"."""
    assert in_processing_terms(engine_says, "fuse_series") == shown


@pytest.mark.parametrize("algorithm, engine_says, shown", [
    ("fuse", "method 'delta' takes no weights file; leave it out or pick a deep model",
     "method 'delta' takes no 'Weights file' (WEIGHTS); leave it out or pick a deep model"),
    ("fuse", "weights file not found: /x.pt", "'Weights file' (WEIGHTS) not found: /x.pt"),
    ("train", "weights file not found: /x.pt", "'Resume from checkpoint' (RESUME) not found: /x.pt"),
    ("fuse", "/m.pt is a 'edcstfn' checkpoint; use --method edcstfn or other weights",
     "/m.pt is a 'edcstfn' checkpoint; set 'Method' (METHOD) to edcstfn, or give other 'Weights file' (WEIGHTS)"),
    ("train", "/m.pt is a 'edcstfn' checkpoint; use --method edcstfn or other weights",
     "/m.pt is a 'edcstfn' checkpoint; set 'Model' (MODEL) to edcstfn, or resume from another checkpoint (RESUME)"),
    ("fuse", "the error-maps folder /m is a file; give a folder",
     "the 'Error maps folder' (ERROR_MAPS) /m is a file; give a folder"),
    ("fuse", "the output is written as a GeoTIFF: give it a name ending in .tif, not /o.vrt",
     "the 'Fused raster' (OUTPUT) is written as a GeoTIFF: give it a name ending in .tif, not /o.vrt"),
    ("train", "self-training needs a coarse target and a fine reference",
     "self-training needs a 'Coarse image at the target date' (COARSE_TARGET) and a 'Fine image at a reference "
     "date' (FINE_REFERENCE)"),
    ("evaluate", "the report folder /r is a file; give a folder",
     "the 'Report folder' (OUTPUT_FOLDER) /r is a file; give a folder"),
])
def test_what_an_engine_message_names_as_a_file_or_a_concept_names_the_parameter(algorithm, engine_says, shown):
    """Where the engine names no flag but a file or a concept, the algorithm's message names the parameter too."""
    assert in_processing_terms(engine_says, algorithm) == shown


def test_a_raster_without_a_crs_is_given_one_in_qgis_in_both_front_ends():
    """A CRS set on a QGIS layer stays in QGIS; the engine reads the file, and QGIS's tool writes it there."""
    from stf_engine.raster.grid import no_crs

    said = no_crs("fine reference", "/data/f.tif")
    for shown in (in_dialog_terms(said), in_processing_terms(said, "fuse")):
        assert shown == ("fine reference has no coordinate reference system; assign one to the file with Raster → "
                         "Projections → Assign Projection (a CRS set only on the layer in QGIS does not reach the file "
                         "the fusion reads): /data/f.tif")
