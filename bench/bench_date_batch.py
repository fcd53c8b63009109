"""Dates fused together (`--date-batch`) against one date at a time, on the GPU when there is one, else on 2 CPU
threads: seconds, dates per minute and the largest difference between the two runs' fused images (they should agree
to float rounding)."""
from __future__ import annotations

import pathlib
import sys
import tempfile
import time
from typing import List, Tuple

import numpy as np
import rasterio
import torch

from stf_engine import SeriesRequest, fuse_series

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from devkit.series import SERIES_OPTIONS, kranj_series, synthetic_series  # noqa: E402

THREADS = 2
DATE_BATCHES = (1, 4)
SIDE, BANDS, DATES, FINE_DATES, RATIO = 768, 6, 10, 2, 16
"""A synthetic series small enough for STARFM to run twice in a few minutes: 8 dates between 2 fine ones."""


def _run(series: str, out: pathlib.Path, method: str, date_batch: int, **options):
    started = time.perf_counter()
    result = fuse_series(SeriesRequest(series=series, output_dir=str(out), method=method, threads=THREADS,
                                       date_batch=date_batch, **options))
    return result, time.perf_counter() - started


def _largest_difference(first, second) -> float:
    largest = 0.0
    for a, b in zip(first.dates, second.dates):
        if a.fused and b.fused and a.status == b.status == "fused":
            with rasterio.open(a.fused) as one, rasterio.open(b.fused) as two:
                largest = max(largest, float(np.nanmax(np.abs(one.read().astype(np.float64) - two.read()))))
    return largest


def _rows(name: str, series: str, folder: pathlib.Path, method: str, **options) -> List[str]:
    runs: List[Tuple[int, object, float]] = []
    for date_batch in DATE_BATCHES:
        result, seconds = _run(series, folder / f"{method}_{date_batch}", method, date_batch, **options)
        runs.append((date_batch, result, seconds))
    difference = _largest_difference(runs[0][1], runs[-1][1])
    rows = []
    for date_batch, result, seconds in runs:
        fused = sum(d.status == "fused" for d in result.dates)
        rows.append(f"| {name} | {method} | {date_batch} | {fused} | {seconds:.1f} | {fused / seconds * 60:.1f} | "
                    f"{seconds / runs[0][2]:.2f} | {difference:.2g} |")
    return rows


def section() -> str:
    on_gpu = torch.cuda.is_available()  # the series' default device, auto, takes it
    where = f"on the GPU ({torch.cuda.get_device_name()})" if on_gpu else f"on {THREADS} CPU threads"
    lines = [f"## Dates fused together (`--date-batch`) {where}", "",
             "Issue 11 asks for dates batched on the GPU. `fuse_series` stacks up to `--date-batch` consecutive "
             "dates with the same references into one batch (`fuse_dates`), so STARFM, Fit-FC, ESTARFM and the "
             "deep models run once a batch for all of them. "
             + ("" if on_gpu else "No GPU was lent, so this is the CPU: it shows the cost or gain of stacking here "
                                  "and that the outputs agree. ")
             + f"Time is the whole `fuse_series` call (preparation included, on {THREADS} CPU threads); difference "
             "is the largest absolute difference between the stacked and one-at-a-time fused images (stored "
             "values).", "",
             "| series | method | date batch | dates fused | seconds | dates/min | time vs batch 1 | "
             "largest difference |", "|---|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as folder:
        root = pathlib.Path(folder)
        (root / "kranj").mkdir()
        kranj = str(kranj_series(root / "kranj", hide=(77,)))
        lines += _rows("Kranj (44×45×6, 26 dates)", kranj, root / "kranj", "starfm", **SERIES_OPTIONS)
        synthetic = str(synthetic_series(root / "synthetic", side=SIDE, bands=BANDS, dates=DATES,
                                         fine_dates=FINE_DATES, ratio=RATIO))
        lines += _rows(f"synthetic {SIDE}²×{BANDS}, {DATES} dates ({FINE_DATES} fine)", synthetic, root / "synthetic",
                       "starfm")
    return "\n".join(lines + [""])
