"""GAN-STFM (Tan et al. 2022, IEEE TGRS 60): reference-insensitive fusion with a conditional GAN.

The generator takes the coarse target (on the fine grid) and a fine reference from any other date,
concatenated, through a residual encoder/decoder with skip connections and adds its output to the
coarse target, so both inputs always reach the prediction. Downsampling is replaced by growing
dilations: the generator is shift-equivariant and tiles reproduce the whole image exactly.
The discriminator is conditional ([image, coarse target]), multi-scale (full and half resolution) and
spectrally normalised; the generator loss is L1 + (1 − MS-SSIM) + 1e-3 × least-squares GAN loss.
"""
from __future__ import annotations

from typing import FrozenSet, Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import spectral_norm

from .. import roles
from ..core.options import Option
from .losses import least_squares_gan, ms_ssim
from .base import Inputs, ModelDef, Objective
from .blocks import ResidualBlock, conv3

ENCODER = ((32, 1), (64, 2), (64, 4), (96, 8))
"""(channels, dilation) per encoder stage; the decoder mirrors the first three with skip connections."""
OPTIONS = {
    "adversarial_weight": Option(1e-3, 0.0, 100.0, "weight of the least-squares GAN term"),
    "ssim_weight": Option(1.0, 0.0, 100.0, "weight of the MS-SSIM term"),
}


class Generator(nn.Module):
    def __init__(self, bands: int, given: FrozenSet[str], ratio: int, options: Mapping[str, object]):
        super().__init__()
        self.encoder = nn.ModuleList()
        channels = 2 * bands
        for width, dilation in ENCODER:
            self.encoder.append(ResidualBlock(channels, width, dilation))
            channels = width
        self.decoder = nn.ModuleList()
        for width, dilation in reversed(ENCODER[:-1]):
            self.decoder.append(ResidualBlock(channels + width, width, dilation))
            channels = width
        self.head = conv3(channels, bands)

    def forward(self, inputs: Inputs) -> torch.Tensor:
        coarse = inputs[roles.COARSE_TARGET]
        x = torch.cat([coarse, inputs[roles.FINE_REFERENCE]], dim=1)
        skips = []
        for block in self.encoder:
            x = block(x)
            skips.append(x)
        for block, skip in zip(self.decoder, reversed(skips[:-1])):
            x = block(torch.cat([x, skip], dim=1))
        return coarse + self.head(x)


def radius(ratio: int, given: FrozenSet[str]) -> int:
    blocks = [d for _, d in ENCODER] + [d for _, d in ENCODER[:-1]]
    return sum(2 * d for d in blocks) + 1


class PatchDiscriminator(nn.Module):
    """Spectrally normalised patch discriminator on [image, condition]."""

    def __init__(self, channels: int):
        super().__init__()
        layers = []
        for width_in, width_out, stride in ((channels, 32, 2), (32, 64, 2), (64, 128, 1)):
            kernel = 4 if stride == 2 else 3
            convolution = spectral_norm(nn.Conv2d(width_in, width_out, kernel, stride, 1))
            layers += [convolution, nn.LeakyReLU(0.2, inplace=True)]
        layers.append(spectral_norm(nn.Conv2d(128, 1, 3, 1, 1)))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class MultiScaleDiscriminator(nn.Module):
    """The same architecture at full and half resolution; returns one score map per scale."""

    def __init__(self, bands: int, scales: int = 2):
        super().__init__()
        self.scales = nn.ModuleList(PatchDiscriminator(2 * bands) for _ in range(scales))

    def forward(self, image: torch.Tensor, condition: torch.Tensor):
        x = torch.cat([image, condition], dim=1)
        scores = []
        for index, discriminator in enumerate(self.scales):
            scores.append(discriminator(x))
            if index + 1 < len(self.scales):
                x = F.avg_pool2d(x, 2, ceil_mode=True)
        return scores


class AdversarialObjective(Objective):
    def __init__(self, bands: int, options: Mapping[str, object]):
        super().__init__()
        self.discriminator = MultiScaleDiscriminator(bands)
        self.adversarial_weight = float(options["adversarial_weight"])
        self.ssim_weight = float(options["ssim_weight"])

    def loss(self, prediction, target, inputs):
        reconstruction = (prediction - target).abs().mean() + self.ssim_weight * (1 - ms_ssim(prediction, target))
        fooled = least_squares_gan(self.discriminator(prediction, inputs[roles.COARSE_TARGET]), real=True)
        return reconstruction + self.adversarial_weight * fooled

    def auxiliary_loss(self, prediction, target, inputs):
        condition = inputs[roles.COARSE_TARGET]
        real = least_squares_gan(self.discriminator(target, condition), real=True)
        fake = least_squares_gan(self.discriminator(prediction, condition), real=False)
        return 0.5 * (real + fake)


MODEL = ModelDef(
    name="ganstfm",
    version=1,
    description="GAN-STFM (Tan et al. 2022): conditional-GAN fusion; one fine reference from any date",
    required=(roles.COARSE_TARGET, roles.FINE_REFERENCE),
    optional=(),
    network=Generator,
    objective=AdversarialObjective,
    radius=radius,
    options=OPTIONS,
)
