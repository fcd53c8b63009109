"""Resolving `--method auto`: read a bounded window of the scene, score the candidates there, name the winner."""
from __future__ import annotations

from contextlib import ExitStack
from typing import Optional, Tuple

import numpy as np
from rasterio.windows import Window

from ..core.progress import Progress, Ticker
from ..methods.auto import Choice, candidates, score
from ..models import checkpoint
from ..inputs.aligned import open_inputs
from .request import FusionRequest

MAX_SIDE = 2048
"""Side of the central window (fine pixels) the validation reads: bounded time and memory on any scene."""


def choose(request: FusionRequest, spec, progress: Progress, ticker: Ticker) -> Tuple[Choice, Tuple[float, float]]:
    """The method `auto` runs for this request, with every candidate's score, and the coarse rasters' shift the
    validation used (registered here when asked, on the reference date's pair when given), which the run reuses
    rather than register again; a pick that reads no coarse reference would have registered on the target date."""
    with ExitStack() as stack:
        paths = {role: path for role, path in request.inputs().items() if spec.accepts(role)}
        inputs = open_inputs(paths, request.alignment("bilinear"), stack, progress, ticker.cancel)
        grid, ratio = inputs.grid, inputs.ratio
        height, width = (min(side, MAX_SIDE) // ratio * ratio or side for side in (grid.height, grid.width))
        row = (grid.height - height) // 2 // ratio * ratio
        col = (grid.width - width) // 2 // ratio * ratio
        window = Window(col, row, width, height)
        arrays, valid = {}, np.ones((height, width), bool)
        for role, reader in inputs.readers.items():
            arrays[role], mask = reader.read(window)
            valid &= mask
        shift = inputs.coarse_shift
    deep = _model_of(request.weights)
    progress(0.0, "auto: validating the candidate methods on the scene")
    ticker.span(0.0, 1.0, "auto: validating")
    return score(arrays, valid, ratio, candidates(list(arrays), request.weights, deep), {}, request.weights,
                 ticker), shift


def _model_of(weights: Optional[str]) -> Optional[str]:
    return checkpoint.load(weights).meta["model"] if weights else None
