"""`check`: every rule a fusion request must meet, in one place, before any pixel is predicted.

The CLI, Processing and the dialog call this (through `fuse`, or directly to validate a form): cheap,
metadata plus a bounded sample of pixels, safe on the GUI thread.
"""
from __future__ import annotations

import os
from contextlib import ExitStack
from dataclasses import dataclass, replace
from typing import Dict, List, Optional, Tuple

import torch

from .. import roles
from ..core import tiling
from ..core.device import PRECISIONS, resolve_device
from ..core.memory import available_bytes
from ..core.outputs import check_writable_file, check_writable_folder, file_key, refuse_overwrite
from ..core.progress import Progress, Ticker, Warnings, silent
from ..errors import StfError
from ..inputs.aligned import AlignedInputs, open_inputs
from ..methods.catalog import get_method, resolved_options
from ..models import checkpoint
from ..raster.grid_view import data_bands
from ..raster.open import open_raster
from ..methods.contract import MethodContext, MethodSpec
from .request import ERROR_MAP_NAMES, FusionRequest, check_cluster
from .surveys import ReferenceSurveys, run_surveys


WORKING_ARRAYS = 16
"""Float arrays per band and pixel a method may hold while it runs on a tile (STARFM holds about 12)."""
MEMORY_SHARE = 0.8
"""Share of the available memory a run may plan to use."""


@dataclass
class Plan:
    """A checked request with its inputs open: what the prediction phase runs."""

    request: FusionRequest
    spec: MethodSpec
    device: torch.device
    inputs: AlignedInputs
    context: MethodContext
    halo: int
    tiles: List[tiling.Tile]
    warnings: Warnings

    def fallbacks(self) -> dict:
        """`predict_tiles`' out-of-memory steps for this run, wherever it predicts: warn into its warnings, split
        tiles when the halo covers the method's reach, rebuild the method on the CPU."""
        return dict(warn=self.warnings.add, split_tiles=not self.spec.blend,
                    rebuild=lambda device: self.spec.build(replace(self.context, device=device)))


@dataclass(frozen=True)
class CheckReport:
    """What a checked request would do: for forms and dry runs."""

    method: str
    device: str
    width: int
    height: int
    bands: int
    ratio: int
    halo: int
    tiles: int
    warnings: Tuple[str, ...] = ()


def check(request: FusionRequest, weights_from_training: bool = False) -> CheckReport:
    """Raise StfError naming the first problem of the request; otherwise say what the run would do.

    `weights_from_training`: the run will use the checkpoint a training run writes first (the dialog's
    "train on these layers first"), so a missing weights file is not a problem.
    """
    with ExitStack() as stack:
        plan = prepare(request, stack, weights_from_training, survey_scene=False)
        grid = plan.inputs.grid
        return CheckReport(
            method=plan.spec.name,
            device=str(plan.device),
            width=grid.width,
            height=grid.height,
            bands=plan.inputs.bands,
            ratio=plan.inputs.ratio,
            halo=plan.halo,
            tiles=len(plan.tiles),
            warnings=tuple(plan.warnings),
        )


def check_settings(request: FusionRequest, weights_from_training: bool = False) -> None:
    """Raise StfError naming the request's first problem that shows without reading a pixel (`check_rules`), and
    a weights file that is no checkpoint of the method's model: what a front end checks before it queues a run, as
    Processing checks parameters before it starts (a bad checkpoint failed only once the inputs were open)."""
    spec, _ = check_rules(request, weights_from_training)
    if request.weights and spec.needs_weights and not weights_from_training:
        checkpoint.check_model(checkpoint.load(request.weights).meta, spec.name, request.weights)


