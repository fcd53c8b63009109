"""Metric formulas: hand-computed tiny arrays and cross-checks against numpy and skimage."""
import math

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from stf_engine.evaluation.evaluate import measure
from stf_engine.core.seams import seam_ratio


def pair(shape=(3, 48, 56), noise=0.03, seed=0):
    """A smooth reflectance-like truth and a noisy, slightly biased prediction."""
    rng = np.random.default_rng(seed)
    truth = gaussian_filter(rng.uniform(0.02, 0.5, shape), (0, 2, 2)).astype(np.float32)
    pred = (truth * 1.05 + rng.normal(0.0, noise, shape)).astype(np.float32)
    return pred, truth


def test_hand_computed_tiny_values():
    truth = np.array([[[1.0, 2.0], [3.0, 4.0]]], dtype=np.float32)
    pred = np.array([[[2.0, 2.0], [3.0, 6.0]]], dtype=np.float32)
    overall, (band,) = measure(pred, truth, data_range=10.0)
    # errors 1, 0, 0, 2: MSE 5/4; truth mean 2.5 so SS_tot = 5 = SS_res.
    assert band["rmse"] == pytest.approx(math.sqrt(1.25))
    assert band["mae"] == pytest.approx(0.75)
    assert band["ad"] == pytest.approx(0.75)
    assert band["r2"] == pytest.approx(0.0)
    assert band["cc"] == pytest.approx(6.5 / math.sqrt(10.75 * 5))
    assert band["psnr"] == pytest.approx(10 * math.log10(100 / 1.25))
    # UIQI = 4·cov·μp·μt / ((σp² + σt²)(μp² + μt²)) with population moments.
    uiqi = 4 * (6.5 / 4) * 3.25 * 2.5 / ((10.75 / 4 + 5 / 4) * (3.25**2 + 2.5**2))
    assert band["uiqi"] == pytest.approx(uiqi)
    assert overall["rmse"] == band["rmse"] and overall["cc"] == band["cc"]


def test_sam_and_ergas_by_hand():
    truth = np.array([[[0.0, 1.0]], [[1.0, 1.0]]], dtype=np.float32)  # spectra (0, 1) and (1, 1)
    pred = np.array([[[1.0, 1.0]], [[0.0, 1.0]]], dtype=np.float32)  # spectra (1, 0) and (1, 1)
    overall, bands = measure(pred, truth, ratio=2.0)
    assert overall["sam"] == pytest.approx(45.0)  # 90° and 0°
    # ERGAS = 100 · h/l · sqrt(mean_b RMSE_b² / μ_b²): band 1 MSE 1/2, μ 1/2; band 2 MSE 1/2, μ 1.
    assert overall["ergas"] == pytest.approx(100 / 2 * math.sqrt((0.5 / 0.25 + 0.5 / 1.0) / 2))
    assert "ergas" not in measure(pred, truth)[0]


def test_sam_of_a_single_band_is_undefined_not_zero():
    """Any error keeps a one-band spectral angle at 0° (180° where the signs differ): it measures nothing."""
    truth = np.array([[[0.1, 0.2], [0.3, 0.4]]], dtype=np.float32)
    overall, _ = measure(truth * 3, truth)
    assert math.isnan(overall["sam"]) and overall["rmse"] > 0.2


def test_edge_and_lbp_by_hand():
    ramp = np.array([[[0.0, 1.0, 2.0], [1.0, 2.0, 3.0], [2.0, 3.0, 4.0]]], dtype=np.float32)
    _, (band,) = measure(ramp, ramp)
    assert band["edge"] == 0.0 and band["lbp"] == 0.0
    # Roberts on the ramp: diagonal difference -2, anti-diagonal 0 → magnitude 2 at all four blocks.
    _, (band,) = measure(ramp * 0.5, ramp)
    assert band["edge"] == pytest.approx(-0.5)  # half the gradient: 50 % smoother
    # LBP at the ramp's centre: neighbours ≥ centre are right (bit 3), bottom-right (4), bottom (5),
    # top-right (2) and bottom-left (6): code 4+8+16+32+64 = 124 for any positive scaling.
    assert band["lbp"] == 0.0
    _, (band,) = measure(np.full_like(ramp, 0.5), ramp)
    assert band["lbp"] == pytest.approx((255 - 124) / 124)  # all ties count as ≥: code 255
    assert band["edge"] == pytest.approx(-1.0)


