"""The halo makes tiled output equal whole-raster output; naive tiling shows at tile borders."""
import numpy as np
import pytest
import rasterio

from stf_engine import FusionRequest, fuse
from devkit.synthetic import scene_set


def run(paths, tmp_path, name, method, **kwargs):
    request = FusionRequest(
        coarse_target=paths["coarse"],
        fine_reference=paths["fine"],
        coarse_reference=paths.get("coarse_ref"),
        output=str(tmp_path / f"{name}.tif"),
        method=method,
        **kwargs,
    )
    result = fuse(request)
    with rasterio.open(result.output) as src:
        return result, src.read().astype(np.float64)


@pytest.fixture(scope="module")
def float_scene(tmp_path_factory):
    return scene_set(tmp_path_factory.mktemp("scene"), height=90, width=101, dtype="float32")


@pytest.mark.parametrize(
    "method,given,options",
    [
        ("starfm", ("coarse_ref",), {"window": 9}),
        ("starfm", (), {"window": 7}),
        ("delta", (), {}),
    ],
)
def test_tiled_equals_whole_raster_for_local_methods(float_scene, tmp_path, method, given, options):
    paths = {k: v for k, v in float_scene.items() if k in ("coarse", "fine") + given}
    whole_result, whole = run(paths, tmp_path, "whole", method, tile=0, options=options)
    tiled_result, tiled = run(paths, tmp_path, "tiled", method, tile=24, batch=3, options=options)
    assert tiled_result.tiles == 20 and whole_result.tiles == 1
    assert tiled_result.halo == whole_result.halo > 0
    np.testing.assert_allclose(tiled, whole, rtol=0, atol=1e-5)


def test_naive_tiling_differs_at_tile_borders(float_scene, tmp_path):
    paths = {k: float_scene[k] for k in ("coarse", "fine")}
    whole_result, whole = run(paths, tmp_path, "whole", "starfm", tile=0, options={"window": 7})
    reach = whole_result.halo
    result, naive = run(paths, tmp_path, "naive", "starfm", tile=24, halo=0, options={"window": 7})
    assert result.halo == 0
    diff = np.abs(naive - whole).max(axis=0)
    rows, cols = result.tile_borders
    near = np.zeros_like(diff, dtype=bool)
    for r in rows:
        near[r - reach : r + reach] = True
    for c in cols:
        near[:, c - reach : c + reach] = True
    assert np.nanmax(diff[near]) > 1e-3, "naive tiling should change pixels next to tile borders"
    assert np.nanmax(diff[~near]) < 1e-5, "beyond the receptive radius of a border naive tiling sees everything"
