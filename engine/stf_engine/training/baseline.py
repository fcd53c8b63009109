"""The bar a trained model must clear on held-out data, and the verdict the user reads.

In self mode the held-out truth is the coarse target at reduced resolution, blurrier than a fine image: plain
delta (F1 + C2 − C1) pays for detail the truth lacks, so a network that only smooths beats it there and then
loses to it on the real scene. Delta is therefore smoothed to the truth's sharpness (the Gaussian that fits
training patches best), and when the coarse image alone scores as well, the verdict says the scene cannot tell."""
from __future__ import annotations

import math
from typing import Dict, Mapping, Optional, Tuple

import numpy as np
import torch

from .. import roles
from ..core.psf import gaussian_blur, simulate_coarse
from .patches import Batch

SMOOTHING = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)
"""Gaussian σ (training-grid pixels) tried for delta; 0 keeps it sharp (series truths are real fine images)."""
FIT_PATCHES = 64


def delta_baseline(inputs: Dict[str, np.ndarray], ratio: int) -> np.ndarray:
    """F1 + C2 − C1 on patches (C1 simulated from F1 when the model has no coarse reference)."""
    fine = inputs[roles.FINE_REFERENCE]
    reference = inputs.get(roles.COARSE_REFERENCE)
    if reference is None:
        reference = simulate_coarse(torch.from_numpy(np.ascontiguousarray(fine)), ratio).numpy()
    return fine + inputs[roles.COARSE_TARGET] - reference


def smoothed(image: np.ndarray, valid: np.ndarray, sigma: float) -> np.ndarray:
    """A Gaussian blur of patches (B, C, p, p) over their valid pixels only (valid (B, 1, p, p))."""
    if sigma <= 0:
        return image
    radius = math.ceil(3 * sigma)
    weight = torch.from_numpy(np.ascontiguousarray(valid, dtype=np.float32))
    total = gaussian_blur(torch.from_numpy(np.ascontiguousarray(image)) * weight, sigma, radius)
    mass = gaussian_blur(weight, sigma, radius)
    return (total / mass.clamp_min(1e-6)).numpy()


def rmse(error: np.ndarray, valid: np.ndarray) -> float:
    """RMSE over the valid pixels of patches (valid broadcast over the bands)."""
    mask = np.broadcast_to(valid, error.shape)
    return float(np.sqrt(np.mean(error[mask].astype(np.float64) ** 2)))


def fit_smoothing(batch: Batch, ratio: int) -> float:
    """The σ of SMOOTHING with which delta best matches the target on these (training) patches."""
    inputs, target, valid = batch
    delta = delta_baseline(inputs, ratio)
    errors = {sigma: rmse(smoothed(delta, valid, sigma) - target, valid) for sigma in SMOOTHING}
    return min(SMOOTHING, key=lambda sigma: (errors[sigma], sigma))


def verdict(model: str, metrics: Mapping[str, float]) -> Tuple[str, Optional[str]]:
    """A sentence comparing the model with delta on held-out data, and the warning to give when the data do not
    show that it beats delta (None when they do)."""
    score, delta, coarse = metrics["rmse"], metrics["rmse_delta"], metrics["rmse_coarse_input"]
    scores = f"held-out RMSE {score:.4g} against delta's {delta:.4g}"
    if score >= delta:
        return (f"{scores}: the model does NOT beat delta; use delta or auto for this scene",
                f"the trained {model} does not beat the delta baseline on held-out data (RMSE {score:.4g} against "
                f"{delta:.4g}): fuse this scene with delta or auto instead")
    if coarse <= delta:
        return (f"{scores}, but the coarse image alone scores {coarse:.4g}: this scene cannot show that the model "
                f"beats delta",
                f"on held-out data the coarse image alone (RMSE {coarse:.4g}) scores as well as the delta baseline "
                f"({delta:.4g}): at reduced resolution this scene shows no fine detail (too few coarse pixels, or a "
                f"coarse sensor blurrier than its pixel size), so it cannot show that the trained {model} beats "
                f"delta, and it most likely does not: fuse this scene with delta or auto, or train on a larger area "
                f"or a time series")
    return f"{scores}: the model beats delta by {1 - score / delta:.0%}", None
