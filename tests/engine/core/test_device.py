"""Device choice: auto falls back to the CPU; CUDA results match the CPU's when a GPU is present."""
import numpy as np
import pytest
import rasterio
import torch

from stf_engine import FusionRequest, StfError, fuse
from stf_engine.core.device import resolve_device
from devkit.checkpoints import save_random
from devkit.synthetic import scene_set


def test_auto_picks_cuda_only_when_available():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu").type == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_gpu_is_a_clear_error():
    with pytest.raises(StfError, match="no CUDA GPU"):
        resolve_device("cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("precision,atol", [("fp32", 2), ("bf16", 60)])
def test_cuda_starfm_matches_cpu(tmp_path, precision, atol):
    scene = scene_set(tmp_path, height=80, width=96, dtype="int16")
    outputs = {}
    for device in ("cpu", "cuda"):
        result = fuse(FusionRequest(coarse_target=scene["coarse"], fine_reference=scene["fine"],
                                    coarse_reference=scene["coarse_ref"], output=str(tmp_path / f"{device}.tif"),
                                    method="starfm", tile=32, device=device,
                                    precision=precision if device == "cuda" else "fp32", options={"window": 9}))
        assert result.device.startswith(device)
        outputs[device] = rasterio.open(result.output).read().astype(int)
    assert np.abs(outputs["cuda"] - outputs["cpu"]).max() <= atol


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("model", ["edcstfn", "ganstfm", "marstfn"])
@pytest.mark.parametrize("precision,atol", [("fp32", 20), ("bf16", 400)])
def test_cuda_deep_models_match_cpu(tmp_path, model, precision, atol):
    """fp32 on the GPU differs from the CPU by TF32 convolutions only; bf16 by its 8-bit mantissa (int16 ×1e4)."""
    scene = scene_set(tmp_path, height=96, width=96, dtype="int16")
    weights = save_random(tmp_path / "w.pt", model, given=("coarse_reference",))
    outputs = {}
    for device in ("cpu", "cuda"):
        result = fuse(FusionRequest(coarse_target=scene["coarse"], fine_reference=scene["fine"],
                                    coarse_reference=scene["coarse_ref"], output=str(tmp_path / f"{device}.tif"),
                                    method=model, weights=weights, tile=48, device=device,
                                    precision=precision if device == "cuda" else "fp32"))
        outputs[device] = rasterio.open(result.output).read().astype(int)
    difference = np.abs(outputs["cuda"] - outputs["cpu"]).max()
    assert difference <= atol, f"{model} {precision}: GPU and CPU differ by {difference} (spread {outputs['cpu'].std():.0f})"


@pytest.mark.parametrize("threads", [1, 2])
def test_outputs_compress_on_the_runs_threads(threads):
    """GDAL's compression threads follow --threads like torch's do, not every core of the machine."""
    from rasterio.transform import from_origin

    from stf_engine.core.device import cpu_threads
    from stf_engine.raster.grid import Grid
    from stf_engine.raster.writer import geotiff_profile

    grid = Grid(rasterio.crs.CRS.from_epsg(32649), from_origin(0, 0, 30, 30), 64, 64)
    with cpu_threads(threads):
        assert geotiff_profile(grid, 3, "int16", -9999)["num_threads"] == threads


@pytest.mark.parametrize("psutil_cores, expected", [(3, 3), (None, "logical")])
def test_without_proc_cpuinfo_the_physical_cores_come_from_psutil_else_every_logical_cpu(monkeypatch, psutil_cores,
                                                                                        expected):
    """Windows and macOS have no /proc/cpuinfo: counting every logical CPU gave torch twice the threads of the cores
    on machines with hyper-threads, which makes the CPU paths slower."""
    import sys
    from types import SimpleNamespace

    from stf_engine.core import device

    monkeypatch.setattr(device, "_cores_in_cpuinfo", lambda: None)
    monkeypatch.setitem(sys.modules, "psutil", SimpleNamespace(cpu_count=lambda logical=True: psutil_cores))
    monkeypatch.setattr(device.os, "cpu_count", lambda: 8)
    assert device.physical_cores.__wrapped__() == (8 if expected == "logical" else expected)
