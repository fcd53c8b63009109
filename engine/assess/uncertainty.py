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

from typing import Callable, List

import numpy as np
import rasterio
import torch
from rasterio.windows import Window

from .. import roles, tiling
from ..device import autocast
from ..registry import TileBatch

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


def d4_spread(tile_function: Callable[[TileBatch], torch.Tensor], batch: TileBatch) -> torch.Tensor:
    """(B, C, H, W) standard deviation over the 8 D4 views of one batch of tiles."""
    views = []
    for rotations, flip in D4:
        turned = TileBatch(
            **{
                name: None if value is None else d4_transform(value, rotations, flip)
                for name, value in vars(batch).items()
            }
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

    def __init__(self, inputs, request, spec, tile_function, halo: int, device):
        self.inputs, self.request, self.device = inputs, request, device
        self.tile_function, self.halo = tile_function, halo
        self.learned = is_learned(spec)
        self.context = max(MIN_CONTEXT_TILE, 2 * halo)

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

    def spread(self, fused: rasterio.io.DatasetReader, tile: tiling.Tile) -> np.ndarray:
        """(h, w) float32 spread over the part of `tile` it writes; NaN where the output is nodata."""
        rows, cols = tile.rows, tile.cols
        window = Window(cols.write_start, rows.write_start, cols.write_stop - cols.write_start,
                        rows.write_stop - rows.write_start)
        valid = np.all(fused.read_masks(window=window) > 0, axis=0)
        if self.learned:
            per_band = self._d4(tile)
        else:
            members = [self.inputs.fine.units.to_reflectance(fused.read(window=window))]
            members += [self._with_context(window, offset) for offset in self.offsets()]
            per_band = np.std(np.stack(members), axis=0)
        spread = np.sqrt(np.mean(per_band.astype(np.float32) ** 2, axis=0))
        return np.where(valid, spread, np.nan).astype(np.float32)

    def _read(self, group, halo: int) -> TileBatch:
        return self.inputs.read_batch(group, halo, self.device)  # as the run read, so every view sees the same

    def _d4(self, tile: tiling.Tile) -> np.ndarray:
        batch = self._read([tile], self.halo)
        with torch.inference_mode(), autocast(self.device, self.request.precision):
            spread = d4_spread(self.tile_function, batch)[0].cpu().numpy()
        return _crop(spread, tile, self.halo)

    def _with_context(self, window: Window, offset: int) -> np.ndarray:
        """The prediction over `window` from small tiles with half the halo, grid shifted by `offset`."""
        halo = self.halo // 2
        height, width = int(window.height), int(window.width)
        out = np.zeros((self.inputs.readers[roles.FINE_REFERENCE].count, height, width), dtype=np.float32)
        tiles = context_tiles(window, self.context, offset, self.inputs.grid.height, self.inputs.grid.width)
        for group in tiling.batches(tiles, max(1, self.request.batch) * 4):
            batch = self._read(group, halo)
            with torch.inference_mode(), autocast(self.device, self.request.precision):
                predicted = self.tile_function(batch).float().cpu().numpy()
            for index, tile in enumerate(group):
                r0 = tile.rows.write_start - int(window.row_off)
                c0 = tile.cols.write_start - int(window.col_off)
                part = _crop(predicted[index], tile, halo)
                out[:, r0 : r0 + part.shape[1], c0 : c0 + part.shape[2]] = part
        return out


def _crop(predicted: np.ndarray, tile: tiling.Tile, halo: int) -> np.ndarray:
    """The written part of one tile's (C, H+2·halo, W+2·halo) prediction."""
    rows, cols = tile.rows, tile.cols
    r0 = halo + rows.write_start - rows.core_start
    c0 = halo + cols.write_start - cols.core_start
    return predicted[:, r0 : r0 + rows.write_stop - rows.write_start, c0 : c0 + cols.write_stop - cols.write_start]
