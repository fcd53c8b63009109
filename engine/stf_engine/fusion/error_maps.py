"""Which error maps a run writes next to its output (called by the runner once the fused image exists).

Always: the coarse-consistency residual, the temporal-change magnitude |C2 − C1| when a coarse
reference was given, and the seam mask when the run had more than one tile. With a truth image: the
absolute error per band and the RMS error across bands. With `request.uncertainty`: the expected error
(see uncertainty.py). Every map is float32 on the fine grid (the seam mask uint8), written by windows, with
DESCRIPTION and UNITS tags, and STF_RAMP saying which colour ramp suits it (RAMPS).
"""
from __future__ import annotations

import math
import os
from contextlib import ExitStack, closing
from typing import Dict, Optional, Tuple

import numpy as np
import rasterio

from .. import roles
from ..core import tiling
from ..core.outputs import remove_output
from ..core.progress import Cancel, Progress, Warnings, check_cancel, stage
from ..core.seams import SEAM_HALF_WIDTH, seam_mask_window
from ..errors import StfError
from ..inputs.aligned import AlignedInputs
from ..raster.open import open_on_grid
from ..raster.windows import block_windows
from ..raster.writer import PendingOutputs
from .check import Plan
from .residual import write_coarse_residual
from .uncertainty import UncertaintyEstimator

REFLECTANCE = "reflectance"
UNCERTAINTY_WEIGHT = 8
"""The uncertainty map's share of the error maps' progress against 1 for each other step: it runs every other
classic method over the scene once more."""
RAMPS = {  # one per name in request.ERROR_MAP_NAMES
    "coarse_residual": "diverging",
    "coarse_residual_rms": "sequential",
    "abs_error": "sequential",
    "rms_error": "sequential",
    "temporal_change": "sequential",
    "seam_mask": "mask",
    "uncertainty": "sequential",
}
"""Colour ramp kind per map (also in each file's STF_RAMP tag): diverging for signed values around 0,
sequential for magnitudes from 0, mask for 0/1."""


def remove_stale_maps(out_dir: str, written: Dict[str, str], warnings: Warnings) -> None:
    """Remove the maps an earlier run left in `out_dir` that this run did not write (another method or option set
    makes other maps), so the folder holds only maps of the fused image beside it. Only files an STF run wrote (with
    their STF_RAMP tag) are removed; one that cannot be (open in another program on Windows) is a warning: the new
    outputs are in place by then."""
    for name in RAMPS:
        path = os.path.join(out_dir, f"{name}.tif")
        if name in written or not os.path.isfile(path) or os.path.islink(path):
            continue
        try:
            with rasterio.open(path) as earlier:
                ours = earlier.tags().get("STF_RAMP") == RAMPS[name]
        except rasterio.errors.RasterioError:
            continue
        if ours:
            try:
                remove_output(path, "earlier run's map")
                remove_output(f"{path}.aux.xml", "earlier run's map statistics")
            except StfError as exc:
                warnings.add(f"{exc}; it does not describe the new fused image: remove it by hand")


def write_error_maps(
    fused_path: str,
    plan: Plan,
    outputs: PendingOutputs,
    progress: Progress,
    cancel: Optional[Cancel] = None,
) -> Tuple[Dict[str, str], Optional[float]]:
    """Write every error map the request asks for into its error-maps folder; return name → path, and with a truth
    the fused image's RMSE against it over every valid pixel and band, else None."""
    request, inputs = plan.request, plan.inputs
    out_dir = request.error_maps_dir
    weights = [1, 1] + [1] * bool(request.truth) + [UNCERTAINTY_WEIGHT] * bool(request.uncertainty)
    ends = iter(np.cumsum(weights) / sum(weights))
    done = 0.0

    def part() -> Progress:
        nonlocal done
        start, done = done, float(next(ends))
        return stage(progress, start, done)

    paths = write_coarse_residual(fused_path, inputs, out_dir, outputs, part(), cancel)
    maps = _MapWriter(inputs, outputs, out_dir)
    changes = part()
    if roles.COARSE_REFERENCE in inputs.readers:
        paths.update(_temporal_change(maps, inputs, changes, cancel))
    paths.update(_seam_mask(maps, inputs, request.tile))
    changes(1.0, "temporal change and seams")
    truth_rmse = None
    with rasterio.open(fused_path) as fused:
        if request.truth:
            truth_paths, truth_rmse = _truth_errors(maps, fused, inputs, request, part(), cancel)
            paths.update(truth_paths)
        if request.uncertainty:
            paths.update(_uncertainty(maps, plan, fused, part(), cancel))
    progress(1.0, "done")
    return paths, truth_rmse


