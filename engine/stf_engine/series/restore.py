"""Restoration, decoupled from fusion: masked pixels of the coarse and fine images filled before any date is fused.

- A masked coarse pixel is interpolated in time between the nearest usable coarse values before and after it
  (or taken from the one side that has one). Each coarse image comes with its age map too: 0 where it was
  clear, the days to the nearer date its value came from where it was restored.
- A masked fine reference pixel takes the nearest other reference that is clear there, moved to the reference's
  date by the coarse change between the two dates (F' + C − C'); where no reference is clear, the coarse image
  itself. Each restored reference comes with its age map: 0 where it was clear, the days to the reference
  that filled it, infinity where only the coarse image could.
Cloud values therefore never reach a fusion method, and the age map lets the reliability map say how far
each restored value had to come from.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..core.progress import Cancel, Progress, check_cancel
from ..raster.writer import PendingOutputs
from .scene import SeriesScene, work_windows
from .work import WorkRasters


@dataclass(frozen=True)
class Restored:
    """A fine reference ready for fusion: its restored image, its age map and how much of it was clear."""

    image: str
    age: str
    clear: float
    """Share of the grid where the reference itself was usable."""


def coarse_name(date: str) -> str:
    return f"coarse_{date}"


def coarse_age_name(date: str) -> str:
    return f"coarse_age_{date}"


def restore_coarse(scene: SeriesScene, dates: Sequence[str], work: WorkRasters, max_gap: int,
                   progress: Progress, cancel: Optional[Cancel]) -> None:
    """Write every date's coarse image onto the grid with its masked pixels filled in time, and its age map."""
    coarse_dates = [d for d in scene.entries if scene.has("coarse", d)]
    windows = work_windows(scene.grid, scene.ratio)
    for index, date in enumerate(dates):
        progress(index / len(dates), f"aligning and restoring coarse images: {date}")
        before, after = _sides(scene, date, coarse_dates, max_gap)
        with PendingOutputs() as outputs:
            writer = work.create(outputs, coarse_name(date), scene.bands)
            ages = work.create(outputs, coarse_age_name(date), 1)
            for window in windows:
                check_cancel(cancel)
                data, usable = scene.read("coarse", date, window)
                age = np.zeros(usable.shape, np.float32)
                if not usable.all():
                    data, age = _interpolate(scene, date, window, data, usable, before, after)
                    usable = np.isfinite(age)
                data[:, ~usable] = np.nan
                writer.write(data, int(window.row_off), int(window.col_off))
                ages.write(age[None], int(window.row_off), int(window.col_off))


def _sides(scene: SeriesScene, date: str, candidates: Sequence[str], max_gap: int) -> Tuple[List[str], List[str]]:
    """Other dates within the gap, nearest first, before and after `date`."""
    day = scene.entries[date].day
    near = [d for d in candidates if d != date and abs((scene.entries[d].day - day).days) <= max_gap]
    near.sort(key=lambda d: abs((scene.entries[d].day - day).days))
    return [d for d in near if scene.entries[d].day < day], [d for d in near if scene.entries[d].day > day]


def _interpolate(scene: SeriesScene, date: str, window, data, usable, before, after):
    """Masked pixels linearly interpolated in time between the nearest usable values on each side; with the age
    map (0 where usable, days to the nearer side where restored, NaN where neither side has a value)."""
    day = scene.entries[date].day
    found = []
    for side in (before, after):
        value, distance = _nearest("coarse", scene, side, window, ~usable, day)
        found.append((value, distance))
    (v1, d1), (v2, d2) = found
    both = np.isfinite(d1) & np.isfinite(d2)
    w2 = np.where(both, d1 / np.where(both, d1 + d2, 1.0), np.isfinite(d2).astype(np.float32))
    mixed = np.where(np.isfinite(d1), v1, 0.0) * (1 - w2) + np.where(np.isfinite(d2), v2, 0.0) * w2
    age = np.where(usable, 0.0, np.fmin(d1, d2)).astype(np.float32)
    age[np.isinf(age)] = np.nan
    data = np.where(usable, data, mixed).astype(np.float32)
    return data, age


def _nearest(kind: str, scene: SeriesScene, dates: Sequence[str], window, needed: np.ndarray, day):
    """(values, days away) of the nearest date among `dates` usable at each needed pixel; inf days where none."""
    value = np.zeros((scene.bands,) + needed.shape, np.float32)
    distance = np.full(needed.shape, np.inf, np.float32)
    needed = needed.copy()
    for other in dates:
        if not needed.any():
            break
        data, usable = scene.read(kind, other, window)
        take = needed & usable
        value[:, take] = data[:, take]
        distance[take] = abs((scene.entries[other].day - day).days)
        needed &= ~take
    return value, distance


def fine_names(date: str) -> Tuple[str, str]:
    return f"fine_{date}", f"age_{date}"


def restore_references(scene: SeriesScene, dates: Sequence[str], work: WorkRasters, max_gap: int,
                       progress: Progress, cancel: Optional[Cancel]) -> Dict[str, Restored]:
    """Write each reference restored from the others (nearest first) and the coarse change; see the module doc."""
    windows = work_windows(scene.grid, scene.ratio)
    restored = {}
    for index, date in enumerate(dates):
        progress(index / len(dates), f"restoring masked reference pixels: {date}")
        day = scene.entries[date].day
        before, after = _sides(scene, date, dates, max_gap)
        others = sorted(before + after, key=lambda d: abs((scene.entries[d].day - day).days))
        image_name, age_name = fine_names(date)
        clear = 0
        with PendingOutputs() as outputs:
            image_writer = work.create(outputs, image_name, scene.bands)
            age_writer = work.create(outputs, age_name, 1)
            for window in windows:
                check_cancel(cancel)
                data, usable = scene.read("fine", date, window)
                coarse = work.read(coarse_name(date), window)
                age = np.where(usable, 0.0, np.nan).astype(np.float32)
                clear += int(usable.sum())
                for other in others:
                    needed = ~np.isfinite(age)
                    if not needed.any():
                        break
                    source, source_usable = scene.read("fine", other, window)
                    moved = source + coarse - work.read(coarse_name(other), window)
                    take = needed & source_usable & np.isfinite(moved).all(axis=0)
                    data[:, take] = moved[:, take]
                    age[take] = abs((scene.entries[other].day - day).days)
                from_coarse = ~np.isfinite(age) & np.isfinite(coarse).all(axis=0)
                data[:, from_coarse] = coarse[:, from_coarse]
                age[from_coarse] = np.inf
                data[:, np.isnan(age)] = np.nan
                image_writer.write(data, int(window.row_off), int(window.col_off))
                age_writer.write(age[None], int(window.row_off), int(window.col_off))
        share = clear / (scene.grid.width * scene.grid.height)
        restored[date] = Restored(work.path(image_name), work.path(age_name), share)
    return restored
