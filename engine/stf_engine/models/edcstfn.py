"""EDCSTFN (Tan et al. 2019, Remote Sensing 11:2898): enhanced deep convolutional fusion network.

Two encoder streams — one on the fine reference F1, one on the coarse pair [C1, C2] — are fused by
addition and decoded into the fine-scale change, added to F1 + (C2 − C1). All convolutions have stride
1 (dilations widen the view), so tiles reproduce the whole image exactly. The compound loss is
content (L1) + feature (distance between encodings by a small autoencoder that our pipeline first
trains on the fine targets, then freezes) + vision (1 − MS-SSIM).
"""
from __future__ import annotations

from typing import FrozenSet, Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import roles
from ..core.options import Option
from .losses import ms_ssim
from .base import Inputs, ModelDef, Objective
from .blocks import conv3

STREAM = ((32, 1), (64, 2), (64, 4))
"""(channels, dilation) of each encoder stream's 3×3 convolutions."""
DECODER = ((64, 2), (32, 1))
OPTIONS = {
    "feature_weight": Option(1.0, 0.0, 100.0, "weight of the feature (autoencoder) loss"),
    "vision_weight": Option(1.0, 0.0, 100.0, "weight of the MS-SSIM vision loss"),
    "extractor_steps": Option(100, 0, 100000, "steps pre-training the feature extractor"),
}


def _stack(channels: int, layers) -> nn.Sequential:
    modules = []
    for width, dilation in layers:
        modules += [conv3(channels, width, dilation), nn.LeakyReLU(0.2, inplace=True)]
        channels = width
    return nn.Sequential(*modules)


class EDCSTFN(nn.Module):
    def __init__(self, bands: int, given: FrozenSet[str], ratio: int, options: Mapping[str, object]):
        super().__init__()
        self.fine = _stack(bands, STREAM)
        self.coarse = _stack(2 * bands, STREAM)
        self.decoder = nn.Sequential(_stack(STREAM[-1][0], DECODER), conv3(DECODER[-1][0], bands))

    def forward(self, inputs: Inputs) -> torch.Tensor:
        fine, reference = inputs[roles.FINE_REFERENCE], inputs[roles.COARSE_REFERENCE]
        target = inputs[roles.COARSE_TARGET]
        fused = self.fine(fine) + self.coarse(torch.cat([reference, target], dim=1))
        return fine + (target - reference) + self.decoder(fused)


def radius(ratio: int, given: FrozenSet[str]) -> int:
    return sum(d for _, d in STREAM) + sum(d for _, d in DECODER) + 1


class FeatureExtractor(nn.Module):
    """A small convolutional autoencoder on fine images; its encoder defines the feature loss."""

    def __init__(self, bands: int):
        super().__init__()
        self.encode = _stack(bands, ((32, 1), (64, 1)))
        self.decode = nn.Sequential(_stack(64, ((32, 1),)), conv3(32, bands))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


class CompoundObjective(Objective):
    def __init__(self, bands: int, options: Mapping[str, object]):
        super().__init__()
        self.extractor = FeatureExtractor(bands)
        self.extractor.requires_grad_(False)
        self.feature_weight = float(options["feature_weight"])
        self.vision_weight = float(options["vision_weight"])
        self.extractor_steps = int(options["extractor_steps"])

    def loss(self, prediction, target, inputs):
        content = (prediction - target).abs().mean()
        feature = F.mse_loss(self.extractor.encode(prediction), self.extractor.encode(target))
        vision = 1 - ms_ssim(prediction, target)
        return content + self.feature_weight * feature + self.vision_weight * vision

    def prepare(self, draw, lr, tick):
        """Train the autoencoder to reconstruct fine targets (fewer steps when the time budget runs out), then freeze
        it."""
        self.extractor.requires_grad_(True)
        optimizer = torch.optim.Adam(self.extractor.parameters(), lr=lr)
        for step in range(self.extractor_steps):
            if tick(step / self.extractor_steps):
                break
            _, target, valid = draw()
            loss = ((self.extractor(target) - target).abs() * valid).sum() / (valid.sum() * target.shape[1]).clamp_min(1)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        self.extractor.requires_grad_(False)


MODEL = ModelDef(
    name="edcstfn",
    version=1,
    description="EDCSTFN (Tan et al. 2019): two-stream encoder-decoder; needs the coarse reference",
    required=(roles.COARSE_TARGET, roles.FINE_REFERENCE, roles.COARSE_REFERENCE),
    optional=(),
    network=EDCSTFN,
    objective=CompoundObjective,
    radius=radius,
    options=OPTIONS,
)
