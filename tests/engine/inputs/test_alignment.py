"""Inputs on other grids and CRSs land on the fine grid where their coordinates say; output keeps its profile."""
import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from rasterio.warp import transform as warp_points

from stf_engine import FusionRequest, StfError, fuse
from devkit.synthetic import ORIGIN, fine_transform, scene_set, write


def ramp(x, y):
    """A plane in map coordinates: bilinear resampling reproduces it exactly."""
    return 0.1 + (x - ORIGIN[0]) * 2e-5 + (ORIGIN[1] - y) * 1e-5


def centres(transform, height, width):
    cols, rows = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    xs, ys = transform * (cols, rows)
    return np.asarray(xs), np.asarray(ys)


def fine_grid_centres(height=64, width=80):
    return centres(fine_transform(), height, width)


@pytest.fixture
def fine(tmp_path):
    x, y = fine_grid_centres()
    return write(tmp_path / "fine.tif", (ramp(x, y)[None] * 1e4), fine_transform(), dtype="int16", nodata=-9999)


def fuse_cubic(tmp_path, coarse, fine, **kwargs):
    result = fuse(FusionRequest(coarse_target=coarse, fine_reference=fine, output=str(tmp_path / "out.tif"),
                                method="cubic", resampling="bilinear", **kwargs))
    with rasterio.open(result.output) as src:
        return result, src.read(1, masked=True).astype(np.float64) * 1e-4


def test_coarse_grid_offset_from_fine_grid_is_aligned_by_georeference(tmp_path, fine):
    # Coarse pixels of 120 m whose grid starts 1.5 fine pixels (45 m) west and north of the fine grid.
    transform = from_origin(ORIGIN[0] - 45, ORIGIN[1] + 45, 120, 120)
    x, y = centres(transform, 18, 22)
    coarse = write(tmp_path / "coarse.tif", ramp(x, y)[None].astype("float32"), transform)
    _, out = fuse_cubic(tmp_path, coarse, fine)
    fx, fy = fine_grid_centres()
    inner = (slice(4, -4), slice(4, -4))
    np.testing.assert_allclose(out[inner], ramp(fx, fy)[inner], atol=2e-4)


def test_coarse_raster_in_another_crs_is_reprojected(tmp_path, fine):
    # The coarse raster is stored in geographic coordinates; its values are the ramp at each pixel centre.
    west, north = warp_points("EPSG:32649", "EPSG:4326", [ORIGIN[0] - 300], [ORIGIN[1] + 300])
    step = 0.001
    transform = from_origin(west[0], north[0], step, step)
    lon, lat = centres(transform, 30, 34)
    ux, uy = warp_points("EPSG:4326", "EPSG:32649", lon.ravel(), lat.ravel())
    values = ramp(np.array(ux), np.array(uy)).reshape(lon.shape)
    coarse = write(tmp_path / "coarse_wgs84.tif", values[None].astype("float32"), transform, crs="EPSG:4326")
    result, out = fuse_cubic(tmp_path, coarse, fine)
    fx, fy = fine_grid_centres()
    np.testing.assert_allclose(out[2:-2, 2:-2], ramp(fx, fy)[2:-2, 2:-2], atol=5e-4)


def test_output_keeps_fine_reference_grid_dtype_and_nodata(tmp_path):
    paths = scene_set(tmp_path, height=40, width=52, bands=3, ratio=4, dtype="int16")
    with rasterio.open(paths["fine"], "r+") as src:
        src.nodata = -1
    result = fuse(FusionRequest(coarse_target=paths["coarse"], fine_reference=paths["fine"],
                                coarse_reference=paths["coarse_ref"], output=str(tmp_path / "o.tif"), method="delta"))
    with rasterio.open(paths["fine"]) as fine, rasterio.open(result.output) as out:
        assert out.crs == fine.crs
        assert out.transform == fine.transform
        assert (out.height, out.width) == (fine.height, fine.width)
        assert out.dtypes == fine.dtypes and out.nodata == fine.nodata == -1
        assert out.count == 3
        assert out.profile["tiled"] and out.profile["compress"] in ("zstd", "deflate")
        values = out.read(masked=True)
    truth = rasterio.open(paths["truth"]).read().astype(float)
    assert np.abs(values.mean() - truth.mean()) < 0.02 * truth.mean(), "int16 ×10000 in, int16 ×10000 out"


def test_band_mapping_picks_and_reorders_coarse_bands(tmp_path):
    paths = scene_set(tmp_path, height=40, width=40, bands=3, ratio=4, dtype="float32")
    with rasterio.open(paths["coarse"]) as src:
        reversed_coarse = write(tmp_path / "c2_rev.tif", src.read()[::-1], src.transform)
    common = dict(fine_reference=paths["fine"], method="cubic")
    straight = fuse(FusionRequest(coarse_target=paths["coarse"], output=str(tmp_path / "a.tif"), **common))
    mapped = fuse(FusionRequest(coarse_target=reversed_coarse, output=str(tmp_path / "b.tif"), bands=(3, 2, 1), **common))
    assert mapped.bands == 3
    np.testing.assert_array_equal(rasterio.open(straight.output).read(), rasterio.open(mapped.output).read())


def test_an_input_inside_a_zip_archive_reads_like_the_file(tmp_path):
    """A GDAL virtual path (/vsizip/…, as a QGIS layer of a zipped raster hands it over) is an input like a file."""
    from helpers.layer_sources import zipped

    paths = scene_set(tmp_path, height=48, width=48, bands=2, ratio=4, dtype="int16")
    outputs = {}
    for name, coarse in (("plain", paths["coarse"]), ("zipped", zipped(paths["coarse"], tmp_path))):
        result = fuse(FusionRequest(coarse_target=coarse, fine_reference=paths["fine"], method="delta",
                                    output=str(tmp_path / f"{name}.tif")))
        with rasterio.open(result.output) as fused:
            outputs[name] = fused.read()
    np.testing.assert_array_equal(outputs["zipped"], outputs["plain"])


def test_fine_and_coarse_picked_the_wrong_way_round_are_refused(tmp_path, fine):
    transform = from_origin(ORIGIN[0], ORIGIN[1], 120, 120)
    x, y = centres(transform, 16, 20)
    coarse = write(tmp_path / "coarse.tif", ramp(x, y)[None].astype("float32"), transform)
    with pytest.raises(StfError, match=r"look swapped \(.*fine\.tif is the finer one\)"):
        fuse_cubic(tmp_path, fine, coarse)
    # a coarse image resampled onto a finer grid than the fine reference is fine when its real size is given
    result, _ = fuse_cubic(tmp_path, fine, coarse, coarse_resolution=480.0)
    assert not any("swapped" in warning for warning in result.warnings)
