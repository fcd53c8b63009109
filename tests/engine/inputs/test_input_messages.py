"""What opening the inputs says about them: band descriptions in another order, a pan image of several bands, a
scant coverage, and one-line refusals naming the file and what to change (a band of nodata only, a coarse shift
that moves the coarse raster away, a --bands that picks too few bands or bands that do not exist)."""
from contextlib import ExitStack
from typing import Dict, Optional, Sequence

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from stf_engine import FusionRequest, StfError, fuse, roles
from stf_engine.inputs.aligned import Alignment, open_inputs
from stf_engine.raster.grid import percent
from devkit.synthetic import ORIGIN, fine_transform, scene_set, write

SIDE, RATIO = 40, 4


@pytest.fixture
def scene(tmp_path) -> Dict[str, str]:
    """A 3-band float32 fine reference (40×40 of 30 m) and its coarse images (120 m)."""
    return scene_set(tmp_path, height=SIDE, width=SIDE, bands=3, ratio=RATIO, dtype="float32")


def described(path: str, names: Sequence[Optional[str]]) -> str:
    """Give the raster's bands these descriptions (None leaves one blank)."""
    with rasterio.open(path, "r+") as dataset:
        for band, name in enumerate(names, start=1):
            if name is not None:
                dataset.set_band_description(band, name)
    return path


def warnings_of(paths: Dict[str, str], **alignment) -> list:
    """What opening these inputs (role → path) warns of."""
    with ExitStack() as stack:
        return open_inputs(paths, Alignment(**alignment), stack).warnings


def refusal(paths: Dict[str, str], **alignment) -> str:
    """The one line opening these inputs is refused with."""
    with ExitStack() as stack, pytest.raises(StfError) as refused:
        open_inputs(paths, Alignment(**alignment), stack)
    return str(refused.value)


def pixels(path: str) -> np.ndarray:
    with rasterio.open(path) as dataset:
        return dataset.read()


def pair(scene, coarse: Optional[str] = None) -> Dict[str, str]:
    return {roles.COARSE_TARGET: coarse or scene["coarse"], roles.FINE_REFERENCE: scene["fine"]}


def test_coarse_bands_described_in_another_order_than_the_fine_ones_are_named_with_the_bands_that_reorder_them(scene):
    described(scene["fine"], ["NIR", "Red", "Green"])
    described(scene["coarse"], [" red ", "nir", "Green"])  # case and spaces aside, the same names
    assert warnings_of(pair(scene)) == [
        f"the coarse target's band 1 'red' is fused with the fine reference's band 1 'NIR'; the coarse target's "
        f"band 2 'nir' is fused with the fine reference's band 2 'Red'; reorder with --bands 2,1,3: {scene['coarse']}"
    ]
    assert warnings_of(pair(scene), bands=(2, 1, 3)) == []


def test_the_band_order_is_said_once_for_coarse_images_in_the_same_order(scene):
    for role in ("fine", "coarse", "coarse_ref"):
        described(scene[role], ["B1", "B2", "B3"] if role == "fine" else ["B2", "B1", "B3"])
    said = warnings_of({**pair(scene), roles.COARSE_REFERENCE: scene["coarse_ref"]})
    assert len(said) == 1 and said[0].endswith(f"reorder with --bands 2,1,3: {scene['coarse']}")


@pytest.mark.parametrize("fine_names, coarse_names", [
    (["NIR", "Red", "Green"], ["NIR", "red", "GREEN"]),  # the same order
    (["NIR", "Red", "Green"], ["Red", None, "Green"]),  # one band undescribed
    (["Band 1", "Band 2", "Band 3"], ["Band 2", "Band 1", "Band 3"]),  # numbers, not names
    (["NIR", "Red", "Green"], ["sur_refl_b01", "sur_refl_b02", "sur_refl_b04"]),  # names of other bands
    (["Red", "Red", "Green"], ["Green", "Red", "Red"]),  # a name twice
], ids=["same order", "undescribed", "numbered", "other names", "a name twice"])
def test_band_descriptions_that_show_no_other_order_give_no_warning(scene, fine_names, coarse_names):
    described(scene["fine"], fine_names)
    described(scene["coarse"], coarse_names)
    assert warnings_of(pair(scene)) == []


