"""The real Kranj series (daily MODIS DOY 068–093, Landsat 068/077/093 with real gaps) written as series CSVs,
optionally with fine images hidden, a changed raster in place of one, or mask rasters."""
from __future__ import annotations

import datetime

from pathlib import Path
from typing import Callable, Dict, Iterable, Optional

import numpy as np
import rasterio

from helpers.paths import TEST_DATA

KRANJ = TEST_DATA / "kranj"
DAYS = range(68, 94)
LANDSAT_DAYS = (68, 77, 93)
"""Landsat dates that have a MODIS image too (100 has none)."""
SERIES_OPTIONS = dict(coarse_resolution=480, scales={"fine_reference": 1e-4, "fine_reference_2": 1e-4})
"""What the Kranj files need: MODIS is already on the 30 m grid (480 m pixels), Landsat is stored ×10000."""


def modis(day: int) -> Path:
    return KRANJ / "modis" / f"modis_2020{day:03d}.tif"


def landsat(day: int) -> Path:
    return KRANJ / "landsat_unfilled" / f"landsat_2020{day:03d}.tif"


def iso(day: int) -> str:
    """Day of year 2020 → YYYY-MM-DD, as the series' file names write it."""
    return (datetime.date(2020, 1, 1) + datetime.timedelta(days=day - 1)).isoformat()


def changed_copy(source: Path, target: Path, change: Callable[[np.ndarray], np.ndarray]) -> Path:
    """A copy of `source` with its pixel values passed through `change` (same grid, units and nodata)."""
    with rasterio.open(source) as dataset:
        profile, values = dataset.profile, dataset.read()
    with rasterio.open(target, "w", **profile) as out:
        out.write(change(values.copy()).astype(profile["dtype"]))
    return target


def write_mask(like: Path, target: Path, rows: slice, cols: slice) -> Path:
    """A uint8 mask on `like`'s grid: 1 (masked) inside the block, 0 elsewhere."""
    with rasterio.open(like) as dataset:
        profile = dict(dataset.profile, count=1, dtype="uint8", nodata=None)
        mask = np.zeros((1, dataset.height, dataset.width), np.uint8)
    mask[0, rows, cols] = 1
    with rasterio.open(target, "w", **profile) as out:
        out.write(mask)
    return target


def kranj_series(folder: Path, hide: Iterable[int] = (), fine: Optional[Dict[int, Path]] = None,
                 coarse: Optional[Dict[int, Path]] = None, fine_masks: Optional[Dict[int, Path]] = None) -> Path:
    """series.csv in `folder`: every MODIS day, Landsat on 068/077/093 except `hide`, with replacements."""
    fine, coarse, fine_masks = fine or {}, coarse or {}, fine_masks or {}
    rows = ["date,coarse,fine,fine_mask"]
    for day in DAYS:
        image = fine.get(day, landsat(day)) if day in LANDSAT_DAYS and day not in hide else ""
        rows.append(f"2020{day:03d},{coarse.get(day, modis(day))},{image},{fine_masks.get(day, '')}")
    path = folder / "series.csv"
    path.write_text("\n".join(rows) + "\n")
    return path
