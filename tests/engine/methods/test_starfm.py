"""STARFM: the torch tile function against a per-pixel numpy reference written from the paper's rules.

The reference loops over pixels and, for each, takes its (window × window) neighbourhood in plain numpy:
similar in the fine reference per band (|F1(n) − F1(c)| ≤ 2σ_b/m), no worse than the centre in spectral
(|F1 − C1|) and temporal (|C2 − C1|) difference plus the measurement uncertainties, valid, weighted by
1/(S·T·D) with D = 1 + d/(w/2), predicting F1(n) + C2(n) − C1(n); F1 + C2 − C1 where no neighbour qualifies.
"""
import math
from contextlib import ExitStack

import numpy as np
import pytest
import rasterio
import torch

from helpers.paths import SAMPLE
from stf_engine import FusionCancelled, FusionRequest, fuse
from stf_engine.core.psf import simulate_coarse
from stf_engine.methods.catalog import get_method, resolved_options
from stf_engine.methods.contract import MethodContext, TileBatch

ALL_ROLES = frozenset({"coarse_target", "fine_reference", "coarse_reference"})


def reflect(a, half):
    return np.pad(a, ((0, 0), (half, half), (half, half)), mode="reflect")


def reference(f1, c1, c2, valid, fine_std, window, classes=4, uncertainty_fine=0.002, uncertainty_coarse=0.002,
              padding=reflect):
    """STARFM one pixel at a time: (C, H, W) float32 arrays and an (H, W) valid mask → (C, H, W) float64."""
    half = window // 2
    sigma_s = math.hypot(uncertainty_fine, uncertainty_coarse)
    sigma_t = math.sqrt(2) * uncertainty_coarse
    threshold = (np.asarray(fine_std, np.float32) * np.float32(2.0 / classes))[:, None, None]
    pad = lambda a: padding(a, half)  # noqa: E731
    pf1, pc1, pc2 = pad(f1), pad(c1), pad(c2)
    pvalid = pad(valid[None].astype(np.float32))[0] > 0
    dy, dx = np.mgrid[-half:half + 1, -half:half + 1]
    distance = 1.0 + np.hypot(dy, dx) / max(half, 1)
    out = np.empty(f1.shape, np.float64)
    for y in range(f1.shape[1]):
        for x in range(f1.shape[2]):
            near = (slice(None), slice(y, y + window), slice(x, x + window))
            nf1, nc1, nc2 = pf1[near], pc1[near], pc2[near]
            centre = (slice(None), slice(y, y + 1), slice(x, x + 1))
            spectral, temporal = np.abs(nf1 - nc1), np.abs(nc2 - nc1)
            chosen = (
                (np.abs(nf1 - f1[centre]) <= threshold)
                & (spectral <= np.abs(f1[centre] - c1[centre]) + np.float32(sigma_s))
                & (temporal <= np.abs(c2[centre] - c1[centre]) + np.float32(sigma_t))
                & pvalid[near[1:]]
            )
            cost = (spectral.astype(np.float64) + sigma_s) * (temporal + sigma_t) * distance
            weight = np.where(chosen, 1.0 / cost, 0.0)
            total = weight.sum(axis=(1, 2))
            predicted = (weight * (nf1.astype(np.float64) + nc2 - nc1)).sum(axis=(1, 2))
            fallback = f1[centre][:, 0, 0].astype(np.float64) + c2[centre][:, 0, 0] - c1[centre][:, 0, 0]
            out[:, y, x] = np.where(total > 0, predicted / np.where(total > 0, total, 1.0), fallback)
    return out


def tile_function(fine_std, bands, given=ALL_ROLES, tick=None, **options):
    spec = get_method("starfm")
    context = MethodContext(ratio=4, bands=bands, given=given, device=torch.device("cpu"), fine_std=tuple(fine_std),
                            options=resolved_options(spec, options),
                            **({"tick": tick} if tick is not None else {}))
    return spec.build(context)


def batch_of(f1, c1, c2, valid):
    tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))[None]  # noqa: E731
    return TileBatch(coarse_target=tensor(c2), fine_reference=tensor(f1),
                     coarse_reference=None if c1 is None else tensor(c1),
                     valid=torch.from_numpy(valid)[None, None], origins=((0, 0),))


