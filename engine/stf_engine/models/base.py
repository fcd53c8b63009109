"""What every deep model declares: its inputs, how to build the network and its training objective."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, FrozenSet, Mapping, Optional, Tuple

import torch
import torch.nn as nn

from ..core.options import Option

Inputs = Dict[str, torch.Tensor]
"""Normalised inputs on the fine grid by role, each (B, C, H, W)."""


class Objective(nn.Module):
    """A model's training loss; auxiliary networks (a discriminator, a feature extractor) live inside it."""

    def loss(self, prediction: torch.Tensor, target: torch.Tensor, inputs: Inputs) -> torch.Tensor:
        raise NotImplementedError

    def auxiliary_loss(self, prediction: torch.Tensor, target: torch.Tensor, inputs: Inputs) -> Optional[torch.Tensor]:
        """Loss for the trainable auxiliary networks (None when there are none); prediction is detached."""
        return None

    def prepare(self, draw: Callable[[], Tuple[Inputs, torch.Tensor, torch.Tensor]], lr: float,
                tick: Callable[[float], bool]) -> None:
        """Train whatever must be ready before the main loop (EDCSTFN's feature extractor); default nothing. Call
        `tick(fraction done)` before each step: it honours a cancel and reports progress, and returns True once
        the time budget is spent (then stop there)."""


@dataclass(frozen=True)
class ModelDef:
    """A trainable fusion network as the registry, the trainer and checkpoints see it."""

    name: str
    version: int
    description: str
    required: Tuple[str, ...]
    optional: Tuple[str, ...]
    network: Callable[[int, FrozenSet[str], int, Mapping[str, object]], nn.Module]
    """(bands, roles, ratio, options) → network taking `Inputs` and returning normalised fine bands."""
    objective: Callable[[int, Mapping[str, object]], Objective]
    radius: Callable[[int, FrozenSet[str]], int]
    """Receptive radius in fine pixels of the local (convolutional) part, from the architecture."""
    blend: bool = False
    """True when the network has global components, so tiles are blended instead of cropped."""
    coarse_resampling: str = "bilinear"
    options: Mapping[str, Option] = field(default_factory=dict)
    """Hyper-parameters and loss weights, declared with defaults and ranges."""

    def roles_for(self, given) -> FrozenSet[str]:
        """The roles a network is built with: all required ones plus the optional ones given."""
        return frozenset(self.required) | (frozenset(given) & frozenset(self.optional))
