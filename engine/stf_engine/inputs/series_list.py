"""A dated series of rasters, from a CSV or a folder of named files: what `stf train --series` and
`stf fuse-series` read."""
from __future__ import annotations

import csv
import datetime
import difflib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from ..core.progress import Warnings
from ..errors import StfError
from ..raster.open import GDAL_NAME, QUOTED_FILE

SPELLINGS = r"(?P<iso>\d{4}-\d{2}-\d{2})|(?P<compact>\d{8})|(?P<doy>\d{4}-?\d{3})"
"""How a series writes a date, in a CSV and in file names alike: 2002-11-07, 20021107, or year and day of year
(2002311 or 2002-311)."""
DATE = re.compile(rf"(?<!\d)(?:{SPELLINGS})(?!\d)")
"""A date in a file name: one of SPELLINGS, not part of a longer number."""
KIND = re.compile(r"(?<![a-z])(?:(?:coarse|fine)_mask|coarse|fine|pan)(?![a-z])", re.IGNORECASE)
"""What a named file holds: coarse, fine, pan, or a coarse/fine quality mask, as a word of its name (not the
'pan' of 'japan')."""
RASTER_SUFFIXES = (".tif", ".tiff", ".img", ".vrt", ".jp2", ".nc")
SERIES_CSV = "series.csv"
COLUMNS = ("date", "coarse", "fine", "pan", "coarse_mask", "fine_mask")
REQUIRED = COLUMNS[:3]
CLOSE = 0.8
"""How alike (difflib's ratio) an unknown CSV column must be to a known one to be taken as a misspelling of it:
fine_msk, finemask or corse are; notes, sensor or cloud are not."""
WRITE_DATES = "write it as YYYY-MM-DD, YYYYMMDD or YYYYDDD (day of year)"


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
    """Any of SPELLINGS → a date; StfError naming the text otherwise (day 366 only in a leap year)."""
    text = text.strip()
    spelled = re.fullmatch(SPELLINGS, text)
    try:
        if spelled and spelled.lastgroup == "iso":
            return datetime.date.fromisoformat(text)
        if spelled and spelled.lastgroup == "compact":
            return datetime.datetime.strptime(text, "%Y%m%d").date()
        if spelled:
            year, day = int(text[:4]), int(text[-3:])
            date = datetime.date(year, 1, 1) + datetime.timedelta(days=day - 1)
            if date.year == year:
                return date
    except (ValueError, OverflowError):
        pass
    problem = f"'{text}' is not a date" if text else "the date is missing"
    raise StfError(f"{problem}; {WRITE_DATES}")


def list_series(source: str, pairs_only: bool = True, warnings: Optional[Warnings] = None) -> List[Dated]:
    """Dates from a CSV (columns date, coarse, fine[, pan, coarse_mask, fine_mask], named in any case; paths
    relative to it) or a folder, sorted by date. `pairs_only` keeps the dates with both a coarse and a fine image
    (training). What is skipped (a raster whose name gives no date, a row without images, a CSV column of another
    name) is said in `warnings`, each logged once; a CSV column named twice or misspelt is refused (`_columns`)."""
    warnings = Warnings() if warnings is None else warnings
    path = Path(source)
    if path.is_dir() and (path / SERIES_CSV).is_file():
        path = path / SERIES_CSV
    if path.is_file():
        entries = _from_csv(path, warnings)
    elif path.is_dir():
        entries = _from_folder(path, warnings)
    else:
        raise StfError(f"series not found: {source}")
    if pairs_only:
        entries = [e for e in entries if e.coarse and e.fine]
    if pairs_only and len(entries) < 2:
        raise StfError(f"a series needs at least two dates with coarse and fine rasters; found {len(entries)}")
    return sorted(entries, key=lambda e: e.day)


def _listed_twice(day: datetime.date, first: str, second: str, where: str) -> StfError:
    """A day given twice (two rows, or two files of one role, in any spelling): which one is meant is the user's
    to say, not the order of the rows or of the file names."""
    return StfError(f"the series lists {day.isoformat()} twice ({first} and {second} {where}): keep one")


