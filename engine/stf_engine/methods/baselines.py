"""Baselines every run can be compared with: the upsampled coarse target, and reference-plus-change."""
from __future__ import annotations

from .. import roles
from ..core.psf import psf_radius, simulate_coarse
from .contract import MethodContext, MethodSpec, TileBatch


def _cubic(context: MethodContext):
    return lambda batch: batch.coarse_target


def _delta(context: MethodContext):
    def run(batch: TileBatch):
        reference = batch.coarse_reference
        if reference is None:
            reference = simulate_coarse(batch.fine_reference, context.ratio)
        return batch.fine_reference + (batch.coarse_target - reference)

    return run


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
        description="Fine reference plus the coarse change C2 − C1 (C1 simulated from the fine reference if absent)",
        required=(roles.COARSE_TARGET, roles.FINE_REFERENCE),
        optional=(roles.COARSE_REFERENCE,),
        halo=_delta_halo,
        build=_delta,
    ),
)
