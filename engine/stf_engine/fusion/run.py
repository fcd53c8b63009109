"""`fuse`: the one entry point the CLI, the QGIS task and Processing call, in named phases.

check and open the inputs (`check.prepare`) → predict tile by tile into the output → write the error maps
→ commit every output together (renamed from their temporary names only when all succeeded).
`fuse_dates` does the same for several target dates that share their references, their tiles stacked into
one batch so the method runs once for all of them (a series on a GPU).
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from contextlib import ExitStack, closing
from typing import Dict, List, Optional, Sequence, Tuple

import rasterio

from .. import roles
from ..core import tiling
from ..core.blend import TileBlender
from ..core.device import cpu_threads
from ..core.outputs import made_folder, output_lock, refuse_overwrite
from ..core.pipeline import WriteBehind
from ..core.progress import Cancel, Progress, Ticker, check_cancel, reporter, silent, stage
from ..errors import StfError
from ..raster.writer import GeoTiffWriter, PendingOutputs, remove_left_partials
from ..methods.auto import Choice
from ..methods.catalog import get_method
from . import distributed
from .auto import choose
from .check import Plan, check_memory, check_rules, prepare, surveys_scene
from .error_maps import remove_stale_maps, write_error_maps
from .predict import DateStack, Predicted, TileFunction, predict_tiles, written_parts
from .request import ERROR_MAP_NAMES, FusionRequest, FusionResult
from .surveys import ReferenceSurveys

GDAL_CACHE_BYTES = 128 * 2**20
"""Caps GDAL's block cache so memory is set by tile and batch size, not by raster size."""
WRITE_BEHIND = 2
"""Predicted batches waiting for the writer thread at most (their memory is the bound)."""
PREDICTION_SHARE = 0.9
"""Share of the progress bar given to the prediction when error maps follow."""
PREDICTION_SHARE_BEFORE_UNCERTAINTY = 0.3
"""The same when the uncertainty map follows: it runs every other classic method over the scene once more."""
SURVEY_SHARE = 0.2
"""Share of the prediction's part of the bar a method's scene surveys take, for a method that makes them (FSDAF's
classes and unmixing took a fifth of its time on a 4000² scene)."""
CHOICE_SHARE = 0.25
"""Share of the progress bar given to `auto`'s validation, which a window of bounded size limits."""
COG_SHARE = 0.25
"""Share of the progress bar left to the Cloud Optimized GeoTIFF pass (GDAL's copy reports no progress)."""


def fuse(request: FusionRequest, progress: Optional[Progress] = None, cancel: Optional[Cancel] = None,
         surveys: Optional[ReferenceSurveys] = None) -> FusionResult:
    """Fuse one request tile by tile; `progress(fraction, message)` per batch, `cancel.is_set()` checked per batch.
    `surveys` keeps what the method learnt from the references alone, for the next request with the same ones."""
    started = time.perf_counter()
    report = reporter(progress, cancel)
    spec, _ = check_rules(request)  # before any work, and before the output is locked
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES), ExitStack() as stack:
        for folder in (os.path.dirname(os.path.abspath(request.output)), request.error_maps_dir):
            if folder:
                stack.enter_context(made_folder(folder))
        stack.enter_context(output_lock(request.output))
        _remove_left_partials(request)
        threads = stack.enter_context(cpu_threads(request.threads))
        ticker = Ticker(cancel=cancel)
        choice, chosen = None, 0.0
        if spec.chooses:
            ticker.progress = stage(report, 0.0, CHOICE_SHARE)
            choice, shift = choose(request, spec, ticker.progress, ticker)
            request = dataclasses.replace(request, method=choice.method, options={}, coarse_shift=shift)
            chosen = CHOICE_SHARE
        end = 1.0 - COG_SHARE if request.cog else 1.0
        share = end if not request.error_maps_dir else end * (
            PREDICTION_SHARE_BEFORE_UNCERTAINTY if request.uncertainty else PREDICTION_SHARE)
        surveyed = chosen + SURVEY_SHARE * (share - chosen) if surveys_scene(get_method(request.method)) else chosen
        plan = prepare(request, stack, progress=stage(report, chosen, surveyed), ticker=ticker, surveys=surveys)
        if choice is not None and choice.is_baseline:
            plan.warnings.add(choice.reason)
        with PendingOutputs(cancel) as outputs:
            fused = _create_output(plan, outputs, choice)
            ticker.progress = stage(report, surveyed, share)
            client, method = None, None
            if distributed.wanted(request):  # the workers build the method
                ticker.progress(0.0, "starting the Dask workers" if request.workers else "connecting to Dask")
                client = stack.enter_context(distributed.cluster(request, cancel))
            else:
                method = plan.spec.build(plan.context)
            _predict([plan], method, [fused], ticker, client)
            ticker.progress = silent  # the error maps' other methods tick too: only their cancel checks count there
            error_maps: Dict[str, str] = {}
            truth_rmse = None
            if request.error_maps_dir:
                maps_progress = stage(report, share, end, "error maps")
                error_maps, truth_rmse = write_error_maps(fused.partial, plan, outputs, maps_progress, cancel)
            check_cancel(cancel)  # a cancel seen before the outputs are committed still removes them
            if request.cog:
                report(end, "writing the Cloud Optimized GeoTIFF")
        if request.error_maps_dir:
            remove_stale_maps(request.error_maps_dir, error_maps, plan.warnings)
    report(1.0, "done")
    return _result(plan, fused.path, error_maps, time.perf_counter() - started, threads, choice, truth_rmse)


