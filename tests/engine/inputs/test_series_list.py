"""The series list: every date spelling in a folder's file names, a date given twice named with its two files or
rows, and what is not read (a raster without a date, a malformed CSV row) said, never dropped silently."""
import logging
import re

import pytest

from stf_engine.errors import StfError
from stf_engine.inputs.series_list import list_series, parse_date

MISSING_DATE = "the date is missing; write it as YYYY-MM-DD, YYYYMMDD or YYYYDDD (day of year)"


def folder_of(tmp_path, *names):
    """A series folder holding empty files of these names (the list reads names only, no raster)."""
    folder = tmp_path / "series"
    folder.mkdir()
    for name in names:
        (folder / name).write_bytes(b"")
    return folder


def listed(entries):
    """(YYYY-MM-DD, coarse file, fine file) of each entry, the file names without their folder."""
    name = lambda path: path and path.rsplit("/", 1)[-1]  # noqa: E731
    return [(e.day.isoformat(), name(e.coarse), name(e.fine)) for e in entries]


def warnings_of(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "stf_engine" and r.levelno == logging.WARNING]


def test_a_folder_reads_a_year_and_day_of_year_with_a_hyphen_and_one_day_in_two_spellings(tmp_path):
    folder = folder_of(tmp_path, "2020-068_coarse.tif", "2020-068_fine.tif", "2020077_coarse.tif",
                       "2020-03-17_fine.tif")
    assert listed(list_series(str(folder))) == [("2020-03-08", "2020-068_coarse.tif", "2020-068_fine.tif"),
                                                ("2020-03-17", "2020077_coarse.tif", "2020-03-17_fine.tif")]


def test_a_raster_named_for_a_role_but_not_for_a_date_is_named_in_a_warning(tmp_path, caplog):
    folder = folder_of(tmp_path, "2020-03-08_coarse.tif", "2020-03-08_fine.tif", "2020-03-17_coarse.tif",
                       "2020-03-17_fine.tif", "fine_composite.tif", "notes_2020-03-09.txt", "japan_2020-03-08.tif")
    entries = list_series(str(folder), pairs_only=False)
    assert [e.day.isoformat() for e in entries] == ["2020-03-08", "2020-03-17"] and entries[0].pan is None
    assert warnings_of(caplog) == [f"{folder / 'fine_composite.tif'} is not read: its name has no date; name the "
                                   f"series' rasters like 2002-11-07_coarse.tif"]


def test_a_raster_named_with_a_date_that_does_not_exist_is_refused_naming_it(tmp_path):
    folder = folder_of(tmp_path, "2020-03-08_coarse.tif", "2020-03-08_fine.tif", "2020-02-30_fine.tif")
    said = (f"{folder / '2020-02-30_fine.tif'}: '2020-02-30' is not a date; write it as YYYY-MM-DD, YYYYMMDD or "
            f"YYYYDDD (day of year), or move the file out of the series folder")
    with pytest.raises(StfError, match=f"^{re.escape(said)}$"):
        list_series(str(folder), pairs_only=False)


def test_a_folder_date_with_masks_but_no_image_is_named_in_a_warning(tmp_path, caplog):
    folder = folder_of(tmp_path, "2020-03-08_coarse.tif", "2020-03-08_fine.tif", "2020-03-10_fine_mask.tif")
    assert listed(list_series(str(folder), pairs_only=False)) == [
        ("2020-03-08", "2020-03-08_coarse.tif", "2020-03-08_fine.tif")]
    assert warnings_of(caplog) == [f"2020-03-10_fine_mask.tif in {folder}: no coarse or fine image of 2020-03-10 "
                                   f"beside them; they are not read"]


def test_one_day_named_twice_in_a_folder_names_the_day_and_both_files(tmp_path):
    folder = folder_of(tmp_path, "2020068_coarse.tif", "2020-03-08_coarse.tif", "2020-03-08_fine.tif")
    said = f"the series lists 2020-03-08 twice (2020-03-08_coarse.tif and 2020068_coarse.tif in {folder}): keep one"
    with pytest.raises(StfError, match=f"^{re.escape(said)}$"):
        list_series(str(folder), pairs_only=False)


def csv_with(tmp_path, *rows):
    """series.csv: the header, a pair on 2020-03-08, the rows given, and a pair on 2020-03-17 (rows 2, 3…, last)."""
    path = tmp_path / "series.csv"
    path.write_text("\n".join(["date,coarse,fine", "2020-03-08,c1.tif,f1.tif", *rows, "2020-03-17,c2.tif,f2.tif"])
                    + "\n")
    return path


def test_one_day_on_two_rows_names_the_day_and_both_rows(tmp_path):
    path = csv_with(tmp_path, "2020-03-10,c3.tif,", "2020068,c4.tif,")
    said = f"the series lists 2020-03-08 twice (2020-03-08 on row 2 and 2020068 on row 4 of {path}): keep one"
    with pytest.raises(StfError, match=f"^{re.escape(said)}$"):
        list_series(str(path), pairs_only=False)


@pytest.mark.parametrize("row, problem", [
    (",c3.tif,", MISSING_DATE),
    ("notadate,c3.tif,f3.tif", "'notadate' is not a date"),
    ("2020-03-10,c3.tif,f3.tif,c4.tif", "has more cells than the header has columns ('c4.tif'); put a path"),
])
def test_a_row_with_images_but_no_date_or_too_many_cells_names_the_list_and_its_row(tmp_path, row, problem):
    path = csv_with(tmp_path, "2020-03-09,c0.tif,", row)
    with pytest.raises(StfError, match=re.escape(f"series list {path}, row 4") + r":? " + re.escape(problem)):
        list_series(str(path), pairs_only=False)


def test_blank_rows_are_skipped_and_a_date_without_images_is_named_in_a_warning(tmp_path, caplog):
    path = csv_with(tmp_path, "", ",,", "2020-03-10", "2020-03-11,,")
    assert listed(list_series(str(path), pairs_only=False)) == [("2020-03-08", "c1.tif", "f1.tif"),
                                                                ("2020-03-17", "c2.tif", "f2.tif")]
    assert warnings_of(caplog) == [f"series list {path}, row {row}: {date} has no coarse or fine image; the row is "
                                   f"skipped" for row, date in ((5, "2020-03-10"), (6, "2020-03-11"))]


@pytest.mark.parametrize("text, said", [("2021366", "'2021366' is not a date"), ("", MISSING_DATE)])
def test_day_366_only_in_a_leap_year_and_an_empty_date_is_missing(text, said):
    with pytest.raises(StfError, match=f"^{re.escape(said)}"):
        parse_date(text)
