"""Units and nodata on real data: Kranj (float ×10000 Landsat with gaps vs 0–1 MODIS)."""
import pathlib

import numpy as np
import pytest
import rasterio

from stf_engine import FusionRequest, fuse
from stf_engine.raster.reader import DEFAULT_INTEGER_SCALE, units_of
from devkit.synthetic import fine_transform, write
from helpers.paths import TEST_DATA

KRANJ = TEST_DATA / "kranj"


def kranj_request(tmp_path, **kwargs):
    return FusionRequest(
        coarse_target=str(KRANJ / "modis" / "modis_2020093.tif"),
        fine_reference=str(KRANJ / "landsat_unfilled" / "landsat_2020068.tif"),
        coarse_reference=str(KRANJ / "modis" / "modis_2020068.tif"),
        output=str(tmp_path / "kranj.tif"),
        method="starfm",
        options={"window": 5},
        **kwargs,
    )


def test_unit_mismatch_is_warned_and_scale_override_fixes_it(tmp_path):
    unscaled = fuse(kranj_request(tmp_path))
    assert any("differ from the fine reference" in w for w in unscaled.warnings)
    scaled = fuse(kranj_request(tmp_path, scales={"fine_reference": 1e-4}))
    assert not any("differ from the fine reference" in w for w in scaled.warnings)
    with rasterio.open(scaled.output) as out, rasterio.open(KRANJ / "landsat_unfilled" / "landsat_2020093.tif") as truth:
        fused = out.read(masked=True).astype(float)
        later = truth.read(masked=True).astype(float)
        assert out.dtypes[0] == "float32" and out.nodata == truth.nodata
    # Output is back in the fine reference's units (×10000) and close to the real Landsat of that date.
    both = ~(fused.mask | later.mask)
    error = np.sqrt(np.mean((fused.data[both] - later.data[both]) ** 2))
    assert 0.7 < np.median(fused.data[both]) / np.median(later.data[both]) < 1.3
    assert error < np.sqrt(np.mean((later.data[both] - np.median(later.data[both])) ** 2))


def test_fine_reference_gaps_become_output_nodata(tmp_path):
    result = fuse(kranj_request(tmp_path, scales={"fine_reference": 1e-4}))
    with rasterio.open(KRANJ / "landsat_unfilled" / "landsat_2020068.tif") as fine, rasterio.open(result.output) as out:
        gaps = ~np.all(fine.read_masks() > 0, axis=0)
        written = np.all(out.read_masks() > 0, axis=0)
    assert gaps.sum() > 50
    assert not written[gaps].any()
    assert written[~gaps].all()


def test_units_from_metadata_dtype_and_override(tmp_path):
    data = np.ones((1, 4, 4))
    integer = rasterio.open(write(tmp_path / "i.tif", data, fine_transform(), dtype="uint16"))
    floating = rasterio.open(write(tmp_path / "f.tif", data, fine_transform(), dtype="float32"))
    tagged_path = write(tmp_path / "t.tif", data, fine_transform(), dtype="int16")
    with rasterio.open(tagged_path, "r+") as dst:
        dst.scales, dst.offsets = (2.75e-5,), (-0.2,)
    tagged = rasterio.open(tagged_path)
    assert units_of(integer).scale == DEFAULT_INTEGER_SCALE
    assert units_of(floating).scale == 1.0
    assert (units_of(tagged).scale, units_of(tagged).offset) == (2.75e-5, -0.2)
    assert units_of(tagged, override=0.5).scale == 0.5
    stored = np.array([[[10000]]], dtype="int16")
    assert units_of(tagged).to_reflectance(stored)[0, 0, 0] == pytest.approx(0.075)
    assert units_of(tagged).to_stored(np.float32(0.075)) == pytest.approx(10000, rel=1e-5)
