"""The series' own validation: each fine reference predicted from each other one by the coarse change, on the
pixels clear in both. It says how fast the error of a prediction grows with the reference's age on this
scene, which is what the reliability map needs to put a number in reflectance on a date with no truth."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Tuple

import numpy as np

from .restore import Restored, coarse_name, fine_names
from .scene import SeriesScene
from .work import WorkRasters


@dataclass(frozen=True)
class ErrorModel:
    """Expected RMSE of a reference moved `age` days by the coarse change: per_root_day × √age, and `coarse`,
    the RMSE of the coarse image alone (what a pixel predicted without any fine reference can expect)."""

    per_root_day: float
    coarse: float
    pairs: Tuple[Tuple[str, str, float, float], ...] = ()
    """(reference, predicted date, days apart, RMSE) measured on the scene."""

    def at(self, age: np.ndarray) -> np.ndarray:
        """Expected error for ages in days (inf: restored from the coarse image only)."""
        moved = self.per_root_day * np.sqrt(np.maximum(age, 1.0))
        return np.where(np.isfinite(age), moved, self.coarse).astype(np.float32)


def error_model(scene: SeriesScene, references: Dict[str, Restored], work: WorkRasters, max_gap: int) -> ErrorModel:
    """Cross-predictions between references within `max_gap` days, fitted as error ∝ √days (least squares)."""
    dates = sorted(references, key=lambda d: scene.entries[d].day)
    views = {d: _view(work, d) for d in dates}
    pairs: List[Tuple[str, str, float, float]] = []
    coarse_errors = []
    for target in dates:
        fine, coarse, clear = views[target]
        if clear.any():
            coarse_errors.append(_rmse(coarse, fine, clear))
        for source in dates:
            days = abs((scene.entries[target].day - scene.entries[source].day).days)
            if source == target or days > max_gap:
                continue
            source_fine, source_coarse, source_clear = views[source]
            both = clear & source_clear
            if both.sum() >= 16:
                error = _rmse(source_fine + coarse - source_coarse, fine, both)
                pairs.append((source, target, float(days), error))
    coarse_rmse = float(np.mean(coarse_errors)) if coarse_errors else 0.0
    if pairs:
        roots = np.sqrt([p[2] for p in pairs])
        errors = np.array([p[3] for p in pairs])
        per_root_day = float((errors * roots).sum() / (roots**2).sum())
    else:  # one reference: no evidence of growth; assume the coarse-only error is reached at the largest gap
        per_root_day = coarse_rmse / math.sqrt(max_gap)
    return ErrorModel(per_root_day, coarse_rmse, tuple(pairs))


def _view(work: WorkRasters, date: str):
    """(fine, coarse, clear) of a reference, decimated: clear where the reference itself was usable (age 0)."""
    image, age = fine_names(date)
    fine, coarse, ages = work.preview(image), work.preview(coarse_name(date)), work.preview(age)[0]
    clear = (ages == 0) & np.isfinite(fine).all(axis=0) & np.isfinite(coarse).all(axis=0)
    return fine, coarse, clear


def _rmse(predicted: np.ndarray, truth: np.ndarray, where: np.ndarray) -> float:
    return float(np.sqrt(np.mean((predicted[:, where] - truth[:, where]).astype(np.float64) ** 2)))
