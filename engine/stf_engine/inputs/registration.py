"""Co-registration of coarse and fine rasters: the translation that best lines their content up.

Coarse products are often georeferenced a few fine pixels off the fine sensor (the bundled MODIS grid sits
about 5.5 Landsat pixels away). The fine reference, blurred to the coarse resolution, is cross-correlated
with a coarse raster of the same date on the fine grid; the correlation peak (refined to sub-pixel by a
parabola) gives the offset to add to the coarse georeference.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np
import torch
from rasterio.windows import Window

from ..core.psf import simulate_coarse
from ..raster.reader import AlignedRaster

MAX_SIDE = 1024


def estimate_offset(fine: AlignedRaster, coarse: AlignedRaster, ratio: int, search: int) -> Tuple[float, float]:
    """(dx, dy) in fine pixels (east, south) by which the coarse content must move to match the fine."""
    grid = fine.grid
    height, width = min(grid.height, MAX_SIDE), min(grid.width, MAX_SIDE)
    window = Window((grid.width - width) // 2, (grid.height - height) // 2, width, height)
    fine_data, fine_valid = fine.read(window)
    coarse_data, coarse_valid = coarse.read(window)
    blurred = simulate_coarse(torch.from_numpy(fine_data)[None], ratio)[0].numpy()
    valid = fine_valid & coarse_valid
    correlation = _cross_correlation(_standardise(blurred, valid), _standardise(coarse_data, valid))
    dy, dx = _peak(correlation, search)
    return dx, dy


def _standardise(image: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Band-averaged z-scores, zero outside valid pixels, tapered by a Hann window against edge effects."""
    mean_band = np.mean([(band - band[valid].mean()) / (band[valid].std() or 1.0) for band in image], axis=0)
    taper = np.outer(np.hanning(image.shape[1]), np.hanning(image.shape[2]))
    return np.where(valid, mean_band, 0.0) * taper


def _cross_correlation(reference: np.ndarray, moving: np.ndarray) -> np.ndarray:
    """Circular cross-correlation; entry (y, x) scores reference(p + (y, x)) against moving(p)."""
    shape = [2 * n for n in reference.shape]
    spectrum = np.fft.rfft2(reference, shape) * np.conj(np.fft.rfft2(moving, shape))
    return np.fft.irfft2(spectrum, shape)


def _peak(correlation: np.ndarray, search: int) -> Tuple[float, float]:
    """Location of the highest correlation within ±search pixels, refined by a parabola on each axis."""
    shifted = np.fft.fftshift(correlation)
    cy, cx = shifted.shape[0] // 2, shifted.shape[1] // 2
    region = shifted[cy - search : cy + search + 1, cx - search : cx + search + 1]
    py, px = np.unravel_index(np.argmax(region), region.shape)

    def refine(before: float, at: float, after: float) -> float:
        curvature = before - 2 * at + after
        return 0.0 if curvature >= 0 else 0.5 * (before - after) / curvature

    y = py - search + (refine(*region[py - 1 : py + 2, px]) if 0 < py < region.shape[0] - 1 else 0.0)
    x = px - search + (refine(*region[py, px - 1 : px + 2]) if 0 < px < region.shape[1] - 1 else 0.0)
    return float(y), float(x)
