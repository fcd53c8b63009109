"""The engine's messages in the dialog's words: some name command-line flags (`--weights`, `--coarse-res`, …),
which mean nothing in the dialog; there they name the dialog's fields instead (or, for what the dialog has no
field for, what to do in QGIS)."""
from __future__ import annotations

import re

DIALOG_TERMS = (
    # (pattern in an engine message, what the dialog shows instead); applied in this order
    (r"\(--error-maps DIR; ([^;()]*) in the dialog;[^()]*\)", r"(\1)"),  # the engine already names the dialog's way
    (r"--error-maps(?: DIR)?", "'Write error maps'"),
    (r"--weights\b", "'Weights file'"),
    (r"`stf train`", "'Train on these layers first' (or Processing's stf:train)"),
    (r"--coarse-res\b", "Advanced → 'Real coarse pixel size'"),
    (r"--tile\b", "Advanced → 'Tile size'"),
    (r"--halo\b", "Advanced → 'Halo'"),
    (r"--batch\b", "Advanced → 'Batch'"),
    (r"--threads\b", "Advanced → 'CPU threads'"),
    (r"--option\b", "Advanced → 'Method options'"),
    (r"--uncertainty\b", "'Uncertainty map'"),
    (r"--epochs\b", "the training 'Epochs'"),
    (r"--patch\b", "the training 'Patch'"),
    (r"--minutes\b", "the training 'Time budget'"),
    (r"--device\b", "'Device'"),
    (r"--max-gap\b", "Series → 'Max gap'"),
    (r"--from\b", "Series → 'From'"),
    (r"--to\b", "Series → 'To'"),
    (r"--overwrite\b", "Series → 'Overwrite the dates already fused'"),
    (r"--method (\w+)", r"the method '\1'"),
    (r"--method\b", "'Method'"),
    (r"with --bands \(e\.g\. --bands ([\d,]+)\)",
     r"in a copy of the coarse raster, e.g. bands \1 (the dialog has no band field: Processing → GDAL → Raster "
     r"conversion → Rearrange bands makes the copy)"),
    (r"--bands(?: [\d,]+)?",
     "a copy of the coarse raster with the fine reference's bands (Processing → GDAL → Rearrange bands; the dialog "
     "has no band field)"),
    (r"--scale(?: (?:[a-z_-]+=)?[0-9][0-9.e+-]*)?",
     "a scale in the raster's metadata (the dialog has no scale field; for reflectance ×10000: gdal_edit.py -scale "
     "0.0001, or GDAL's Translate with the extra option -a_scale 0.0001)"),
)
"""The one mapping from command-line flags to the dialog's fields."""
SERIES_TERMS = (
    (r"--scale(?: (?:[a-z_-]+=)?[0-9][0-9.e:+-]*)?", "Series → 'Scales'"),
)
"""What the Series mode has a field for where the single-date form has none; applied before DIALOG_TERMS."""


def in_dialog_terms(text: str, series: bool = False) -> str:
    """An engine message as the dialog and the message bar show it (`series`: about a series run)."""
    for pattern, replacement in (*SERIES_TERMS, *DIALOG_TERMS) if series else DIALOG_TERMS:
        text = re.sub(pattern, replacement, text)
    return text
