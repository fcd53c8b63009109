"""Which error maps a run writes next to its output (called by the runner once the fused image exists)."""
from __future__ import annotations

from typing import Callable, Dict

from ..inputs import AlignedInputs
from ..request import FusionRequest
from ..writer import PendingOutputs
from .residual import write_coarse_residual


def write_error_maps(
    fused_path: str,
    inputs: AlignedInputs,
    request: FusionRequest,
    outputs: PendingOutputs,
    progress: Callable[[float], None] = lambda f: None,
    cancel: Callable[[], None] = lambda: None,
) -> Dict[str, str]:
    """Write every error map the request asks for into request.error_maps_dir; return name → path."""
    return write_coarse_residual(fused_path, inputs, request.error_maps_dir, outputs, progress, cancel)
