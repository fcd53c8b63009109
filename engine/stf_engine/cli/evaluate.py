"""`stf evaluate`: measure a prediction against the truth; write metrics.json/csv and plots."""
from __future__ import annotations

import argparse
import math

from .. import (
    DEVICES, EVALUATION_SCALE_ROLES, EvaluationReport, EvaluationRequest, evaluate, parse_evaluation_scales,
    parse_number,
)

from .common import add_threads_argument, progress_bar

NAME = "evaluate"
HELP = "measure a fused image against the truth (RMSE, SSIM, ERGAS, Edge, LBP, …) with plots"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pred", required=True, metavar="P", help="the fused image")
    parser.add_argument("--truth", required=True, metavar="T", help="the real fine image at the same date")
    parser.add_argument("--fine-ref", metavar="F", help="fine reference of the run (quick-look panel)")
    parser.add_argument("--coarse", metavar="C", help="coarse target of the run (ERGAS's h/l and the quick-look)")
    parser.add_argument("--out", metavar="DIR", help="write metrics.json, metrics.csv and PNG plots into DIR")
    parser.add_argument("--no-plots", action="store_true", help="write the tables only")
    parser.add_argument("--ratio", help="coarse/fine pixel-size ratio for ERGAS: a number or a fraction (e.g. 500/30)")
    parser.add_argument("--tile", type=int, help="tile size of the run, for the seam ratio (default: the STF_TILE tag)")
    parser.add_argument("--data-range", type=float,
                        help="peak for PSNR and SSIM (default: 1 for reflectance, else the truth's range)")
    parser.add_argument(
        "--scale",
        action="append",
        default=[],
        metavar="ROLE=FACTOR",
        help=f"stored value × FACTOR = reflectance (or ROLE=SCALE:OFFSET); ROLE is one of "
        f"{', '.join(EVALUATION_SCALE_ROLES)}",
    )
    parser.add_argument("--device", default=DEVICES[0], choices=DEVICES)
    add_threads_argument(parser)


def request_from(args) -> EvaluationRequest:
    return EvaluationRequest(
        prediction=args.pred,
        truth=args.truth,
        fine_reference=args.fine_ref,
        coarse=args.coarse,
        out_dir=args.out,
        plots=not args.no_plots,
        tile=args.tile,
        scales=parse_evaluation_scales(args.scale),
        ratio=parse_number(args.ratio, "--ratio") if args.ratio else None,
        data_range=args.data_range,
        device=args.device,
        threads=args.threads,
    )


def format_table(report: EvaluationReport) -> str:
    """Metrics as rows, bands and overall as columns."""
    names = list(report.overall)
    header = ["metric"] + report.band_names + ["overall"]
    rows = [header]
    for name in names:
        values = [band.get(name) for band in report.bands] + [report.overall[name]]
        rows.append([name] + [_cell(v) for v in values])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = []
    for row in rows:
        cells = [cell.rjust(width) if i else cell.ljust(width) for i, (cell, width) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells))
    return "\n".join(lines)


def _cell(value) -> str:
    """A table cell: empty for a measure left out, 'n/a' for an undefined one (NaN)."""
    if value is None:
        return ""
    return "n/a" if math.isnan(value) else f"{value:.4f}"


def run(args) -> int:
    request = request_from(args)
    with progress_bar("stf evaluate") as progress:
        report = evaluate(request, progress=progress)
    print(format_table(report))
    print(f"valid pixels: {report.valid_pixels}")
    for name, path in report.files.items():
        print(f"{name}: {path}")
    return 0
