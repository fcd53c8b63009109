"""Quality-mask rules against hand-made codes, and mask rasters read onto a finer grid without mixing codes."""
from contextlib import ExitStack

import numpy as np
import pytest
from rasterio.crs import CRS
from rasterio.windows import Window

from stf_engine.errors import StfError
from stf_engine.inputs.masks import MASK_ROLES, MASK_RULES, decode_mask, open_mask, parse_mask_rules
from stf_engine.raster.grid import Grid
from devkit.synthetic import UTM49N, fine_transform, write

LANDSAT_CLEAR_LAND = 21824
"""QA_PIXEL of clear land in Collection 2 (clear bit 6 plus low-confidence bits)."""
LANDSAT_CLEAR_WATER = 21952
GRID = Grid(CRS.from_string(UTM49N), fine_transform(20.0), 12, 12)
"""12×12 fine pixels of 20 m; a 60 m mask pixel covers 3×3 of them."""


def unusable(value, rule, dtype="uint16") -> bool:
    return bool(decode_mask(np.array([value], dtype=dtype), rule)[0])


def test_the_rules_are_the_documented_four():
    assert list(MASK_RULES) == ["landsat-qa", "s2-scl", "modis-state", "nonzero"]
    assert MASK_ROLES == ("coarse", "fine")
    assert all(MASK_RULES.values())


@pytest.mark.parametrize(
    "value, expected",
    [
        (LANDSAT_CLEAR_LAND, False),
        (LANDSAT_CLEAR_WATER, False),
        (1 << 6, False),  # clear
        (1 << 7, False),  # water
        (0, False),
        (1, True),  # fill
        (1 << 1, True),  # dilated cloud
        (1 << 2, True),  # cirrus
        (1 << 3, True),  # cloud
        (1 << 4, True),  # cloud shadow
        (1 << 5, True),  # snow
        (LANDSAT_CLEAR_LAND | 1 << 3, True),
    ],
)
def test_landsat_qa_bits(value, expected):
    assert unusable(value, "landsat-qa") is expected


@pytest.mark.parametrize("value", range(12))
def test_s2_scl_classes(value):
    assert unusable(value, "s2-scl", "uint8") is (value in (0, 1, 3, 8, 9, 10, 11))


def test_s2_scl_values_that_are_no_class_are_unusable():
    assert decode_mask(np.array([12, 255], dtype="uint8"), "s2-scl").all()


@pytest.mark.parametrize(
    "value, expected",
    [
        (0b00, False),  # clear
        (0b01, True),  # cloudy
        (0b10, True),  # mixed
        (0b11, False),  # not set, assumed clear
        (1 << 2, True),  # cloud shadow
        (1 << 10, True),  # internal cloud algorithm flag
        (0b111 << 3, False),  # land/water bits 3–5
        (0b11 << 6, False),  # aerosol quantity
        (0b11 << 8, False),  # cirrus detected
        (1 << 11, False),  # internal fire
        (1 << 12, False),  # MOD35 snow/ice
        (1 << 13, False),  # adjacent to cloud
        (1 << 15, False),  # internal snow
        (0b11 | 1 << 4, False),
        (0b11 | 1 << 10, True),
    ],
)
def test_modis_state_cloud_bits_only(value, expected):
    assert unusable(value, "modis-state") is expected


def test_nonzero_for_plain_masks():
    np.testing.assert_array_equal(decode_mask(np.array([0, 1, 255], dtype="uint8"), "nonzero"), [False, True, True])
    np.testing.assert_array_equal(decode_mask(np.array([0.0, 0.5, np.nan]), "nonzero"), [False, True, True])


@pytest.mark.parametrize("rule, clear", [("landsat-qa", LANDSAT_CLEAR_LAND), ("s2-scl", 4), ("modis-state", 0b11)])
def test_decoding_keeps_the_shape_and_flags_nan_in_float_bands(rule, clear):
    flags = decode_mask(np.array([[clear, np.nan]], dtype="float32"), rule)
    assert flags.shape == (1, 2) and flags.dtype == bool
    np.testing.assert_array_equal(flags, [[False, True]])


def test_an_unknown_rule_names_the_valid_ones():
    with pytest.raises(StfError, match="unknown mask rule 'fmask'.*landsat-qa, s2-scl, modis-state, nonzero"):
        decode_mask(np.zeros(2, "uint8"), "fmask")


def test_parse_mask_rules_from_text_and_lists():
    assert parse_mask_rules("fine=landsat-qa, coarse=modis-state") == {"fine": "landsat-qa", "coarse": "modis-state"}
    assert parse_mask_rules(["fine=s2-scl", " coarse = nonzero "]) == {"fine": "s2-scl", "coarse": "nonzero"}
    assert parse_mask_rules(None) == {} and parse_mask_rules("") == {}


