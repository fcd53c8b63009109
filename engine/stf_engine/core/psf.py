"""Simulating a coarse image from a fine one: a Gaussian point-spread function at the coarse resolution; filters
that skip nodata."""
from __future__ import annotations

import math
from typing import Callable, Optional

import torch
import torch.nn.functional as F


def psf_sigma(ratio: int) -> float:
    """Gaussian σ (fine pixels) whose FWHM spans one coarse pixel."""
    return ratio / (2 * math.sqrt(2 * math.log(2)))


def psf_radius(ratio: int) -> int:
    """Kernel half-width (3σ), 0 when fine and coarse share a pixel size."""
    return 0 if ratio <= 1 else int(math.ceil(3 * psf_sigma(ratio)))


def gaussian_blur(image: torch.Tensor, sigma: float, radius: int) -> torch.Tensor:
    """Separable Gaussian blur of (B, C, H, W) with reflect padding; identity when radius is 0."""
    if radius <= 0:
        return image
    x = torch.arange(-radius, radius + 1, dtype=image.dtype, device=image.device)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    kernel = kernel / kernel.sum()
    channels = image.shape[1]
    padded = reflect_pad(image, radius)
    out = F.conv2d(padded, kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1), groups=channels)
    return F.conv2d(out, kernel.view(1, 1, -1, 1).repeat(channels, 1, 1, 1), groups=channels)


def simulate_coarse(fine: torch.Tensor, ratio: int, valid: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The fine image as a coarse sensor would see it, kept on the fine grid (the two-input variant); with a
    (B, 1, H, W) `valid` mask, blurred over the valid pixels only (see `normalised`)."""
    sigma, radius = psf_sigma(ratio), psf_radius(ratio)
    blur = lambda image: gaussian_blur(image, sigma, radius)  # noqa: E731
    return blur(fine) if valid is None else normalised(blur, fine, valid)


def normalised(smooth: Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor, valid: torch.Tensor
               ) -> torch.Tensor:
    """A linear per-channel filter `smooth` of (B, C, H, W) over the pixels where `valid` ((B or 1, 1, H, W)) holds:
    smooth(image·valid) / smooth(valid), so nodata acts like the raster's edge instead of leaking whatever fills it
    into its valid neighbours (normalised convolution); 0 where no valid pixel is in reach. Where no nodata is in
    reach it is smooth(image), undivided: a division by weights that sum to about 1 would round."""
    weight = valid.to(image.dtype).expand(image.shape[0], 1, *image.shape[2:])
    sums = smooth(torch.cat([image * weight, weight, 1 - weight], dim=1))
    total, mass, missing = sums[:, :-2], sums[:, -2:-1], sums[:, -1:]
    return torch.where(missing > 0, total / torch.where(mass > 0, mass, torch.ones_like(mass)), total)


def reflect_pad(image: torch.Tensor, radius: int) -> torch.Tensor:
    """Reflect padding that also works when the image is narrower than the radius."""
    while radius > 0:
        step = min(radius, image.shape[-1] - 1, image.shape[-2] - 1)
        if step <= 0:
            return F.pad(image, (radius,) * 4, mode="replicate")
        image = F.pad(image, (step,) * 4, mode="reflect")
        radius -= step
    return image
