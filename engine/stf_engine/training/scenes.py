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
    """Hold out the last `fraction` of each scene's rows for validation (MIN_ROWS each side where possible)."""
    train, validation = [], []
    for scene in scenes:
        height = scene.shape[0]
        held = min(max(1, height - MIN_ROWS), max(min(MIN_ROWS, height // 2), int(round(height * fraction))))
        train.append(scene.rows(0, height - held))
        validation.append(scene.rows(height - held, height))
    return train, validation
