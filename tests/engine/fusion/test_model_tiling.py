"""Tiling deep models: exact for the convolutional ones with their halo, Hann blending for MARSTFN."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from rasterio.windows import Window

from stf_engine import FusionRequest, fuse
from stf_engine.core.seams import seam_ratio
from stf_engine.core.blend import TileBlender, hann_ramp
from stf_engine.core.options import defaults
from stf_engine.core.tiling import plan

from devkit.checkpoints import save_random
from devkit.synthetic import scene_set
from helpers.rasters import crop
from helpers.paths import SAMPLE, WEIGHTS



pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("name", ["ganstfm", "edcstfn"])
def test_tiled_equals_whole_with_the_declared_halo(name, tmp_path):
    paths = scene_set(tmp_path, height=75, width=69, ratio=4, dtype="float32")
    weights = save_random(tmp_path / "w.pt", name, given=("coarse_reference",))
    common = dict(coarse_target=paths["coarse"], fine_reference=paths["fine"], coarse_reference=paths["coarse_ref"],
                  method=name, weights=weights)
    whole = fuse(FusionRequest(output=str(tmp_path / "whole.tif"), tile=0, **common))
    tiled = fuse(FusionRequest(output=str(tmp_path / "tiled.tif"), tile=28, batch=3, **common))
    assert tiled.tiles == 9 and tiled.halo == whole.halo > 0
    with rasterio.open(whole.output) as a, rasterio.open(tiled.output) as b:
        # a GPU's cuDNN picks its convolution algorithm by input size: whole and tiled then round differently
        np.testing.assert_allclose(b.read(), a.read(), rtol=0, atol=1e-5 if whole.device.startswith("cuda") else 2e-6)


def test_hann_ramps_of_neighbours_sum_to_one():
    halo, length = 5, 40
    ramp = hann_ramp(length, halo)
    assert ramp.min() > 0 and ramp[2 * halo : -2 * halo].min() == 1.0
    np.testing.assert_allclose(ramp[-2 * halo :] + ramp[: 2 * halo], 1.0, atol=1e-6)


def test_blender_reproduces_an_image_every_tile_predicts_exactly():
    height, width, halo = 53, 47, 4
    image = np.random.default_rng(0).random((2, height, width)).astype(np.float32)
    padded = np.pad(image, ((0, 0), (halo, halo), (halo, halo)), mode="reflect")
    written = np.full_like(image, np.nan)

    def store(row, values, valid):
        assert valid.all() and np.isnan(written[:, row : row + values.shape[1]]).all()
        written[:, row : row + values.shape[1]] = values

    blender = TileBlender(store, height, width, 2, halo)
    for tile in plan(height, width, 16):
        row, col, h, w = tile.read_window(halo)
        window = padded[:, row + halo : row + halo + h, col + halo : col + halo + w]
        blender.add([tile], torch.from_numpy(window[None]), torch.ones(1, 1, h, w, dtype=torch.bool))
    blender.finish()
    np.testing.assert_allclose(written, image, atol=1e-6)


def test_marstfn_blended_tiles_keep_the_seam_ratio_of_the_whole_image(tmp_path):
    """Shenzhen crop, demo checkpoint: tiles blended with the declared halo show no extra error at their borders."""
    size = 192
    coarse = crop(SAMPLE / "MOD09_2002311_SZ_B214_250m.tif", tmp_path, size)
    fine = crop(SAMPLE / "L72000306_SZ_B432_30m.tif", tmp_path, size)
    truth = crop(SAMPLE / "L72002311_SZ_B432_30m.tif", tmp_path, size)
    common = dict(coarse_target=coarse, fine_reference=fine, method="marstfn", coarse_resolution=250,
                  weights=str(WEIGHTS / "marstfn.pt"))
    whole = fuse(FusionRequest(output=str(tmp_path / "whole.tif"), tile=0, **common))
    tiled = fuse(FusionRequest(output=str(tmp_path / "tiled.tif"), tile=96, **common))
    assert tiled.tiles == 4 and tiled.halo > 0
    with rasterio.open(truth) as t, rasterio.open(whole.output) as w, rasterio.open(tiled.output) as b:
        reference = t.read().astype(np.float64)
        valid = t.read_masks(1) > 0
        whole_image, tiled_image = w.read().astype(np.float64), b.read().astype(np.float64)
        valid &= (w.read_masks(1) > 0) & (b.read_masks(1) > 0)
    ratios = [seam_ratio(image, reference, valid, tiled.tile_borders) for image in (whole_image, tiled_image)]
    assert abs(ratios[1] - ratios[0]) <= 0.02, ratios


@pytest.mark.parametrize("name", ["ganstfm", "edcstfn"])
def test_declared_halo_is_the_measured_impulse_response_radius(name):
    from stf_engine.models import MODELS

    torch.manual_seed(0)
    model = MODELS[name]
    used = model.roles_for({"coarse_reference"})
    network = model.network(2, used, 4, defaults(model.options)).eval()
    radius = model.radius(4, used)
    side, centre = 2 * radius + 21, radius + 10
    base = {role: torch.zeros(1, 2, side, side) for role in used}
    reach = 0
    with torch.no_grad():
        for role in used:
            impulse = {r: t.clone() for r, t in base.items()}
            impulse[role][..., centre, centre] = 1.0
            changed = (network(impulse) - network(base)).abs().amax(dim=(0, 1)) > 0
            rows, cols = torch.nonzero(changed, as_tuple=True)
            reach = max(reach, int(torch.maximum((rows - centre).abs(), (cols - centre).abs()).max()))
    assert reach == radius
