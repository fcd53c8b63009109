"""A date's final outputs from its raw fusion: drastic-change fallback, the observed fine image where the date
has one, and the reliability map (expected error in reflectance).

Drastic change: where the coarse change from every reference is far beyond the scene's usual change (more
than DRASTIC_SPREAD robust standard deviations above its median, and more than the coarse image's own
error), the references' detail no longer describes the surface; the coarse target alone predicts it there
and the pixel is flagged.

Reliability, per pixel: each reference's expected error at its age (days to the target plus the days its
restored value had to travel; the coarse-only error where it was restored from coarse) from the series' own
cross-validation, combined over the references used as independent estimates, raised to the coarse-only
error where the fallback ran, and summed in quadrature with the prediction's coarse-consistency residual
(its coarse-pixel means minus the coarse target's). A coarse value restored in time (masked in its image) adds,
in quadrature, the same model's error at the days it was carried: to its reference's estimate when it is a
reference's coarse image, to the whole prediction when it is the target's.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np

from ..core.blocks import block_mean, expand
from ..core.progress import Cancel, Progress, check_cancel
from ..raster.writer import PendingOutputs
from .restore import coarse_age_name, coarse_name, fine_names
from .scene import SeriesScene, work_windows
from .validate import ErrorModel
from .work import WorkRasters

DRASTIC_SPREAD = 5.0
"""Robust standard deviations of the scene's coarse change beyond which a change counts as drastic."""


@dataclass(frozen=True)
class Finished:
    fused: str
    reliability: str
    fallback: float
    restored: float
    coarse_restored: float
    expected_error: float
    observed_rmse: Optional[float]


OUTPUT_KINDS = ("fused", "reliability")
"""A date's outputs, each named '<kind>_<date>.tif'."""


def output_names(output_dir: str, day: str) -> Tuple[str, ...]:
    """The paths of the date's outputs, in OUTPUT_KINDS' order."""
    return tuple(os.path.join(output_dir, f"{kind}_{day}.tif") for kind in OUTPUT_KINDS)


def is_date_output(name: str) -> bool:
    """Whether a file name is one a date's output takes (whatever the date)."""
    return name.startswith(tuple(f"{kind}_" for kind in OUTPUT_KINDS)) and name.endswith(".tif")


