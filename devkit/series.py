"""Dated series written as series CSVs for `fuse_series` tests and benchmarks: the real Kranj series (daily
MODIS DOY 068–093, Landsat 068/077/093 with real gaps) and a large synthetic series with a seasonal change."""
from __future__ import annotations

import datetime
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional

import numpy as np
import rasterio

from devkit.synthetic import coarse_on_fine, fine_transform, textured_scene, write
from stf_engine import FusionRequest, fuse

KRANJ = Path(__file__).resolve().parents[1] / "tests" / "data" / "kranj"
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
                 coarse: Optional[Dict[int, Path]] = None, fine_masks: Optional[Dict[int, Path]] = None,
                 coarse_masks: Optional[Dict[int, Path]] = None) -> Path:
    """series.csv in `folder`: every MODIS day, Landsat on 068/077/093 except `hide`, with replacements."""
    fine, coarse, fine_masks, coarse_masks = fine or {}, coarse or {}, fine_masks or {}, coarse_masks or {}
    rows = ["date,coarse,fine,fine_mask,coarse_mask"]
    for day in DAYS:
        image = fine.get(day, landsat(day)) if day in LANDSAT_DAYS and day not in hide else ""
        rows.append(f"2020{day:03d},{coarse.get(day, modis(day))},{image},{fine_masks.get(day, '')},"
                    f"{coarse_masks.get(day, '')}")
    path = Path(folder) / "series.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


SYNTHETIC_START = datetime.date(2021, 1, 1)
SYNTHETIC_STEP = 5
"""Days between two coarse dates: with 4 fine dates over 30 coarse ones the fine dates lie 50 days apart, so
every date has a reference on each side within the default 60-day gap."""


def synthetic_dates(count: int) -> List[str]:
    """The synthetic series' dates as YYYY-MM-DD, every 5 days from 2021-01-01."""
    return [(SYNTHETIC_START + datetime.timedelta(days=SYNTHETIC_STEP * i)).isoformat() for i in range(count)]


def synthetic_series(folder: Path, side: int = 2000, bands: int = 6, dates: int = 30, fine_dates: int = 4,
                     ratio: int = 16, pixel: float = 30.0, seed: int = 0) -> Path:
    """series.csv in `folder` with float32 GeoTIFFs: `dates` coarse images every 5 days, `fine_dates` of them
    (spread evenly, first and last included) with a fine image too.

    Fine image of day t: scene × (1 + a_b(t)·G) + o_b(t)·H, a textured scene with a smooth seasonal gain and
    offset per band, G and H smooth spatial fields (so the change differs from place to place). The coarse
    image is the mean of each ratio×ratio block on a raster of ratio×pixel (480 m for 30 m); the formula is
    linear, so the three block-mean images are computed once and every date is their weighted sum."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    scene = textured_scene(side, side, bands, seed=seed)
    y, x = np.ogrid[0:side, 0:side]
    gain_field = (0.5 + 0.5 * np.sin(x / 97.0) * np.cos(y / 131.0)).astype(np.float32)
    offset_field = (0.5 + 0.5 * np.cos(x / 211.0 + y / 173.0)).astype(np.float32)
    terms = (scene, scene * gain_field, np.broadcast_to(offset_field, scene.shape))
    coarse_terms = [coarse_on_fine(np.asarray(term, np.float32), ratio)[:, ::ratio, ::ratio] for term in terms]
    names = synthetic_dates(dates)
    with_fine = {int(i) for i in np.linspace(0, dates - 1, fine_dates).round()} if fine_dates else set()
    band_phase = np.linspace(0.0, 1.5, bands, dtype=np.float32)[:, None, None]
    rows = ["date,coarse,fine"]
    for index, date in enumerate(names):
        season = 2 * np.pi * index * SYNTHETIC_STEP / 365.0
        gain = 0.4 * np.sin(season + band_phase)
        offset = 0.03 * np.cos(season + band_phase)
        coarse = coarse_terms[0] + gain * coarse_terms[1] + offset * coarse_terms[2]
        write(folder / f"coarse_{date}.tif", coarse, fine_transform(pixel * ratio), dtype="float32")
        fine = ""
        if index in with_fine:
            image = scene + gain * terms[1] + offset * offset_field
            fine = write(folder / f"fine_{date}.tif", image, fine_transform(pixel), dtype="float32")
        rows.append(f"{date},coarse_{date}.tif,{Path(fine).name if fine else ''}")
    path = folder / "series.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def read_reflectance(path, scale: float = 1e-4):
    """(reflectance (C, h, w), valid (h, w)) of a Landsat file or a fusion of it (both stored ×10000)."""
    with rasterio.open(path) as dataset:
        values = dataset.read(masked=True)
    return values.data.astype(np.float64) * scale, ~np.ma.getmaskarray(values).any(axis=0)


def rmse(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a[:, where] - b[:, where]) ** 2)))


def single_reference_delta(folder: Path, target: int, reference: int, threads: Optional[int] = None):
    """What one `stf fuse --method delta` from the nearest reference gives: the baseline a series has to beat."""
    result = fuse(FusionRequest(coarse_target=str(modis(target)), fine_reference=str(landsat(reference)),
                                coarse_reference=str(modis(reference)), output=str(folder / f"delta_{target}.tif"),
                                method="delta", threads=threads, **SERIES_OPTIONS))
    return read_reflectance(result.output)