def _remove_left_partials(request: FusionRequest) -> None:
    """Remove the hidden partial files a killed run left beside the request's output and among its error maps (call
    it holding the output's lock)."""
    folder, name = os.path.split(os.path.abspath(request.output))
    remove_left_partials(folder, lambda target: target == name)
    if request.error_maps_dir and os.path.isdir(request.error_maps_dir):
        maps = {f"{name}.tif" for name in ERROR_MAP_NAMES}
        remove_left_partials(request.error_maps_dir, maps.__contains__)


def fuse_dates(requests: Sequence[FusionRequest], progress: Optional[Progress] = None,
               cancel: Optional[Cancel] = None, surveys: Optional[ReferenceSurveys] = None) -> Tuple[FusionResult, ...]:
    """Fuse several target dates whose requests differ only in the coarse target and the output.

    When the method's tiles depend on the references alone (`batches_dates`), each batch holds the same tiles
    of every date and the method runs once for all of them, its outputs committed together; otherwise, and
    on a Dask cluster, the dates are fused one after another, sharing `surveys`. Memory grows with the
    number of dates in one call, so callers pass a bounded group (the series' `dates_per_batch()`)."""
    report = reporter(progress, cancel)
    _check_dates(requests)
    first = requests[0]
    spec, _ = check_rules(first)
    if len(requests) == 1 or not batches_dates(spec) or first.error_maps_dir or distributed.wanted(first):
        return tuple(fuse(request, stage(report, index / len(requests), (index + 1) / len(requests)),
                          cancel, surveys) for index, request in enumerate(requests))
    started = time.perf_counter()
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES), ExitStack() as stack:
        for request in requests:
            stack.enter_context(made_folder(os.path.dirname(os.path.abspath(request.output))))
            stack.enter_context(output_lock(request.output))
            _remove_left_partials(request)
        threads = stack.enter_context(cpu_threads(first.threads))
        ticker = Ticker(cancel=cancel)
        plans = [prepare(first, stack, progress=stage(report, 0.0, 0.0), ticker=ticker, surveys=surveys)]
        shared = {"coarse_shift": plans[0].inputs.coarse_shift} if first.coarse_reference else {}  # registered once
        plans += [prepare(dataclasses.replace(r, **shared), stack, progress=stage(report, 0.0, 0.0), ticker=ticker,
                          surveys=surveys) for r in requests[1:]]
        check_memory(dataclasses.replace(first, batch=first.batch * len(plans)), plans[0].inputs, plans[0].halo)
        with PendingOutputs(cancel) as outputs:
            method = spec.build(plans[0].context)
            fused = [_create_output(plan, outputs, None) for plan in plans]
            ticker.progress = report
            _predict(plans, method, fused, ticker)
            check_cancel(cancel)
    report(1.0, "done")
    seconds = time.perf_counter() - started
    return tuple(_result(plan, writer.path, {}, seconds, threads, None) for plan, writer in zip(plans, fused))


def _check_dates(requests: Sequence[FusionRequest]) -> None:
    """Requests fused together share their settings, and no date's output is another's output or input (each
    request's own check sees only its own inputs)."""
    if isinstance(requests, FusionRequest) or not requests:
        raise StfError("fuse_dates takes a list of one or more requests (fuse takes one)")
    first = requests[0]
    for request in requests[1:]:
        if shared_by_dates(request) != shared_by_dates(first):
            raise StfError("dates fused together must share everything but the coarse target and the output")
    if first.error_maps_dir and len(requests) > 1:
        raise StfError("dates fused together would write their error maps into one folder; fuse each date with "
                       "a folder of its own")
    if len({os.path.realpath(r.output) for r in requests}) < len(requests):
        raise StfError("each date needs an output of its own")
    refuse_overwrite({f"output {r.output}": r.output for r in requests},
                     {f"{roles.LABELS[role]} of the date written to {r.output}": path
                      for r in requests for role, path in r.inputs().items()})


def shared_by_dates(request: FusionRequest) -> FusionRequest:
    """The request without what differs from date to date: dates fused together must agree on the rest."""
    return dataclasses.replace(request, coarse_target=None, output=None)


def batches_dates(spec) -> bool:
    """Whether the method's tiles depend on the references and the tile alone, so one built method serves
    every target date: no scene survey of the coarse target, no choice of method per scene."""
    return spec.survey is None and not spec.chooses


