"""ESTARFM (Zhu et al. 2010, Remote Sensing of Environment 114:2610-2623), written from the paper, in torch.

Two reference pairs, (F1, C1) before and (F3, C3) after the target date, and the coarse target C2:
1. Similar pixels: neighbours in a w×w window whose fine values are within 2σ_b/m of the centre's in every
   band on both reference dates.
2. Weights: W_i ∝ 1/D_i with D_i = (1 − R_i)·d_i, R_i the correlation between the fine and coarse spectra of
   similar pixel i (all bands, both dates) and d_i = 1 + distance/(w/2).
3. Conversion coefficient V: the slope of fine against coarse values over the similar pixels of both dates
   (per band, least squares), turning the coarse change into fine change.
4. A prediction from each side, F2_k = F_k + V·Σ W_i (C2(i) − C_k(i)), weighted by how close each date's
   coarse image is to the target's around the pixel: T_k ∝ 1/|Σ C_k − Σ C2| over the window.
Departure: V is one slope per window and band (the paper's per-pixel coefficient taken from the same window).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .. import roles
from ..core.options import Option
from ..core.psf import normalised, reflect_pad
from .contract import MethodContext, MethodSpec, TileBatch, option_reader

OPTIONS = {
    "window": Option(31, 3, 255, "side of the moving window in fine pixels"),
    "classes": Option(4, 1, 64, "m in the similarity threshold 2σ/m"),
}
MIN_SLOPE, MAX_SLOPE = 0.2, 5.0
"""The conversion coefficient is kept within these bounds (few or nearly identical similar pixels)."""


_option = option_reader(OPTIONS)


def _halo(context: MethodContext) -> int:
    return _option(context, "window") // 2


def _correlation(fine: torch.Tensor, coarse: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) correlation between two (B, N, H, W) spectra stacks, per pixel."""
    f = fine - fine.mean(dim=1, keepdim=True)
    c = coarse - coarse.mean(dim=1, keepdim=True)
    denominator = (f.square().sum(dim=1, keepdim=True) * c.square().sum(dim=1, keepdim=True)).sqrt()
    return (f * c).sum(dim=1, keepdim=True) / denominator.clamp_min(1e-12)


def _build(context: MethodContext):
    half = _option(context, "window") // 2
    threshold = torch.tensor(context.fine_std, device=context.device).view(1, -1, 1, 1) * (
        2.0 / _option(context, "classes")
    )

    def run(batch: TileBatch) -> torch.Tensor:
        f1, f3 = batch.fine_reference, batch.fine_reference_2
        c1, c3, c2 = batch.coarse_reference, batch.coarse_reference_2, batch.coarse_target
        thr = threshold.to(f1.dtype)
        unlikeness = 1.0 - _correlation(torch.cat([f1, f3], 1), torch.cat([c1, c3], 1))  # 1 − R
        pad = lambda x: reflect_pad(x, half)  # noqa: E731
        pf1, pf3, pc1, pc3, pc2 = (pad(x) for x in (f1, f3, c1, c3, c2))
        punlike, pvalid = pad(unlikeness.clamp_min(1e-3)), pad(batch.valid.to(f1.dtype))
        height, width = f1.shape[-2:]
        weight_sum = torch.zeros_like(f1[:, :1])
        change1, change3 = torch.zeros_like(f1), torch.zeros_like(f1)
        n, sc, sf, scc, scf = (torch.zeros_like(f1) for _ in range(5))
        side = 2 * half + 1
        for dy in range(-half, half + 1):
            for dx in range(-half, half + 1):
                context.tick(((dy + half) * side + dx + half) / side**2)  # an offset is 0.3 s on a batch of 4 tiles
                at = (..., slice(half + dy, half + dy + height), slice(half + dx, half + dx + width))
                similar = (((pf1[at] - f1).abs() <= thr) & ((pf3[at] - f3).abs() <= thr)).all(dim=1, keepdim=True)
                similar = similar * pvalid[at]
                weight = similar / (punlike[at] * (1.0 + math.hypot(dy, dx) / half))
                weight_sum += weight
                change1.addcmul_(weight, pc2[at] - pc1[at])
                change3.addcmul_(weight, pc2[at] - pc3[at])
                for coarse, fine in ((pc1[at], pf1[at]), (pc3[at], pf3[at])):
                    n += similar
                    sc.addcmul_(similar, coarse)
                    sf.addcmul_(similar, fine)
                    scc.addcmul_(similar, coarse * coarse)
                    scf.addcmul_(similar, coarse * fine)
        mean_c, mean_f = sc / n.clamp_min(1), sf / n.clamp_min(1)
        var = scc / n.clamp_min(1) - mean_c**2
        cov = scf / n.clamp_min(1) - mean_c * mean_f
        slope = torch.where((var > 1e-10) & (n >= 4), cov / var.clamp_min(1e-12), torch.ones_like(var))
        slope = slope.clamp(MIN_SLOPE, MAX_SLOPE)
        scale = weight_sum.clamp_min(1e-12)
        from1 = f1 + slope * change1 / scale
        from3 = f3 + slope * change3 / scale
        closeness1 = 1.0 / (_window_mean(c1 - c2, batch.valid, half).abs() + 1e-6)
        closeness3 = 1.0 / (_window_mean(c3 - c2, batch.valid, half).abs() + 1e-6)
        fused = (closeness1 * from1 + closeness3 * from3) / (closeness1 + closeness3)
        fallback = 0.5 * ((f1 + c2 - c1) + (f3 + c2 - c3))
        return torch.where(weight_sum > 0, fused, fallback)

    return run


def _window_mean(image: torch.Tensor, valid: torch.Tensor, half: int) -> torch.Tensor:
    """Mean over the valid pixels of the (2·half+1)² window around each pixel (reflect-padded), as the temporal
    weights need: the fill under nodata stays out of it."""
    box = lambda t: F.avg_pool2d(reflect_pad(t, half), 2 * half + 1, stride=1)  # noqa: E731
    return normalised(box, image, valid)


SPECS = (
    MethodSpec(
        name="estarfm",
        description="ESTARFM (Zhu et al. 2010): two reference pairs, before and after the target date; "
        "conversion coefficients from similar pixels",
        required=(roles.COARSE_TARGET, roles.FINE_REFERENCE, roles.COARSE_REFERENCE, roles.FINE_REFERENCE_2,
                  roles.COARSE_REFERENCE_2),
        optional=(),
        halo=_halo,
        build=_build,
        options=OPTIONS,
    ),
)
