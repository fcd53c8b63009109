"""A date's coarse mask flags its coarse image's pixels: moved by the series' co-registration shift like the image
itself, it still covers the cloud it was drawn for."""
from __future__ import annotations

from contextlib import ExitStack

import numpy as np
import pytest
from rasterio.windows import Window

from devkit.series import changed_copy, synthetic_dates, synthetic_series, write_mask
from stf_engine import SeriesRequest
from stf_engine.inputs.series_list import list_series
from stf_engine.series.scene import SeriesScene

SIDE, RATIO = 64, 4
CLOUD = (slice(4, 8), slice(4, 8))
"""Coarse pixels of the middle date covered by a bright cloud, and flagged by its coarse mask."""


def _cloud(values: np.ndarray) -> np.ndarray:
    values[(slice(None),) + CLOUD] = 0.9
    return values


@pytest.fixture
def clouded(tmp_path):
    """series.csv whose middle date (no fine image) has a cloud in its coarse image and a mask over it."""
    csv = synthetic_series(tmp_path, side=SIDE, bands=2, dates=3, fine_dates=2, ratio=RATIO)
    middle = synthetic_dates(3)[1]
    coarse = tmp_path / f"coarse_{middle}.tif"
    changed_copy(coarse, coarse, _cloud)
    write_mask(coarse, tmp_path / "cloud_mask.tif", *CLOUD)
    lines = csv.read_text().splitlines()
    rows = [lines[0] + ",coarse_mask"] + [line + ("," + "cloud_mask.tif" if line.startswith(middle) else ",")
                                          for line in lines[1:]]
    csv.write_text("\n".join(rows) + "\n")
    return csv, middle


@pytest.mark.parametrize("shift", [(0.0, 0.0), (8.0, 4.0), (-6.0, 3.0)])
def test_a_coarse_mask_follows_the_shift_of_its_coarse_image(clouded, tmp_path, shift):
    csv, middle = clouded
    request = SeriesRequest(series=str(csv), output_dir=str(tmp_path / "out"), resampling="nearest")
    with ExitStack() as stack:
        scene = SeriesScene(list_series(str(csv), pairs_only=False), request, stack, coarse_shift=shift)
        data, usable = scene.read("coarse", middle, Window(0, 0, SIDE, SIDE))
    cloud = data[0] > 0.8
    reached = (data != 0).any(axis=0)  # where the shifted image still covers the grid (read as 0 elsewhere)
    assert cloud.sum() == (4 * RATIO) ** 2  # the whole cloud, moved but inside the grid
    np.testing.assert_array_equal(~usable & reached, cloud)  # flagged: the cloud's pixels and no other
