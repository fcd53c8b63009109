"""MARSTFN (Cheng et al. 2024, Remote Sensing 16:1033): multiscale attention residual fusion network.

Coarse target and pan each pass a multiscale module (1×1 conv; 3×3 convs dilated 2, 4, 6, each with
DANet-style position + channel attention; an average-pooling branch) on their own (pooled) grid and are
bicubically upsampled to the fine grid; the fine reference passes a 3×3 conv and squeeze-and-excitation.
The 64-channel streams are concatenated, reduced by a 1×1 conv and refined by four CSARDBs (CBAM then a
residual dense block) whose outputs are gathered by a 1×1 conv; a 3×3 conv gives the bands, added to
the upsampled coarse target. Without a pan band the pan stream is left out (two streams, 128 → 64).
"""
from __future__ import annotations

from typing import FrozenSet, Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import roles
from ..core.options import Option
from .losses import adaptive_l1_frobenius
from .base import Inputs, ModelDef, Objective
from .blocks import ChannelSpatialAttention, DualAttention, SqueezeExcitation, conv1, conv3

DILATIONS = (2, 4, 6)
DENSE_LAYERS = 6
BLOCKS = 4
OPTIONS = {
    "channels": Option(64, 4, 512, "feature channels of the backbone"),
    "growth": Option(16, 1, 256, "channels added by each dense layer"),
    "attention_grid": Option(16, 1, 128, "cells per side of the pooled grid the global attention sees"),
}


class MultiScale(nn.Module):
    """Five parallel branches over lifted features, fused by a 1×1 conv."""

    def __init__(self, bands: int, channels: int, grid: int):
        super().__init__()
        self.lift = conv3(bands, channels)
        self.point = conv1(channels, channels)
        self.dilated = nn.ModuleList(
            nn.Sequential(conv3(channels, channels, d), nn.ReLU(inplace=True), DualAttention(channels, grid))
            for d in DILATIONS
        )
        self.pooled = conv1(channels, channels)
        self.fuse = conv1(5 * channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.lift(x))
        average = F.relu(self.pooled(F.adaptive_avg_pool2d(x, 1))).expand_as(x)
        branches = [F.relu(self.point(x))] + [branch(x) for branch in self.dilated] + [average]
        return F.relu(self.fuse(torch.cat(branches, dim=1)))


class ResidualDenseBlock(nn.Module):
    """Six densely connected conv+ReLU layers, a 1×1 local fusion and a local residual."""

    def __init__(self, channels: int, growth: int):
        super().__init__()
        self.layers = nn.ModuleList(conv3(channels + i * growth, growth) for i in range(DENSE_LAYERS))
        self.fusion = conv1(channels + DENSE_LAYERS * growth, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.layers:
            features.append(F.relu(layer(torch.cat(features, dim=1))))
        return x + self.fusion(torch.cat(features, dim=1))


class CSARDB(nn.Module):
    """Channel-spatial attention (CBAM) feeding a residual dense block: F_o = F_t + F_d."""

    def __init__(self, channels: int, growth: int):
        super().__init__()
        self.attention = ChannelSpatialAttention(channels)
        self.dense = ResidualDenseBlock(channels, growth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense(self.attention(x))


def _pool_factor(role: str, ratio: int) -> int:
    """Grid each coarse-like stream runs on: the coarse pixel for the target, half of it for pan."""
    return max(1, ratio if role == roles.COARSE_TARGET else ratio // 2)


class MARSTFN(nn.Module):
    def __init__(self, bands: int, given: FrozenSet[str], ratio: int, options: Mapping[str, object]):
        super().__init__()
        channels, growth, grid = (int(options[k]) for k in ("channels", "growth", "attention_grid"))
        self.ratio = ratio
        self.streams = nn.ModuleDict({roles.COARSE_TARGET: MultiScale(bands, channels, grid)})
        if roles.PAN in given:
            self.streams[roles.PAN] = MultiScale(1, channels, grid)
        self.fine = nn.Sequential(conv3(bands, channels), nn.ReLU(inplace=True), SqueezeExcitation(channels))
        self.reduce = conv1(channels * (len(self.streams) + 1), channels)
        self.blocks = nn.ModuleList(CSARDB(channels, growth) for _ in range(BLOCKS))
        self.gather = conv1(channels * BLOCKS, channels)
        self.head = conv3(channels, bands)

    def forward(self, inputs: Inputs) -> torch.Tensor:
        coarse = inputs[roles.COARSE_TARGET]
        size = coarse.shape[-2:]
        features = []
        for role, stream in self.streams.items():
            factor = _pool_factor(role, self.ratio)
            x = F.avg_pool2d(inputs[role], factor, ceil_mode=True) if factor > 1 else inputs[role]
            x = stream(x)
            features.append(F.interpolate(x, size=size, mode="bicubic", align_corners=False) if factor > 1 else x)
        features.append(self.fine(inputs[roles.FINE_REFERENCE]))
        x = self.reduce(torch.cat(features, dim=1))
        outputs = []
        for block in self.blocks:
            x = block(x)
            outputs.append(x)
        return coarse + self.head(self.gather(torch.cat(outputs, dim=1)))


class AdaptiveLoss(Objective):
    def loss(self, prediction, target, inputs):
        return adaptive_l1_frobenius(prediction, target)


def radius(ratio: int, given: FrozenSet[str]) -> int:
    """Local receptive radius in fine pixels (the attention and pooling branches are global on top)."""
    trunk = BLOCKS * (ChannelSpatialAttention.radius + DENSE_LAYERS) + 1
    fine = 1 + trunk
    streams = [roles.COARSE_TARGET] + ([roles.PAN] if roles.PAN in given else [])
    coarse = max((1 + max(DILATIONS) + 2 + 1) * _pool_factor(role, ratio) for role in streams)
    return max(fine, coarse + trunk)


MODEL = ModelDef(
    name="marstfn",
    version=1,
    description="MARSTFN (Cheng et al. 2024): multiscale attention residual network; optional pan band",
    required=(roles.COARSE_TARGET, roles.FINE_REFERENCE),
    optional=(roles.PAN,),
    network=MARSTFN,
    objective=lambda bands, options: AdaptiveLoss(),
    radius=radius,
    blend=True,
    coarse_resampling="cubic",
    options=OPTIONS,
)
