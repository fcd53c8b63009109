"""`fuse`: the one entry point the CLI, the QGIS task and Processing call."""
from __future__ import annotations

import logging
import time
from contextlib import ExitStack
from typing import Callable, Dict, Optional

import numpy as np
import rasterio
import torch

from . import roles, tiling
from .assess.error_maps import write_error_maps
from .blend import TileBlender
from .device import autocast, resolve_device
from .errors import FusionCancelled, StfError
from .inputs import FineProfile, open_inputs
from .registry import MethodContext, get_method
from .request import FusionRequest, FusionResult
from .writer import PendingOutputs

log = logging.getLogger("stf_engine")

Progress = Callable[[float, str], None]
GDAL_CACHE_BYTES = 128 * 2**20
"""Caps GDAL's block cache so memory is set by tile and batch size, not by raster size."""


def fuse(request: FusionRequest, progress: Optional[Progress] = None, cancel=None) -> FusionResult:
    """Fuse one request tile by tile; `progress(fraction, message)` per batch, `cancel.is_set()` checked per batch."""
    started = time.perf_counter()
    spec = get_method(request.method)
    weights = request.weights or spec.default_weights
    if spec.needs_weights and not weights:
        raise StfError(f"method '{spec.name}' needs a weights file (--weights); train one with `stf train`")
    if request.tile < 0 or request.batch < 1 or (request.halo is not None and request.halo < 0):
        raise StfError("tile and halo must be ≥ 0 and batch ≥ 1")
    device = resolve_device(request.device)
    report = progress or (lambda fraction, message: None)

    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES), ExitStack() as stack:
        inputs = open_inputs(request, spec, stack)
        for warning in inputs.warnings:
            log.warning(warning)
        if device.type == "cpu" and request.precision != "fp32":
            inputs.warnings.append(f"{request.precision} autocast is for CUDA; the CPU runs in fp32")
        context = MethodContext(
            ratio=inputs.ratio,
            bands=inputs.readers[roles.FINE_REFERENCE].count,
            given=frozenset(inputs.readers),
            device=device,
            fine_std=inputs.fine_std,
            weights=weights,
            options={**spec.options, **request.options},
        )
        halo = spec.halo(context) if request.halo is None else request.halo
        method = spec.build(context)
        grid = inputs.grid
        tiles = tiling.plan(grid.height, grid.width, request.tile)
        report(0.0, f"{spec.name} on {device}: {len(tiles)} tile(s), halo {halo}")

        with PendingOutputs() as outputs:
            fused = outputs.create(
                request.output,
                grid,
                context.bands,
                inputs.fine.dtype,
                _output_nodata(inputs.fine),
                descriptions=inputs.fine.descriptions,
                tags={"STF_METHOD": spec.name, "STF_HALO": str(halo), "STF_TILE": str(request.tile)},
            )
            done = 0
            blender = None
            if spec.blend and halo > 0 and len(tiles) > 1:

                def store(row: int, values: np.ndarray, valid: np.ndarray) -> None:
                    fused.write(to_stored(values, valid, inputs.fine), row, 0)

                blender = TileBlender(store, grid.height, grid.width, context.bands, halo)
            for group in tiling.batches(tiles, request.batch):
                _check_cancel(cancel)
                batch = inputs.read_batch(group, halo, device)
                with torch.inference_mode(), autocast(device, request.precision):
                    predicted = method(batch).float()
                if blender:
                    blender.add(group, predicted, batch.valid)
                else:
                    _write_batch(fused, inputs.fine, group, halo, predicted, batch.valid)
                done += len(group)
                report(done / len(tiles) * (0.9 if request.error_maps_dir else 1.0), f"tile {done}/{len(tiles)}")
            if blender:
                blender.finish()
            fused.close()

            error_maps: Dict[str, str] = {}
            if request.error_maps_dir:
                error_maps = write_error_maps(
                    fused.partial,
                    inputs,
                    request,
                    outputs,
                    progress=lambda f: report(0.9 + 0.1 * f, "error maps"),
                    cancel=lambda: _check_cancel(cancel),
                    spec=spec,
                    tile_function=method,
                    halo=halo,
                    device=device,
                )
            _check_cancel(cancel)  # a cancel seen before the outputs are committed still removes them

    report(1.0, "done")
    borders = tiling.borders(grid.height, grid.width, request.tile)
    return FusionResult(
        output=fused.path,
        method=spec.name,
        device=str(device),
        tiles=len(tiles),
        tile=request.tile,
        halo=halo,
        seconds=time.perf_counter() - started,
        ratio=inputs.ratio,
        coarse_shift=inputs.coarse_shift,
        width=grid.width,
        height=grid.height,
        bands=context.bands,
        tile_borders=borders,
        error_maps=error_maps,
        warnings=tuple(inputs.warnings),
    )


def _check_cancel(cancel) -> None:
    if cancel is not None and cancel.is_set():
        raise FusionCancelled("cancelled")


def _write_batch(writer, fine: FineProfile, group, halo: int, predicted: torch.Tensor, valid: torch.Tensor) -> None:
    """Crop each prediction to the part of its core not written yet and store it in the output's units."""
    predicted = predicted.cpu().numpy()
    valid = valid.cpu().numpy()
    for index, tile in enumerate(group):
        rows, cols = tile.rows, tile.cols
        r0 = halo + rows.write_start - rows.core_start
        c0 = halo + cols.write_start - cols.core_start
        r1 = r0 + rows.write_stop - rows.write_start
        c1 = c0 + cols.write_stop - cols.write_start
        values = to_stored(predicted[index, :, r0:r1, c0:c1], valid[index, 0, r0:r1, c0:c1], fine)
        writer.write(values, rows.write_start, cols.write_start)


def _output_nodata(fine: FineProfile):
    if fine.nodata is not None:
        return fine.nodata
    dtype = np.dtype(fine.dtype)
    return float("nan") if np.issubdtype(dtype, np.floating) else np.iinfo(dtype).min


def to_stored(reflectance: np.ndarray, valid: np.ndarray, fine: FineProfile) -> np.ndarray:
    """Reflectance → the fine reference's dtype and scale, nodata where any input was invalid."""
    dtype = np.dtype(fine.dtype)
    nodata = _output_nodata(fine)
    stored = fine.units.to_stored(reflectance)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        stored = np.clip(np.rint(stored), info.min, info.max)
        stored[(stored == nodata) & valid] -= 1 if nodata == info.max else -1
    stored = stored.astype(dtype)
    stored[:, ~valid] = nodata
    return stored