def test_a_pan_image_of_three_bands_is_said_to_give_only_its_first(scene, tmp_path):
    three = write(tmp_path / "pan3.tif", pixels(scene["fine"]), fine_transform())
    one = write(tmp_path / "pan1.tif", pixels(scene["fine"])[:1], fine_transform())
    assert warnings_of({**pair(scene), roles.PAN: three}) == [
        f"the pan image has 3 bands; only band 1 is used: {three}"
    ]
    assert warnings_of({**pair(scene), roles.PAN: one}) == []


@pytest.mark.parametrize("share, said", [
    (0.0, "0%"), (3e-5, "<0.01%"), (0.0016, "0.16%"), (0.005, "0.50%"), (0.42, "42%"), (0.9949, "99.49%"),
    (0.99995, ">99.99%"), (1.0, "100%"),
])
def test_a_share_reads_0_or_100_percent_only_when_it_is(share, said):
    assert percent(share) == said


def test_a_coarse_target_that_barely_overlaps_says_the_output_will_be_almost_all_nodata(scene, tmp_path):
    image = pixels(scene["coarse"])
    # 2×2 coarse pixels over the fine grid's south-east corner: 8×8 of its 40×40 fine pixels, 4%, then 1×1: 1%
    corner = from_origin(ORIGIN[0] + 30 * (SIDE - 8), ORIGIN[1] - 30 * (SIDE - 8), 120, 120)
    some = write(tmp_path / "some.tif", image, corner)
    assert warnings_of(pair(scene, some)) == [
        "coarse target covers 4% of the fine reference; the rest is written as nodata"
    ]
    tip = from_origin(ORIGIN[0] + 30 * (SIDE - 1), ORIGIN[1] - 30 * (SIDE - 1), 120, 120)
    barely = write(tmp_path / "barely.tif", image, tip)
    assert warnings_of(pair(scene, barely)) == [
        f"coarse target covers only 0.06% of the fine reference, so the output will be almost all nodata; the "
        f"inputs probably do not match (another place, or a wrong georeference): {barely}"
    ]


def test_one_coarse_band_of_nodata_only_is_named_with_the_way_out(scene, tmp_path):
    image = pixels(scene["coarse"])
    image[1] = -1
    coarse = write(tmp_path / "band2_nodata.tif", image, fine_transform(30.0 * RATIO), nodata=-1)
    assert refusal(pair(scene, coarse)) == (
        f"band 2 of the coarse target holds only nodata over the fine reference's extent, so no pixel has data in "
        f"every band: leave it out with --bands (and the fine reference's matching band): {coarse}"
    )


def test_a_fine_reference_band_of_nodata_only_is_named(scene, tmp_path):
    image = pixels(scene["fine"])
    image[0] = -1
    fine = write(tmp_path / "band1_nodata.tif", image, fine_transform(), nodata=-1)
    assert refusal({roles.COARSE_TARGET: scene["coarse"], roles.FINE_REFERENCE: fine}) == (
        f"band 1 of the fine reference holds only nodata over the fine reference's extent, so no pixel has data in "
        f"every band: give a fine reference with data in every band it has: {fine}"
    )


def test_a_coarse_shift_that_moves_the_coarse_target_off_the_fine_reference_is_named_as_the_likely_cause(scene):
    assert refusal(pair(scene), coarse_shift=(1000, 1000)) == (
        f"coarse target holds no valid pixels over the fine reference's extent; the coarse shift given (--coarse-shift "
        f"1000,1000) may have moved it off the fine reference: {scene['coarse']}"
    )


def test_a_coarse_target_of_nodata_only_is_named(scene, tmp_path):
    image = np.full_like(pixels(scene["coarse"]), -1)
    empty = write(tmp_path / "empty.tif", image, fine_transform(30.0 * RATIO), nodata=-1)
    assert refusal(pair(scene, empty)) == (
        f"coarse target holds no valid pixels over the fine reference's extent: {empty}"
    )


def test_bands_that_pick_fewer_coarse_bands_than_the_fine_reference_has_say_so(scene):
    assert refusal(pair(scene), bands=(1, 2)) == (
        f"band mismatch: --bands 1,2 picks 2 bands of the coarse target but the fine reference has 3; pick and order "
        f"coarse bands with --bands (e.g. --bands 1,2,3): {scene['coarse']}"
    )


def test_a_coarse_target_of_fewer_bands_than_the_fine_reference_is_not_told_to_pick_bands_it_lacks(scene, tmp_path):
    """It was told to pick bands 1,2,3 of a raster of 2 bands."""
    two = write(tmp_path / "two.tif", pixels(scene["coarse"])[:2], fine_transform(30.0 * RATIO))
    assert refusal(pair(scene, two)) == (
        f"band mismatch: the coarse target has 2 bands but the fine reference has 3; give a coarse target with the "
        f"fine reference's 3 bands, or fuse a copy of the fine reference with only the 2 bands the coarse target "
        f"has: {two}"
    )


