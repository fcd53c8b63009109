"""Seam ratio on the real Shenzhen sample (SS-STFM): the halo keeps tiled STARFM seam-free."""
import pathlib

import numpy as np
import pytest
import rasterio

from stf_engine import FusionRequest, fuse
from stf_engine.core.seams import seam_ratio
from helpers.paths import SAMPLE

TILE = 128


def fused(tmp_path, name, **kwargs):
    request = FusionRequest(
        coarse_target=str(SAMPLE / "MOD09_2002311_SZ_B214_250m.tif"),
        fine_reference=str(SAMPLE / "L72000306_SZ_B432_30m.tif"),
        coarse_reference=str(SAMPLE / "MOD09_2000306_SZ_B214_250m.tif"),
        output=str(tmp_path / f"{name}.tif"),
        method="starfm",
        coarse_resolution=250,
        options={"window": 21},
        **kwargs,
    )
    result = fuse(request)
    with rasterio.open(result.output) as src:
        return result, src.read(masked=True)


@pytest.mark.slow
def test_seam_ratio_tiled_matches_whole_and_naive_raises_it(tmp_path):
    with rasterio.open(SAMPLE / "L72002311_SZ_B432_30m.tif") as src:
        truth = src.read(masked=True)
    whole_result, whole = fused(tmp_path, "whole", tile=0)
    tiled_result, tiled = fused(tmp_path, "tiled", tile=TILE)
    naive_result, naive = fused(tmp_path, "naive", tile=TILE, halo=0)
    borders = tiled_result.tile_borders
    assert borders == ((128, 256, 384), (128, 256, 384))
    assert whole_result.tile_borders == ((), ())

    valid = ~(whole.mask.any(0) | truth.mask.any(0))
    truth_values = truth.data.astype(np.float64)
    ratios = {
        name: seam_ratio(image.data.astype(np.float64), truth_values, valid, borders)
        for name, image in (("whole", whole), ("tiled", tiled), ("naive", naive))
    }
    assert abs(ratios["tiled"] - ratios["whole"]) <= 0.01, ratios
    # Naive tiling cuts STARFM's window at every border: the error concentrates on the seams.
    assert ratios["naive"] > ratios["whole"] + 0.004, ratios
    assert np.abs(naive.data.astype(float) - whole.data)[:, valid].max() > 50
