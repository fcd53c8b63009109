"""Every classic method, given every input it takes, runs on a CUDA GPU and gives the CPU's result (CUDA only)."""
import numpy as np
import pytest
import rasterio
import torch

from devkit.synthetic import class_scene, coarse_on_fine, fine_transform, write
from stf_engine import FusionRequest, fuse
from stf_engine.methods.catalog import list_methods

RATIO = 4
CLASSIC = sorted(name for name, spec in list_methods().items() if not spec.needs_weights)


@pytest.fixture(scope="module")
def two_pairs(tmp_path_factory):
    """Two reference pairs and a coarse target between them, by role: every input a classic method can take."""
    folder = tmp_path_factory.mktemp("pairs")
    f1, labels = class_scene(48, 48, bands=3, classes=4, seed=5)
    f3 = np.random.default_rng(6).uniform(0.05, 0.45, size=(4, 3)).astype(np.float32)[labels].transpose(2, 0, 1)
    f2 = 0.7 * f1 + 0.3 * f3
    images = {"fine_reference": f1, "fine_reference_2": f3, "coarse_reference": coarse_on_fine(f1, RATIO),
              "coarse_target": coarse_on_fine(f2, RATIO), "coarse_reference_2": coarse_on_fine(f3, RATIO)}
    return {role: write(folder / f"{role}.tif", image, fine_transform()) for role, image in images.items()}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("method", CLASSIC)
def test_a_classic_method_on_cuda_gives_the_cpu_result(tmp_path, two_pairs, method):
    spec = list_methods()[method]
    given = {role: path for role, path in two_pairs.items() if role in spec.required + spec.optional}
    runs = {device: fuse(FusionRequest(output=str(tmp_path / f"{device}.tif"), method=method, tile=16,
                                       device=device, **given))
            for device in ("cpu", "cuda")}
    assert runs["cuda"].device.startswith("cuda")
    with rasterio.open(runs["cpu"].output) as cpu, rasterio.open(runs["cuda"].output) as cuda:
        np.testing.assert_allclose(cuda.read(), cpu.read(), rtol=0, atol=1e-4)
