"""STARFM (Gao et al. 2006, IEEE TGRS 44(8):2207-2218), written from the paper and vectorised in torch.

For each fine pixel, neighbours in a moving window that are spectrally similar in the fine reference
(per band: |F1(n) - F1(c)| <= 2σ_b/m) and no worse than the centre in spectral (|F1 - C1|) and temporal
(|C2 - C1|) difference, give predictions F1(n) + C2(n) - C1(n), weighted by 1 / (S · T · D) with
D = 1 + d / (w/2). The measurement uncertainties regularise S and T so identical pixels get a large
but finite weight. Without a coarse reference, C1 is simulated from F1 with a Gaussian PSF.
"""
from __future__ import annotations

import math

import torch

from .. import roles
from ..core.options import Option
from ..core.psf import psf_radius, reflect_pad, simulate_coarse
from .contract import MethodContext, MethodSpec, TileBatch

OPTIONS = {
    "window": Option(31, 1, 255, "side of the moving window in fine pixels"),
    "classes": Option(4, 1, 64, "m in the similarity threshold 2σ/m: more classes, stricter similarity"),
    "uncertainty_fine": Option(0.002, 0.0, 1.0, "fine-sensor measurement uncertainty (reflectance)"),
    "uncertainty_coarse": Option(0.002, 0.0, 1.0, "coarse-sensor measurement uncertainty (reflectance)"),
}


def _option(context: MethodContext, name: str):
    return OPTIONS[name].kind(context.options.get(name, OPTIONS[name].default))


def _halo(context: MethodContext) -> int:
    half = _option(context, "window") // 2
    simulated = roles.COARSE_REFERENCE not in context.given
    return half + (psf_radius(context.ratio) if simulated else 0)


def _build(context: MethodContext):
    half = _option(context, "window") // 2
    classes = _option(context, "classes")
    sigma_fine = _option(context, "uncertainty_fine")
    sigma_coarse = _option(context, "uncertainty_coarse")
    sigma_s = math.hypot(sigma_fine, sigma_coarse)
    sigma_t = math.sqrt(2) * sigma_coarse
    threshold = torch.tensor(context.fine_std, device=context.device).view(1, -1, 1, 1) * (2.0 / classes)
    side = 2 * half + 1
    offsets = [
        (dy, dx, 1.0 + math.hypot(dy, dx) / max(half, 1))
        for dy in range(-half, half + 1)
        for dx in range(-half, half + 1)
    ]

    def run(batch: TileBatch) -> torch.Tensor:
        f1, c2 = batch.fine_reference, batch.coarse_target
        c1 = batch.coarse_reference if batch.coarse_reference is not None else simulate_coarse(f1, context.ratio)
        limit_s = (f1 - c1).abs() + sigma_s
        limit_t = (c2 - c1).abs() + sigma_t
        thr = threshold.to(f1.dtype)
        # Everything that depends on the neighbour alone is computed once on the padded tile.
        pf1, pc1, pc2 = (reflect_pad(x, half) for x in (f1, c1, c2))
        spectral = (pf1 - pc1).abs()
        temporal = (pc2 - pc1).abs()
        inverse_cost = reflect_pad(batch.valid.to(f1.dtype), half) / ((spectral + sigma_s) * (temporal + sigma_t))
        candidate = pf1 + pc2 - pc1
        height, width = f1.shape[-2:]
        numerator = torch.zeros_like(f1)
        denominator = torch.zeros_like(f1)
        for index, (dy, dx, distance) in enumerate(offsets):
            if index % side == 0:
                context.tick(index / len(offsets))
            at = (..., slice(half + dy, half + dy + height), slice(half + dx, half + dx + width))
            chosen = ((pf1[at] - f1).abs() <= thr) & (spectral[at] <= limit_s) & (temporal[at] <= limit_t)
            weight = inverse_cost[at] * chosen
            weight *= 1.0 / distance
            numerator.addcmul_(weight, candidate[at])
            denominator += weight
        fallback = f1 + c2 - c1
        return torch.where(denominator > 0, numerator / denominator.clamp_min(1e-12), fallback)

    return run


SPECS = (
    MethodSpec(
        name="starfm",
        description="STARFM (Gao et al. 2006): weighted similar neighbours in a moving window; no training",
        required=(roles.COARSE_TARGET, roles.FINE_REFERENCE),
        optional=(roles.COARSE_REFERENCE,),
        halo=_halo,
        build=_build,
        options=OPTIONS,
    ),
)
