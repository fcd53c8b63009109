"""`cog=True` / `--cog`: the fused image is a Cloud Optimized GeoTIFF with internal overviews and the same
pixels, tags and band names as the plain GeoTIFF; a failed conversion leaves nothing behind."""
from __future__ import annotations

import os

import numpy as np
import pytest
import rasterio
from rasterio._err import CPLE_AppDefinedError

from devkit.synthetic import scene_set
from stf_engine import FusionRequest, StfError, fuse
from stf_engine.cli import main


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    return scene_set(tmp_path_factory.mktemp("cog"), height=640, width=600, bands=3, ratio=8, dtype="int16")


def request(scene, output, cog):
    return FusionRequest(coarse_target=scene["coarse"], fine_reference=scene["fine"],
                         coarse_reference=scene["coarse_ref"], output=str(output), method="delta", cog=cog)


def test_cog_output_has_overviews_and_the_plain_outputs_pixels(scene, tmp_path):
    plain = fuse(request(scene, tmp_path / "plain.tif", cog=False)).output
    cog = fuse(request(scene, tmp_path / "cog.tif", cog=True)).output
    with rasterio.open(plain) as a, rasterio.open(cog) as b:
        assert b.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert a.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") != "COG"
        assert b.overviews(1) == [2] and a.overviews(1) == []
        np.testing.assert_array_equal(a.read(), b.read())
        assert b.tags()["STF_METHOD"] == "delta" and b.descriptions == a.descriptions
        assert (b.nodata, b.scales, b.crs, b.transform) == (a.nodata, a.scales, a.crs, a.transform)
    assert sorted(os.listdir(tmp_path)) == ["cog.tif", "plain.tif"]


def test_cli_cog_flag(scene, tmp_path):
    out = tmp_path / "cli.tif"
    assert main(["fuse", "--coarse", scene["coarse"], "--fine", scene["fine"], "--coarse-ref", scene["coarse_ref"],
                 "--method", "delta", "--out", str(out), "--cog"]) == 0
    with rasterio.open(out) as dataset:
        assert dataset.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"


@pytest.mark.parametrize("error", [rasterio.errors.RasterioError("simulated: no space left on device"),
                                   CPLE_AppDefinedError(1, 1, "TIFFRewriteDirectory:Error fetching directory count")],
                         ids=["rasterio's", "GDAL's, as a full disk raises it"])
def test_a_failed_conversion_is_one_error_and_leaves_no_file(scene, tmp_path, monkeypatch, error):
    def broken_copy(*args, **kwargs):
        raise error

    monkeypatch.setattr(rasterio.shutil, "copy", broken_copy)
    with pytest.raises(StfError, match="cannot write .*cog.tif"):
        fuse(request(scene, tmp_path / "cog.tif", cog=True))
    assert os.listdir(tmp_path) == []