def test_ssim_equals_skimage_gaussian_population_fixed_range():
    pred, truth = pair()
    _, bands = measure(pred, truth, data_range=1.0)
    for band, values in enumerate(bands):
        expected = structural_similarity(
            pred[band].astype(np.float64), truth[band].astype(np.float64),
            gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0,
        )
        assert values["ssim"] == pytest.approx(expected, abs=1e-6)


def test_psnr_rmse_cc_r2_equal_skimage_and_numpy():
    pred, truth = pair(seed=3)
    overall, bands = measure(pred, truth)
    p, t = pred.astype(np.float64), truth.astype(np.float64)
    for band, values in enumerate(bands):
        assert values["psnr"] == pytest.approx(peak_signal_noise_ratio(t[band], p[band], data_range=1.0), rel=1e-9)
        assert values["rmse"] == pytest.approx(np.sqrt(np.mean((p[band] - t[band]) ** 2)), rel=1e-9)
        assert values["cc"] == pytest.approx(np.corrcoef(p[band].ravel(), t[band].ravel())[0, 1], rel=1e-9)
        ss_res = np.sum((t[band] - p[band]) ** 2)
        ss_tot = np.sum((t[band] - t[band].mean()) ** 2)
        assert values["r2"] == pytest.approx(1 - ss_res / ss_tot, rel=1e-9)
    assert overall["psnr"] == pytest.approx(peak_signal_noise_ratio(t, p, data_range=1.0), rel=1e-9)
    assert overall["rmse"] == pytest.approx(np.sqrt(np.mean((p - t) ** 2)), rel=1e-9)


def test_outliers_and_out_of_range_predictions_count_in_full():
    pred, truth = pair(seed=5)
    wild = pred.copy()
    wild[:, 10, 10] = [-3.0, 7.5, 40.0]  # no clamping to [0, 1], no outlier rejection
    _, calm = measure(pred, truth)
    _, bands = measure(wild, truth)
    for band in range(3):
        expected = np.sqrt(np.mean((wild[band].astype(np.float64) - truth[band]) ** 2))
        assert bands[band]["rmse"] == pytest.approx(expected, rel=1e-9)
        assert bands[band]["rmse"] > calm[band]["rmse"]
        assert bands[band]["ssim"] < calm[band]["ssim"]


def test_nodata_pixels_are_ignored_not_zeroed():
    pred, truth = pair(seed=7)
    valid = np.ones(pred.shape[1:], dtype=bool)
    valid[5:9, 20:30] = False
    garbage = pred.copy()
    garbage[:, ~valid] = 1e6
    overall, bands = measure(garbage, truth, valid)
    p, t = pred[:, valid].astype(np.float64), truth[:, valid].astype(np.float64)
    assert overall["rmse"] == pytest.approx(np.sqrt(np.mean((p - t) ** 2)), rel=1e-9)
    assert np.isfinite(overall["ssim"]) and overall["ssim"] == pytest.approx(measure(pred, truth, valid)[0]["ssim"])


def test_seam_ratio_equals_whole_array_helper():
    pred, truth = pair(seed=9)
    pred[:, 23:25, :] += 0.05  # a seam-like stripe at the tile border row 24
    borders = ((24,), (28,))
    overall, _ = measure(pred, truth, borders=borders)
    valid = np.ones(pred.shape[1:], dtype=bool)
    expected = seam_ratio(pred.astype(np.float64), truth.astype(np.float64), valid, borders)
    assert overall["seam_ratio"] == pytest.approx(expected, rel=1e-9)
    assert overall["seam_ratio"] > 1.2


def test_measures_that_divide_by_a_constant_images_variance_or_gradient_are_undefined():
    """A constant truth leaves R², CC and Edge undefined (NaN, not the huge numbers rounding made of 0/0), UIQI
    exactly 0; a constant prediction leaves CC undefined and R² defined; both constant leave UIQI undefined too."""
    _, truth = pair(shape=(2, 24, 24))
    flat = np.full_like(truth, 0.2)
    _, (band, _) = measure(truth, flat)
    assert all(math.isnan(band[k]) for k in ("r2", "cc", "edge")) and band["uiqi"] == 0.0
    assert math.isfinite(band["rmse"]) and math.isfinite(band["lbp"])
    _, (band, _) = measure(flat, truth)
    assert math.isnan(band["cc"]) and band["r2"] < 0 and band["edge"] == -1.0
    _, (band, _) = measure(flat + 0.1, flat)
    assert math.isnan(band["uiqi"]) and math.isnan(band["cc"])
