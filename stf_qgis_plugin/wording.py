"""The engine's messages in the front ends' words: some name command-line flags (`--weights`, `--coarse-res`, …),
which mean nothing in the dialog or in Processing; there they name the dialog's fields or the algorithm's
parameters instead (or, for what has no field or parameter, what to do in QGIS)."""
from __future__ import annotations

import re
from typing import Dict, Tuple

Terms = Tuple[Tuple[str, str], ...]
"""(pattern in an engine message, what a front end shows instead), applied in this order."""

SCALE_VALUE = r"(?:[a-z_-]+=)?[0-9][0-9.e:+-]*"
"""The value an engine message may give the --scale flag, e.g. 'fine=2.75e-5:-0.2'."""
SCALE = rf"--scale(?: {SCALE_VALUE})?"
"""The --scale flag, with its value when the message gives one."""
OVERWRITE = r"--overwrite\b"
OVERWRITE_FIELD = "Series → 'Overwrite the dates already fused'"
"""The dialog's checkbox for --overwrite."""
OVERWRITE_PARAMETER = "'Fuse again the dates already in the output folder' (OVERWRITE)"
"""stf:fuse_series's parameter for --overwrite (a checkbox)."""
REARRANGE_BANDS = "Processing → GDAL → Raster conversion → Rearrange bands"
SCALE_IN_METADATA = (
    "for reflectance ×10000: gdal_edit.py -scale 0.0001, or GDAL's Translate with the extra option -a_scale 0.0001"
)


def bands_terms(no_field: str) -> Terms:
    """--bands, which no front end has a field for (`no_field` says so): a copy of the coarse raster with the right
    bands."""
    return (
        (r"with --bands \(e\.g\. --bands ([\d,]+)\)",
         rf"in a copy of the coarse raster, e.g. bands \1 ({no_field}: {REARRANGE_BANDS} makes the copy)"),
        (r"with --bands ([\d,]+)",
         rf"in a copy of the coarse raster with bands \1 ({no_field}: {REARRANGE_BANDS} makes the copy)"),
        (r"--bands(?: [\d,]+)?", f"a copy of the coarse raster with the fine reference's bands ({no_field}: "
                                 f"{REARRANGE_BANDS})"),
        (r"(a copy of the fine reference with only the \d+ bands? the [a-z ]+ has)",
         rf"\1 ({REARRANGE_BANDS} makes it)"),
    )


def scales_terms(field: str) -> Terms:
    """--scale where the front end has a field for it (`field`): the value a message gives is what to enter there
    ("set --scale fine=2.75e-5:-0.2" → "set 'Scales' to fine=2.75e-5:-0.2")."""
    return (
        (rf"--scale ({SCALE_VALUE})", rf"{field} to \1"),
        (r"--scale\b", field),
    )


SHARED_TERMS: Terms = (
    (r"--method (\w+)", r"the method '\1'"),
    (r"--lr\b", "the training's learning rate (QGIS takes the engine's default)"),
    (r"--seed\b", "the training's random seed (QGIS takes the engine's default)"),
    (r"--val-fraction(?: \(validation_fraction\))?", "the training's held-out share (QGIS takes the engine's default)"),
    (r"--patience\b", "the training's early-stopping patience (QGIS takes the engine's default)"),
    (r"--coarse-shift\b", "the coarse rasters' shift (QGIS gives none)"),
    (r"assign one to the file, e\.g\. gdal_edit\.py -a_srs EPSG:\d+ \(the EPSG code of its projection\)",
     "assign one to the file with Raster → Projections → Assign Projection (a CRS set only on the layer in QGIS "
     "does not reach the file the fusion reads)"),
)
"""What both front ends say alike (a method by name, what neither has a field for); applied before their own
terms."""
SERIES_HALO: Terms = (
    (r"\(--halo\)", "(a series run takes the method's receptive radius)"),
    (r"--halo\b", "the halo (a series run takes the method's receptive radius)"),
)
"""A series run has no halo to set, in either front end."""