def test_bands_a_coarse_target_does_not_have_are_named_with_the_file(scene, tmp_path):
    image = pixels(scene["coarse"])
    four = write(tmp_path / "four.tif", np.concatenate([image, image[:1]]), fine_transform(30.0 * RATIO))
    assert refusal(pair(scene, four), bands=(1, 2, 5)) == (
        f"coarse target has 4 bands, so --bands 1,2,5 asks for band 5, which it does not have; pick from bands 1 to "
        f"4: {four}"
    )


def test_a_gdal_subdataset_is_read_as_the_raster_it_names(scene, tmp_path):
    """A table of a GeoPackage (or a variable of a netCDF, HDF) is named as GDAL names it; it was refused as a file
    not found, and QGIS passes such layers on by that name."""
    from stf_engine import FusionRequest, fuse

    with rasterio.open(scene["fine"]) as fine:
        bands = fine.read()
        profile = dict(driver="GPKG", width=fine.width, height=fine.height, count=1, dtype="float32", crs=fine.crs,
                       transform=fine.transform)
    package = tmp_path / "bands.gpkg"
    for band in (1, 2):
        with rasterio.open(package, "w", RASTER_TABLE=f"band{band}", APPEND_SUBDATASET="YES", **profile) as table:
            table.write(bands[band - 1:band])
    single = write(tmp_path / "band2.tif", bands[1:2], fine_transform())
    request = dict(coarse_target=scene["coarse"], bands=[2], method="cubic")
    from_table = fuse(FusionRequest(fine_reference=f"GPKG:{package}:band2", output=str(tmp_path / "a.tif"), **request))
    from_tiff = fuse(FusionRequest(fine_reference=single, output=str(tmp_path / "b.tif"), **request))
    with rasterio.open(from_table.output) as a, rasterio.open(from_tiff.output) as b:
        assert np.array_equal(a.read(), b.read())
    with pytest.raises(StfError, match=f"^fine reference: not a readable raster .*: GPKG:{package}:band3$"):
        fuse(FusionRequest(fine_reference=f"GPKG:{package}:band3", output=str(tmp_path / "c.tif"), **request))


def test_a_subdataset_its_file_does_not_hold_is_named_with_those_it_does(scene, tmp_path):
    """GDAL answers a wrong variable name of an existing netCDF file with 'No such file or directory'."""
    import rasterio.shutil

    from stf_engine import FusionRequest, fuse

    two = tmp_path / "two.tif"
    with rasterio.open(scene["fine"]) as fine, rasterio.open(two, "w", **{**fine.profile, "count": 2}) as copy:
        copy.write(fine.read([1, 2]))
    container = tmp_path / "bands.nc"
    rasterio.shutil.copy(two, container, driver="netCDF")  # a variable a band: Band1, Band2
    with pytest.raises(StfError) as refused:
        fuse(FusionRequest(coarse_target=scene["coarse"], fine_reference=f'NETCDF:"{container}":Band9',
                           output=str(tmp_path / "o.tif")))
    assert str(refused.value) == (f'fine reference: {container} holds no subdataset NETCDF:"{container}":Band9; it '
                                  f'holds NETCDF:"…":Band1, NETCDF:"…":Band2')


@pytest.mark.parametrize("shift", [None, (6.0, -5.0)])
def test_a_nan_not_marked_as_nodata_is_named_at_its_pixel_in_the_file(scene, tmp_path, shift):
    """The coarse raster is resampled onto the fine grid and moved by the shift: the fine grid's row and column
    alone sent the user to another pixel of the file (rows 5 and columns 5 off after --register on the sample)."""
    image = pixels(scene["coarse"])
    image[1, 3, 6] = np.nan
    holed = write(tmp_path / "holed.tif", image, fine_transform(30.0 * RATIO))
    request = FusionRequest(coarse_target=holed, fine_reference=scene["fine"], output=str(tmp_path / "fused.tif"),
                            method="delta", coarse_shift=shift)
    with pytest.raises(StfError) as refused:
        fuse(request)
    assert str(refused.value).startswith(
        "coarse target holds NaN or infinite values that are not marked as nodata (the first at row 3, column 6 of "
        "the file, row ")
