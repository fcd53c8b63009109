"""One input raster brought onto the fine grid and read by windows as float32 reflectance plus a mask."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np
import rasterio
from rasterio.enums import MaskFlags, Resampling
from rasterio.transform import Affine
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from .errors import StfError
from .grid import Grid, resolution_in

DEFAULT_INTEGER_SCALE = 1e-4
"""Integer rasters are taken as reflectance ×10000 unless their metadata or the user says otherwise."""


@dataclass(frozen=True)
class Units:
    """value_reflectance = stored * scale + offset."""

    scale: float
    offset: float = 0.0

    def to_reflectance(self, stored: np.ndarray) -> np.ndarray:
        out = stored.astype(np.float32, copy=False) * np.float32(self.scale)
        if self.offset:
            out += np.float32(self.offset)
        return out

    def to_stored(self, reflectance: np.ndarray) -> np.ndarray:
        return (reflectance - np.float32(self.offset)) / np.float32(self.scale)


def units_of(dataset, override: Optional[float] = None) -> Units:
    """Scale from the user, else from the raster's scale/offset metadata, else by dtype (integer → 1e-4)."""
    if override is not None:
        return Units(float(override))
    scales, offsets = dataset.scales or (1.0,), dataset.offsets or (0.0,)
    if any(s not in (None, 1.0) for s in scales) or any(o not in (None, 0.0) for o in offsets):
        return Units(float(scales[0] or 1.0), float(offsets[0] or 0.0))
    if np.issubdtype(np.dtype(dataset.dtypes[0]), np.integer):
        return Units(DEFAULT_INTEGER_SCALE)
    return Units(1.0)


def open_raster(path: str, label: str):
    """Open a raster with a one-line error naming its role when it is missing or unreadable."""
    try:
        return rasterio.open(path)
    except rasterio.errors.RasterioIOError as exc:
        reason = "file not found" if "No such file" in str(exc) else "not a readable raster"
        raise StfError(f"{label}: {reason}: {path}") from None


def choose_resampling(grid: Grid, dataset, upsampling: str) -> Resampling:
    """Averaging when the input is finer than the grid, the requested interpolation otherwise."""
    if resolution_in(grid, dataset) < grid.resolution * 0.99:
        return Resampling.average
    try:
        return Resampling[upsampling]
    except KeyError:
        raise StfError(f"unknown resampling '{upsampling}'") from None


class AlignedRaster:
    """Reads any window of the fine grid from one input, warping on the fly when its grid differs.

    Windows may reach outside the raster: those pixels are filled by reflection so that a tile's halo
    sees the same values a whole-raster run would.
    """

    def __init__(
        self,
        dataset,
        label: str,
        grid: Grid,
        units: Units,
        bands: Optional[Sequence[int]] = None,
        resampling: Resampling = Resampling.bilinear,
        shift: Tuple[float, float] = (0.0, 0.0),
    ):
        """`shift` (map units, x then y) moves this input's georeference to correct a misregistration."""
        self.label = label
        self.grid = grid
        self.units = units
        self.dataset = dataset
        self.bands = list(bands) if bands else list(range(1, dataset.count + 1))
        bad = [b for b in self.bands if not 1 <= b <= dataset.count]
        if bad:
            raise StfError(f"{label} has {dataset.count} bands; band(s) {bad} do not exist")
        if grid.same_as(dataset) and shift == (0.0, 0.0):
            self.source = dataset
        else:
            self.source = WarpedVRT(
                dataset,
                src_transform=Affine.translation(*shift) * dataset.transform,
                crs=grid.crs,
                transform=grid.transform,
                width=grid.width,
                height=grid.height,
                resampling=resampling,
                add_alpha=dataset.nodata is None and not _has_mask(dataset),
            )
        self.nodata = dataset.nodata

    @property
    def count(self) -> int:
        return len(self.bands)

    def close(self) -> None:
        """Close the warped view, if any; the dataset stays with whoever opened it."""
        if self.source is not self.dataset:
            self.source.close()

    def read(self, window: Window) -> Tuple[np.ndarray, np.ndarray]:
        """(data (C, h, w) float32 reflectance, valid (h, w) bool) inside the grid."""
        stored = self.source.read(self.bands, window=window)
        masks = self.source.read_masks(self.bands, window=window)
        valid = np.all(masks > 0, axis=0)
        data = self.units.to_reflectance(stored)
        finite = np.isfinite(data).all(axis=0)
        if not finite[valid].all():
            raise StfError(
                f"{self.label} holds NaN or infinite values that are not marked as nodata "
                f"(near row {int(window.row_off)}, column {int(window.col_off)}); set its nodata value"
            )
        data[:, ~valid] = 0.0
        return data, valid

    def read_padded(self, row: int, col: int, height: int, width: int) -> Tuple[np.ndarray, np.ndarray]:
        """Like `read`, for a window that may extend past the grid's edges (reflect padding)."""
        r0, c0 = max(row, 0), max(col, 0)
        r1, c1 = min(row + height, self.grid.height), min(col + width, self.grid.width)
        data, valid = self.read(Window(c0, r0, c1 - c0, r1 - r0))
        pads = ((r0 - row, row + height - r1), (c0 - col, col + width - c1))
        if any(p for pair in pads for p in pair):
            data = np.pad(data, ((0, 0),) + pads, mode="reflect")
            valid = np.pad(valid, pads, mode="reflect")
        return data, valid

    def preview(self, max_side: int = 512) -> Tuple[np.ndarray, np.ndarray]:
        """A decimated read of the whole grid, for statistics and sanity checks in bounded memory."""
        step = max(1, -(-max(self.grid.width, self.grid.height) // max_side))
        shape = (self.count, max(1, self.grid.height // step), max(1, self.grid.width // step))
        stored = self.source.read(self.bands, out_shape=shape, resampling=Resampling.nearest)
        masks = self.source.read_masks(self.bands, out_shape=shape, resampling=Resampling.nearest)
        data = self.units.to_reflectance(stored)
        valid = np.all(masks > 0, axis=0) & np.isfinite(data).all(axis=0)
        return data, valid


def _has_mask(dataset) -> bool:
    return any(MaskFlags.per_dataset in flags or MaskFlags.alpha in flags for flags in dataset.mask_flag_enums)
