"""A dated series of rasters, from a CSV or a folder of named files: what `stf train --series` and
`stf fuse-series` read."""
from __future__ import annotations

import csv
import datetime
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from ..errors import StfError

DATE = re.compile(r"(?<!\d)(\d{4}-\d{2}-\d{2}|\d{8}|\d{7})(?!\d)")
"""Dates in file names: 2002-11-07, 20021107 or year + day of year (2002311)."""
KIND = re.compile(r"(coarse|fine)_mask|coarse|fine|pan", re.IGNORECASE)
"""What a named file holds: coarse, fine, pan, or a coarse/fine quality mask."""
RASTER_SUFFIXES = (".tif", ".tiff", ".img", ".vrt", ".jp2", ".nc")
SERIES_CSV = "series.csv"
COLUMNS = ("date", "coarse", "fine", "pan", "coarse_mask", "fine_mask")


@dataclass(frozen=True)
class Dated:
    """One date of a series; `fine` is None on a date with only a coarse image."""

    date: str
    coarse: Optional[str]
    fine: Optional[str]
    pan: Optional[str] = None
    coarse_mask: Optional[str] = None
    fine_mask: Optional[str] = None

    @property
    def day(self) -> datetime.date:
        return parse_date(self.date)


def series_files(entries: Sequence[Dated]) -> Dict[str, str]:
    """Every file a series lists, by what it is ("fine image of 2020-03-17"), for the overwrite checks."""
    return {f"{column.replace('_', ' ')} image of {entry.day.isoformat()}": path for entry in entries
            for column in COLUMNS[1:] if (path := getattr(entry, column))}


def parse_date(text: str) -> datetime.date:
    """2002-11-07, 20021107, 2002311 or 2002-311 (year and day of year) → a date; StfError naming it otherwise."""
    text = text.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return datetime.date.fromisoformat(text)
        if re.fullmatch(r"\d{8}", text):
            return datetime.datetime.strptime(text, "%Y%m%d").date()
        if re.fullmatch(r"\d{4}-?\d{3}", text):
            year, day = int(text[:4]), int(text[-3:])
            if 1 <= day <= 366:
                return datetime.date(year, 1, 1) + datetime.timedelta(days=day - 1)
    except ValueError:
        pass
    raise StfError(f"'{text}' is not a date; write it as YYYY-MM-DD, YYYYMMDD or YYYYDDD (day of year)")


def list_series(source: str, pairs_only: bool = True) -> List[Dated]:
    """Dates from a CSV (columns date, coarse, fine[, pan, coarse_mask, fine_mask]; paths relative to it) or a
    folder, sorted by date. `pairs_only` keeps the dates with both a coarse and a fine image (training)."""
    path = Path(source)
    if path.is_dir() and (path / SERIES_CSV).is_file():
        path = path / SERIES_CSV
    if path.is_file():
        entries = _from_csv(path)
    elif path.is_dir():
        entries = _from_folder(path)
    else:
        raise StfError(f"series not found: {source}")
    if pairs_only:
        entries = [e for e in entries if e.coarse and e.fine]
    days = [e.day for e in entries]
    if len(set(days)) != len(days):
        raise StfError(f"the series lists a date more than once: {source}")
    if pairs_only and len(entries) < 2:
        raise StfError(f"a series needs at least two dates with coarse and fine rasters; found {len(entries)}")
    return sorted(entries, key=lambda e: e.day)


def _from_csv(path: Path) -> List[Dated]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:  # as Excel saves "CSV UTF-8", with a BOM
            rows = list(csv.DictReader(handle))
    except (UnicodeDecodeError, csv.Error) as exc:
        why = ("it is not UTF-8 text: a raster, or a CSV saved in another encoding (save it as CSV UTF-8)"
               if isinstance(exc, UnicodeDecodeError) else str(exc)[:80])
        raise StfError(f"{path} is not a CSV series list ({why}); give a CSV with the columns date, coarse, fine, "
                       f"or a folder of dated rasters") from None
    except OSError as exc:
        raise StfError(f"cannot read the series list {path}: {exc.strerror or exc}") from None
    missing = {"date", "coarse", "fine"} - set(rows[0] if rows else {})
    if missing:
        raise StfError(f"{path} needs the columns date, coarse, fine (optionally pan, coarse_mask, fine_mask); "
                       f"missing {sorted(missing)}")
    here = path.parent
    resolve = lambda name: str(here / name.strip()) if name and name.strip() else None  # noqa: E731
    return [Dated(row["date"].strip(), *(resolve(row.get(column)) for column in COLUMNS[1:])) for row in rows]


def _from_folder(folder: Path) -> List[Dated]:
    found: Dict[str, Dict[str, str]] = {}
    for name in sorted(os.listdir(folder)):
        date, kind = DATE.search(name), KIND.search(name)
        if date and kind and name.lower().endswith(RASTER_SUFFIXES):
            found.setdefault(date.group(1), {})[kind.group(0).lower()] = str(folder / name)
    entries = [Dated(d, f.get("coarse"), f.get("fine"), f.get("pan"), f.get("coarse_mask"), f.get("fine_mask"))
               for d, f in found.items() if "coarse" in f or "fine" in f]
    if not entries:
        raise StfError(
            f"no dated rasters in {folder}: name them like 2002-11-07_coarse.tif / 2002-11-07_fine.tif "
            f"(optionally _pan, _coarse_mask, _fine_mask), or add a {SERIES_CSV}"
        )
    return entries
