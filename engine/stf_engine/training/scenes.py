"""Training scenes: aligned input arrays with the fine truth they should predict, read whole into memory."""
from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np
import rasterio
from rasterio.windows import Window

from ..inputs.aligned import Alignment, open_inputs
from ..raster.grid import Grid
from .request import TrainingRequest

GDAL_CACHE_BYTES = 128 * 2**20


@dataclass
class Scene:
    """Inputs by role and the target, all (C, H, W) float32 reflectance on one grid, plus where all hold data."""

    inputs: Dict[str, np.ndarray]
    target: np.ndarray
    valid: np.ndarray
    label: str

    @property
    def shape(self) -> Tuple[int, int]:
        return self.valid.shape

    def rows(self, start: int, stop: int) -> "Scene":
        """The rows [start, stop) of every array (views, no copy)."""
        return Scene(
            {role: array[:, start:stop] for role, array in self.inputs.items()},
            self.target[:, start:stop],
            self.valid[start:stop],
            self.label,
        )


@dataclass
class Aligned:
    """One set of rasters read whole on the fine grid."""

    arrays: Dict[str, np.ndarray]
    valid: np.ndarray
    grid: Grid
    ratio: int
    band_names: Tuple[Optional[str], ...]
    warnings: List[str]


def read_aligned(given: Dict[str, str], request: TrainingRequest, resampling: str) -> Aligned:
    """Read every given role whole, aligned as `stf fuse` would (same bands, scales and resampling)."""
    alignment = Alignment(
        bands=request.bands,
        scales=dict(request.scales),
        coarse_resolution=request.coarse_resolution,
        resampling=resampling,
    )
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES), ExitStack() as stack:
        inputs = open_inputs(given, alignment, stack)
        window = Window(0, 0, inputs.grid.width, inputs.grid.height)
        arrays, valid = {}, np.ones((inputs.grid.height, inputs.grid.width), bool)
        for role, reader in inputs.readers.items():
            arrays[role], mask = reader.read(window)
            valid &= mask
        return Aligned(arrays, valid, inputs.grid, inputs.ratio, inputs.fine.descriptions, list(inputs.warnings))


MIN_ROWS = 8
"""Rows each side of a split keeps at least (when the scene has them): the smallest patch worth a network."""


def split_rows(scenes: List[Scene], fraction: float) -> Tuple[List[Scene], List[Scene]]:
    """Hold out for validation the bottom rows of each scene that hold `fraction` of its valid pixels (MIN_ROWS
    each side where possible). Rows below the last one with data are left out of both parts: a nodata strip along
    the bottom would otherwise be all the held-out part has. A scene without nodata splits as a plain share of its
    rows would, as it always has."""
    train, validation = [], []
    for scene in scenes:
        stop, held = _held_rows(scene.valid, fraction)
        train.append(scene.rows(0, stop - held))
        validation.append(scene.rows(stop - held, stop))
    return train, validation


def _held_rows(valid: np.ndarray, fraction: float) -> Tuple[int, int]:
    """(the rows kept: up to the last with data, or all when none has any; how many of them, at the bottom, hold
    `fraction` of the valid pixels). The share wanted is that of `fraction` of the rows rounded to a whole row, so
    that equal rows (no nodata) give that row count exactly."""
    per_row = valid.sum(axis=1)
    height = len(per_row)
    with_data = np.flatnonzero(per_row)
    stop = int(with_data[-1]) + 1 if len(with_data) else height
    wanted = int(per_row.sum()) * int(round(height * fraction)) / height
    rows = int(np.searchsorted(np.cumsum(per_row[:stop][::-1]), wanted)) + 1 if wanted else 0
    return stop, min(max(1, stop - MIN_ROWS), max(min(MIN_ROWS, stop // 2), rows))
