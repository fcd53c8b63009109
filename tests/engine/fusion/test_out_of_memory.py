"""GPU out of memory: the batch is halved (for the rest of the run), then a single tile is split into sub-tiles
read from its haloed window (at that size for the rest of the run), then the CPU takes over, each with a warning
and the same result, also for the uncertainty map; with nothing left to lower, one line says what to change."""
from __future__ import annotations

from contextlib import ExitStack

import numpy as np
import pytest
import torch

from devkit.checkpoints import save_random
from devkit.series import changed_copy
from devkit.synthetic import scene_set
from stf_engine import FusionRequest, StfError, fuse
from stf_engine.core.progress import Ticker
from stf_engine.fusion.check import prepare
from stf_engine.fusion.predict import DateStack, predict_tiles

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAKE_GPU = torch.device("meta")
"""A device other than the CPU that needs no hardware: the runs below fail on it before computing anything."""


@pytest.fixture
def scene(tmp_path):
    return scene_set(tmp_path, height=96, width=80, bands=3, ratio=4)


@pytest.fixture
def stack():
    with ExitStack() as stack:
        yield stack


def planned(scene, stack, method="starfm", tile=32, target=None, device="cpu", ticker=None, **kwargs):
    """The checked and opened run of `method` on the scene (its coarse target, or `target`)."""
    request = FusionRequest(coarse_target=target or scene["coarse"], fine_reference=scene["fine"],
                            coarse_reference=scene["coarse_ref"], output=str(scene["fine"]) + ".out.tif", method=method,
                            tile=tile, device=device, **kwargs)
    return prepare(request, stack, ticker=ticker)


def failing_above(method, pixels, calls):
    """The method, failing like CUDA does when its input holds more than `pixels` pixels (windows × height × width);
    each call's (windows, height, width) goes to `calls`."""
    def run(batch):
        windows, _, height, width = batch.valid.shape
        calls.append((windows, height, width))
        if windows * height * width > pixels:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return method(batch)
    return run


