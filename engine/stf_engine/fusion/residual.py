"""Coarse-consistency residual: the fused image averaged back to coarse pixels minus the coarse target.

A correct fusion, seen by the coarse sensor, reproduces the coarse target; where it does not, the
residual (per band, and RMS across bands) shows how much the fused value may be off. No truth needed.
"""
from __future__ import annotations

import os
from typing import Dict, Optional

import numpy as np
import rasterio

from .. import roles
from ..core.blocks import block_mean, expand
from ..core.progress import Cancel, Progress, check_cancel
from ..inputs.aligned import AlignedInputs
from ..raster.windows import block_windows
from ..raster.writer import PendingOutputs


def write_coarse_residual(
    fused_path: str,
    inputs: AlignedInputs,
    out_dir: str,
    outputs: PendingOutputs,
    progress: Progress,
    cancel: Optional[Cancel] = None,
) -> Dict[str, str]:
    """Write `coarse_residual.tif` (per band) and `coarse_residual_rms.tif` into out_dir; return their paths."""
    grid, ratio = inputs.grid, inputs.ratio
    coarse = inputs.readers[roles.COARSE_TARGET]
    paths = {
        "coarse_residual": os.path.join(out_dir, "coarse_residual.tif"),
        "coarse_residual_rms": os.path.join(out_dir, "coarse_residual_rms.tif"),
    }
    units = "reflectance" if inputs.fine.units.scale != 1 else "units of the fine reference"
    tags = {"UNITS": units, "COARSE_PIXEL_RATIO": str(ratio)}
    per_band = outputs.create(
        paths["coarse_residual"],
        grid,
        coarse.count,
        "float32",
        float("nan"),
        descriptions=[f"residual band {b}" for b in range(1, coarse.count + 1)],
        tags={
            **tags,
            "DESCRIPTION": f"fused averaged over {ratio}x{ratio} pixel blocks minus the coarse target",
            "STF_RAMP": "diverging",
        },
    )
    rms = outputs.create(
        paths["coarse_residual_rms"],
        grid,
        1,
        "float32",
        float("nan"),
        descriptions=["RMS residual across bands"],
        tags={
            **tags,
            "DESCRIPTION": "root mean square across bands of the coarse-consistency residual",
            "STF_RAMP": "sequential",
        },
    )
    windows = list(block_windows(grid.height, grid.width, ratio))
    with rasterio.open(fused_path) as fused:
        for index, window in enumerate(windows):
            check_cancel(cancel)
            stored = fused.read(window=window)
            fused_valid = np.all(fused.read_masks(window=window) > 0, axis=0)
            predicted = inputs.fine.units.to_reflectance(stored)
            target, target_valid = coarse.read(window)
            valid = fused_valid & target_valid
            mean_fused, has_data = block_mean(predicted, valid, ratio)
            mean_target, _ = block_mean(target, valid, ratio)
            residual = np.where(has_data, mean_fused - mean_target, np.nan).astype(np.float32)
            height, width = int(window.height), int(window.width)
            row, col = int(window.row_off), int(window.col_off)
            # A coarse pixel's residual on its fine pixels that hold data: NaN where the fused image has none.
            per_band.write(np.where(valid, expand(residual, ratio, height, width), np.nan), row, col)
            block_rms = np.sqrt(np.mean(residual**2, axis=0, keepdims=True))
            rms.write(np.where(valid, expand(block_rms, ratio, height, width), np.nan), row, col)
            progress((index + 1) / len(windows), "coarse residual")
    return paths
