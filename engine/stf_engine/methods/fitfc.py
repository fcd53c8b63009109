"""Fit-FC (Wang & Atkinson 2018, Remote Sensing of Environment 204:31-42), written from the paper, in torch.

Three steps, per band:
1. Regression model fitting (RM): in a moving window of w×w coarse pixels, C2 = a·C1 + b by least squares;
   the coarse pixel's (a, b) applied to the fine reference gives a·F1 + b for its fine pixels.
2. Spatial filtering (SF): each fine pixel takes the inverse-distance-weighted mean of the RM prediction over
   its spectrally similar neighbours in the fine reference (every band within 2σ_b/m, as in STARFM), which
   removes the blocky coarse-pixel pattern of step 1.
3. Residual compensation (RC): the coarse residual C2 − (a·C1 + b), interpolated bilinearly to the fine grid
   (the paper uses bicubic) between the coarse pixels that hold data (one without data acts like the raster's
   edge), is added back, so the prediction keeps what the linear model missed.

Coarse pixels are the r×r blocks of the fine grid anchored at its (0, 0) (see blocks.py); the coarse inputs'
block means are the coarse values. Departures: similarity by a per-band threshold instead of the n most
similar pixels, and bilinear instead of bicubic residual interpolation.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from .. import roles
from ..core.options import Option
from ..core.psf import psf_radius, reflect_pad
from .blocks import block_means, expand, interpolate
from .contract import MethodContext, MethodSpec, TileBatch, option_reader, tick_within

OPTIONS = {
    "window": Option(3, 1, 15, "regression window in coarse pixels (odd)"),
    "similar_window": Option(0, 0, 101, "spatial-filter window in fine pixels; 0 = one coarse pixel plus one"),
    "classes": Option(4, 1, 64, "m in the similarity threshold 2σ/m"),
}


_option = option_reader(OPTIONS)
REGRESSION_SHARE = 0.2
"""Share of a batch's progress the per-tile regressions take; the spatial filter over similar pixels, the rest."""


def _similar_half(context: MethodContext) -> int:
    side = _option(context, "similar_window") or context.ratio + 1
    return side // 2


def _halo(context: MethodContext) -> int:
    blocks = _option(context, "window") // 2 + 2  # the window's blocks, the pixel's own block and interpolation
    simulated = psf_radius(context.ratio) if roles.COARSE_REFERENCE not in context.given else 0  # the blur's reach
    return context.ratio * blocks + _similar_half(context) + simulated


def local_regression(x: torch.Tensor, y: torch.Tensor, present: torch.Tensor, window: int):
    """Per-block (a, b) of y ≈ a·x + b over the w×w blocks around each block ((C, hb, wb) tensors)."""
    weight = present.to(x.dtype)[None].expand_as(x)
    pool = lambda t: F.avg_pool2d(t[None], window, stride=1, padding=window // 2,  # noqa: E731
                                  count_include_pad=False)[0]
    n = pool(weight).clamp_min(1e-12)
    mean_x, mean_y = pool(weight * x) / n, pool(weight * y) / n
    var = pool(weight * x * x) / n - mean_x**2
    cov = pool(weight * x * y) / n - mean_x * mean_y
    flat = var <= 1e-10 * (mean_x**2 + 1e-12)
    a = torch.where(flat, torch.ones_like(var), cov / var.clamp_min(1e-30))
    return a, mean_y - a * mean_x


def similar_mean(values: torch.Tensor, guide: torch.Tensor, valid: torch.Tensor, threshold: torch.Tensor, half: int,
                 tick: Callable[[float], None] = lambda fraction: None):
    """Inverse-distance-weighted mean of (B, C, H, W) `values` over the neighbours within `half` pixels whose
    guide (fine reference) is within `threshold` of the centre's in every band. `tick(fraction done)` runs before
    each row of offsets: a batch takes seconds here, and a cancel waited for all of them."""
    if half <= 0:
        return values
    padded_values, padded_guide = reflect_pad(values, half), reflect_pad(guide, half)
    padded_valid = reflect_pad(valid.to(values.dtype), half)
    height, width = values.shape[-2:]
    numerator = torch.zeros_like(values)
    denominator = torch.zeros_like(values[:, :1])
    for dy in range(-half, half + 1):
        tick((dy + half) / (2 * half + 1))
        for dx in range(-half, half + 1):
            at = (..., slice(half + dy, half + dy + height), slice(half + dx, half + dx + width))
            similar = ((padded_guide[at] - guide).abs() <= threshold).all(dim=1, keepdim=True)
            weight = similar * padded_valid[at] / (1.0 + math.hypot(dy, dx) / half)
            numerator.addcmul_(weight, padded_values[at])
            denominator += weight
    return torch.where(denominator > 0, numerator / denominator.clamp_min(1e-12), values)


def _build(context: MethodContext):
    ratio, window = context.ratio, _option(context, "window")
    half = _similar_half(context)
    threshold = torch.tensor(context.fine_std, device=context.device).view(1, -1, 1, 1) * (
        2.0 / _option(context, "classes")
    )

    def run(batch: TileBatch) -> torch.Tensor:
        f1, c2 = batch.fine_reference, batch.coarse_target
        c1 = batch.coarse_reference_or_simulated(ratio)
        fitted, residual = [], []
        for index, origin in enumerate(batch.origins):
            context.tick(REGRESSION_SHARE * index / max(1, len(batch.origins)))
            valid = batch.valid[index, 0]
            mean_c1, counts = block_means(c1[index], valid, ratio, origin)
            mean_c2, _ = block_means(c2[index], valid, ratio, origin)
            a, b = local_regression(mean_c1, mean_c2, counts > 0, window)
            shape = f1.shape[-2:]
            fitted.append(expand(a, ratio, origin, shape) * f1[index] + expand(b, ratio, origin, shape))
            residual.append(interpolate(mean_c2 - (a * mean_c1 + b), counts > 0, ratio, origin, shape))
        filtered = similar_mean(torch.stack(fitted), f1, batch.valid, threshold.to(f1.dtype), half,
                                tick=tick_within(context.tick, REGRESSION_SHARE, 1.0))
        return filtered + torch.stack(residual)

    return run


SPECS = (
    MethodSpec(
        name="fitfc",
        description="Fit-FC (Wang & Atkinson 2018): local regression of the coarse change, spatial filtering, "
        "residual compensation; handles strong change",
        required=(roles.COARSE_TARGET, roles.FINE_REFERENCE),
        optional=(roles.COARSE_REFERENCE,),
        halo=_halo,
        build=_build,
        options=OPTIONS,
    ),
)