class _MapWriter:
    """Creates tagged float32 maps on the fine grid in the error-map folder."""

    def __init__(self, inputs: AlignedInputs, outputs: PendingOutputs, out_dir: str):
        self.inputs, self.outputs, self.out_dir = inputs, outputs, out_dir

    def create(self, name: str, bands, description: str, units: str, dtype: str = "float32", nodata=float("nan")):
        names = [bands] if isinstance(bands, str) else list(bands)
        return self.outputs.create(
            os.path.join(self.out_dir, f"{name}.tif"),
            self.inputs.grid,
            len(names),
            dtype,
            nodata,
            descriptions=names,
            tags={"DESCRIPTION": description, "UNITS": units, "STF_RAMP": RAMPS[name]},
        )

    def windows(self):
        return list(block_windows(self.inputs.grid.height, self.inputs.grid.width, 1))


def _band_names(inputs: AlignedInputs, what: str):
    count = inputs.readers[roles.FINE_REFERENCE].count
    return [f"{what} band {b}" for b in range(1, count + 1)]


def _rms(values: np.ndarray) -> np.ndarray:
    """Root mean square over the band axis, keeping it: (C, h, w) → (1, h, w)."""
    return np.sqrt(np.mean(values.astype(np.float32) ** 2, axis=0, keepdims=True))


def _truth_errors(maps: _MapWriter, fused, inputs: AlignedInputs, request, progress: Progress, cancel):
    """|prediction − truth| per band and the RMS error across bands (name → path), and the RMSE over every pixel
    and band where both hold data (None where none does)."""
    with ExitStack() as stack:
        truth = open_on_grid(stack, request.truth, "truth", inputs.grid, request.scales.get("truth"), "nearest")
        absolute = maps.create(
            "abs_error", _band_names(inputs, "|error|"), "absolute error |prediction - truth| per band", REFLECTANCE
        )
        rms = maps.create(
            "rms_error", "RMS error", "root mean square across bands of prediction - truth", REFLECTANCE
        )
        windows = maps.windows()
        squares, count = 0.0, 0
        for index, window in enumerate(windows):
            check_cancel(cancel)
            predicted = inputs.fine.units.to_reflectance(fused.read(window=window))
            fused_valid = np.all(fused.read_masks(window=window) > 0, axis=0)
            values, truth_valid = truth.read(window)
            error = predicted - values
            error[:, ~(fused_valid & truth_valid)] = np.nan
            row, col = int(window.row_off), int(window.col_off)
            absolute.write(np.abs(error), row, col)
            rms.write(_rms(error), row, col)
            squares += float(np.nansum(error.astype(np.float64) ** 2))
            count += int(np.count_nonzero(~np.isnan(error)))
            progress((index + 1) / len(windows), "error against the truth")
    return {"abs_error": absolute.path, "rms_error": rms.path}, math.sqrt(squares / count) if count else None


def _temporal_change(maps: _MapWriter, inputs: AlignedInputs, progress: Progress, cancel):
    """RMS across bands of C2 − C1 on the fine grid: large change means a less reliable prediction (8 s of reading
    on a 4000² scene: it reports each window)."""
    target, reference = inputs.readers[roles.COARSE_TARGET], inputs.readers[roles.COARSE_REFERENCE]
    change = maps.create(
        "temporal_change",
        "|C2 - C1| (RMS over bands)",
        "temporal-change magnitude: RMS across bands of coarse target minus coarse reference; large = less reliable",
        REFLECTANCE,
    )
    windows = maps.windows()
    for index, window in enumerate(windows):
        check_cancel(cancel)
        c2, valid2 = target.read(window)
        c1, valid1 = reference.read(window)
        magnitude = _rms(c2 - c1)
        magnitude[:, ~(valid1 & valid2)] = np.nan
        change.write(magnitude, int(window.row_off), int(window.col_off))
        progress((index + 1) / len(windows), "temporal change")
    return {"temporal_change": change.path}


def _seam_mask(maps: _MapWriter, inputs: AlignedInputs, tile: int) -> Dict[str, str]:
    """1 on the pixels within SEAM_HALF_WIDTH of a tile border of this run, 0 elsewhere; none for one tile."""
    grid = inputs.grid
    borders = tiling.borders(grid.height, grid.width, tile)
    if not any(borders):
        return {}
    mask = maps.create(
        "seam_mask",
        "tile seams",
        f"1 within {SEAM_HALF_WIDTH} pixels of a border between tiles of this run (tile {tile})",
        "1 = seam pixel",
        dtype="uint8",
        nodata=None,
    )
    for window in maps.windows():
        row, col, height, width = int(window.row_off), int(window.col_off), int(window.height), int(window.width)
        mask.write(seam_mask_window(row, col, height, width, borders)[None].astype(np.uint8), row, col)
    return {"seam_mask": mask.path}


def _uncertainty(maps: _MapWriter, plan: Plan, fused, progress: Progress, cancel):
    progress(0.0, "uncertainty: surveying the scene for the other methods")
    estimator = UncertaintyEstimator(plan, fused)
    out = maps.create("uncertainty", "expected error", estimator.describe(), REFLECTANCE)
    with closing(estimator.parts(progress, cancel)) as parts:
        for tile, values in parts:
            out.write(values, tile.rows.write_start, tile.cols.write_start)
    return {"uncertainty": out.path}