@pytest.mark.parametrize(
    "text, words",
    [
        ("fine", ["ROLE=RULE", "'fine'"]),
        ("pan=nonzero", ["unknown mask role 'pan'", "coarse, fine"]),
        ("fine=fmask", ["unknown mask rule 'fmask'", "fine mask", "landsat-qa"]),
    ],
)
def test_parse_mask_rules_errors_are_one_line(text, words):
    with pytest.raises(StfError) as error:
        parse_mask_rules(text)
    message = str(error.value)
    assert all(word in message for word in words) and "\n" not in message


def qa_raster(path, values, pixel=60.0, nodata=None, dtype="uint16"):
    return write(path, np.asarray(values)[None], fine_transform(pixel), nodata=nodata, dtype=dtype)


def read_all(path, rule, label="the fine quality mask", window=Window(0, 0, 12, 12)):
    with ExitStack() as stack:
        return open_mask(stack, str(path), label, GRID, rule).read(window)


def test_a_coarse_cloud_masks_exactly_its_fine_pixels(tmp_path):
    qa = np.full((4, 4), LANDSAT_CLEAR_LAND)
    qa[1, 2] = LANDSAT_CLEAR_LAND | 1 << 3
    path = qa_raster(tmp_path / "qa.tif", qa)
    expected = np.zeros((12, 12), bool)
    expected[3:6, 6:9] = True
    np.testing.assert_array_equal(read_all(path, "landsat-qa"), expected)
    np.testing.assert_array_equal(read_all(path, "landsat-qa", window=Window(5, 2, 4, 5)), expected[2:7, 5:9])


def test_nearest_keeps_bit_codes_whole_where_averaging_would_invent_a_cloud(tmp_path):
    # Mixing clear (1<<6) and water (1<<7) codes makes up bits: their mean, 96, is 1<<6 | 1<<5 (snow).
    qa = np.where(np.indices((4, 4)).sum(axis=0) % 2, 1 << 6, 1 << 7)
    path = qa_raster(tmp_path / "qa.tif", qa)
    assert not read_all(path, "landsat-qa").any()


def test_outside_a_partial_mask_is_unusable(tmp_path):
    path = qa_raster(tmp_path / "top.tif", np.full((2, 4), LANDSAT_CLEAR_LAND))
    flags = read_all(path, "landsat-qa")
    assert not flags[:6].any() and flags[6:].all()


def test_outside_a_partial_mask_with_nodata_is_unusable(tmp_path):
    # The nodata value decodes as clear, so only the mask of the warped view can flag what lies outside.
    path = qa_raster(tmp_path / "left.tif", np.full((4, 2), LANDSAT_CLEAR_WATER), nodata=LANDSAT_CLEAR_LAND)
    flags = read_all(path, "landsat-qa")
    assert not flags[:, :6].any() and flags[:, 6:].all()


def test_the_mask_rasters_nodata_value_is_unusable(tmp_path):
    qa = np.full((4, 4), LANDSAT_CLEAR_WATER)
    qa[2, 0] = LANDSAT_CLEAR_LAND
    path = qa_raster(tmp_path / "qa.tif", qa, nodata=LANDSAT_CLEAR_LAND)
    expected = np.zeros((12, 12), bool)
    expected[6:9, 0:3] = True
    np.testing.assert_array_equal(read_all(path, "landsat-qa"), expected)


def test_a_mask_on_the_fine_grid_itself_is_read_directly(tmp_path):
    scl = np.full((12, 12), 4)
    scl[0, 0], scl[11, 11] = 9, 0
    path = qa_raster(tmp_path / "scl.tif", scl, pixel=20.0, nodata=0, dtype="uint8")
    flags = read_all(path, "s2-scl")
    assert flags[0, 0] and flags[11, 11] and flags.sum() == 2


def test_open_mask_errors_name_the_mask(tmp_path):
    path = qa_raster(tmp_path / "qa.tif", np.zeros((4, 4)))
    with pytest.raises(StfError, match="unknown mask rule 'fmask' for the fine quality mask;"):
        read_all(path, "fmask")
    with pytest.raises(StfError, match="fine quality mask: file not found"):
        read_all(tmp_path / "missing.tif", "landsat-qa")
    far = write(tmp_path / "far.tif", np.zeros((1, 4, 4)), fine_transform(60.0, (0.0, 0.0)), dtype="uint16")
    with pytest.raises(StfError, match="fine quality mask does not overlap"):
        read_all(far, "landsat-qa")