def finish_date(scene: SeriesScene, work: WorkRasters, raw_name: str, date: str, references: Sequence[str],
                model: ErrorModel, output_dir: str, tags, progress: Progress, cancel: Optional[Cancel]) -> Finished:
    """Write fused_<date>.tif and reliability_<date>.tif from the work raster `raw_name` (both or neither)."""
    day = scene.entries[date].day
    threshold = _drastic_threshold(work, date, references, model)
    fused_path, reliability_path = output_names(output_dir, date)
    counts = dict(valid=0, fallback=0, restored=0, coarse_restored=0, observed=0)
    sums = dict(error=0.0, observed=0.0)
    windows = work_windows(scene.grid, scene.ratio)
    with PendingOutputs(cancel) as outputs:
        fused = outputs.create(fused_path, scene.grid, scene.bands, scene.encoding.dtype, scene.encoding.output_nodata,
                               descriptions=scene.encoding.descriptions, tags=tags, units=scene.encoding.units,
                               cog=scene.request.cog)
        reliability = outputs.create(reliability_path, scene.grid, 1, "float32", float("nan"),
                                     descriptions=("expected error (reflectance)",),
                                     tags={"UNITS": "reflectance", "STF_DATE": date})
        for index, window in enumerate(windows):
            check_cancel(cancel)
            progress(index / len(windows), "fallback and reliability")
            predicted = work.read(raw_name, window)
            target = work.read(coarse_name(date), window)
            valid = np.isfinite(predicted).all(axis=0) & np.isfinite(target).all(axis=0)
            change = np.full(valid.shape, np.inf, np.float32)
            inverse = np.zeros(valid.shape, np.float32)
            for reference in references:
                image, age_name = fine_names(reference)
                change = np.fmin(change, _rms_change(target, work.read(coarse_name(reference), window)))
                age = work.read(age_name, window)[0]
                counts["restored"] += int(((age > 0) & valid).sum())
                travelled = abs((scene.entries[reference].day - day).days) + age
                moved = model.at(np.where(np.isnan(travelled), np.inf, travelled)) ** 2
                inverse += 1.0 / (moved + _carried(model, work.read(coarse_age_name(reference), window)[0]))
            error = 1.0 / np.sqrt(np.maximum(inverse, 1e-12))
            target_age = work.read(coarse_age_name(date), window)[0]
            counts["coarse_restored"] += int(((target_age > 0) & valid).sum())
            error = np.sqrt(error**2 + _carried(model, target_age))
            drastic = valid & (change > threshold)
            predicted[:, drastic] = target[:, drastic]
            error[drastic] = np.maximum(error[drastic], model.coarse)
            residual = _coarse_residual(predicted, target, valid, scene.ratio)
            error = np.sqrt(error**2 + residual**2)
            if scene.has("fine", date):
                seen, clear = scene.read("fine", date, window)
                clear &= valid
                sums["observed"] += float(((predicted[:, clear] - seen[:, clear]).astype(np.float64) ** 2).sum())
                counts["observed"] += int(clear.sum()) * scene.bands
                predicted[:, clear] = seen[:, clear]
                error[clear] = 0.0
            error[~valid] = np.nan
            counts["valid"] += int(valid.sum())
            counts["fallback"] += int(drastic.sum())
            sums["error"] += float(np.nansum(error))
            row, col = int(window.row_off), int(window.col_off)
            fused.write(scene.encoding.to_stored(np.nan_to_num(predicted), valid), row, col)
            reliability.write(error[None].astype(np.float32), row, col)
    pixels = max(counts["valid"], 1)
    return Finished(
        fused_path, reliability_path,
        fallback=counts["fallback"] / pixels,
        restored=counts["restored"] / (pixels * max(len(references), 1)),
        coarse_restored=counts["coarse_restored"] / pixels,
        expected_error=sums["error"] / pixels,
        observed_rmse=float(np.sqrt(sums["observed"] / counts["observed"])) if counts["observed"] else None,
    )


def _drastic_threshold(work: WorkRasters, date: str, references: Sequence[str], model: ErrorModel) -> float:
    """The scene's median smallest coarse change plus DRASTIC_SPREAD robust deviations (at least the coarse error)."""
    target = work.preview(coarse_name(date))
    change = np.full(target.shape[1:], np.inf, np.float32)
    for reference in references:
        change = np.fmin(change, _rms_change(target, work.preview(coarse_name(reference))))
    values = change[np.isfinite(change)]
    if not values.size:
        return float("inf")
    median = float(np.median(values))
    spread = 1.4826 * float(np.median(np.abs(values - median)))
    return median + max(DRASTIC_SPREAD * spread, model.coarse)


def _carried(model: ErrorModel, coarse_age: np.ndarray) -> np.ndarray:
    """Squared expected error of coarse values carried `coarse_age` days by restoration (0 where observed)."""
    carried = np.nan_to_num(coarse_age)  # NaN: no coarse value at all, a pixel that is not valid anyway
    return np.where(carried > 0, model.at(carried) ** 2, 0.0).astype(np.float32)


def _rms_change(target: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(h, w) root mean square over the bands of target − reference where both hold data; NaN (which fmin skips)
    where no band does, without numpy's empty-slice warning."""
    squares = (target - reference) ** 2
    seen = np.isfinite(squares).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sqrt(np.nansum(squares, axis=0) / seen).astype(np.float32)


def _coarse_residual(predicted: np.ndarray, target: np.ndarray, valid: np.ndarray, ratio: int) -> np.ndarray:
    """RMS over bands of (prediction − coarse target) averaged over each coarse pixel, on the fine pixels."""
    difference = np.where(valid, predicted - target, 0.0)
    means, _ = block_mean(difference, valid, ratio)
    rms = np.sqrt((means**2).mean(axis=0))
    return expand(rms, ratio, *valid.shape).astype(np.float32)
