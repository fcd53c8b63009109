"""FSDAF: recovers a known class-wise change, its scene-wide survey keeps tiled equal to whole, inputs matter."""
import numpy as np
import pytest
import rasterio

from devkit.synthetic import class_scene, coarse_on_fine, fine_transform, write
from stf_engine import FusionRequest, fuse

RATIO = 4


def class_change_scene(folder, size=80, seed=6):
    f1, labels = class_scene(size, size, bands=3, classes=4, seed=seed)
    change = np.array([[0.05, -0.02, 0.01], [-0.04, 0.03, 0.0], [0.0, 0.06, -0.03], [0.02, 0.02, 0.08]],
                      np.float32)
    f2 = f1 + change[labels].transpose(2, 0, 1)
    paths = {
        "fine_reference": write(folder / "f1.tif", f1, fine_transform()),
        "coarse_reference": write(folder / "c1.tif", coarse_on_fine(f1, RATIO), fine_transform()),
        "coarse_target": write(folder / "c2.tif", coarse_on_fine(f2, RATIO), fine_transform()),
    }
    return paths, f1, f2


def fused(tmp_path, name, paths, **changes):
    request = dict(output=str(tmp_path / f"{name}.tif"), method="fsdaf", coarse_resolution=30 * RATIO,
                   options={"classes": 4}, **paths)
    request.update(changes)
    with rasterio.open(fuse(FusionRequest(**request)).output) as out:
        return out.read()


def test_fsdaf_recovers_a_class_wise_change(tmp_path):
    paths, f1, f2 = class_change_scene(tmp_path)
    predicted = fused(tmp_path, "p", paths)
    delta = f1 + coarse_on_fine(f2, RATIO) - coarse_on_fine(f1, RATIO)
    core = (slice(None), slice(6, -6), slice(6, -6))
    rmse = lambda a: float(np.sqrt(np.mean((a[core] - f2[core]) ** 2)))  # noqa: E731
    assert rmse(predicted) < 0.004 and rmse(predicted) < 0.25 * rmse(delta), (rmse(predicted), rmse(delta))


def test_fsdaf_tiled_equals_whole(tmp_path):
    paths, _, _ = class_change_scene(tmp_path, size=90, seed=8)
    whole = fused(tmp_path, "whole", paths, tile=0)
    tiled = fused(tmp_path, "tiled", paths, tile=24)
    np.testing.assert_allclose(whole, tiled, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("role", ["coarse_target", "fine_reference", "coarse_reference"])
def test_fsdaf_uses_every_input(tmp_path, role):
    paths, _, _ = class_change_scene(tmp_path, size=48)
    base = fused(tmp_path, "base", paths)
    with rasterio.open(paths[role]) as source:
        data, profile = source.read(), source.profile
    noisy = data + np.random.default_rng(3).normal(0, 0.02, data.shape).astype(data.dtype)
    changed = dict(paths)
    changed[role] = write(tmp_path / "noisy.tif", noisy, profile["transform"])
    assert not np.allclose(base, fused(tmp_path, "changed", changed))
