"""`--scale ROLE=SCALE:OFFSET` (Landsat Collection 2 Level-2: stored × 2.75e-5 − 0.2) from text to the output."""
from contextlib import ExitStack

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from stf_engine import FINE_REFERENCE, FINE_REFERENCE_2, FusionRequest, StfError, fuse, parse_scales
from stf_engine.raster.grid import Grid
from stf_engine.raster.open import open_on_grid
from stf_engine.raster.reader import units_of
from devkit.synthetic import fine_transform, write

C2_L2 = (2.75e-5, -0.2)


def test_scale_and_offset_set_both_fine_roles_as_a_pair():
    assert parse_scales("fine=2.75e-5:-0.2") == {FINE_REFERENCE: C2_L2, FINE_REFERENCE_2: C2_L2}


def test_a_plain_factor_stays_a_float_and_mixes_with_pairs():
    scales = parse_scales(["fine=2.75e-5:-0.2", "coarse=1e-4"])
    assert scales[FINE_REFERENCE] == C2_L2
    assert isinstance(scales["coarse_target"], float) and scales["coarse_target"] == 1e-4
    assert parse_scales("fine=1/10000") == {FINE_REFERENCE: 1e-4, FINE_REFERENCE_2: 1e-4}


def test_a_pair_without_a_role_sets_every_role():
    scales = parse_scales("2.75e-5:-0.2")
    assert set(scales.values()) == {C2_L2} and {"coarse_target", "pan", FINE_REFERENCE} <= set(scales)


@pytest.mark.parametrize("text", ["fine=1e-4:abc", "fine=1:2:3", "fine=:0.1", "fine=0:-0.2", "fine=1e-4:nan"])
def test_bad_scale_text_is_one_line_naming_the_item(text):
    with pytest.raises(StfError) as error:
        parse_scales(text)
    message = str(error.value)
    assert text in message and "SCALE:OFFSET" in message and "\n" not in message


def test_units_of_takes_a_factor_a_pair_or_a_list(tmp_path):
    with rasterio.open(write(tmp_path / "i.tif", np.ones((1, 2, 2)), fine_transform(), dtype="uint16")) as dataset:
        assert (units_of(dataset, 0.5).scale, units_of(dataset, 0.5).offset) == (0.5, 0.0)
        assert (units_of(dataset, C2_L2).scale, units_of(dataset, C2_L2).offset) == C2_L2
        assert (units_of(dataset, list(C2_L2)).scale, units_of(dataset, list(C2_L2)).offset) == C2_L2


def landsat_c2(tmp_path, size=12):
    """(path, stored) of a uint16 fine reference with Collection 2 Level-2 style values and no scale metadata."""
    stored = (8000 + 100 * np.arange(size * size).reshape(1, size, size) % 12000).astype(np.uint16)
    return write(tmp_path / "landsat_c2.tif", stored, fine_transform(), dtype="uint16"), stored


def test_open_on_grid_reads_stored_times_scale_plus_offset(tmp_path):
    path, stored = landsat_c2(tmp_path)
    with ExitStack() as stack, rasterio.open(path) as dataset:
        reader = open_on_grid(stack, path, "fine reference", Grid.of(dataset), C2_L2, "nearest")
        data, valid = reader.read(Window(0, 0, 12, 12))
    assert valid.all()
    np.testing.assert_allclose(data, stored * 2.75e-5 - 0.2, atol=1e-6)


def test_delta_with_a_c2_fine_reference_writes_the_right_reflectance(tmp_path):
    path, stored = landsat_c2(tmp_path)
    coarse = fine_transform(120.0)
    result = fuse(FusionRequest(
        coarse_target=write(tmp_path / "c2.tif", np.full((1, 3, 3), 0.25, np.float32), coarse),
        coarse_reference=write(tmp_path / "c1.tif", np.full((1, 3, 3), 0.20, np.float32), coarse),
        fine_reference=path,
        output=str(tmp_path / "fused.tif"),
        method="delta",
        scales=parse_scales("fine=2.75e-5:-0.2"),
    ))
    with rasterio.open(result.output) as out:
        written = out.read(1).astype(np.float64)
        assert (out.scales[0], out.offsets[0]) == pytest.approx(C2_L2)
    # delta = F1 + (C2 − C1): the reference's reflectance plus 0.05, stored back with the same scale and offset.
    expected = stored[0] * 2.75e-5 - 0.2 + 0.05
    np.testing.assert_allclose(written * 2.75e-5 - 0.2, expected, atol=2e-5)
