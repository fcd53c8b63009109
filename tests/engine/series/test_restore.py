"""Restoring masked coarse pixels in time reads every image it needs once, however far it has to look: the open
files are sized by the gap, so windows do not reopen (and warp again) images an 8-file cache dropped; and it says
how many days each restored value was carried."""
from __future__ import annotations

import datetime
from contextlib import ExitStack

import numpy as np
from rasterio.windows import Window

from devkit.series import SYNTHETIC_STEP, synthetic_dates, synthetic_series, write_mask
from stf_engine import SeriesRequest
from stf_engine.core.recent import MAX_OPEN
from stf_engine.inputs.series_list import list_series
from stf_engine.raster.windows import block_windows
from stf_engine.series import restore, scene as series_scene
from stf_engine.series.restore import restore_coarse
from stf_engine.series.scene import SeriesScene, open_limit
from stf_engine.series.work import WorkRasters

TARGET = 15
"""The date restored; the 13 dates around it (9..21) are masked everywhere, so it must look 7 dates away."""


def test_open_limit_is_a_date_and_every_other_within_the_gap():
    days = [datetime.date(2020, 1, 1) + datetime.timedelta(days=d) for d in range(100)]
    assert open_limit(days, 10) == 21
    assert open_limit(days[::5], 60) == 20  # 20 dates 5 days apart: all lie within 60 days of the middle ones
    assert open_limit(days, 1) == MAX_OPEN
    assert open_limit([], 60) == MAX_OPEN


def test_restoring_a_date_that_looks_far_opens_each_image_once(tmp_path, monkeypatch):
    csv = synthetic_series(tmp_path, side=64, bands=2, dates=30, fine_dates=4, ratio=4)
    dates = synthetic_dates(30)
    lines = csv.read_text().splitlines()
    rows = [lines[0] + ",coarse_mask"]
    for index, line in enumerate(lines[1:]):
        mask = ""
        if 9 <= index <= 21:
            mask = write_mask(tmp_path / f"coarse_{dates[index]}.tif", tmp_path / f"mask_{index}.tif",
                              slice(None), slice(None)).name
        rows.append(f"{line},{mask}")
    csv.write_text("\n".join(rows) + "\n")
    monkeypatch.setattr(restore, "work_windows", lambda grid, ratio: list(block_windows(grid.height, grid.width,
                                                                                       ratio, target=16)))
    opened = []
    original = series_scene.open_on_grid
    monkeypatch.setattr(series_scene, "open_on_grid", lambda stack, path, *rest: opened.append(path) or
                        original(stack, path, *rest))
    request = SeriesRequest(series=str(csv), output_dir=str(tmp_path / "out"))
    with ExitStack() as stack:
        scene = SeriesScene(list_series(str(csv), pairs_only=False), request, stack)
        work = WorkRasters(str(tmp_path), scene.grid, stack, scene.open_limit)
        opened.clear()
        restore_coarse(scene, [dates[TARGET]], work, request.max_gap, lambda *a: None, None)
        restored = work.read(f"coarse_{dates[TARGET]}", Window(0, 0, 64, 64))
        age = work.read(restore.coarse_age_name(dates[TARGET]), Window(0, 0, 64, 64))
    coarse = [path for path in opened if "coarse_" in str(path)]
    assert len(coarse) == len(set(coarse)) == 15  # the date itself and 7 on each side, each opened once
    assert np.isfinite(restored).all()
    assert (age == 7 * SYNTHETIC_STEP).all(), "the age map holds the days to the nearer date the value came from"