DIALOG_TERMS: Terms = (
    (r"add --error-maps DIR", "tick 'Write error maps'"),
    (r"--error-maps(?: DIR)?", "'Write error maps'"),
    (r"--truth\b", "the 'Truth' layer"),
    (r"--weights\b", "'Weights file'"),
    (r"`stf train`", "'Train on these layers first' (or Processing's stf:train)"),
    (r"--coarse-res\b", "Advanced → 'Real coarse pixel size'"),
    (r"--coarse-ref\b", "the 'Coarse reference' layer"),
    (r"--pan\b", "the 'Pan band' layer"),
    (r"--fine2\b", "the 'Second fine reference' layer"),
    (r"--coarse-ref2\b", "the 'Second coarse reference' layer"),
    (r"--tile (\d+)", r"a tile size of \1 (Advanced → 'Tile size')"),
    (r"--tile\b", "Advanced → 'Tile size'"),
    (r"--halo\b", "Advanced → 'Halo'"),
    (r"--batch\b", "Advanced → 'Batch'"),
    (r"--threads\b", "Advanced → 'CPU threads'"),
    (r"--option\b", "Advanced → 'Method options'"),
    (r"--workers\b", "Processing's WORKERS parameter (the dialog runs on no Dask cluster)"),
    (r"--scheduler\b", "Processing's SCHEDULER parameter (the dialog runs on no Dask cluster)"),
    (r"--uncertainty\b", "'Uncertainty map'"),
    (r"--epochs\b", "the training 'Epochs'"),
    (r"--patch\b", "the training 'Patch'"),
    (r"--minutes\b", "the training 'Time budget'"),
    (r"--steps(?: \(steps_per_epoch\))?", "the training's steps per epoch (the dialog takes the engine's default)"),
    (r"--series\b", "a series (the dialog trains on its layers; Processing's stf:train takes a SERIES)"),
    (r"--device\b", "'Device'"),
    (r"--max-gap\b", "Series → 'Max gap'"),
    (r"--date-batch\b", "Processing's DATE_BATCH parameter (the dialog has no such field)"),
    (r"--from\b", "Series → 'From'"),
    (r"--to\b", "Series → 'To'"),
    (rf"add {OVERWRITE}", f"tick {OVERWRITE_FIELD}"),
    (rf"run again without {OVERWRITE}", f"untick {OVERWRITE_FIELD} and run again"),
    (OVERWRITE, OVERWRITE_FIELD),
    (r"--method\b", "'Method'"),
    *bands_terms("the dialog has no band field"),
    *scales_terms("'Scales'"),
)
"""The one mapping from command-line flags to the dialog's fields."""
SERIES_TERMS: Terms = (
    *SERIES_HALO,
    *scales_terms("Series → 'Scales'"),
)
"""Where the Series mode's fields differ from the single-date form's (or it has none); applied before
DIALOG_TERMS."""