def random_scene(height=24, width=20, bands=3, seed=0):
    rng = np.random.default_rng(seed)
    f1 = (0.05 + 0.3 * rng.random((bands, height, width))).astype(np.float32)
    c1 = (f1 + rng.normal(0, 0.02, f1.shape)).astype(np.float32)
    c2 = (c1 * 1.1 + 0.01 + rng.normal(0, 0.01, f1.shape)).astype(np.float32)
    valid = rng.random((height, width)) > 0.1
    return f1, c1, c2, valid


@pytest.mark.parametrize("window,options", [(7, {}), (1, {}), (3, {"classes": 2}), (9, {"uncertainty_fine": 0.01})])
@pytest.mark.parametrize("threads", [1, 2])
def test_matches_the_per_pixel_reference_on_a_random_scene(window, options, threads):
    f1, c1, c2, valid = random_scene()
    fine_std = f1.reshape(3, -1).std(axis=1)
    expected = reference(f1, c1, c2, valid, fine_std, window, **options)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        got = tile_function(fine_std, 3, window=window, **options)(batch_of(f1, c1, c2, valid))[0].numpy()
    finally:
        torch.set_num_threads(before)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("strip", [64, 2000])
def test_strips_of_part_of_a_row_and_of_several_rows_give_the_same(monkeypatch, strip):
    from stf_engine.methods import starfm

    monkeypatch.setattr(starfm, "CPU_STRIP", strip)  # 64: strips of 9 of a row's 60 values; 2000: 4 rows
    f1, c1, c2, valid = random_scene(seed=8)
    fine_std = f1.reshape(3, -1).std(axis=1)
    got = tile_function(fine_std, 3, window=7)(batch_of(f1, c1, c2, valid))[0].numpy()
    np.testing.assert_allclose(got, reference(f1, c1, c2, valid, fine_std, 7), rtol=1e-5, atol=1e-6)


def test_a_tile_smaller_than_the_window():
    from stf_engine.core.psf import reflect_pad

    f1, c1, c2, valid = random_scene(5, 4, seed=9)
    fine_std = f1.reshape(3, -1).std(axis=1)
    engine_padding = lambda a, half: reflect_pad(torch.from_numpy(a)[None], half)[0].numpy()  # noqa: E731
    expected = reference(f1, c1, c2, valid, fine_std, 31, padding=engine_padding)  # reflected, then replicated
    got = tile_function(fine_std, 3)(batch_of(f1, c1, c2, valid))[0].numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_without_a_coarse_reference_c1_is_the_simulated_one():
    f1, _, c2, valid = random_scene(seed=2)
    fine_std = f1.reshape(3, -1).std(axis=1)
    c1 = simulate_coarse(torch.from_numpy(f1)[None], 4, torch.from_numpy(valid)[None, None])[0].numpy()
    expected = reference(f1, c1, c2, valid, fine_std, 7)
    function = tile_function(fine_std, 3, given=frozenset({"coarse_target", "fine_reference"}), window=7)
    got = function(batch_of(f1, None, c2, valid))[0].numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_a_batch_of_tiles_and_double_precision_give_the_same_as_one_tile_each():
    scenes = [random_scene(30, 26, seed=seed) for seed in (3, 4, 5)]
    fine_std = np.stack([s[0] for s in scenes], axis=1).reshape(3, -1).std(axis=1)
    function = tile_function(fine_std, 3, window=11)
    alone = [function(batch_of(*scene))[0].numpy() for scene in scenes]
    batches = [batch_of(*scene) for scene in scenes]
    together = function(TileBatch(**{role: torch.cat([getattr(b, role) for b in batches])
                                     for role in ("coarse_target", "fine_reference", "coarse_reference", "valid")},
                                  origins=((0, 0),) * 3)).numpy()
    for index, one in enumerate(alone):
        np.testing.assert_allclose(together[index], one, rtol=1e-6, atol=1e-7)
    double = batch_of(*scenes[0])
    double = TileBatch(coarse_target=double.coarse_target.double(), fine_reference=double.fine_reference.double(),
                       coarse_reference=double.coarse_reference.double(), valid=double.valid, origins=((0, 0),))
    got = function(double)
    assert got.dtype == torch.float64
    np.testing.assert_allclose(got[0].numpy(), alone[0], rtol=1e-5, atol=1e-6)


