"""Wald's reduced-resolution protocol for one scene: degrade every input by the coarse/fine ratio and learn
to predict the coarse target from the degraded inputs; the network is then applied at full resolution."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .. import roles
from ..core.blocks import block_mean
from ..errors import StfError
from .scenes import Aligned, Scene

MIN_SIDE = 16
"""Reduced-scene pixels per side the Wald factor leaves at least (when the scene allows); below 2·8 it refuses."""
COARSE_SHARE = 0.5
"""The share of a reduced scene's coarse block that must hold data for its pixels to be learnt from."""
INTERPOLATION = {"cubic": "bicubic", "bilinear": "bilinear", "nearest": "nearest"}


def _held(valid: np.ndarray, ratio: int, share: float) -> np.ndarray:
    """True for r×r blocks in which at least `share` of the pixels hold data."""
    fraction, _ = block_mean(valid[None].astype(np.float32), np.ones_like(valid), ratio)
    return fraction[0] >= share - 1e-6


def _coarsened(reduced: np.ndarray, valid: np.ndarray, ratio: int) -> np.ndarray:
    """Block means of the valid pixels; a block without any takes the mean of those with data, so that upsampling
    blends no zeros into its neighbours."""
    means, has_data = block_mean(reduced, valid, ratio)
    if has_data.any() and not has_data.all():
        means[:, ~has_data] = means[:, has_data].mean(axis=1, keepdims=True)
    return means


def _upsample(image: np.ndarray, size, mode: str) -> np.ndarray:
    tensor = torch.from_numpy(np.ascontiguousarray(image))[None]
    kwargs = {} if mode == "nearest" else {"align_corners": False}
    return F.interpolate(tensor, size=size, mode=mode, **kwargs)[0].numpy()


def wald_factor(height: int, width: int, ratio: int) -> int:
    """The degradation factor for a height×width fine scene: the coarse/fine ratio, made smaller on small scenes
    so that the reduced scene keeps MIN_SIDE pixels a side (never below 2); StfError when the ratio or the scene
    is too small for self-training."""
    if ratio < 2:
        raise StfError(
            "self-training needs a coarse/fine ratio of at least 2; if the coarse raster was resampled to the "
            "fine grid, give its real pixel size (--coarse-res)"
        )
    factor = max(2, min(ratio, min(height, width) // MIN_SIDE))
    if min(height, width) // factor < MIN_SIDE // 2:
        raise StfError(f"the scene is only {height}×{width} fine pixels; self-training needs at least "
                       f"{MIN_SIDE * 2}×{MIN_SIDE * 2}")
    return factor


def reduced_scene(aligned: Aligned, ratio: int, resampling: str, label: str) -> Scene:
    """The scene one ratio coarser (`ratio` from `wald_factor`): inputs degraded once more, the coarse target
    (block means) as truth."""
    valid = _held(aligned.valid, ratio, 1.0)
    height, width = valid.shape
    mode = INTERPOLATION.get(resampling, "bilinear")
    ones = np.ones_like(aligned.valid)
    inputs = {}
    for role, array in aligned.arrays.items():
        reduced, _ = block_mean(array, ones, ratio)
        if role in roles.COARSE_ROLES:
            reduced = _upsample(_coarsened(reduced, valid, ratio), (height, width), mode)
        inputs[role] = reduced.astype(np.float32)
    # a reduced pixel is learnt from where its coarse block is mostly data: a nodata border of the coarse image
    # would otherwise take whole blocks, and on a small scene (2×2 coarse blocks) all of it
    valid &= _upsample(_held(valid, ratio, COARSE_SHARE)[None].astype(np.float32), (height, width), "nearest")[0] > 0.5
    target, _ = block_mean(aligned.arrays[roles.COARSE_TARGET], ones, ratio)
    return Scene(inputs, target.astype(np.float32), valid, label)
