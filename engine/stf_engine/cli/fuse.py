"""`stf fuse`: predict the fine image at the coarse target's date."""
from __future__ import annotations

import argparse
from typing import List

from .. import (
    DEFAULT_BATCH, DEFAULT_METHOD, DEFAULT_TILE, DEVICES, PRECISIONS, FusionRequest, FusionResult, StfError, fuse,
    list_methods, parse_options, parse_scales,
)
from .common import (
    add_cluster_arguments, add_threads_argument, add_unit_arguments, float_pair, int_list, progress_bar, shift_line,
)

NAME = "fuse"
HELP = "fuse a coarse target with a fine reference into a fine image"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    given = parser.add_argument_group("inputs (any GDAL-readable raster; all are aligned to the fine grid)")
    given.add_argument("--coarse", required=True, metavar="C2", help="coarse image at the target date")
    given.add_argument("--fine", required=True, metavar="F1", help="fine image at a reference date")
    given.add_argument("--coarse-ref", metavar="C1", help="coarse image at the reference date")
    given.add_argument("--pan", metavar="P", help="panchromatic band at the target date")
    given.add_argument("--fine2", metavar="F3", help="second fine reference, on the other side of the target date")
    given.add_argument("--coarse-ref2", metavar="C3", help="coarse image at the second fine reference's date")
    parser.add_argument("--method", default=DEFAULT_METHOD,
                        help=f"one of: {', '.join(list_methods())} (default {DEFAULT_METHOD})")
    parser.add_argument("--weights", help="checkpoint file for deep models")
    parser.add_argument("--out", required=True, help="output GeoTIFF")
    parser.add_argument("--cog", action="store_true",
                        help="write a Cloud Optimized GeoTIFF (internal overviews; one more pass over the output)")
    parser.add_argument("--error-maps", metavar="DIR", help="write error maps (GeoTIFF) into DIR")
    parser.add_argument("--truth", metavar="T", help="fine image at the target date: adds error-vs-truth maps")
    parser.add_argument("--uncertainty", action="store_true", help="add the expected-error map (slower)")
    tiles = parser.add_argument_group("tiling and device")
    tiles.add_argument("--tile", type=int, default=DEFAULT_TILE,
                       help=f"core tile size in pixels, at least 16; 0 = whole raster (default {DEFAULT_TILE})")
    tiles.add_argument("--halo", default="auto", help="halo in pixels, or auto = the method's receptive radius")
    tiles.add_argument("--batch", type=int, default=DEFAULT_BATCH, help=f"tiles per batch (default {DEFAULT_BATCH})")
    tiles.add_argument("--device", default=DEVICES[0], choices=DEVICES)
    add_threads_argument(tiles)
    add_cluster_arguments(parser)
    tiles.add_argument("--precision", default=PRECISIONS[0], choices=PRECISIONS, help="autocast on CUDA")
    units = add_unit_arguments(parser)
    units.add_argument("--register", action="store_true",
                       help="estimate and correct the coarse rasters' misregistration against the fine reference")
    units.add_argument("--coarse-shift", metavar="DX,DY",
                       help="move the coarse rasters' georeference by DX fine pixels east and DY south")
    units.add_argument("--resampling", choices=["bilinear", "cubic", "nearest", "lanczos"], help="coarse upsampling")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="method parameter (stf info lists each method's options and ranges)")


def request_from(args) -> FusionRequest:
    return FusionRequest(
        coarse_target=args.coarse,
        fine_reference=args.fine,
        coarse_reference=args.coarse_ref,
        pan=args.pan,
        fine_reference_2=args.fine2,
        coarse_reference_2=args.coarse_ref2,
        output=args.out,
        method=args.method,
        weights=args.weights,
        error_maps_dir=args.error_maps,
        truth=args.truth,
        uncertainty=args.uncertainty,
        tile=args.tile,
        halo=_halo(args.halo),
        batch=args.batch,
        device=args.device,
        precision=args.precision,
        threads=args.threads,
        bands=int_list(args.bands) if args.bands else None,
        scales=parse_scales(args.scale),
        coarse_resolution=args.coarse_res,
        resampling=args.resampling,
        coarse_shift=float_pair(args.coarse_shift, "--coarse-shift") if args.coarse_shift else None,
        register=args.register,
        options=parse_options(args.method, args.option),
        cog=args.cog,
        workers=args.workers,
        scheduler=args.scheduler,
    )


def _halo(text: str):
    if text == "auto":
        return None
    try:
        return int(text)
    except ValueError:
        raise StfError(f"--halo expects a whole number of pixels or auto, got '{text}'") from None


def run(args) -> int:
    request = request_from(args)
    with progress_bar(f"stf fuse ({request.method})") as progress:
        result = fuse(request, progress=progress)
    print(
        f"{result.method} on {result.device} ({result.threads} CPU threads): "
        f"{result.width}×{result.height}×{result.bands}, {result.tiles} tile(s) of {result.tile or 'whole raster'} with halo {result.halo}, "
        f"{result.seconds:.1f} s"
    )
    print(f"output: {result.output}")
    if result.validation:
        print("\n".join(validation_lines(result)))
    if result.choice:
        print(result.choice)
    if result.coarse_shift != (0.0, 0.0):
        print(shift_line(result.coarse_shift))
    for name, path in result.error_maps.items():
        print(f"{name}: {path}")
    if result.truth_rmse is not None:
        print(f"RMSE against the truth: {result.truth_rmse:.5g}")
    return 0


def validation_lines(result: FusionResult) -> List[str]:
    """auto's validation table: each candidate's RMSE in Wald's reduced-resolution validation, best first, the one
    it ran marked."""
    width = max(len(method) for method, _ in result.validation)
    return ["auto's validation (RMSE at reduced resolution, best first):"] + [
        f"  {method:<{width}}  {rmse:.5f}" + ("  ← ran" if method == result.method else "")
        for method, rmse in result.validation]
