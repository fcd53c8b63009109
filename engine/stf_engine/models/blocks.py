"""Building blocks shared by the deep models: convolutions, residual blocks and attention modules."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def conv3(channels_in: int, channels_out: int, dilation: int = 1) -> nn.Conv2d:
    """3×3 convolution keeping the spatial size (padding = dilation)."""
    return nn.Conv2d(channels_in, channels_out, 3, padding=dilation, dilation=dilation)


def conv1(channels_in: int, channels_out: int) -> nn.Conv2d:
    return nn.Conv2d(channels_in, channels_out, 1)


class ResidualBlock(nn.Module):
    """Two 3×3 convolutions with a (1×1-projected when needed) identity shortcut; stride 1 everywhere
    so the block is shift-equivariant and tiles reproduce whole-image results."""

    def __init__(self, channels_in: int, channels_out: int, dilation: int = 1):
        super().__init__()
        self.dilation = dilation
        self.body = nn.Sequential(
            conv3(channels_in, channels_out, dilation),
            nn.LeakyReLU(0.2, inplace=True),
            conv3(channels_out, channels_out, dilation),
        )
        self.shortcut = nn.Identity() if channels_in == channels_out else conv1(channels_in, channels_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.body(x) + self.shortcut(x), 0.2)

    @property
    def radius(self) -> int:
        return 2 * self.dilation


class SqueezeExcitation(nn.Module):
    """Channel reweighting from the global average of each channel (Hu et al. 2018)."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(4, channels // reduction)
        self.gate = nn.Sequential(conv1(channels, hidden), nn.ReLU(inplace=True), conv1(hidden, channels), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(F.adaptive_avg_pool2d(x, 1))


class ChannelSpatialAttention(nn.Module):
    """CBAM (Woo et al. 2018): channel gate from average and max pooling, then a 7×7 spatial gate."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(4, channels // reduction)
        self.mlp = nn.Sequential(conv1(channels, hidden), nn.ReLU(inplace=True), conv1(hidden, channels))
        self.spatial = nn.Conv2d(2, 1, 7, padding=3)

    radius = 3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.mlp(F.adaptive_avg_pool2d(x, 1)) + self.mlp(F.adaptive_max_pool2d(x, 1))
        x = x * torch.sigmoid(pooled)
        maps = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.spatial(maps))


class PositionAttention(nn.Module):
    """DANet position attention (Fu et al. 2019) with keys and values pooled to at most `grid`² positions,
    so memory grows with the query count times grid², not with the square of the image size."""

    def __init__(self, channels: int, grid: int = 16):
        super().__init__()
        reduced = max(1, channels // 8)
        self.query, self.key, self.value = conv1(channels, reduced), conv1(channels, reduced), conv1(channels, channels)
        self.grid = grid
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        pooled = F.adaptive_avg_pool2d(x, (min(height, self.grid), min(width, self.grid)))
        query = self.query(x).flatten(2).transpose(1, 2)  # B, N, c
        key = self.key(pooled).flatten(2)  # B, c, M
        value = self.value(pooled).flatten(2)  # B, C, M
        attention = torch.softmax(query @ key, dim=-1)  # B, N, M
        out = (value @ attention.transpose(1, 2)).view(batch, channels, height, width)
        return x + self.gamma * out


class ChannelAttention(nn.Module):
    """DANet channel attention: each channel re-expressed from the channels it correlates with."""

    def __init__(self):
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        flat = x.flatten(2)
        energy = flat @ flat.transpose(1, 2) / flat.shape[-1]
        energy = energy.amax(dim=-1, keepdim=True) - energy
        out = (torch.softmax(energy, dim=-1) @ flat).view(batch, channels, height, width)
        return x + self.gamma * out


class DualAttention(nn.Module):
    """DANet-style dual attention: position and channel attention summed."""

    def __init__(self, channels: int, grid: int = 16):
        super().__init__()
        self.position = PositionAttention(channels, grid)
        self.channel = ChannelAttention()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.position(x) + self.channel(x)