def _sample_plan(stack, tile):
    from stf_engine.fusion.check import prepare

    request = FusionRequest(coarse_target=f"{SAMPLE}/MOD09_2002311_SZ_B214_250m.tif",
                            fine_reference=f"{SAMPLE}/L72000306_SZ_B432_30m.tif",
                            coarse_reference=f"{SAMPLE}/MOD09_2000306_SZ_B214_250m.tif", output="unused.tif",
                            method="starfm", coarse_resolution=250, tile=tile, device="cpu")
    return prepare(request, stack)


def test_matches_the_reference_on_the_shenzhen_sample_and_the_whole_raster_run(tmp_path):
    """Real Landsat/MODIS tiles at the default 31-pixel window: one inside the scene, one at its nodata edge."""
    with ExitStack() as stack:
        plan = _sample_plan(stack, tile=40)
        assert plan.halo == 15
        inside = plan.tiles[len(plan.tiles) // 2 + 6]
        edge = next(t for t in reversed(plan.tiles) if not bool(
            plan.inputs.read_batch([t], plan.halo, torch.device("cpu")).valid.all()))
        batches = {tile: plan.inputs.read_batch([tile], plan.halo, torch.device("cpu")) for tile in (inside, edge)}
        function = plan.spec.build(plan.context)
        fine_std = plan.context.fine_std
    whole = fuse(FusionRequest(coarse_target=f"{SAMPLE}/MOD09_2002311_SZ_B214_250m.tif",
                               fine_reference=f"{SAMPLE}/L72000306_SZ_B432_30m.tif",
                               coarse_reference=f"{SAMPLE}/MOD09_2000306_SZ_B214_250m.tif",
                               output=str(tmp_path / "whole.tif"), method="starfm", coarse_resolution=250, tile=0))
    with rasterio.open(whole.output) as src:
        stored = src.read().astype(np.float64) * 1e-4  # the sample's int16 reflectance × 10⁴
    for tile, batch in batches.items():
        arrays = [t[0].numpy() for t in (batch.fine_reference, batch.coarse_reference, batch.coarse_target)]
        valid = batch.valid[0, 0].numpy()
        expected = reference(*arrays, valid, fine_std, 31)
        got = function(batch)[0].numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
        rows, cols = tile.written(plan.halo)
        window = (slice(tile.rows.write_start, tile.rows.write_stop),
                  slice(tile.cols.write_start, tile.cols.write_stop))
        inside_valid = valid[rows, cols]
        difference = np.abs(got[:, rows, cols] - stored[(slice(None),) + window])[:, inside_valid]
        assert difference.max() <= 0.5e-4 + 1e-6  # the whole raster in one piece, rounded to int16 on writing


def test_threads_are_restored_and_cancel_stops_inside_a_tile():
    f1, c1, c2, valid = random_scene(40, 36, seed=6)
    fine_std = f1.reshape(3, -1).std(axis=1)
    calls = []

    def tick(fraction=None):
        calls.append(fraction)
        if len(calls) == 4:
            raise FusionCancelled("cancelled")

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with torch.inference_mode(), pytest.raises(FusionCancelled):
            tile_function(fine_std, 3, tick=tick, window=15)(batch_of(f1, c1, c2, valid))
        assert torch.get_num_threads() == 2
        assert calls == [row / 15 for row in range(4)]  # one tick per row of offsets
    finally:
        torch.set_num_threads(before)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_gives_the_cpu_result():
    f1, c1, c2, valid = random_scene(64, 70, seed=7)
    fine_std = f1.reshape(3, -1).std(axis=1)
    cpu = tile_function(fine_std, 3, window=15)(batch_of(f1, c1, c2, valid))
    spec = get_method("starfm")
    context = MethodContext(ratio=4, bands=3, given=ALL_ROLES, device=torch.device("cuda"), fine_std=tuple(fine_std),
                            options=resolved_options(spec, {"window": 15}))
    batch = batch_of(f1, c1, c2, valid)
    on_gpu = TileBatch(**{role: getattr(batch, role).cuda()
                          for role in ("coarse_target", "fine_reference", "coarse_reference", "valid")},
                       origins=batch.origins)
    with torch.autocast("cuda", dtype=torch.float16):  # the run's fp16 precision must not reach STARFM's sums
        gpu = spec.build(context)(on_gpu)
    np.testing.assert_allclose(gpu.float().cpu().numpy(), cpu.numpy(), rtol=1e-5, atol=1e-6)
