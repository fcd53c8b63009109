"""`stf fuse-series`: a fused image and a reliability map for every coarse date of a series."""
from __future__ import annotations

import argparse

from .. import (
    DEFAULT_BATCH, DEFAULT_MAX_GAP, DEFAULT_SERIES_METHOD, DEFAULT_TILE, DEVICES, GPU_DATE_BATCH, SeriesRequest,
    fuse_series, list_methods, parse_mask_rules, parse_options, parse_scales,
)
from .common import (
    add_cluster_arguments, add_mask_rule_argument, add_threads_argument, add_unit_arguments, date_list, int_list,
    progress_bar, shift_line,
)

NAME = "fuse-series"
HELP = "fuse every coarse date of a series (masks, references on both sides, reliability maps)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--series", required=True,
                        help="CSV (date,coarse,fine[,pan,coarse_mask,fine_mask]; a row may have only a coarse image) "
                             "or a folder of <date>_coarse/_fine/_coarse_mask/_fine_mask rasters")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="folder for fused_<date>.tif, reliability_<date>.tif, series.json and series.vrt")
    parser.add_argument("--from", dest="date_from", metavar="DATE", help="first target date (YYYY-MM-DD)")
    parser.add_argument("--to", dest="date_to", metavar="DATE", help="last target date")
    parser.add_argument("--dates", help="only these target dates, comma-separated")
    parser.add_argument("--method", default=DEFAULT_SERIES_METHOD,
                        help=f"one of: {', '.join(list_methods())} (default {DEFAULT_SERIES_METHOD})")
    parser.add_argument("--max-gap", type=int, default=DEFAULT_MAX_GAP, metavar="DAYS",
                        help=f"farthest a fine reference may be from a target date (default {DEFAULT_MAX_GAP})")
    add_mask_rule_argument(parser)
    parser.add_argument("--cog", action="store_true",
                        help="write the fused images as Cloud Optimized GeoTIFFs (internal overviews)")
    parser.add_argument("--overwrite", action="store_true",
                        help="fuse again the dates already written (default: resume after them)")
    tiles = parser.add_argument_group("tiling and device")
    tiles.add_argument("--tile", type=int, default=DEFAULT_TILE,
                       help=f"core tile size in pixels, at least 16; 0 = whole raster (default {DEFAULT_TILE})")
    tiles.add_argument("--batch", type=int, default=DEFAULT_BATCH, help=f"tiles per batch (default {DEFAULT_BATCH})")
    tiles.add_argument("--date-batch", type=int, metavar="N",
                       help="consecutive dates with the same references fused together, their tiles in one batch "
                            f"(STARFM, Fit-FC, ESTARFM, deep models; default {GPU_DATE_BATCH} on a GPU, 1 on the CPU)")
    tiles.add_argument("--device", default=DEVICES[0], choices=DEVICES)
    add_threads_argument(tiles)
    add_cluster_arguments(parser)
    units = add_unit_arguments(parser)
    units.add_argument("--register", action="store_true", help="correct the coarse rasters' misregistration")
    units.add_argument("--resampling", choices=["bilinear", "cubic", "nearest", "lanczos"], default="bilinear",
                       help="coarse upsampling (default bilinear)")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="method parameter")


def request_from(args) -> SeriesRequest:
    return SeriesRequest(
        series=args.series,
        output_dir=args.out,
        method=args.method,
        date_from=args.date_from,
        date_to=args.date_to,
        dates=date_list(args.dates, "--dates") or (),
        max_gap=args.max_gap,
        mask_rules=parse_mask_rules(args.mask_rule),
        scales=parse_scales(args.scale),
        bands=int_list(args.bands) if args.bands else None,
        coarse_resolution=args.coarse_res,
        resampling=args.resampling,
        register=args.register,
        tile=args.tile,
        batch=args.batch,
        date_batch=args.date_batch,
        device=args.device,
        threads=args.threads,
        options=parse_options(args.method, args.option),
        overwrite=args.overwrite,
        cog=args.cog,
        workers=args.workers,
        scheduler=args.scheduler,
    )


def run(args) -> int:
    request = request_from(args)
    with progress_bar(f"stf fuse-series ({request.method})") as progress:
        result = fuse_series(request, progress=progress)
    print(f"{'date':<10}  {'status':<7}  {'references':<23}  {'method':<14}  {'restored':>8}  {'coarse':>8}  "
          f"{'fallback':>8}  {'exp. error':>10}  {'vs own fine':>11}")
    for date in result.dates:
        observed = f"{date.observed_rmse:.4f}" if date.observed_rmse is not None else "—"
        print(f"{date.date:<10}  {date.status:<7}  {' + '.join(date.references) or '—':<23}  {date.method or '—':<14}  "
              f"{date.restored:>8.1%}  {date.coarse_restored:>8.1%}  {date.fallback:>8.1%}  "
              f"{date.expected_error:>10.4f}  {observed:>11}")
    fused = sum(d.status == "fused" for d in result.dates)
    kept = sum(d.status == "kept" for d in result.dates)
    skipped = sum(d.status == "skipped" for d in result.dates)
    print(f"{fused} date(s) fused, {kept} kept from an earlier run, {skipped} skipped, {result.seconds:.1f} s")
    if result.coarse_shift != (0.0, 0.0):
        print(shift_line(result.coarse_shift))
    for source, target, days, rmse in result.validation:
        print(f"validation: {target} predicted from {source} ({days:.0f} days) by the coarse change: RMSE {rmse:.4f}")
    print(f"manifest: {result.manifest}")
    if result.stack:
        print(f"stack: {result.stack}")
    return 0
