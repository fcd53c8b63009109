"""`cog=True` / `--cog`: the fused image is a Cloud Optimized GeoTIFF with internal overviews and the same
pixels, tags and band names as the plain GeoTIFF; a failed conversion leaves nothing behind."""
from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest
import rasterio
from rasterio._err import CPLE_AppDefinedError

from devkit.synthetic import scene_set
from stf_engine import FusionCancelled, FusionRequest, StfError, fuse
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


def test_a_cancel_during_the_conversion_stops_at_once_and_its_files_go_when_gdal_is_done(scene, tmp_path,
                                                                                         monkeypatch):
    """GDAL's copy cannot be interrupted: the run stops waiting for it within a poll, and the copy removes its
    output once it has finished writing it. Progress names the pass before it starts."""
    copy, finished = rasterio.shutil.copy, threading.Event()

    def slow_copy(*args, **kwargs):
        time.sleep(2.0)
        copy(*args, **kwargs)
        finished.set()

    monkeypatch.setattr(rasterio.shutil, "copy", slow_copy)
    cancel, seen = threading.Event(), []

    def progress(fraction, message):
        seen.append((fraction, message))
        if message == "writing the Cloud Optimized GeoTIFF":
            cancel.set()

    with pytest.raises(FusionCancelled):
        fuse(request(scene, tmp_path / "cog.tif", cog=True), progress, cancel)
    assert not finished.is_set()  # the run did not wait for the copy
    assert seen[-1] == (0.75, "writing the Cloud Optimized GeoTIFF")
    for thread in threading.enumerate():
        if thread.name == "stf-cog-copy":
            thread.join()
    assert finished.is_set() and os.listdir(tmp_path) == []
