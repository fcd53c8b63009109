"""Hann-weighted overlap-add of haloed tiles, for networks whose output depends on the whole tile.

Each tile's prediction over its full read window is weighted by a separable window that rises as
sin² over the first 2·halo pixels and falls over the last 2·halo, so two neighbours' weights sum to one
where they overlap; sums and weights are kept only for the rows later tiles can still reach.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

from .tiling import Tile, clip

Store = Callable[[int, np.ndarray, np.ndarray], None]
"""store(first_row, reflectance (C, h, width), valid (h, width)) writes finished full-width rows."""


def hann_ramp(length: int, halo: int) -> np.ndarray:
    """1-D weights, positive everywhere: sin² ramps over 2·halo pixels at both ends, 1 in between."""
    index = np.arange(length, dtype=np.float64)
    overlap = max(1, 2 * halo)
    rise = np.sin(np.pi * np.minimum(index + 0.5, overlap) / (2 * overlap)) ** 2
    return np.minimum(rise, rise[::-1]).astype(np.float32)


class TileBlender:
    """Accumulates weighted tile predictions in row-major tile order and stores rows once complete."""

    def __init__(self, store: Store, height: int, width: int, bands: int, halo: int):
        self.store, self.height, self.width, self.halo = store, height, width, halo
        self.start = 0
        self.sums = np.zeros((bands, 0, width), np.float32)
        self.weights = np.zeros((0, width), np.float32)
        self.valid = np.zeros((0, width), bool)

    def add(self, group: Sequence[Tile], predicted: torch.Tensor, valid: torch.Tensor) -> None:
        predicted, valid = predicted.cpu().numpy(), valid.cpu().numpy()
        for index, tile in enumerate(group):
            row, col, height, width = tile.read_window(self.halo)
            inside = clip(row, col, height, width, self.height, self.width)
            self._flush(inside.row)
            self._grow(inside.row + inside.height)
            weight = np.outer(hann_ramp(height, self.halo), hann_ramp(width, self.halo))
            (top, _), (left, _) = inside.pads
            part = (slice(top, top + inside.height), slice(left, left + inside.width))
            rows = slice(inside.row - self.start, inside.row + inside.height - self.start)
            cols = slice(inside.col, inside.col + inside.width)
            self.sums[:, rows, cols] += predicted[index][(slice(None), *part)] * weight[part]
            self.weights[rows, cols] += weight[part]
            self.valid[rows, cols] |= valid[index, 0][part]

    def finish(self) -> None:
        self._flush(self.height)

    def _grow(self, stop: int) -> None:
        extra = stop - self.start - self.weights.shape[0]
        if extra > 0:
            self.sums = np.concatenate([self.sums, np.zeros((self.sums.shape[0], extra, self.width), np.float32)], 1)
            self.weights = np.concatenate([self.weights, np.zeros((extra, self.width), np.float32)])
            self.valid = np.concatenate([self.valid, np.zeros((extra, self.width), bool)])

    def _flush(self, stop: int) -> None:
        count = min(stop - self.start, self.weights.shape[0])
        if count <= 0:
            return
        values = self.sums[:, :count] / np.maximum(self.weights[:count], np.float32(1e-12))
        self.store(self.start, values, self.valid[:count])
        self.sums, self.weights, self.valid = self.sums[:, count:], self.weights[count:], self.valid[count:]
        self.start += count

