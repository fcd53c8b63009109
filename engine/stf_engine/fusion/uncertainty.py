"""Uncertainty maps: the per-pixel spread of predictions that should agree but need not.

- Learned models (methods that need weights): test-time augmentation over the dihedral group D4. Each
  tile's inputs are flipped/rotated, the tile function runs, the output is turned back; a model that
  learned the physics rather than the orientation gives the same answer, so disagreement marks pixels
  it is unsure of. Works for any tile function.
- Classic methods are (nearly) equivariant to flips and, with the full halo, blind to the tiling, so
  D4 or a plain tile shift would show nothing. Their spread is taken instead under cut spatial
  context: runs with half the halo on tiles of 2·halo (at least 16 px), the tile grid shifted
  diagonally by 0, ¼, ½ and ¾ of a tile (so each pixel sees cuts at several distances and the map
  shows little of where one grid happens to fall), compared with the full-context output. Pixels
  whose value depends on far neighbours (heterogeneous areas, changes near edges) spread; where the
  neighbourhood is uniform, or the method is pixel-wise (halo 0), the spread is 0.

The map is the root mean square over bands of the per-band population standard deviation.
"""
from __future__ import annotations

import dataclasses
from typing import List, Optional

import numpy as np
import rasterio
import torch
from rasterio.windows import Window

from ..core import tiling
from ..core.progress import Cancel
from ..methods.contract import TileBatch
from .check import Plan
from .predict import TileFunction, predict_tiles, written_parts

D4 = [(rotations, flip) for flip in (False, True) for rotations in range(4)]
MIN_CONTEXT_TILE = 16
SHIFTS = 4


def is_learned(spec) -> bool:
    """Learned models are the methods that load weights."""
    return bool(spec is not None and spec.needs_weights)


def d4_transform(x: torch.Tensor, rotations: int, flip: bool) -> torch.Tensor:
    """Flip (left-right) then rotate by rotations·90° in the last two dimensions."""
    if flip:
        x = torch.flip(x, dims=(-1,))
    return torch.rot90(x, rotations, dims=(-2, -1))


def d4_inverse(x: torch.Tensor, rotations: int, flip: bool) -> torch.Tensor:
    x = torch.rot90(x, -rotations, dims=(-2, -1))
    return torch.flip(x, dims=(-1,)) if flip else x


def d4_spread(tile_function: TileFunction, batch: TileBatch) -> torch.Tensor:
    """(B, C, H, W) standard deviation over the 8 D4 views of one batch of tiles."""
    views = []
    for rotations, flip in D4:
        turned = dataclasses.replace(
            batch, **{name: d4_transform(value, rotations, flip) for name, value in batch.tensors().items()}
        )
        views.append(d4_inverse(tile_function(turned).float(), rotations, flip))
    return torch.stack(views).std(dim=0, unbiased=False)


def context_tiles(window: Window, size: int, offset: int, height: int, width: int) -> List[tiling.Tile]:
    """Tiles of a size×size grid shifted by `offset` that cover the window, cores kept inside the raster."""

    def spans(start: int, stop: int, length: int) -> List[tiling.Span]:
        core = min(size, length)
        first = offset + ((start - offset) // size) * size
        return [
            tiling.Span(min(max(s, 0), length - core), core, max(s, start), min(s + size, stop))
            for s in range(first, stop, size)
        ]

    row, col = int(window.row_off), int(window.col_off)
    rows = spans(row, row + int(window.height), height)
    cols = spans(col, col + int(window.width), width)
    return [tiling.Tile(r, c) for r in rows for c in cols]


class UncertaintyEstimator:
    """Spread of the prediction per output window, by D4 views or by truncated context (see module doc)."""

    def __init__(self, plan: Plan, method: TileFunction):
        self.plan, self.method = plan, method
        self.halo = plan.halo
        self.learned = is_learned(plan.spec)
        self.context = max(MIN_CONTEXT_TILE, 2 * plan.halo)

    def offsets(self):
        """Grid offsets of the cut-context runs: SHIFTS evenly spaced fractions of a tile, diagonally."""
        return sorted({round(k * self.context / SHIFTS) for k in range(SHIFTS)})

    def describe(self) -> str:
        if self.learned:
            return "spread (RMS over bands of the std) of the prediction over the 8 flips/rotations (D4) of the inputs"
        return (
            f"spread (RMS over bands of the std) of the prediction when its spatial context is cut: full halo vs "
            f"halo {self.halo // 2} on {self.context}-pixel tiles, grid offsets {', '.join(map(str, self.offsets()))}"
        )

    def spread(self, fused: rasterio.io.DatasetReader, tile: tiling.Tile, cancel: Optional[Cancel] = None):
        """(h, w) float32 spread over the part of `tile` it writes; NaN where the output is nodata."""
        rows, cols = tile.rows, tile.cols
        window = Window(cols.write_start, rows.write_start, cols.write_stop - cols.write_start,
                        rows.write_stop - rows.write_start)
        valid = np.all(fused.read_masks(window=window) > 0, axis=0)
        if self.learned:
            per_band = self._d4(tile, cancel)
        else:
            members = [self.plan.inputs.fine.units.to_reflectance(fused.read(window=window))]
            members += [self._with_context(window, offset, cancel) for offset in self.offsets()]
            per_band = np.std(np.stack(members), axis=0)
        spread = np.sqrt(np.mean(per_band.astype(np.float32) ** 2, axis=0))
        return np.where(valid, spread, np.nan).astype(np.float32)

    def _predict(self, tiles, halo: int, batch: int, method: TileFunction, cancel):
        plan = self.plan  # read as the run read, so every view sees the same inputs
        return predict_tiles(plan.inputs, method, tiles, halo, batch, plan.device, plan.request.precision, cancel)

    def _d4(self, tile: tiling.Tile, cancel) -> np.ndarray:
        spread = lambda batch: d4_spread(self.method, batch)  # noqa: E731
        for predicted in self._predict([tile], self.halo, 1, spread, cancel):
            return next(written_parts(predicted, self.halo))[1]

    def _with_context(self, window: Window, offset: int, cancel) -> np.ndarray:
        """The prediction over `window` from small tiles with half the halo, grid shifted by `offset`."""
        halo = self.halo // 2
        grid = self.plan.inputs.grid
        out = np.zeros((self.plan.inputs.bands, int(window.height), int(window.width)), dtype=np.float32)
        tiles = context_tiles(window, self.context, offset, grid.height, grid.width)
        batch = max(1, self.plan.request.batch) * 4
        for predicted in self._predict(tiles, halo, batch, self.method, cancel):
            for tile, part, _ in written_parts(predicted, halo):
                r0 = tile.rows.write_start - int(window.row_off)
                c0 = tile.cols.write_start - int(window.col_off)
                out[:, r0 : r0 + part.shape[1], c0 : c0 + part.shape[2]] = part
        return out
