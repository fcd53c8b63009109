"""Loss terms shared by the models: adaptive L1 + Frobenius, (MS-)SSIM, least-squares GAN."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..core.psf import gaussian_blur

SSIM_SIGMA, SSIM_RADIUS = 1.5, 3


def adaptive_l1_frobenius(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MARSTFN's L = a·L1 + b·L_F with a = L1/(L1+L_F), b = L_F/(L1+L_F) from detached values.

    L_F is the Frobenius norm of the error divided by √(element count), i.e. the RMSE, so both terms
    share units and neither dominates because of the patch size.
    """
    error = prediction - target
    l1 = error.abs().mean()
    frobenius = torch.linalg.vector_norm(error) / error.numel() ** 0.5
    total = (l1 + frobenius).detach().clamp_min(1e-12)
    return (l1.detach() / total) * l1 + (frobenius.detach() / total) * frobenius


def _ssim_parts(x: torch.Tensor, y: torch.Tensor, data_range: torch.Tensor):
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    blur = lambda image: gaussian_blur(image, SSIM_SIGMA, SSIM_RADIUS)  # noqa: E731
    mx, my = blur(x), blur(y)
    vx, vy, cov = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    luminance = (2 * mx * my + c1) / (mx * mx + my * my + c1)
    contrast_structure = (2 * cov + c2) / (vx + vy + c2)
    return luminance.mean(), contrast_structure.mean()


def ms_ssim(prediction: torch.Tensor, target: torch.Tensor, scales: int = 3) -> torch.Tensor:
    """Multi-scale SSIM (Wang et al. 2003) over as many scales (≤ `scales`) as the patch size allows.

    The dynamic range is the target's (detached); negative contrast terms are clamped so fractional
    powers stay defined.
    """
    data_range = (target.amax() - target.amin()).detach().clamp_min(1e-6)
    weights = torch.tensor([0.0448, 0.2856, 0.3001, 0.2363, 0.1333][:scales], device=prediction.device)
    usable = 1
    while usable < scales and min(prediction.shape[-2:]) >> usable >= 2 * SSIM_RADIUS + 1:
        usable += 1
    weights = weights[:usable] / weights[:usable].sum()
    value = prediction.new_ones(())
    x, y = prediction.float(), target.float()
    for level in range(usable):
        luminance, contrast_structure = _ssim_parts(x, y, data_range)
        value = value * contrast_structure.clamp_min(1e-6) ** weights[level]
        if level == usable - 1:
            value = value * luminance.clamp_min(1e-6) ** weights[level]
        else:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    return value


def least_squares_gan(scores, real: bool) -> torch.Tensor:
    """LSGAN (Mao et al. 2017): mean squared distance of every discriminator output to 1 (real) or 0."""
    goal = 1.0 if real else 0.0
    return sum(((score - goal) ** 2).mean() for score in scores) / len(scores)
