"""Simulating a coarse image from a fine one: a Gaussian point-spread function at the coarse resolution."""
from __future__ import annotations

import math

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


def simulate_coarse(fine: torch.Tensor, ratio: int) -> torch.Tensor:
    """The fine image as a coarse sensor would see it, kept on the fine grid (the two-input variant)."""
    return gaussian_blur(fine, psf_sigma(ratio), psf_radius(ratio))


def reflect_pad(image: torch.Tensor, radius: int) -> torch.Tensor:
    """Reflect padding that also works when the image is narrower than the radius."""
    while radius > 0:
        step = min(radius, image.shape[-1] - 1, image.shape[-2] - 1)
        if step <= 0:
            return F.pad(image, (radius,) * 4, mode="replicate")
        image = F.pad(image, (step,) * 4, mode="reflect")
        radius -= step
    return image
