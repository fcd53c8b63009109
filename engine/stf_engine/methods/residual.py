"""Residual compensation, a step any method can take (`--option residual=true`).

The prediction averaged over each coarse pixel (an r×r block of the fine grid) should equal the coarse target
there. The coarse residual R = C2 − mean(prediction) is put back, distributed as in FSDAF (Zhu et al. 2016):
where the fine reference is homogeneous around a pixel (homogeneity index HI near 1) the share follows the
difference between the smooth coarse target and the prediction, elsewhere it is even:
CW = HI·E + (1 − HI)·|R| with E the part of C2 − P that points the way R does, and r = R·CW / mean(CW) over
the block, so the block mean of r is exactly R and no residual means no change. Taking only the part of
E that agrees with R keeps the weights positive, where FSDAF's signed weights can sum to nearly 0.
"""
from __future__ import annotations

import dataclasses

import torch

from ..core.options import Option
from ..core.psf import reflect_pad
from .blocks import block_means, expand
from .contract import MethodContext, MethodSpec, TileBatch

OPTION = Option(False, help="distribute the coarse residual back so the prediction matches the coarse target")


def homogeneity(fine: torch.Tensor, valid: torch.Tensor, threshold: torch.Tensor, half: int) -> torch.Tensor:
    """(B, 1, H, W): share of the valid ones among the (2·half+1)² neighbours whose fine values are within
    `threshold` in every band (nodata is left out, as beyond the raster's edge; 0 where none is valid)."""
    padded, padded_valid = reflect_pad(fine, half), reflect_pad(valid.to(fine.dtype), half)
    height, width = fine.shape[-2:]
    similar, count = torch.zeros_like(fine[:, :1]), torch.zeros_like(fine[:, :1])
    for dy in range(-half, half + 1):
        for dx in range(-half, half + 1):
            at = (..., slice(half + dy, half + dy + height), slice(half + dx, half + dx + width))
            similar += ((padded[at] - fine).abs() <= threshold).all(dim=1, keepdim=True) * padded_valid[at]
            count += padded_valid[at]
    return similar / count.clamp_min(1.0)


def compensate(predicted: torch.Tensor, batch: TileBatch, context: MethodContext, classes: int = 4) -> torch.Tensor:
    """The prediction with the coarse residual distributed back (block means then equal the coarse target's)."""
    ratio = context.ratio
    threshold = torch.tensor(context.fine_std, device=predicted.device, dtype=predicted.dtype).view(1, -1, 1, 1)
    index = homogeneity(batch.fine_reference, batch.valid, threshold * (2.0 / classes), ratio // 2)
    out = []
    for sample, origin in enumerate(batch.origins):
        valid = batch.valid[sample, 0]
        shape = predicted.shape[-2:]
        target, _ = block_means(batch.coarse_target[sample], valid, ratio, origin)
        mean, _ = block_means(predicted[sample], valid, ratio, origin)
        residual = expand(target - mean, ratio, origin, shape)
        guide = batch.coarse_target[sample] - predicted[sample]
        out.append(predicted[sample] + distribute(residual, guide, index[sample], valid, ratio, origin))
    return torch.stack(out)


def distribute(residual: torch.Tensor, guide: torch.Tensor, index: torch.Tensor, valid: torch.Tensor, ratio: int,
               origin) -> torch.Tensor:
    """Each pixel's share of its block's residual R ((C, H, W), R repeated over the block): where the homogeneity
    `index` (1, H, W) is high the shares follow the part of `guide` that points the way R does, elsewhere they
    are even; their block mean is exactly R, and a block without residual gets nothing."""
    shape = residual.shape[-2:]
    agreeing = (torch.sign(residual) * guide).clamp_min(0.0)
    weight = index * agreeing + (1 - index) * residual.abs()
    weight_mean, _ = block_means(weight, valid, ratio, origin)
    spread = expand(weight_mean, ratio, origin, shape)
    share = torch.where(spread > 1e-12, weight / spread.clamp_min(1e-12), torch.ones_like(weight))
    return residual * share


def with_residual_option(spec: MethodSpec) -> MethodSpec:
    """The method with the `residual` option: when on, a wider halo (whole blocks) and compensated tiles."""

    def halo(context: MethodContext) -> int:
        extra = 2 * context.ratio if context.options.get("residual") else 0
        return spec.halo(context) + extra

    def build(context: MethodContext):
        method = spec.build(context)
        if not context.options.get("residual"):
            return method
        return lambda batch: compensate(method(batch).float(), batch, context)

    return dataclasses.replace(spec, options={**spec.options, "residual": OPTION}, halo=halo, build=build)
