"""Coarse inputs warped onto the fine grid keep what marks their pixels invalid (extent, per-dataset masks, alpha
bands), per-band scale metadata applies to the bands read, a co-registration shift means the same in any CRS, and
the units check compares the inputs' non-zero values."""
import re
from contextlib import ExitStack

import numpy as np
import pytest
import rasterio
import rasterio.shutil
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.transform import from_origin
from rasterio.warp import calculate_default_transform, reproject
from rasterio.windows import Window

from stf_engine import FusionRequest, StfError, fuse
from stf_engine.inputs.masks import open_mask
from stf_engine.raster.grid import Grid
from devkit.synthetic import ORIGIN, UTM49N, fine_transform, textured_scene, write

SIDE, RATIO = 48, 4
"""The fine grid: 48×48 pixels of 30 m; coarse pixels are 120 m."""
HOLE = (slice(4, 8), slice(4, 8))
"""Coarse pixels left out by a mask: fine pixels 16..31; 20..27 lie wholly inside whatever the interpolation."""
INSIDE_HOLE = (slice(20, 28), slice(20, 28))


def coarse_of(fine: np.ndarray) -> np.ndarray:
    """The fine image's RATIO×RATIO block means: its coarse pixels."""
    bands = fine.shape[0]
    return fine.reshape(bands, SIDE // RATIO, RATIO, SIDE // RATIO, RATIO).mean(axis=(2, 4))


@pytest.fixture
def fine(tmp_path):
    """(path, reflectance) of a float32 fine reference without nodata."""
    image = textured_scene(SIDE, SIDE, bands=3, seed=5)
    return write(tmp_path / "fine.tif", image, fine_transform()), image


def cubic(tmp_path, fine_path, coarse_path, name="out", **kwargs) -> np.ma.MaskedArray:
    """The coarse target on the fine grid, as the output stores it, masked where it is nodata."""
    result = fuse(FusionRequest(coarse_target=coarse_path, fine_reference=fine_path,
                                output=str(tmp_path / f"{name}.tif"), method="cubic", **kwargs))
    with rasterio.open(result.output) as out:
        return out.read(masked=True)


def invalid(output: np.ma.MaskedArray) -> np.ndarray:
    """Where any band of an output is nodata."""
    return np.ma.getmaskarray(output).any(axis=0)


@pytest.mark.parametrize("dtype", ["int16", "float32"])
def test_a_coarse_target_without_nodata_covering_part_of_the_grid_leaves_the_rest_nodata(tmp_path, fine, dtype):
    fine_path, image = fine
    left_half = coarse_of(image)[:, :, : SIDE // RATIO // 2] * (1e4 if dtype == "int16" else 1.0)
    coarse = write(tmp_path / "coarse.tif", left_half, fine_transform(30.0 * RATIO), dtype=dtype)
    holes = invalid(cubic(tmp_path, fine_path, coarse))
    assert holes[:, SIDE // 2 :].all()
    assert not holes[:, : SIDE // 2 - RATIO].any()


@pytest.mark.parametrize("internal", [True, False], ids=["internal mask", "external .msk"])
def test_a_per_dataset_mask_on_a_warped_coarse_target_is_nodata_in_the_output(tmp_path, fine, internal):
    fine_path, image = fine
    path = tmp_path / "coarse.tif"
    write(path, coarse_of(image), fine_transform(30.0 * RATIO))
    mask = np.full((SIDE // RATIO, SIDE // RATIO), 255, np.uint8)
    mask[HOLE] = 0
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=internal), rasterio.open(path, "r+") as dataset:
        dataset.write_mask(mask)
    assert (tmp_path / "coarse.tif.msk").exists() is not internal
    holes = invalid(cubic(tmp_path, fine_path, str(path)))
    assert holes[INSIDE_HOLE].all()
    assert not holes[:12].any() and not holes[36:].any()


@pytest.mark.parametrize("pixel", [30.0 * RATIO, 30.0], ids=["warped", "on the fine grid"])
def test_an_alpha_band_gdal_does_not_take_as_a_mask_is_the_coarse_targets_mask(tmp_path, fine, pixel):
    fine_path, image = fine
    size = int(SIDE * 30.0 / pixel)
    data = coarse_of(image) if pixel > 30.0 else image
    alpha = np.full((1, size, size), 10000, np.int16)
    cut = slice(16 * size // SIDE, 32 * size // SIDE)  # HOLE's fine pixels
    alpha[0, cut, cut] = 0
    coarse = write(tmp_path / "coarse.tif", np.concatenate([np.rint(data * 1e4), alpha]), fine_transform(pixel),
                   dtype="int16", photometric="RGB", alpha="YES")
    with rasterio.open(coarse) as dataset:
        assert dataset.colorinterp[3].name == "alpha" and dataset.mask_flag_enums[0][0].name == "all_valid"
    holes = invalid(cubic(tmp_path, fine_path, coarse, bands=(1, 2, 3)))
    assert holes[INSIDE_HOLE].all()
    assert not holes[:12].any() and not holes[36:].any()


def stored_with_hole(tmp_path, image: np.ndarray, name: str, hole_bands: slice, alpha: bool) -> str:
    """The coarse pixels of `image` as int16 with nodata -9999, which `hole_bands` hold in HOLE; with an alpha band
    of all 255 (marking every pixel as data) when `alpha`."""
    stored = np.rint(coarse_of(image) * 1e4)
    stored[(hole_bands,) + HOLE] = -9999
    extra = {}
    if alpha:
        stored = np.concatenate([stored, np.full_like(stored[:1], 255)])
        extra = dict(photometric="RGB", alpha="YES")
    return write(tmp_path / f"{name}.tif", stored, fine_transform(30.0 * RATIO), nodata=-9999, dtype="int16", **extra)


@pytest.mark.parametrize("alpha", [False, True], ids=["nodata", "nodata and an alpha band"])
def test_nodata_in_one_band_of_a_warped_coarse_target_is_nodata_and_never_blended_into_its_neighbours(
        tmp_path, fine, alpha):
    fine_path, image = fine
    one_band = stored_with_hole(tmp_path, image, "one_band", slice(0, 1), alpha)
    every_band = stored_with_hole(tmp_path, image, "every_band", slice(None), alpha)
    got = cubic(tmp_path, fine_path, one_band, "from_one_band", bands=(1, 2, 3))
    expected = cubic(tmp_path, fine_path, every_band, "from_every_band", bands=(1, 2, 3))
    assert invalid(got)[INSIDE_HOLE].all()
    np.testing.assert_array_equal(invalid(got), invalid(expected))
    np.testing.assert_allclose(got[0].filled(np.nan), expected[0].filled(np.nan), rtol=0, atol=1e-6)
    assert got[0].min() > 0.01


def test_a_warped_coarse_target_whose_bands_have_different_nodata_values_is_refused(tmp_path, fine):
    fine_path, image = fine
    stored = write(tmp_path / "coarse.tif", np.rint(coarse_of(image) * 1e4), fine_transform(30.0 * RATIO),
                   dtype="int16")
    vrt = tmp_path / "coarse.vrt"
    with rasterio.open(stored) as source:  # a VRT of it whose second band alone has a nodata value
        rasterio.shutil.copy(source, vrt, driver="VRT")
    text = vrt.read_text()
    second = text.index(">", text.index('band="2"')) + 1
    vrt.write_text(text[:second] + "<NoDataValue>0</NoDataValue>" + text[second:])
    with rasterio.open(vrt) as dataset:
        assert dataset.nodatavals == (None, 0.0, None)
    with pytest.raises(StfError, match=r"coarse target: its bands have different nodata values \(none, 0, none\), "
                                       r"which GDAL cannot carry onto the fine grid; give every band one nodata value"):
        cubic(tmp_path, fine_path, str(vrt))


def test_a_fine_references_alpha_band_is_its_mask_not_a_band(tmp_path, fine):
    _, image = fine
    alpha = np.full((1, SIDE, SIDE), 10000, np.int16)
    alpha[0, 16:32, 16:32] = 0
    with_alpha = write(tmp_path / "fine_alpha.tif", np.concatenate([np.rint(image * 1e4), alpha]), fine_transform(),
                       dtype="int16", photometric="RGB", alpha="YES")
    coarse = write(tmp_path / "coarse.tif", coarse_of(image), fine_transform(30.0 * RATIO))
    result = fuse(FusionRequest(coarse_target=coarse, fine_reference=with_alpha, output=str(tmp_path / "o.tif"),
                                method="cubic"))
    with rasterio.open(result.output) as out:
        fused = out.read(masked=True)
        assert out.count == 3 and len(out.descriptions) == 3
    holes = invalid(fused)
    assert holes[16:32, 16:32].all() and not holes[:16].any() and not holes[32:].any()


@pytest.mark.parametrize("dtype", ["int16", "float32"])  # types whose added alpha GDAL does not take as a mask
def test_a_mask_raster_without_nodata_flags_the_grid_it_does_not_reach(tmp_path, dtype):
    grid = Grid(CRS.from_string(UTM49N), fine_transform(20.0), 12, 12)
    clear_left_half = np.zeros((1, 4, 2))
    path = write(tmp_path / "mask.tif", clear_left_half, fine_transform(60.0), dtype=dtype)
    with ExitStack() as stack:
        unusable = open_mask(stack, path, "the coarse mask", grid, "nonzero").read(Window(0, 0, 12, 12))
    assert not unusable[:, :6].any() and unusable[:, 6:].all()


SCALES, OFFSETS = (1e-4, 2e-4, 5e-5), (0.0, 0.01, -0.02)
"""Each band stored with its own scale and offset, as GDAL band metadata."""


def per_band(path, reflectance: np.ndarray, pixel: float = 30.0 * RATIO) -> str:
    """`reflectance` stored as int16 with SCALES and OFFSETS in the band metadata (quantised to half a scale)."""
    scales, offsets = np.array(SCALES)[:, None, None], np.array(OFFSETS)[:, None, None]
    write(path, np.rint((reflectance - offsets) / scales), fine_transform(pixel), dtype="int16")
    with rasterio.open(path, "r+") as dataset:
        dataset.scales, dataset.offsets = SCALES, OFFSETS
    return str(path)


@pytest.mark.parametrize("bands", [None, (3, 2, 1)])
def test_per_band_scales_of_the_coarse_target_apply_to_the_bands_read(tmp_path, fine, bands):
    fine_path, image = fine
    reflectance = coarse_of(image)
    scaled = per_band(tmp_path / "scaled.tif", reflectance)
    floating = write(tmp_path / "float.tif", reflectance, fine_transform(30.0 * RATIO))
    got = cubic(tmp_path, fine_path, scaled, "from_scaled", bands=bands)
    expected = cubic(tmp_path, fine_path, floating, "from_float", bands=bands)
    np.testing.assert_allclose(got.filled(np.nan), expected.filled(np.nan), rtol=0, atol=3e-4)


def test_a_fine_reference_with_per_band_scales_gives_an_output_stored_and_tagged_the_same_way(tmp_path, fine):
    float_path, image = fine
    coarse = coarse_of(image * 1.1)
    common = dict(coarse_target=write(tmp_path / "c2.tif", coarse, fine_transform(30.0 * RATIO)),
                  coarse_reference=write(tmp_path / "c1.tif", coarse_of(image), fine_transform(30.0 * RATIO)),
                  method="delta")
    scaled_path = per_band(tmp_path / "scaled_fine.tif", image, 30.0)
    scaled = fuse(FusionRequest(fine_reference=scaled_path, output=str(tmp_path / "s.tif"), **common))
    plain = fuse(FusionRequest(fine_reference=float_path, output=str(tmp_path / "f.tif"), **common))
    with rasterio.open(scaled.output) as out, rasterio.open(plain.output) as expected:
        assert (out.scales, out.offsets) == (SCALES, OFFSETS)
        decoded = out.read() * np.array(SCALES)[:, None, None] + np.array(OFFSETS)[:, None, None]
        np.testing.assert_allclose(decoded, expected.read(), rtol=0, atol=2e-4)


EAST, NORTH = 1e-4, 5e-5
"""Reflectance gradients of a ramp (per metre): interpolation reproduces it exactly, so only the shift shows."""
MARGIN = 4
"""Coarse pixels beyond the fine grid on every side, so that a shift of a few fine pixels stays covered."""


def ramp_coarse(path, crs: str) -> str:
    """A coarse reflectance ramp around the fine grid, in UTM or reprojected to `crs`."""
    size, pixel = SIDE // RATIO + 2 * MARGIN, 30.0 * RATIO
    transform = from_origin(ORIGIN[0] - MARGIN * pixel, ORIGIN[1] + MARGIN * pixel, pixel, pixel)
    x, y = np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5)
    ramp = (0.2 + EAST * (x - size / 2) * pixel - NORTH * (y - size / 2) * pixel).astype(np.float32)[None]
    if crs == UTM49N:
        return write(path, ramp, transform)
    bounds = (transform.c, transform.f - size * pixel, transform.c + size * pixel, transform.f)
    to, width, height = calculate_default_transform(UTM49N, crs, size, size, *bounds)
    out = np.zeros((1, height, width), np.float32)
    reproject(ramp, out, src_transform=transform, src_crs=UTM49N, dst_transform=to, dst_crs=crs,
              resampling=Resampling.bilinear, dst_nodata=np.nan)
    return write(path, out, to, crs=crs, nodata=np.nan)


@pytest.mark.parametrize("crs", ["EPSG:4326", "EPSG:3857"])
def test_a_coarse_shift_moves_a_coarse_target_in_another_crs_as_it_moves_one_in_the_fine_crs(tmp_path, crs):
    fine_path = write(tmp_path / "fine.tif", np.full((1, SIDE, SIDE), 0.2, np.float32), fine_transform())
    same = ramp_coarse(tmp_path / "utm.tif", UTM49N)
    other = ramp_coarse(tmp_path / "other.tif", crs)
    shift = (3.0, 2.0)  # fine pixels east and south
    unshifted = cubic(tmp_path, fine_path, same, "unshifted")
    moved = cubic(tmp_path, fine_path, same, "moved", coarse_shift=shift)
    # Content moved 90 m east and 60 m south: each pixel shows the ramp from 90 m west and 60 m north of it.
    np.testing.assert_allclose(moved - unshifted, -EAST * 90 + NORTH * 60, atol=1e-5)
    across = cubic(tmp_path, fine_path, other, "across", coarse_shift=shift)
    assert not invalid(across).any()
    np.testing.assert_allclose(across, moved, rtol=0, atol=2e-4)


def units_warnings(tmp_path, fine_image: np.ndarray, coarse_image: np.ndarray) -> list:
    """The units warnings of a cubic fusion of float32 rasters (no integer scale applies) of these values."""
    fine_path = write(tmp_path / "fine.tif", fine_image, fine_transform())
    coarse = write(tmp_path / "coarse.tif", coarse_image, fine_transform(30.0 * RATIO))
    result = fuse(FusionRequest(coarse_target=coarse, fine_reference=fine_path, output=str(tmp_path / "o.tif"),
                                method="cubic"))
    return [warning for warning in result.warnings if "order of magnitude" in warning]


def water(image: np.ndarray, share: float) -> np.ndarray:
    """`image` with 0 on `share` of its pixels, scattered (water in a near-infrared band, a 0 fill taken as data)."""
    dry = np.random.default_rng(3).random(image.shape[1:]) >= share
    return image * dry


@pytest.mark.parametrize("share", [0.7, 1.0], ids=["mostly 0", "all 0"])
def test_a_fine_reference_of_zeros_in_the_coarse_images_units_gives_no_units_warning(tmp_path, share):
    """Levels compare the non-zero values, which a unit factor scales alike; an input of zeros tells no units."""
    image = textured_scene(SIDE, SIDE, bands=3, seed=5)
    assert units_warnings(tmp_path, water(image, share), coarse_of(image)) == []


def test_a_fine_reference_x10000_with_many_zeros_is_warned_at_the_level_of_its_other_values(tmp_path):
    image = textured_scene(SIDE, SIDE, bands=3, seed=5)
    [warning] = units_warnings(tmp_path, water(image, 0.7) * 1e4, coarse_of(image))
    levels = re.search(r"values \(median ([\d.e+-]+)\) differ from the fine reference's \(([\d.e+-]+)\)", warning)
    assert levels and 0.1 < float(levels[1]) < 0.5 and 1e3 < float(levels[2]) < 5e3, warning


def c2l2(reflectance: np.ndarray) -> np.ndarray:
    """Reflectance as Landsat Collection 2 Level-2 stores it: uint16 DN = (reflectance + 0.2) / 2.75e-5."""
    return np.round((reflectance + 0.2) / 2.75e-5).astype(np.uint16)


def beyond_reflectance(result) -> list:
    return [warning for warning in result.warnings if "too high for reflectance" in warning]


@pytest.mark.parametrize("role", ["fine", "coarse"])
def test_integers_with_no_scale_that_read_as_no_reflectance_are_warned_with_collection_2s_scale(tmp_path, role):
    """Collection 2 Level-2 ships without a scale in its metadata: read as ×10000 its median is about 2.2, and the
    fusion would be wrong by about 1 with no word."""
    image = textured_scene(SIDE, SIDE, bands=3, seed=5)
    fine_image, coarse_image = (c2l2(image), coarse_of(image)) if role == "fine" else (image, c2l2(coarse_of(image)))
    fine_path = write(tmp_path / "fine.tif", fine_image, fine_transform())
    coarse = write(tmp_path / "coarse.tif", coarse_image, fine_transform(30.0 * RATIO))
    request = dict(coarse_target=coarse, fine_reference=fine_path, method="cubic")
    result = fuse(FusionRequest(**request, output=str(tmp_path / "o.tif")))
    [warning] = beyond_reflectance(result)
    path = fine_path if role == "fine" else coarse
    assert f"set --scale {role}=2.75e-5:-0.2 for its surface reflectance or {role}=0.00341802:149" in warning, warning
    assert warning.endswith(path)
    scaled = fuse(FusionRequest(**request, output=str(tmp_path / "s.tif"), scales={
        r: (2.75e-5, -0.2) for r in (["fine_reference"] if role == "fine" else ["coarse_target"])}))
    assert beyond_reflectance(scaled) == []


def test_integers_x10000_and_a_pan_band_in_other_units_are_not_warned(tmp_path):
    image = textured_scene(SIDE, SIDE, bands=3, seed=5)
    fine_path = write(tmp_path / "fine.tif", np.round(image * 1e4), fine_transform(), dtype="int16")
    coarse = write(tmp_path / "coarse.tif", coarse_of(image), fine_transform(30.0 * RATIO))
    pan = write(tmp_path / "pan.tif", c2l2(image[:1]), fine_transform())
    result = fuse(FusionRequest(coarse_target=coarse, fine_reference=fine_path, pan=pan, method="cubic",
                                output=str(tmp_path / "o.tif")))
    assert beyond_reflectance(result) == [] and not any("order of magnitude" in w for w in result.warnings)


def test_collection_2_visible_bands_that_read_below_1_are_warned_of_all_the_same(tmp_path):
    """Red and green over vegetation (reflectance 0.02–0.1) read as ×10000 come to 0.73–1.09: most values below 1,
    but none as dark as reflectance has; only the median was looked at, and the fusion was wrong by about 0.75."""
    image = 0.02 + 0.08 * textured_scene(SIDE, SIDE, bands=2, seed=5) / textured_scene(SIDE, SIDE, bands=2, seed=5).max()
    fine_path = write(tmp_path / "fine.tif", c2l2(image), fine_transform())
    coarse = write(tmp_path / "coarse.tif", coarse_of(image), fine_transform(30.0 * RATIO))
    result = fuse(FusionRequest(coarse_target=coarse, fine_reference=fine_path, method="cubic",
                                output=str(tmp_path / "o.tif")))
    [warning] = beyond_reflectance(result)
    assert re.search(r"\(median 0\.\d+, 2nd percentile 0\.[789]", warning), warning
    assert "set --scale fine=2.75e-5:-0.2 for its surface reflectance" in warning


def test_collection_2_surface_temperature_is_told_its_own_scale(tmp_path):
    """ST_B10 in kelvin (DN × 0.00341802 + 149) reads above what any reflectance read as ×10000 can: the reflectance
    scale would make nonsense of it."""
    kelvin = 300 + 20 * textured_scene(SIDE, SIDE, bands=1, seed=5)
    stored = np.round((kelvin - 149) / 0.00341802).astype(np.uint16)
    fine_path = write(tmp_path / "st.tif", stored, fine_transform())
    coarse = write(tmp_path / "lst.tif", coarse_of(kelvin), fine_transform(30.0 * RATIO))
    result = fuse(FusionRequest(coarse_target=coarse, fine_reference=fine_path, method="cubic",
                                output=str(tmp_path / "o.tif")))
    [warning] = beyond_reflectance(result)
    assert "if it is Landsat Collection 2 Level-2 surface temperature, set --scale fine=0.00341802:149 (kelvin)" \
        in warning and "2.75e-5" not in warning, warning
