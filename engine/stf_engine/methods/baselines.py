"""Baselines every run can be compared with: the upsampled coarse target, and reference-plus-change."""
from __future__ import annotations

from typing import Callable, Dict, Iterable

import torch

from .. import roles
from ..core.psf import psf_radius
from .contract import MethodContext, MethodSpec, TileBatch


def _cubic(context: MethodContext):
    return lambda batch: batch.coarse_target


def _delta(context: MethodContext):
    weight_2 = context.survey.get("weight_2", 0.0)

    def run(batch: TileBatch):
        first = batch.fine_reference + (batch.coarse_target - batch.coarse_reference_or_simulated(context.ratio))
        if not weight_2:
            return first
        second = batch.fine_reference_2 + (batch.coarse_target - batch.coarse_reference_2)
        return torch.lerp(first, second, weight_2)

    return run


def _delta_survey(context: MethodContext, scene: Callable[[], Iterable[TileBatch]]) -> Dict[str, float]:
    """With a second pair: each pair weighted by the inverse of its mean coarse change over the scene, so the
    pair whose date looks more like the target counts more (ESTARFM's temporal weight, taken scene-wide so
    that tiling cannot change it)."""
    if not {roles.FINE_REFERENCE_2, roles.COARSE_REFERENCE_2} <= context.given:
        return {}
    change = torch.zeros(2, dtype=torch.float64)  # on the CPU, whatever the device of the tiles
    for batch in scene():
        context.tick()
        valid = batch.valid.expand_as(batch.coarse_target)
        for index, reference in enumerate((batch.coarse_reference_or_simulated(context.ratio), batch.coarse_reference_2)):
            change[index] += (batch.coarse_target - reference).abs()[valid].double().sum().cpu()
    inverse = 1.0 / change.clamp_min(1e-12)
    return {"weight_2": float(inverse[1] / inverse.sum())}


def _delta_halo(context: MethodContext) -> int:
    return 0 if roles.COARSE_REFERENCE in context.given else psf_radius(context.ratio)


SPECS = (
    MethodSpec(
        name="cubic",
        description="Coarse target upsampled to the fine grid by cubic convolution (no fine detail)",
        required=(roles.COARSE_TARGET, roles.FINE_REFERENCE),
        optional=(),
        halo=lambda context: 0,
        build=_cubic,
        coarse_resampling="cubic",
    ),
    MethodSpec(
        name="delta",
        description="Fine reference plus the coarse change C2 − C1 (C1 simulated from the fine reference if absent); "
                    "with a second pair, both pairs' predictions weighted by how little each pair's coarse image "
                    "differs from the target",
        required=(roles.COARSE_TARGET, roles.FINE_REFERENCE),
        optional=(roles.COARSE_REFERENCE, roles.FINE_REFERENCE_2, roles.COARSE_REFERENCE_2),
        halo=_delta_halo,
        build=_delta,
        survey=_delta_survey,
    ),
)