def predictions(plan, method, batch, inputs=None, device=None, **kwargs):
    """Each tile's prediction over its haloed window, by (date, row, column) of its core."""
    out = {}
    for group, values, _ in predict_tiles(inputs or plan.inputs, method, plan.tiles, plan.halo, batch,
                                          device or plan.device, **kwargs):
        for index in range(len(values)):
            tile = group[index % len(group)]
            out[(index // len(group), tile.rows.core_start, tile.cols.core_start)] = values[index].cpu().numpy()
    return out


def assert_same(got, expected):
    assert sorted(got) == sorted(expected)
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=0, atol=1e-6, err_msg=str(key))


def split_warning(side):
    return (f"the GPU ran out of memory with a single tile; it was split into {side}×{side}-pixel tiles and the rest "
            f"runs at that size (--tile {side} skips these retries)")


def test_the_batch_is_halved_until_it_fits_and_stays_halved(scene, stack):
    plan = planned(scene, stack)
    method = plan.spec.build(plan.context)
    expected = predictions(plan, method, batch=1)
    calls, warnings = [], []
    window = (32 + 2 * plan.halo) ** 2
    got = predictions(plan, failing_above(method, 2 * window, calls), batch=8, warn=warnings.append)
    assert len(got) == 9
    assert_same(got, expected)
    batches = [windows for windows, _, _ in calls]
    assert batches[:3] == [8, 4, 2] and max(batches[3:]) <= 2  # later batches start at the size that fitted
    assert warnings == ["the GPU ran out of memory with 8 tiles a batch; the rest runs 4 at a time",
                        "the GPU ran out of memory with 4 tiles a batch; the rest runs 2 at a time"]


@pytest.mark.parametrize("method,tile,side", [("starfm", 64, 32), ("starfm", 0, 48), ("fitfc", 70, 35),
                                               ("edcstfn", 64, 32)])
def test_a_tile_that_does_not_fit_is_split_with_the_same_result(scene, stack, tmp_path, method, tile, side):
    """Tiles of 64 or 70 on 96×80 all touch two raster edges; tile 0 is the whole raster, touching all four.
    Sub-tiles of 35 lie off the coarse pixels' 4×4 blocks, which FIT-FC finds by the tiles' origins."""
    weights = save_random(tmp_path / "w.pt", method, given=("coarse_reference",)) if method == "edcstfn" else None
    plan = planned(scene, stack, method, tile, weights=weights)
    built = plan.spec.build(plan.context)
    expected = predictions(plan, built, batch=1)
    calls, warnings = [], []
    pixels = (48 + 2 * plan.halo) ** 2  # one window with a 48-pixel core
    got = predictions(plan, failing_above(built, pixels, calls), batch=4, warn=warnings.append, split_tiles=True)
    assert_same(got, expected)  # over the whole haloed windows, which the pieces rebuild
    assert warnings[-1] == split_warning(side) and sum("split" in warning for warning in warnings) == 1
    fits = [windows * height * width <= pixels for windows, height, width in calls]
    assert all(fits[fits.index(True):])  # later tiles are split at once, at the size that fitted
    assert (1, side + 2 * plan.halo, side + 2 * plan.halo) in calls


def test_progress_keeps_rising_through_the_sub_tiles(scene, stack):
    seen = []
    ticker = Ticker(progress=lambda fraction, message: seen.append((fraction, message)))
    plan = planned(scene, stack, tile=0, ticker=ticker)
    method = failing_above(plan.spec.build(plan.context), (48 + 2 * plan.halo) ** 2, [])
    predictions(plan, method, batch=1, ticker=ticker, split_tiles=True)
    fractions = [fraction for fraction, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] > 0.99
    assert seen[-1][1] == "tile 1/1, sub-tile 4/4"


def test_stacked_dates_are_split_together(scene, stack, tmp_path):
    changed = [changed_copy(scene["coarse"], tmp_path / f"c2_{gain}.tif", lambda v, gain=gain: v * gain)
               for gain in (1.1, 0.9)]
    targets = [scene["coarse"], *map(str, changed)]
    plans = [planned(scene, stack, tile=64, target=target) for target in targets]
    dates = DateStack([plan.inputs for plan in plans])
    method = plans[0].spec.build(plans[0].context)
    expected = predictions(plans[0], method, batch=2, inputs=dates)
    calls, warnings = [], []
    pixels = 3 * (32 + 2 * plans[0].halo) ** 2  # one 32-pixel sub-tile of every date
    got = predictions(plans[0], failing_above(method, pixels, calls), batch=2, inputs=dates, warn=warnings.append,
                      split_tiles=True)
    assert len(got) == 3 * 4
    assert_same(got, expected)
    assert warnings[-1] == split_warning(32)
    assert not np.allclose(got[(0, 0, 0)], got[(2, 0, 0)])  # each date its own


def test_when_even_the_smallest_sub_tile_does_not_fit_the_cpu_takes_over(scene, stack):
    plan = planned(scene, stack, tile=64)
    method = plan.spec.build(plan.context)
    expected = predictions(plan, method, batch=1)
    calls, warnings = [], []
    got = predictions(plan, failing_above(method, 0, calls), batch=2, device=FAKE_GPU, warn=warnings.append,
                      split_tiles=True, rebuild=lambda device: plan.spec.build(plan.context))
    assert_same(got, expected)
    window = 64 + 2 * plan.halo
    assert calls == [(2, window, window), (1, window, window), (1, 32 + 2 * plan.halo, 32 + 2 * plan.halo)]
    assert warnings == ["the GPU ran out of memory with 2 tiles a batch; the rest runs 1 at a time",
                        "the GPU ran out of memory with a single tile; the rest runs on the CPU (lower --tile to "
                        "keep it on the GPU)"]


@pytest.mark.parametrize("tile,split_tiles", [(32, False), (64, True)])
def test_with_one_tile_and_no_other_device_the_error_says_what_to_lower(scene, stack, tile, split_tiles):
    plan = planned(scene, stack, tile=tile)
    method = failing_above(plan.spec.build(plan.context), 0, [])
    with pytest.raises(StfError, match="lower --tile or --halo"):
        predictions(plan, method, batch=2, split_tiles=split_tiles)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_a_gpu_a_split_tile_gives_the_whole_tile_s_result(scene, stack):
    plan = planned(scene, stack, tile=64, device="cuda")
    method = plan.spec.build(plan.context)
    expected = predictions(plan, method, batch=1)
    warnings = []
    got = predictions(plan, failing_above(method, (32 + 2 * plan.halo) ** 2, []), batch=4, warn=warnings.append,
                      split_tiles=True)
    assert warnings[-1] == split_warning(32)
    assert_same(got, expected)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_a_gpu_a_tile_that_does_not_fit_moves_the_run_to_the_cpu(tmp_path, monkeypatch):
    scene = scene_set(tmp_path, height=64, width=64, bands=3, ratio=4)
    request = dict(coarse_target=scene["coarse"], fine_reference=scene["fine"], coarse_reference=scene["coarse_ref"],
                   method="starfm", tile=32, batch=1)
    on_cpu = fuse(FusionRequest(output=str(tmp_path / "cpu.tif"), device="cpu", **request))
    import stf_engine.fusion.predict as predict

    original = predict._Fitting.predict
    def failing_on_cuda(self, group, data, precision):  # noqa: E306
        if self.device.type == "cuda":
            self.method = failing_above(self.method, 0, [])
        return original(self, group, data, precision)
    monkeypatch.setattr(predict._Fitting, "predict", failing_on_cuda)
    moved = fuse(FusionRequest(output=str(tmp_path / "gpu.tif"), device="cuda", **request))
    assert any("runs on the CPU" in warning for warning in moved.warnings)
    import rasterio
    with rasterio.open(on_cpu.output) as a, rasterio.open(moved.output) as b:
        assert (a.read() == b.read()).all()


def test_the_uncertainty_map_halves_its_batch_and_splits_its_tiles_with_the_same_map(tmp_path, monkeypatch):
    """Its terms failing like CUDA on more than one tile, then on any whole tile: smaller batches, then sub-tiles,
    each with a warning, and the map the run without failures writes."""
    import rasterio

    from stf_engine.fusion.uncertainty import UncertaintyEstimator

    scene = scene_set(tmp_path, height=192, width=160, bands=3, ratio=4)  # 2×2 tiles of 96, wider than the halo

    def run(name):
        result = fuse(FusionRequest(coarse_target=scene["coarse"], fine_reference=scene["fine"],
                                    coarse_reference=scene["coarse_ref"], output=str(tmp_path / f"{name}.tif"),
                                    method="starfm", tile=96, batch=4, error_maps_dir=str(tmp_path / name),
                                    uncertainty=True))
        with rasterio.open(result.error_maps["uncertainty"]) as written:
            return written.read(1), result.warnings

    expected, quiet = run("whole")
    terms, calls = UncertaintyEstimator.terms, []

    def failing(self, batch):
        windows, _, height, width = batch.valid.shape
        calls.append((windows, height, width))
        if windows > 1 or height * width >= calls[0][1] * calls[0][2]:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return terms(self, batch)

    monkeypatch.setattr(UncertaintyEstimator, "terms", failing)
    got, warnings = run("failing")
    assert not any("memory" in warning for warning in quiet)
    assert any("with 4 tiles a batch" in warning for warning in warnings)
    assert any("with a single tile; it was split" in warning for warning in warnings)
    assert calls[0][0] == 4 and any(height < calls[0][1] for _, height, _ in calls)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
