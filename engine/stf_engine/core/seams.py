"""Seam measures (SS-STFM): error along tile borders compared with the error everywhere."""
from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np

SEAM_HALF_WIDTH = 2
"""Pixels taken on each side of a border: the two rows/columns before it and the two from it on."""

Borders = Tuple[Sequence[int], Sequence[int]]


def seam_mask_window(row: int, col: int, height: int, width: int, borders: Borders) -> np.ndarray:
    """The part of the whole raster's seam mask covering a height×width window at (row, col)."""
    rows, cols = borders
    mask = np.zeros((height, width), dtype=bool)
    for border in rows:
        mask[max(0, border - SEAM_HALF_WIDTH - row) : max(0, border + SEAM_HALF_WIDTH - row), :] = True
    for border in cols:
        mask[:, max(0, border - SEAM_HALF_WIDTH - col) : max(0, border + SEAM_HALF_WIDTH - col)] = True
    return mask


def seam_mask(height: int, width: int, borders: Borders) -> np.ndarray:
    """True on the pixel rows/columns within SEAM_HALF_WIDTH of every tile border."""
    return seam_mask_window(0, 0, height, width, borders)


def seam_ratio(prediction: np.ndarray, truth: np.ndarray, valid: np.ndarray, borders: Borders) -> float:
    """RMSE on the seam pixels divided by RMSE over all valid pixels ((C, H, W) arrays, (H, W) mask)."""
    seams = seam_mask(*valid.shape, borders) & valid
    if not seams.any():
        raise ValueError("no valid pixels on the given tile borders")
    squared = (prediction.astype(np.float64) - truth) ** 2
    return float(np.sqrt(squared[:, seams].mean()) / np.sqrt(squared[:, valid].mean()))