DATE_BATCH = "'Dates with the same references fused together' (DATE_BATCH)"
"""stf:fuse_series's parameter for --date-batch."""
PROCESSING_TERMS: Terms = (
    (r"add --error-maps DIR", "set 'Error maps folder' (ERROR_MAPS)"),
    (r"--error-maps(?: DIR)?", "'Error maps folder' (ERROR_MAPS)"),
    (r"--truth\b", "'Truth: fine image at the target date' (TRUTH)"),
    (r"--weights\b", "'Weights file' (WEIGHTS)"),
    (r"`stf train`", "'Train a deep model' (stf:train)"),
    (r"--coarse-res\b", "'Real coarse pixel size in fine-grid units' (COARSE_RESOLUTION)"),
    (r"--coarse-ref\b", "'Coarse image at the reference date' (COARSE_REFERENCE)"),
    (r"--pan\b", "'Panchromatic band at the target date' (PAN)"),
    (r"--fine2\b", "'Second fine image' (FINE_REFERENCE_2)"),
    (r"--coarse-ref2\b", "'Coarse image at the second fine image's date' (COARSE_REFERENCE_2)"),
    (r"--coarse(?![\w-])", "'Coarse image at the target date' (COARSE)"),
    (r"--ratio\b", "'Coarse/fine pixel-size ratio for ERGAS' (RATIO)"),
    (r"set --data-range to choose another",
     "stf:evaluate takes no other: with a scale in the rasters' metadata that makes them reflectance it is 1; "
     f"{SCALE_IN_METADATA}"),
    (r"--data-range\b", "the PSNR and SSIM peak (stf:evaluate takes 1 for reflectance, else the truth's range)"),
    (r"--tile (\d+)", r"a 'Tile size in pixels' (TILE_SIZE) of \1"),
    (r"--tile\b", "'Tile size in pixels' (TILE_SIZE)"),
    (r"--halo\b", "'Halo in pixels' (HALO)"),
    (r"--batch\b", "'Tiles per batch' (BATCH)"),
    (r"--threads\b", "'CPU threads' (THREADS)"),
    (r"--option\b", "'Method options' (OPTIONS)"),
    (r"--workers\b", "'Dask local worker processes' (WORKERS)"),
    (r"--scheduler\b", "'Dask scheduler address' (SCHEDULER)"),
    (r"--uncertainty\b", "'Also write the uncertainty map' (UNCERTAINTY)"),
    (r"--epochs\b", "'Epochs' (EPOCHS)"),
    (r"--patch\b", "'Patch size in pixels' (PATCH)"),
    (r"--minutes\b", "'Time budget in minutes' (MINUTES)"),
    (r"--steps(?: \(steps_per_epoch\))?", "'Steps per epoch' (STEPS)"),
    (r"--series\b", "'Series' (SERIES)"),
    (r"--device\b", "'Device' (DEVICE)"),
    (r"--max-gap\b", "'Days a fine reference may lie from the date it predicts' (MAX_GAP)"),
    (r"--date-batch\b", DATE_BATCH),
    (r"--from\b", "'First date' (DATE_FROM)"),
    (r"--to\b", "'Last date' (DATE_TO)"),
    (rf"add {OVERWRITE}", f"set {OVERWRITE_PARAMETER}"),
    (rf"run again without {OVERWRITE}", f"run again with {OVERWRITE_PARAMETER} unset"),
    (OVERWRITE, OVERWRITE_PARAMETER),
    (r"--method\b", "'Method' (METHOD)"),
    *bands_terms("no algorithm here has a band parameter"),
    *scales_terms("'Scales to reflectance' (SCALES)"),
)
"""The one mapping from command-line flags to the Processing algorithms' parameters: each as its description (or
the description's start) and its name."""
WEIGHTS_FILE = r"\bweights file(?! \(--weights\))"
"""The checkpoint an engine message names as a file (not where it also names --weights), e.g. 'weights file not
found: m.pt'."""
OTHER_CHECKPOINT = r"(?<=' checkpoint; )use the method '(\w+)' or other weights"
"""A checkpoint of another model, after SHARED_TERMS named the method ('use --method edcstfn …')."""
ALGORITHM_TERMS: Dict[str, Terms] = {
    "fuse": (
        (WEIGHTS_FILE, "'Weights file' (WEIGHTS)"),
        (OTHER_CHECKPOINT, r"set 'Method' (METHOD) to \1, or give other 'Weights file' (WEIGHTS)"),
        (r"\bthe error[- ]maps folder\b", "the 'Error maps folder' (ERROR_MAPS)"),
        (r"\bthe output\b", "the 'Fused raster' (OUTPUT)"),
    ),
    "train": (
        (r"--batch\b", "'Patches per step' (BATCH)"),
        (WEIGHTS_FILE, "'Resume from checkpoint' (RESUME)"),
        (OTHER_CHECKPOINT, r"set 'Model' (MODEL) to \1, or resume from another checkpoint (RESUME)"),
        (r"needs a coarse target and a fine reference",
         "needs a 'Coarse image at the target date' (COARSE_TARGET) and a 'Fine image at a reference date' "
         "(FINE_REFERENCE)"),
    ),
    "fuse_series": SERIES_HALO,
    "evaluate": (
        (SCALE, f"a scale in the raster's metadata (this algorithm has no scale parameter; {SCALE_IN_METADATA})"),
        (r"\bthe report folder\b", "the 'Report folder' (OUTPUT_FOLDER)"),
    ),
}
"""Where an algorithm's parameters differ from PROCESSING_TERMS (by the algorithm's name), and the parameters of
what its engine messages name as a file or a concept ('the output', 'weights file'); applied before them."""


def translated(text: str, terms: Terms) -> str:
    """`text` with every pattern of `terms` replaced, in their order."""
    for pattern, replacement in terms:
        text = re.sub(pattern, replacement, text)
    return text


def in_dialog_terms(text: str, series: bool = False) -> str:
    """An engine message as the dialog and the message bar show it (`series`: about a series run)."""
    return translated(text, (*SHARED_TERMS, *(SERIES_TERMS if series else ()), *DIALOG_TERMS))


def in_processing_terms(text: str, algorithm: str = "") -> str:
    """An engine message as a Processing algorithm (by its name, e.g. 'fuse_series') reports it."""
    return translated(text, (*SHARED_TERMS, *ALGORITHM_TERMS.get(algorithm, ()), *PROCESSING_TERMS))
