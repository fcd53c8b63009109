"""The coarse pixels as r×r blocks of the fine grid, anchored at its (0, 0), seen from inside one haloed tile.

A tile knows where its first pixel lies on the fine grid (`TileBatch.origins`), so block statistics computed
inside a tile are those of the whole raster's blocks: with a halo of at least one block, tiled equals whole.
"""
from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F

from ..core.psf import normalised


def block_pad(origin: Tuple[int, int], ratio: int) -> Tuple[int, int]:
    """Rows and columns before the tile's first pixel back to the start of its block."""
    return origin[0] % ratio, origin[1] % ratio


def block_means(image: torch.Tensor, valid: torch.Tensor, ratio: int, origin: Tuple[int, int]):
    """Mean of the valid pixels of each block touching a (C, H, W) tile: ((C, hb, wb), counts (hb, wb))."""
    top, left = block_pad(origin, ratio)
    height, width = image.shape[-2:]
    bottom = (-(top + height)) % ratio
    right = (-(left + width)) % ratio
    weights = F.pad(valid.to(image.dtype)[None], (left, right, top, bottom))
    values = F.pad(image * valid.to(image.dtype), (left, right, top, bottom))
    sums = F.avg_pool2d(values[None], ratio, divisor_override=1)[0]
    counts = F.avg_pool2d(weights[None], ratio, divisor_override=1)[0, 0]
    return sums / counts.clamp_min(1.0), counts


def expand(blocks: torch.Tensor, ratio: int, origin: Tuple[int, int], shape) -> torch.Tensor:
    """Block values back onto the tile's (H, W) pixels (each pixel takes its block's value)."""
    top, left = block_pad(origin, ratio)
    grown = blocks.repeat_interleave(ratio, dim=-2).repeat_interleave(ratio, dim=-1)
    return grown[..., top : top + shape[0], left : left + shape[1]]


def interpolate(blocks: torch.Tensor, present: torch.Tensor, ratio: int, origin: Tuple[int, int], shape
                ) -> torch.Tensor:
    """(C, hb, wb) block values interpolated bilinearly between the centres of the `present` ((hb, wb)) blocks onto
    the tile's (H, W) pixels: a block without data acts like the raster's edge, its value is never mixed in."""
    top, left = block_pad(origin, ratio)
    grow = lambda t: F.interpolate(t, scale_factor=ratio, mode="bilinear", align_corners=False)  # noqa: E731
    grown = normalised(grow, blocks[None], present[None, None])[0]
    return grown[..., top : top + shape[0], left : left + shape[1]]