def _create_output(plan: Plan, outputs: PendingOutputs, choice: Optional[Choice]) -> GeoTiffWriter:
    """The fused GeoTIFF in the fine reference's encoding, tagged with how it was made (and auto's table)."""
    fine = plan.inputs.fine
    tags = {"STF_METHOD": plan.spec.name, "STF_HALO": str(plan.halo), "STF_TILE": str(plan.request.tile)}
    if choice is not None:
        tags["STF_AUTO"] = json.dumps({"chosen": choice.method, "reason": choice.reason,
                                       "validation_rmse": {s.method: s.rmse for s in choice.scores}})
    return outputs.create(
        plan.request.output,
        plan.inputs.grid,
        plan.inputs.bands,
        fine.dtype,
        fine.output_nodata,
        descriptions=fine.descriptions,
        tags=tags,
        units=fine.units,
        cog=plan.request.cog,
    )


def _predict(plans: List[Plan], method: Optional[TileFunction], outputs: List[GeoTiffWriter], ticker: Ticker,
             client=None):
    """Every tile predicted and written once: cropped to its written part, or Hann-blended for global models.
    With several plans (dates), each batch stacks their tiles and the method runs once for all of them.
    With a Dask `client`, the batches are predicted by its workers and written here."""
    plan = plans[0]
    request, halo, tiles = plan.request, plan.halo, plan.tiles
    progress = ticker.progress
    dates = f" × {len(plans)} dates" if len(plans) > 1 else ""
    progress(0.0, f"{plan.spec.name} on {plan.device}: {len(tiles)} tile(s){dates}, halo {halo}")
    blenders = [None] * len(plans)
    if plan.spec.blend and halo > 0 and len(tiles) > 1:
        blenders = [_blender(each, writer) for each, writer in zip(plans, outputs)]
    done = 0
    if client is not None:
        batches = distributed.predict_on_cluster(client, plan, ticker.cancel)
    else:
        inputs = plan.inputs if len(plans) == 1 else DateStack([p.inputs for p in plans])
        batches = predict_tiles(inputs, method, tiles, halo, request.batch, plan.device, request.precision,
                                ticker.cancel, ticker, **plan.fallbacks())

    def store(predicted: Predicted) -> None:
        for each, writer, blender, part in zip(plans, outputs, blenders, _by_date(predicted, len(plans))):
            if blender:
                blender.add(*part)
                continue
            for tile, values, valid in written_parts(part, halo):
                writer.write(each.inputs.fine.to_stored(values, valid), tile.rows.write_start, tile.cols.write_start)

    # Closed before a failure leaves: its reader threads are joined while the inputs they read are still open.
    with closing(batches), WriteBehind(WRITE_BEHIND) as writes:  # the next batch is predicted while this one is written
        for predicted in batches:
            writes.submit(lambda predicted=predicted: store(predicted))
            done += len(predicted[0])
            progress(done / len(tiles), f"tile {done}/{len(tiles)}")
    for blender, writer in zip(blenders, outputs):
        if blender:
            blender.finish()
        writer.close()


def _blender(plan: Plan, fused: GeoTiffWriter) -> TileBlender:
    """Hann-weighted overlap of the haloed tiles, flushed to `fused` row band by row band."""
    grid = plan.inputs.grid

    def store(row: int, values, valid) -> None:
        fused.write(plan.inputs.fine.to_stored(values, valid), row, 0)

    return TileBlender(store, grid.height, grid.width, plan.inputs.bands, plan.halo)


def _by_date(predicted: Predicted, dates: int) -> List[Predicted]:
    """A batch of stacked dates split back into each date's (tiles, values, valid)."""
    group, values, valid = predicted
    size = len(group)
    return [(group, values[d * size:(d + 1) * size], valid[d * size:(d + 1) * size]) for d in range(dates)]


def _result(plan: Plan, output: str, error_maps: Dict[str, str], seconds: float, threads: int,
            choice: Optional[Choice], truth_rmse: Optional[float] = None) -> FusionResult:
    grid, request = plan.inputs.grid, plan.request
    return FusionResult(
        output=output,
        method=plan.spec.name,
        device=str(plan.device),
        tiles=len(plan.tiles),
        tile=request.tile,
        halo=plan.halo,
        seconds=seconds,
        ratio=plan.inputs.ratio,
        coarse_shift=plan.inputs.coarse_shift,
        width=grid.width,
        height=grid.height,
        bands=plan.inputs.bands,
        tile_borders=tiling.borders(grid.height, grid.width, request.tile),
        error_maps={name: os.path.abspath(path) for name, path in error_maps.items()},  # absolute, as the output
        warnings=tuple(plan.warnings),
        threads=threads,
        validation=tuple((s.method, s.rmse) for s in choice.scores) if choice else (),
        choice=choice.reason if choice and not choice.is_baseline else "",
        truth_rmse=truth_rmse,
    )