def check_rules(request: FusionRequest, weights_from_training: bool = False) -> Tuple[MethodSpec, Dict[str, object]]:
    """The checks that need no file: method, options, numbers, device, weights and the products asked for."""
    spec = get_method(request.method)
    options = resolved_options(spec, request.options)
    if not request.output:
        raise StfError("no output path given; name the fused GeoTIFF to write")
    _check_outputs(request)
    _check_distinct_inputs(request)
    if request.bands is not None and (not request.bands or min(request.bands) < 1):
        raise StfError(f"coarse bands are numbered from 1, got {','.join(map(str, request.bands)) or 'none'}")
    check_cluster(request)
    if request.precision not in PRECISIONS:
        raise StfError(f"unknown precision '{request.precision}'; use {', '.join(PRECISIONS)}")
    if (request.truth or request.uncertainty) and not request.error_maps_dir:
        asked = [flag for flag, given in (("--truth", request.truth), ("--uncertainty", request.uncertainty)) if given]
        raise StfError(f"{' and '.join(asked)} {'needs' if len(asked) == 1 else 'need'} a folder for the error maps: "
                       f"add --error-maps DIR")
    if request.weights and not spec.needs_weights:
        raise StfError(f"method '{spec.name}' takes no weights file; leave it out or pick a deep model")
    if spec.needs_weights and not (request.weights or spec.default_weights or weights_from_training):
        raise StfError(f"method '{spec.name}' needs a weights file (--weights); train one with `stf train`")
    given = request.inputs()
    if (roles.FINE_REFERENCE_2 in given) != (roles.COARSE_REFERENCE_2 in given):
        raise StfError("a second reference pair needs both its fine image and its coarse image "
                       "(--fine2 and --coarse-ref2)")
    for role in spec.required:
        if role not in given:
            raise StfError(f"method '{spec.name}' needs a {roles.asked_for(role)}")
    return spec, options


def _check_distinct_inputs(request: FusionRequest) -> None:
    """Each role and the truth name a file of their own: one file in two roles is a slip of the picker (a fine
    image taken for the coarse target, the reference date's coarse image for the target date's)."""
    seen: Dict[object, str] = {}
    named = {roles.LABELS[role]: path for role, path in request.inputs().items()}
    for label, path in {**named, "truth": request.truth}.items():
        if not path:
            continue
        first = seen.setdefault(file_key(path), label)
        if first != label:
            raise StfError(f"the {first} and the {label} are the same file ({path}); give each its own image")


def _check_outputs(request: FusionRequest) -> None:
    """Outputs never replace an input, and their folders accept files: checked before any work."""
    inputs = {roles.LABELS[role]: path for role, path in request.inputs().items()}
    inputs.update({"truth": request.truth, "weights file": request.weights})
    check_writable_file(request.output)
    outputs = {"output": request.output}
    if request.error_maps_dir:
        if os.path.exists(request.error_maps_dir) and not os.path.isdir(request.error_maps_dir):
            raise StfError(f"the error-maps folder {request.error_maps_dir} is a file; give a folder")
        check_writable_folder(request.error_maps_dir, "error maps")
        maps = {f"error map {name}": os.path.join(request.error_maps_dir, f"{name}.tif") for name in ERROR_MAP_NAMES}
        folder, output = _spelled(request.error_maps_dir), _spelled(request.output)
        if output == folder or output in map(_spelled, maps.values()):
            raise StfError(f"the output {request.output} is the error-maps folder or one of its maps; give the fused "
                           f"image another name")
        outputs.update(maps)
    if not request.output.lower().endswith((".tif", ".tiff")):
        raise StfError(f"the output is written as a GeoTIFF: give it a name ending in .tif, not {request.output}")
    refuse_overwrite(outputs, inputs)


def _spelled(path: str) -> str:
    """A path as the file system tells paths apart: links resolved, case folded where it ignores case (Windows)."""
    return os.path.normcase(os.path.realpath(path))


def surveys_scene(spec: MethodSpec) -> bool:
    """Whether the method surveys the scene before its tiles (FSDAF's classes and unmixing): a step of its own."""
    return spec.survey is not None or spec.reference_survey is not None


