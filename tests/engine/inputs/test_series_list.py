"""The series list: every date spelling in a folder's file names, a date given twice named with its two files or
rows, a CSV header read whole (any case, a column twice or misspelt refused), and what is not read (a raster without
a date, a malformed CSV row, a CSV column of another name) said, never dropped silently."""
import logging
import re

import pytest

from stf_engine.core.progress import Warnings
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


def csv_with(tmp_path, *rows, header="date,coarse,fine"):
    """series.csv: the header, a pair on 2020-03-08, the rows given, and a pair on 2020-03-17 (rows 2, 3…, last)."""
    path = tmp_path / "series.csv"
    path.write_text("\n".join([header, "2020-03-08,c1.tif,f1.tif", *rows, "2020-03-17,c2.tif,f2.tif"]) + "\n",
                    encoding="utf-8")
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


def test_header_names_are_read_in_any_case_with_spaces_or_hyphens_after_an_excel_bom(tmp_path):
    path = csv_with(tmp_path, "2020-03-10,c3.tif,f3.tif,m3.tif,n3.tif",
                    header="\ufeffDate, Coarse ,FINE,Fine Mask,coarse-mask")
    entries = list_series(str(path))
    assert listed(entries) == [("2020-03-08", "c1.tif", "f1.tif"), ("2020-03-10", "c3.tif", "f3.tif"),
                               ("2020-03-17", "c2.tif", "f2.tif")]
    assert (entries[1].fine_mask, entries[1].coarse_mask) == (str(tmp_path / "m3.tif"), str(tmp_path / "n3.tif"))


@pytest.mark.parametrize("header", ["date,coarse,fine,fine", "date,coarse,Fine,fine_mask, fine"])
def test_a_column_named_twice_is_refused_naming_it_and_the_list(tmp_path, header):
    path = csv_with(tmp_path, header=header)
    with pytest.raises(StfError, match=f"^{re.escape(f'{path} has two fine columns: keep one')}$"):
        list_series(str(path))


@pytest.mark.parametrize("written, meant", [("fine_msk", "fine_mask"), ("Coarse Msk", "coarse_mask"),
                                            ("finemask", "fine_mask")])
def test_a_misspelt_column_is_refused_with_the_column_it_is_close_to(tmp_path, written, meant):
    path = csv_with(tmp_path, header=f"date,coarse,fine,{written}")
    said = (f"{path} has a column '{written}': did you mean {meant}? Rename it in the header (the columns read are "
            f"date, coarse, fine, pan, coarse_mask, fine_mask)")
    with pytest.raises(StfError, match=f"^{re.escape(said)}$"):
        list_series(str(path))


def test_a_misspelt_required_column_is_named_as_a_misspelling_not_as_missing(tmp_path):
    path = csv_with(tmp_path, header="date,corse,fine")
    with pytest.raises(StfError, match=re.escape(f"{path} has a column 'corse': did you mean coarse?")):
        list_series(str(path))


def test_other_columns_are_ignored_with_one_warning_naming_them_and_the_columns_read(tmp_path, caplog):
    path = csv_with(tmp_path, header="date,coarse,fine,notes,Sensor,")
    said = Warnings()
    assert listed(list_series(str(path), warnings=said)) == [("2020-03-08", "c1.tif", "f1.tif"),
                                                             ("2020-03-17", "c2.tif", "f2.tif")]
    assert said == warnings_of(caplog) == [f"series list {path}: columns 'notes', 'Sensor' are not read; the columns "
                                           f"read are date, coarse, fine, pan, coarse_mask, fine_mask"]


@pytest.mark.parametrize("header, missing", [("date,fine_mask,fine", "coarse"),
                                             ("2020-03-01,c0.tif,f0.tif", "date, coarse, fine")])
def test_missing_columns_are_named_and_a_header_row_asked_for(tmp_path, header, missing):
    path = csv_with(tmp_path, header=header)
    said = (f"{path} needs a header row naming the columns date, coarse, fine (optionally pan, coarse_mask, "
            f"fine_mask); missing {missing}")
    with pytest.raises(StfError, match=f"^{re.escape(said)}$"):
        list_series(str(path))


def test_a_csv_names_rasters_gdal_resolves_itself_with_their_files_relative_to_the_list(tmp_path):
    """A netCDF variable, a GeoPackage table or a file in a zip archive are GDAL names: the file in them is relative
    to the list's folder, as a plain cell is, unless absolute or a URL."""
    listing = tmp_path / "series.csv"
    listing.write_text('date,coarse,fine\n'
                       '2020-03-01,"NETCDF:""/data/modis.nc"":sur_refl_b01",/vsizip//data/l8.zip/a.tif\n'
                       "2020-03-02,GPKG:/data/modis.gpkg:day62,landsat/b.tif\n"
                       '2020-03-03,"NETCDF:""modis.nc"":sur_refl_b01",/vsizip/l8.zip/c.tif\n'
                       "2020-03-04,/vsicurl/https://example.org/m.tif,\n")
    entries = list_series(str(listing), pairs_only=False)
    assert [(e.coarse, e.fine) for e in entries] == [
        ('NETCDF:"/data/modis.nc":sur_refl_b01', "/vsizip//data/l8.zip/a.tif"),
        ("GPKG:/data/modis.gpkg:day62", str(tmp_path / "landsat" / "b.tif")),
        (f'NETCDF:"{tmp_path / "modis.nc"}":sur_refl_b01', f"/vsizip/{tmp_path / 'l8.zip'}/c.tif"),
        ("/vsicurl/https://example.org/m.tif", None)]
