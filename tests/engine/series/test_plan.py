"""Which references each date of a series gets: nearest before and after, the other side's next when one side
has none, the maximum gap, date ranges and references that are almost all cloud. No raster is read."""
from __future__ import annotations

import pytest
import torch

from stf_engine import SeriesRequest, StfError, plan_series
from stf_engine.inputs.series_list import parse_date


def listing(tmp_path, rows):
    """A series.csv with the given (date, has fine) rows; the files need not exist for planning."""
    lines = ["date,coarse,fine"] + [f"{date},c_{date}.tif,{'f_' + date + '.tif' if fine else ''}" for date, fine in rows]
    path = tmp_path / "series.csv"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


ROWS = [("2020-01-01", True), ("2020-01-05", False), ("2020-01-10", True), ("2020-01-20", False),
        ("2020-02-01", True), ("2020-06-01", False)]


def plan(tmp_path, **kwargs):
    return {p.date: p for p in plan_series(SeriesRequest(listing(tmp_path, ROWS), str(tmp_path / "out"), **kwargs))}


def test_nearest_reference_on_each_side_comes_first_then_the_rest_by_distance(tmp_path):
    planned = plan(tmp_path)
    assert planned["2020-01-05"].references == ("2020-01-01", "2020-01-10", "2020-02-01")
    assert planned["2020-01-20"].references == ("2020-01-10", "2020-02-01", "2020-01-01")
    assert planned["2020-01-10"].references == ("2020-01-01", "2020-02-01")  # its own fine image is not a reference
    assert planned["2020-01-10"].has_fine and not planned["2020-01-20"].has_fine


def test_with_nothing_after_the_two_nearest_before_are_used(tmp_path):
    planned = plan(tmp_path, max_gap=200)
    assert planned["2020-06-01"].pairs == ("2020-02-01", "2020-01-10")


def test_references_farther_than_the_maximum_gap_are_not_used(tmp_path):
    planned = plan(tmp_path, max_gap=10)
    assert planned["2020-01-20"].references == ("2020-01-10",)
    assert not planned["2020-06-01"].usable


def test_a_reference_that_is_almost_all_cloud_is_dropped(tmp_path):
    from stf_engine.series.plan import plan_entries
    from stf_engine.inputs.series_list import list_series

    request = SeriesRequest(listing(tmp_path, ROWS), str(tmp_path / "out"))
    entries = list_series(request.series, pairs_only=False)
    planned = {p.date: p for p in plan_entries(entries, request, clear={"2020-01-10": 0.01})}
    assert planned["2020-01-05"].pairs == ("2020-01-01", "2020-02-01")


def test_date_range_and_chosen_dates(tmp_path):
    assert list(plan(tmp_path, date_from="2020-01-05", date_to="20200120")) == ["2020-01-05", "2020-01-10",
                                                                              "2020-01-20"]
    assert list(plan(tmp_path, dates=("2020020",))) == ["2020-01-20"]
    with pytest.raises(StfError, match="2020-03-03 have no coarse image"):
        plan(tmp_path, dates=("2020-03-03",))
    with pytest.raises(StfError, match="after --to"):
        plan(tmp_path, date_from="2020-02-01", date_to="2020-01-01")
    with pytest.raises(StfError, match="no coarse date"):
        plan(tmp_path, date_from="2021-01-01")
    with pytest.raises(StfError, match="max-gap"):
        plan(tmp_path, max_gap=0)


@pytest.mark.parametrize("text, iso", [("2020-03-08", "2020-03-08"), ("20200308", "2020-03-08"),
                                       ("2020068", "2020-03-08"), ("2020-068", "2020-03-08")])
def test_dates_in_every_spelling(text, iso):
    assert parse_date(text).isoformat() == iso


@pytest.mark.parametrize("text", ["2020-13-01", "2020400", "March 8", "2020-3-8"])
def test_a_text_that_is_not_a_date_is_one_line_naming_it(text):
    with pytest.raises(StfError, match=f"'{text}' is not a date"):
        parse_date(text)


def test_dates_are_stacked_on_a_gpu_by_default_and_one_at_a_time_on_the_cpu(monkeypatch):
    from stf_engine import GPU_DATE_BATCH
    from stf_engine.series import request as series_request

    assert SeriesRequest("s.csv", "out", device="cpu").dates_per_batch() == 1
    assert SeriesRequest("s.csv", "out", device="cpu", date_batch=3).dates_per_batch() == 3
    monkeypatch.setattr(series_request, "resolve_device", lambda name: torch.device("cuda"))
    assert SeriesRequest("s.csv", "out").dates_per_batch() == GPU_DATE_BATCH == 4
