"""The bar a trained model must clear on held-out data.

In self mode the held-out truth is the coarse target at reduced resolution, blurrier than a fine image: plain
delta (F1 + C2 − C1) pays for detail the truth lacks, so a network that only smooths beats it there and then
loses to it on the real scene. Delta is therefore smoothed to the truth's sharpness (the Gaussian that fits
training patches best); `models.held_out.verdict` reads the scores."""
from __future__ import annotations

import math
from typing import Dict

import numpy as np
import torch

from .. import roles
from ..core.psf import gaussian_blur, normalised, simulate_coarse
from .patches import Batch

SMOOTHING = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)
"""Gaussian σ (training-grid pixels) tried for delta; 0 keeps it sharp (series truths are real fine images)."""
FIT_PATCHES = 64
FIT_PATCH = 64
"""Side of the patches the smoothing is fitted on at most: a few MB whatever the training patch."""


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
    image_t = torch.from_numpy(np.ascontiguousarray(image))
    valid_t = torch.from_numpy(np.ascontiguousarray(valid))
    return normalised(lambda t: gaussian_blur(t, sigma, radius), image_t, valid_t).numpy()


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


def held_out_baselines(batch: Batch, ratio: int, smoothing: float) -> Dict[str, float]:
    """The RMSE of the coarse target and of delta at the truth's sharpness on the held-out patches: fixed for a
    run, so computed once, not per epoch."""
    inputs, target, valid = batch
    return {
        "rmse_coarse_input": rmse(inputs[roles.COARSE_TARGET] - target, valid),
        "rmse_delta": rmse(smoothed(delta_baseline(inputs, ratio), valid, smoothing) - target, valid),
        "delta_smoothing": smoothing,
    }