def prepare(
    request: FusionRequest,
    stack: ExitStack,
    weights_from_training: bool = False,
    progress: Progress = silent,
    ticker: Optional[Ticker] = None,
    survey_scene: bool = True,
    surveys: Optional[ReferenceSurveys] = None,
) -> Plan:
    """Check the request, open its inputs on the fine grid and size the run; StfError for any problem.

    `ticker` carries the run's cancel into the method's inner loops (and its progress within a tile);
    `surveys` keeps reference surveys for later requests with the same references."""
    ticker = ticker or Ticker()
    spec, options = check_rules(request, weights_from_training)
    device = resolve_device(request.device)
    warnings = Warnings()
    given = request.inputs()
    for role in given:
        if not spec.accepts(role):
            warnings.add(f"method '{spec.name}' does not use the {roles.LABELS[role]}; it is ignored")
    paths = {role: path for role, path in given.items() if spec.accepts(role)}
    inputs = open_inputs(paths, request.alignment(spec.coarse_resampling), stack, progress, ticker.cancel)
    warnings.extend_unique(inputs.warnings)
    _check_truth_bands(request, inputs)
    if device.type == "cpu" and request.precision != "fp32":
        warnings.add(f"{request.precision} autocast is for CUDA; the CPU runs in fp32")
    context = MethodContext(
        ratio=inputs.ratio,
        bands=inputs.bands,
        given=frozenset(inputs.readers),
        device=device,
        fine_std=inputs.fine_std,
        weights=request.weights or spec.default_weights,
        options=options,
        warn=warnings.add,
        tick=ticker,
    )
    if survey_scene and surveys_scene(spec):
        ticker.progress = progress
        ticker.span(0.0, 1.0, f"{spec.name}: surveying the scene")
        ticker(0.0)
        context = run_surveys(spec, context, request, inputs, surveys)
    halo = spec.halo(context) if request.halo is None else request.halo
    longest = max(inputs.grid.height, inputs.grid.width)
    if halo > longest:
        warnings.add(f"a halo of {halo} px is more than the raster's {longest} px; {longest} px is used")
        halo = longest
    check_memory(request, inputs, halo)
    tiles = tiling.plan(inputs.grid.height, inputs.grid.width, request.tile)
    return Plan(request, spec, device, inputs, context, halo, tiles, warnings)


def _check_truth_bands(request: FusionRequest, inputs: AlignedInputs) -> None:
    """A truth whose band count differs from the fine reference's is refused now, not after the prediction."""
    if not request.truth:
        return
    with open_raster(request.truth, "truth") as truth:
        count = len(data_bands(truth))
    if count != inputs.bands:
        raise StfError(f"the truth {request.truth} has {count} bands but the fine reference {request.fine_reference} "
                       f"has {inputs.bands}; give as truth the fine image of the target date with the fine "
                       f"reference's bands")


def check_memory(request: FusionRequest, inputs: AlignedInputs, halo: int) -> None:
    """Refuse a run whose tiles would not fit in the memory available now, naming what to lower
    (`request.batch` tiles a batch: times the dates when several are stacked)."""
    grid = inputs.grid
    side_h = min(request.tile or grid.height, grid.height) + 2 * halo
    side_w = min(request.tile or grid.width, grid.width) + 2 * halo
    channels = sum(reader.count for reader in inputs.readers.values()) + 1 + WORKING_ARRAYS * inputs.bands
    needed = request.batch * side_h * side_w * channels * 4
    available = available_bytes()
    if available and needed > MEMORY_SHARE * available:
        raise StfError(
            f"this run would need about {needed / 2**30:.1f} GB of memory for its tiles (tile {request.tile or 'whole'}, "
            f"halo {halo}, batch {request.batch}) but about {available / 2**30:.1f} GB is available; lower the "
            f"halo (--halo), the tile size (--tile) or the batch (--batch)"
        )
