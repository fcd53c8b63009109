"""Time-series training data: dated coarse/fine(/pan) rasters → (coarse at t, fine at another date,
coarse at that date, pan at t) → fine at t, for every ordered pair of dates."""
from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

from .. import roles
from ..errors import StfError
from ..models.base import ModelDef
from .request import TrainingRequest
from .scenes import Aligned, Scene, read_aligned

DATE = re.compile(r"(?<!\d)(\d{4}-\d{2}-\d{2}|\d{8}|\d{7})(?!\d)")
"""Dates in file names: 2002-11-07, 20021107 or year + day of year (2002311)."""
RASTER_SUFFIXES = (".tif", ".tiff", ".img", ".vrt", ".jp2", ".nc")
SERIES_CSV = "series.csv"


@dataclass(frozen=True)
class Dated:
    date: str
    coarse: str
    fine: str
    pan: Optional[str] = None


def list_series(source: str) -> List[Dated]:
    """Dates from a CSV (columns date, coarse, fine[, pan]; paths relative to it) or from a folder."""
    path = Path(source)
    if path.is_dir() and (path / SERIES_CSV).is_file():
        path = path / SERIES_CSV
    if path.is_file():
        entries = _from_csv(path)
    elif path.is_dir():
        entries = _from_folder(path)
    else:
        raise StfError(f"series not found: {source}")
    dates = [e.date for e in entries]
    if len(set(dates)) != len(dates):
        raise StfError(f"the series lists a date more than once: {source}")
    if len(entries) < 2:
        raise StfError(f"a series needs at least two dates with coarse and fine rasters; found {len(entries)}")
    return sorted(entries, key=lambda e: e.date)


def _from_csv(path: Path) -> List[Dated]:
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    missing = {"date", "coarse", "fine"} - set(rows[0] if rows else {})
    if missing:
        raise StfError(f"{path} needs the columns date, coarse, fine (and optionally pan); missing {sorted(missing)}")
    here = path.parent
    resolve = lambda name: str(here / name.strip()) if name and name.strip() else None  # noqa: E731
    return [
        Dated(row["date"].strip(), resolve(row["coarse"]), resolve(row["fine"]), resolve(row.get("pan")))
        for row in rows
    ]


def _from_folder(folder: Path) -> List[Dated]:
    found: Dict[str, Dict[str, str]] = {}
    for name in sorted(os.listdir(folder)):
        date = DATE.search(name)
        kind = re.search(r"coarse|fine|pan", name, re.IGNORECASE)
        if date and kind and name.lower().endswith(RASTER_SUFFIXES):
            found.setdefault(date.group(1), {})[kind.group(0).lower()] = str(folder / name)
    entries = [Dated(d, f["coarse"], f["fine"], f.get("pan")) for d, f in found.items() if {"coarse", "fine"} <= set(f)]
    if not entries:
        raise StfError(
            f"no dated rasters in {folder}: name them like 2002-11-07_coarse.tif / 2002-11-07_fine.tif "
            f"(optionally _pan), or add a {SERIES_CSV}"
        )
    return entries


def series_scenes(request: TrainingRequest, model: ModelDef):
    """(scenes by target date, roles used, first date's Aligned) for every ordered pair of distinct dates."""
    entries = list_series(request.series)
    with_pan = all(e.pan for e in entries)
    read: Dict[str, Aligned] = {}
    for entry in entries:
        given = {roles.COARSE_TARGET: entry.coarse, roles.FINE_REFERENCE: entry.fine}
        if with_pan and roles.PAN in model.optional:
            given[roles.PAN] = entry.pan
        read[entry.date] = aligned = read_aligned(given, request, model.coarse_resampling)
        first = read[entries[0].date]
        if aligned.grid != first.grid:
            raise StfError(
                f"the fine raster of {entry.date} is not on the grid of {entries[0].date}'s; align them first"
            )
    available = {roles.COARSE_REFERENCE} | ({roles.PAN} if with_pan else set())
    used = model.roles_for(available)
    targets = request.target_dates or tuple(read)
    unknown = set(targets) - set(read) | ({request.validation_date} - set(read) if request.validation_date else set())
    if unknown:
        raise StfError(f"date(s) {', '.join(sorted(unknown))} are not in the series ({', '.join(read)})")
    scenes: Dict[str, List[Scene]] = {}
    for date in set(targets) | ({request.validation_date} if request.validation_date else set()):
        at = read[date]
        for other, ref in read.items():
            if other == date:
                continue
            inputs = {
                roles.COARSE_TARGET: at.arrays[roles.COARSE_TARGET],
                roles.FINE_REFERENCE: ref.arrays[roles.FINE_REFERENCE],
                roles.COARSE_REFERENCE: ref.arrays[roles.COARSE_TARGET],
                roles.PAN: at.arrays.get(roles.PAN),
            }
            inputs = {role: inputs[role] for role in used}
            scene = Scene(inputs, at.arrays[roles.FINE_REFERENCE], at.valid & ref.valid, f"{date} from {other}")
            scenes.setdefault(date, []).append(scene)
    return scenes, used, first