def _from_csv(path: Path, warnings: Warnings) -> List[Dated]:
    """One entry a row, its columns read as `_columns` says. Blank rows are skipped. A row with images but no
    readable date is refused: its images would vanish from the series. A row with a date but no coarse or fine
    image is skipped with a warning: it holds nothing to read (a date yet to come, or a path forgotten: the warning
    says which row)."""
    entries: List[Dated] = []
    rows_of: Dict[datetime.date, str] = {}
    for number, row in _csv_rows(path, warnings):
        entry = _csv_entry(path, number, row, warnings)
        if entry is None:
            continue
        listed = f"{entry.date} on row {number}"
        if entry.day in rows_of:
            raise _listed_twice(entry.day, rows_of[entry.day], listed, f"of {path}")
        rows_of[entry.day] = listed
        entries.append(entry)
    return entries


def _csv_rows(path: Path, warnings: Warnings) -> List[Tuple[int, Dict[Optional[str], object]]]:
    """Each row with its number (the header is row 1), keyed by `_columns`' names; StfError when it is no readable
    CSV."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:  # as Excel saves "CSV UTF-8", with a BOM
            reader = csv.DictReader(handle)
            reader.fieldnames = _columns(path, reader.fieldnames or (), warnings)
            return [(reader.line_num, row) for row in reader]
    except (UnicodeDecodeError, csv.Error) as exc:
        why = ("it is not UTF-8 text: a raster, or a CSV saved in another encoding (save it as CSV UTF-8)"
               if isinstance(exc, UnicodeDecodeError) else str(exc)[:80])
        raise StfError(f"{path} is not a CSV series list ({why}); give a CSV with the columns date, coarse, fine, "
                       f"or a folder of dated rasters") from None
    except OSError as exc:
        raise StfError(f"cannot read the series list {path}: {exc.strerror or exc}") from None


def _column_name(written: str) -> str:
    """A header's name as COLUMNS spell it, whatever its case, its spaces around and its spaces or hyphens within
    ('Fine Mask', 'fine-mask' → fine_mask): a spelling whose meaning is plain is no error."""
    return re.sub(r"[\s_-]+", "_", written.strip().lower())


def _columns(path: Path, header: Sequence[str], warnings: Warnings) -> List[str]:
    """The header's names (`_column_name`), checked so that no column is half-read: one named twice or misspelt
    (a mask that would silently not apply) and a missing date, coarse or fine are refused; any other named column
    (notes, a sensor) is ignored with one warning."""
    names = [_column_name(written) for written in header]
    twice = next((name for number, name in enumerate(names) if name in COLUMNS and name in names[:number]), None)
    if twice:
        raise StfError(f"{path} has two {twice} columns: keep one")
    unknown = {written.strip(): name for written, name in zip(header, names) if name and name not in COLUMNS}
    _refuse_misspelt(path, unknown, [column for column in COLUMNS if column not in names])
    missing = [column for column in REQUIRED if column not in names]
    if missing:
        raise StfError(f"{path} needs a header row naming the columns date, coarse, fine (optionally pan, "
                       f"coarse_mask, fine_mask); missing {', '.join(missing)}")
    if unknown:
        quoted, one = ", ".join(f"'{written}'" for written in unknown), len(unknown) == 1
        warnings.add(f"series list {path}: {'column' if one else 'columns'} {quoted} {'is' if one else 'are'} not "
                     f"read; the columns read are {', '.join(COLUMNS)}")
    return names


def _refuse_misspelt(path: Path, unknown: Dict[str, str], absent: Sequence[str]) -> None:
    """StfError for an unknown column (as written → `_column_name`) close to a column the header lacks ('fine_msk'
    for fine_mask): what the user put in it would silently not be read."""
    for written, name in unknown.items():
        meant = difflib.get_close_matches(name, absent, n=1, cutoff=CLOSE)
        if meant:
            raise StfError(f"{path} has a column '{written}': did you mean {meant[0]}? Rename it in the header "
                           f"(the columns read are {', '.join(COLUMNS)})")


def _csv_entry(path: Path, number: int, row: Dict[Optional[str], object], warnings: Warnings) -> Optional[Dated]:
    """The date a CSV row lists, None for a row to skip (see `_from_csv`); cells missing at its end are empty."""
    cells = {column: str(row.get(column) or "").strip() for column in COLUMNS}
    extra = [cell for cell in row.get(None) or () if cell.strip()]  # csv.DictReader's cells past the header
    where = f"series list {path}, row {number}"
    if extra:
        raise StfError(f"{where} has more cells than the header has columns ('{extra[0]}'); put a path that holds "
                       f"a comma in double quotes")
    if not any(cells.values()):
        return None
    try:
        parse_date(cells["date"])
    except StfError as exc:
        raise StfError(f"{where}: {exc}") from None
    if not (cells["coarse"] or cells["fine"]):
        warnings.add(f"{where}: {cells['date']} has no coarse or fine image; the row is skipped")
        return None
    return Dated(cells["date"], *(_located(cells[column], path.parent) if cells[column] else None
                                  for column in COLUMNS[1:]))


def _located(cell: str, folder: Path) -> str:
    """A list's path, relative to the list's folder. In a name GDAL resolves itself, the file's path: after a /vsi
    prefix (/vsizip/m.zip/a.tif), or in double quotes (NETCDF:"m.nc":var); joining the whole name to the folder made
    /series/vsizip/… of it (C:\\series\\vsizip\\… on Windows). Other spellings (GPKG:m.gpkg:table) are taken as
    they are: give them an absolute path."""
    if not GDAL_NAME.match(cell):
        return str(folder / cell)
    virtual = VIRTUAL_FILE.fullmatch(cell)
    if virtual:
        return virtual["prefix"] + _from(folder, virtual["path"])
    return QUOTED_FILE.sub(lambda quoted: f'"{_from(folder, quoted[1])}"', cell, count=1)


def _from(folder: Path, path: str) -> str:
    """`path` relative to `folder` unless it is absolute or a URL (/vsicurl/https://…)."""
    return path if "://" in path or Path(path).is_absolute() else str(folder / path)


VIRTUAL_FILE = re.compile(r"(?P<prefix>/vsi[a-z0-9_]+/)(?P<path>.+)")


def _from_folder(folder: Path, warnings: Warnings) -> List[Dated]:
    """One entry a day named in the folder's rasters (`<date>_coarse.tif` …, the date in any of SPELLINGS, as the
    first spelling found gives it); a raster named for a role but not for a date is said (see `_named_date`)."""
    named: Dict[datetime.date, Dict[str, str]] = {}
    spelled: Dict[datetime.date, str] = {}
    for name in sorted(os.listdir(folder)):
        kind = KIND.search(name)
        if not (kind and name.lower().endswith(RASTER_SUFFIXES)):
            continue
        dated = _named_date(folder, name, warnings)
        if dated is None:
            continue
        text, day = dated
        files, role = named.setdefault(day, {}), kind.group(0).lower()
        if role in files:
            raise _listed_twice(day, files[role], name, f"in {folder}")
        files[role] = name
        spelled.setdefault(day, text)
    entries = [_folder_entry(folder, spelled[day], files, warnings) for day, files in named.items()]
    entries = [entry for entry in entries if entry]
    if not entries:
        raise StfError(
            f"no dated rasters in {folder}: name them like 2002-11-07_coarse.tif / 2002-11-07_fine.tif "
            f"(optionally _pan, _coarse_mask, _fine_mask), or add a {SERIES_CSV}"
        )
    return entries


def _named_date(folder: Path, name: str, warnings: Warnings) -> Optional[Tuple[str, datetime.date]]:
    """The date a raster's name gives, as written and as a date. A name with no date is skipped with a warning: a
    series folder may hold other rasters (composites, previews) that should not stop a run, but a date meant to be
    read should not vanish unsaid. A date that is no date ('2020-02-30') is refused, naming the file: the name
    meant one, and which one is not STF's to guess."""
    found = DATE.search(name)
    if found is None:
        warnings.add(f"{folder / name} is not read: its name has no date; name the series' rasters like "
                     f"2002-11-07_coarse.tif")
        return None
    try:
        return found.group(0), parse_date(found.group(0))
    except StfError as exc:
        raise StfError(f"{folder / name}: {exc}, or move the file out of the series folder") from None


def _folder_entry(folder: Path, date: str, files: Dict[str, str], warnings: Warnings) -> Optional[Dated]:
    """The date's entry; None, with a warning, when it has a pan image or masks but no coarse or fine image."""
    if "coarse" not in files and "fine" not in files:
        warnings.add(f"{', '.join(files.values())} in {folder}: no coarse or fine image of {date} beside them; "
                     f"they are not read")
        return None
    return Dated(date, *(str(folder / files[column]) if column in files else None for column in COLUMNS[1:]))
