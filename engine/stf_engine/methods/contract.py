"""The method contract: what a method declares (inputs, halo, options) and what its tile function sees.

Adding a method is one module in this package exporting `SPECS`, listed once in `catalog.py`.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Dict, FrozenSet, Iterable, Mapping, Optional, Sequence, Tuple

import torch

from .. import roles
from ..core.options import Option
from ..core.psf import simulate_coarse


@dataclass
class TileBatch:
    """A batch of same-sized tiles on the fine grid, float32 reflectance, shape (B, C, H, W). In the scene a
    reference survey reads, `coarse_target` is None (see MethodSpec.reference_survey)."""

    coarse_target: torch.Tensor
    fine_reference: torch.Tensor
    valid: torch.Tensor
    """(B, 1, H, W) bool: every given input holds data there."""
    coarse_reference: Optional[torch.Tensor] = None
    pan: Optional[torch.Tensor] = None
    fine_reference_2: Optional[torch.Tensor] = None
    coarse_reference_2: Optional[torch.Tensor] = None
    origins: Tuple[Tuple[int, int], ...] = ()
    """(row, col) on the fine grid of each tile's first (haloed) pixel, for methods working on the coarse
    pixels' block grid, which is anchored at (0, 0) of the fine grid."""

    def coarse_reference_or_simulated(self, ratio: int) -> torch.Tensor:
        """The coarse reference, or the fine reference as the coarse sensor would see it when none was given
        (blurred over the valid pixels only, so the fill under nodata stays out of its neighbours)."""
        if self.coarse_reference is not None:
            return self.coarse_reference
        return simulate_coarse(self.fine_reference, ratio, self.valid)

    def tensors(self):
        """The batch's tensors by name (inputs and mask), for transforms that apply to all of them."""
        return {name: value for name, value in vars(self).items() if isinstance(value, torch.Tensor)}

    def part(self, start: int, stop: int) -> "TileBatch":
        """Tiles start..stop-1 of the batch (views, no copy)."""
        return TileBatch(origins=self.origins[start:stop],
                         **{name: value[start:stop] for name, value in self.tensors().items()})

    def to(self, device) -> "TileBatch":
        """The batch on `device`, copied without blocking the host when it lies in pinned memory."""
        return self._each(lambda tensor: tensor.to(device, non_blocking=True))

    def pinned(self) -> "TileBatch":
        """The batch in page-locked host memory, from where it copies to a GPU while the GPU computes."""
        return self._each(lambda tensor: tensor.pin_memory())

    def _each(self, change: Callable[[torch.Tensor], torch.Tensor]) -> "TileBatch":
        return TileBatch(origins=self.origins, **{name: change(value) for name, value in self.tensors().items()})

    @staticmethod
    def joined(batches: Sequence["TileBatch"]) -> "TileBatch":
        """One batch holding the tiles of several batches in order (the same tiles of several target dates)."""
        first = batches[0]
        tensors = {name: torch.cat([b.tensors()[name] for b in batches]) for name in first.tensors()}
        return TileBatch(origins=tuple(o for b in batches for o in b.origins), **tensors)


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
    """The method's options, defaults filled in and typed (see `catalog.parse_options`)."""
    warn: Callable[[str], None] = field(default=lambda message: None, compare=False)
    """The run's warnings channel, for what a method notices while it is built."""
    survey: Mapping[str, object] = field(default_factory=dict, compare=False)
    """What the method's scene-wide pre-passes found (MethodSpec.reference_survey, then MethodSpec.survey),
    the same for every tile."""
    tick: Callable[..., None] = field(default=lambda fraction=None: None, compare=False)
    """Called from a method's inner loops: tick(fraction of the batch done) or tick() raises FusionCancelled
    when the run is cancelled, so a long tile stops within about a second."""


TileFunction = Callable[[TileBatch], torch.Tensor]


def tick_within(tick: Callable[..., None], start: float, stop: float) -> Callable[..., None]:
    """`tick` for the part [start, stop] of a unit of work (a pair, a member method, a step of a batch): its
    fractions land within that part, so progress only rises; a bare tick() still checks for a cancel."""
    return lambda fraction=None: tick(None if fraction is None else
                                      start + (stop - start) * min(max(fraction, 0.0), 1.0))


def option_reader(options: Mapping[str, Option]) -> Callable[["MethodContext", str], object]:
    """`read(context, name)`: a method's option as the run set it, or its declared default."""
    return lambda context, name: options[name].value_in(context.options, name)


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
    options: Mapping[str, Option] = field(default_factory=dict)
    """Tunable parameters, declared with defaults and ranges."""
    default_weights: Optional[str] = None
    """Checkpoint used when a method needs weights and the request names none (a shipped demo)."""
    blend: bool = False
    """Blend overlapping tiles with a Hann weight instead of cropping (for networks with global parts)."""
    survey: Optional[Callable[[MethodContext, Callable[[], Iterable[TileBatch]]], Mapping[str, object]]] = None
    """A pre-pass over the whole scene in bounded memory, for statistics a method needs scene-wide (FSDAF's
    classes and class changes); tiles then use its result. It gets a callable that starts a new pass over
    the scene (windows aligned with the coarse pixels, no halo) each time it is called, and finds the
    reference survey's result in `context.survey`; what it returns is merged into that (its keys win)."""
    reference_survey: Optional[Callable[[MethodContext, Callable[[], Iterable[TileBatch]]], Mapping[str, object]]] = None
    """The part of the pre-pass that reads the references only, never the coarse target (FSDAF's classes): a
    run given a `ReferenceSurveys` cache (a series) computes it once per reference for every target date. In a
    run its scene's batches leave the coarse target out (None), so it is neither read nor warped."""
    chooses: bool = False
    """The method picks another one for the scene before any tile is predicted (`auto`)."""

    def accepts(self, role: str) -> bool:
        return role in self.required or role in self.optional

    def surveyed(self, context: MethodContext, scene: Callable[[], Iterable[TileBatch]],
                 reference: Optional[Callable[[], Mapping[str, object]]] = None) -> MethodContext:
        """The context with this method's pre-passes found in `survey`: the reference survey (`reference()` when
        given, a cache's answer), then the scene survey; an empty survey when the method has neither."""
        found: Dict[str, object] = {}
        if self.reference_survey is not None:
            found.update(reference() if reference is not None else self.reference_survey(context, scene))
        if self.survey is not None:
            found.update(self.survey(replace(context, survey=dict(found)), scene))
        return replace(context, survey=found)

    def __post_init__(self):
        unknown = set(self.required + self.optional) - set(roles.ALL_ROLES)
        if unknown:
            raise ValueError(f"method {self.name} declares unknown roles {sorted(unknown)}")
