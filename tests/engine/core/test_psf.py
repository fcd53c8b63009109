"""The simulated coarse image and the normalised filter: over valid pixels only, nodata is never blurred in."""
import numpy as np
import torch
import torch.nn.functional as F

from stf_engine.core.psf import gaussian_blur, normalised, simulate_coarse


def image_with_a_gap(fill):
    """(1, 2, 40, 36) random image whose rows 15–24 hold `fill`, and its valid mask (1, 1, 40, 36)."""
    image = torch.from_numpy(np.random.default_rng(0).uniform(0.05, 0.4, (1, 2, 40, 36)).astype(np.float32))
    valid = torch.ones(1, 1, 40, 36, dtype=torch.bool)
    valid[..., 15:25, :] = False
    return torch.where(valid, image, torch.tensor(fill)), valid


def test_the_fill_under_nodata_never_reaches_the_simulated_coarse_image():
    (zeros, valid), (large, _) = image_with_a_gap(0.0), image_with_a_gap(10.0)
    inside = valid.expand_as(zeros)
    a, b = (simulate_coarse(image, 8, valid) for image in (zeros, large))
    torch.testing.assert_close(a[inside], b[inside], rtol=1e-6, atol=1e-7)
    assert (simulate_coarse(zeros, 8) - simulate_coarse(large, 8)).abs()[inside].max() > 0.1  # unweighted: it does


def test_a_constant_image_stays_constant_beside_nodata():
    constant, valid = torch.full((1, 3, 30, 30), 0.25), torch.ones(1, 1, 30, 30, dtype=torch.bool)
    valid[..., :, 10:14] = False
    blurred = simulate_coarse(torch.where(valid, constant, torch.tensor(0.0)), 8, valid)
    torch.testing.assert_close(blurred[valid.expand_as(blurred)], constant[valid.expand_as(constant)])


def test_normalised_is_the_plain_filter_where_everything_is_valid():
    image, _ = image_with_a_gap(0.3)
    everywhere = torch.ones(1, 1, 40, 36, dtype=torch.bool)
    blur = lambda t: gaussian_blur(t, 2.5, 8)  # noqa: E731
    torch.testing.assert_close(normalised(blur, image, everywhere), blur(image), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(simulate_coarse(image, 6, everywhere), simulate_coarse(image, 6), rtol=1e-6, atol=1e-7)


def test_normalised_is_zero_out_of_reach_of_any_valid_pixel():
    image, valid = torch.full((2, 1, 9, 9), 0.5), torch.zeros(2, 1, 9, 9, dtype=torch.bool)
    valid[1, 0, 4, 4] = True
    box = lambda t: F.avg_pool2d(t, 3, stride=1, padding=1, count_include_pad=False)  # noqa: E731
    out = normalised(box, image, valid)
    assert (out[0] == 0).all()
    reached = torch.zeros(9, 9, dtype=torch.bool)
    reached[3:6, 3:6] = True
    assert (out[1, 0][reached] == 0.5).all() and (out[1, 0][~reached] == 0).all()
