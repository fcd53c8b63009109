"""The run's working rasters on the fine grid (restored coarse and fine images, reference ages): float32
reflectance with NaN as nodata, written once and read by many dates, removed with the run's work folder."""
from __future__ import annotations

import os
import shutil
from contextlib import ExitStack
from typing import Callable

import numpy as np
import rasterio
from rasterio.windows import Window

from ..core.recent import MAX_OPEN, RecentlyOpened
from ..raster.grid import Grid
from ..raster.writer import GeoTiffWriter, PendingOutputs, remove_left_partials

WORK_PREFIX = ".stf-series-"
"""How a run's work folder inside the output folder is named (then a random part)."""


class WorkRasters:
    """Named float32 rasters in one folder: `create` inside a PendingOutputs, `read` any window afterwards."""

    def __init__(self, folder: str, grid: Grid, stack: ExitStack, limit: int = MAX_OPEN):
        """`limit`: rasters kept open at once (the scene's `open_limit`)."""
        self.folder, self.grid = folder, grid
        self._open = stack.enter_context(RecentlyOpened(limit))

    def path(self, name: str) -> str:
        return os.path.join(self.folder, f"{name}.tif")

    def create(self, outputs: PendingOutputs, name: str, count: int) -> GeoTiffWriter:
        return outputs.create(self.path(name), self.grid, count, "float32", float("nan"))

    def read(self, name: str, window: Window) -> np.ndarray:
        dataset = self._open.get(name, lambda stack: stack.enter_context(rasterio.open(self.path(name))))
        return dataset.read(window=window)

    def remove(self, name: str) -> None:
        """Close the raster if it is open, then delete it."""
        self._open.discard(name)
        os.remove(self.path(name))

    def preview(self, name: str, max_side: int = 512) -> np.ndarray:
        """A decimated (nearest) read of the whole raster, for scene statistics in bounded memory."""
        step = max(1, -(-max(self.grid.width, self.grid.height) // max_side))
        with rasterio.open(self.path(name)) as dataset:
            shape = (dataset.count, max(1, self.grid.height // step), max(1, self.grid.width // step))
            return dataset.read(out_shape=shape)


def remove_left_work(output_dir: str, is_output: Callable[[str], bool]) -> None:
    """Remove what runs killed outright (SIGKILL, power loss: no cleanup ran) left in the output folder: their work
    folders and the hidden partial files of the outputs `is_output` names (by file name). Call it holding the
    output folder's lock only: a run writes these while it holds that lock and removes them before letting go, so
    with the lock held no live run owns one."""
    for name in os.listdir(output_dir):
        path = os.path.join(output_dir, name)
        if name.startswith(WORK_PREFIX) and os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
    remove_left_partials(output_dir, is_output)
