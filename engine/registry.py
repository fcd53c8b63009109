"""The method registry: each method declares its inputs, its halo and how to build its tile function.

Adding a method is one module that calls `register(MethodSpec(...))`, listed in `methods/__init__.py`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, FrozenSet, Mapping, Optional, Tuple

import torch

from . import roles
from .errors import StfError


@dataclass
class TileBatch:
    """A batch of same-sized tiles on the fine grid, float32 reflectance, shape (B, C, H, W)."""

    coarse_target: torch.Tensor
    fine_reference: torch.Tensor
    valid: torch.Tensor
    """(B, 1, H, W) bool: every given input holds data there."""
    coarse_reference: Optional[torch.Tensor] = None
    pan: Optional[torch.Tensor] = None


@dataclass(frozen=True)
class MethodContext:
    """Run-wide facts a method may size itself by; identical for every tile so tiling cannot change results."""

    ratio: int
    """Coarse/fine pixel-size ratio (≥ 1)."""
    bands: int
    given: FrozenSet[str]
    device: torch.device
    fine_std: Tuple[float, ...]
    """Per-band standard deviation of the fine reference over the whole raster."""
    weights: Optional[str] = None
    options: Mapping[str, object] = field(default_factory=dict)


TileFunction = Callable[[TileBatch], torch.Tensor]


@dataclass(frozen=True)
class MethodSpec:
    """A fusion method as the engine, CLI and plugin see it."""

    name: str
    description: str
    required: Tuple[str, ...]
    optional: Tuple[str, ...]
    halo: Callable[[MethodContext], int]
    """Receptive radius in fine pixels: how far a pixel's value depends on its neighbours."""
    build: Callable[[MethodContext], TileFunction]
    coarse_resampling: str = "bilinear"
    needs_weights: bool = False
    options: Mapping[str, object] = field(default_factory=dict)
    """Tunable parameters with their defaults."""
    default_weights: Optional[str] = None
    """Checkpoint used when a method needs weights and the request names none (a shipped demo)."""
    blend: bool = False
    """Blend overlapping tiles with a Hann weight instead of cropping (for networks with global parts)."""

    def accepts(self, role: str) -> bool:
        return role in self.required or role in self.optional


_METHODS: Dict[str, MethodSpec] = {}


def register(spec: MethodSpec) -> MethodSpec:
    """Add a method to the registry (a module-level call in the method's own file)."""
    unknown = set(spec.required + spec.optional) - set(roles.ALL_ROLES)
    if unknown:
        raise ValueError(f"method {spec.name} declares unknown roles {sorted(unknown)}")
    _METHODS[spec.name] = spec
    return spec


def available_methods() -> Dict[str, MethodSpec]:
    """All registered methods by name, in registration order."""
    from . import methods  # noqa: F401  (registers the built-in methods)

    return dict(_METHODS)


def get_method(name: str) -> MethodSpec:
    methods = available_methods()
    if name not in methods:
        raise StfError(f"unknown method '{name}'; choose one of: {', '.join(methods)}")
    return methods[name]
