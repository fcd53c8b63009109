"""GPU out of memory: the batch is halved (for the rest of the run), then the CPU takes over, each with a
warning and the same result; with nothing left to lower, one line says what to change."""
from __future__ import annotations

from contextlib import ExitStack

import pytest
import torch

from devkit.synthetic import scene_set
from stf_engine import FusionRequest, StfError, fuse
from stf_engine.fusion.check import prepare
from stf_engine.fusion.predict import predict_tiles


@pytest.fixture
def plan(tmp_path):
    scene = scene_set(tmp_path, height=96, width=96, bands=3, ratio=4)
    request = FusionRequest(coarse_target=scene["coarse"], fine_reference=scene["fine"],
                            coarse_reference=scene["coarse_ref"], output=str(tmp_path / "out.tif"), method="starfm",
                            tile=32, device="cpu")
    with ExitStack() as stack:
        yield prepare(request, stack)


def fitting_at_most(method, tiles_that_fit, calls):
    """The method, failing like CUDA does when a batch holds more tiles than fit."""
    def run(batch):
        calls.append(batch.coarse_target.shape[0])
        if batch.coarse_target.shape[0] > tiles_that_fit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return method(batch)
    return run


def predictions(plan, method, batch, **kwargs):
    out = {}
    for group, values, _ in predict_tiles(plan.inputs, method, plan.tiles, plan.halo, batch, plan.device, **kwargs):
        for index, tile in enumerate(group):
            out[(tile.rows.core_start, tile.cols.core_start)] = values[index]
    return out


def test_the_batch_is_halved_until_it_fits_and_stays_halved(plan):
    method = plan.spec.build(plan.context)
    expected = predictions(plan, method, batch=1)
    calls, warnings = [], []
    got = predictions(plan, fitting_at_most(method, 2, calls), batch=8, warn=warnings.append)
    assert sorted(got) == sorted(expected) and len(got) == 9, (sorted(got), sorted(expected))
    for key in expected:
        torch.testing.assert_close(got[key], expected[key])
    assert calls[:3] == [8, 4, 2] and max(calls[3:]) <= 2  # later batches start at the size that fitted
    assert warnings == ["the GPU ran out of memory with 8 tiles a batch; the rest runs 4 at a time",
                        "the GPU ran out of memory with 4 tiles a batch; the rest runs 2 at a time"]


def test_with_one_tile_and_no_other_device_the_error_says_what_to_lower(plan):
    method = fitting_at_most(plan.spec.build(plan.context), 0, [])
    with pytest.raises(StfError, match="lower --tile or --halo"):
        predictions(plan, method, batch=2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_a_gpu_a_tile_that_does_not_fit_moves_the_run_to_the_cpu(tmp_path, monkeypatch):
    scene = scene_set(tmp_path, height=64, width=64, bands=3, ratio=4)
    request = dict(coarse_target=scene["coarse"], fine_reference=scene["fine"], coarse_reference=scene["coarse_ref"],
                   method="starfm", tile=32, batch=1)
    on_cpu = fuse(FusionRequest(output=str(tmp_path / "cpu.tif"), device="cpu", **request))
    import stf_engine.fusion.predict as predict

    original = predict._Fitting.predict
    def failing_on_cuda(self, inputs, group, halo, precision):  # noqa: E306
        if self.device.type == "cuda":
            self.method = fitting_at_most(self.method, 0, [])
        return original(self, inputs, group, halo, precision)
    monkeypatch.setattr(predict._Fitting, "predict", failing_on_cuda)
    moved = fuse(FusionRequest(output=str(tmp_path / "gpu.tif"), device="cuda", **request))
    assert any("runs on the CPU" in warning for warning in moved.warnings)
    import rasterio
    with rasterio.open(on_cpu.output) as a, rasterio.open(moved.output) as b:
        assert (a.read() == b.read()).all()
