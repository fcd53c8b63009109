"""Nodata in the fine reference acts like the raster's edge: the valid pixels beside a nodata band are predicted
as well as the same pixels of a run without it (Fit-FC, delta with a simulated coarse reference, auto), and tiled
still equals whole."""
import numpy as np
import pytest
import rasterio
import torch

from devkit.synthetic import class_scene, coarse_on_fine, fine_transform, write
from stf_engine import FusionRequest, fuse

RATIO = 4
SIZE = 128
NODATA = -9999.0
GAP = slice(48, 64)
"""Rows of nodata in the fine reference: four whole coarse pixels (blocks) high, so those have no data at all."""
BESIDE = np.r_[40:48, 64:72]
"""The valid rows within two coarse pixels of the gap."""
CASES = [("fitfc", True), ("fitfc", False), ("delta", False), ("auto", True)]
"""(method, whether the coarse reference is given: without it, it is simulated from the fine reference)."""


def scene(folder):
    """Paths of a scene whose change is a slowly varying gain (Fit-FC wins there), with the fine reference whole
    and with a band of nodata rows; and the truth."""
    f1, _ = class_scene(SIZE, SIZE, bands=3, classes=6, seed=11, noise=0.004)
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    f2 = (1.6 + 0.4 * x / SIZE) * f1 - 0.05 + 0.02 * y / SIZE
    gapped = f1.copy()
    gapped[:, GAP] = NODATA
    paths = {
        "whole": write(folder / "f1.tif", f1, fine_transform()),
        "gapped": write(folder / "f1_gap.tif", gapped, fine_transform(), nodata=NODATA),
        "coarse_reference": write(folder / "c1.tif", coarse_on_fine(f1, RATIO), fine_transform()),
        "coarse_target": write(folder / "c2.tif", coarse_on_fine(f2, RATIO), fine_transform()),
    }
    return paths, f2


def fused(folder, paths, method, reference, fine, tile=0):
    """The prediction (C, H, W), NaN where it is nodata."""
    name = f"{method}_{reference}_{fine}_{tile}.tif"
    result = fuse(FusionRequest(output=str(folder / name), method=method, coarse_resolution=30 * RATIO, tile=tile,
                                coarse_target=paths["coarse_target"], fine_reference=paths[fine],
                                coarse_reference=paths["coarse_reference"] if reference else None))
    with rasterio.open(result.output) as out:
        return out.read(masked=True).astype(np.float64).filled(np.nan)


@pytest.mark.parametrize("method,reference", CASES)
def test_pixels_beside_nodata_are_predicted_as_well_as_without_it(tmp_path, method, reference):
    paths, truth = scene(tmp_path)
    whole, gapped = (fused(tmp_path, paths, method, reference, fine) for fine in ("whole", "gapped"))
    assert np.isnan(gapped[:, GAP]).all() and not np.isnan(gapped[:, BESIDE]).any()
    rmse = lambda a: float(np.sqrt(np.mean((a - truth)[:, BESIDE] ** 2)))  # noqa: E731
    assert rmse(gapped) <= 1.05 * rmse(whole), (rmse(gapped), rmse(whole))
    assert np.abs(gapped - whole)[:, BESIDE].max() < 0.1  # before, up to 3.1 (Fit-FC) and 0.17 (delta)


@pytest.mark.parametrize("method,reference", CASES)
def test_tiled_equals_whole_beside_nodata(tmp_path, method, reference):
    paths, _ = scene(tmp_path)
    whole = fused(tmp_path, paths, method, reference, "gapped")
    tiled = fused(tmp_path, paths, method, reference, "gapped", tile=24)
    np.testing.assert_allclose(tiled, whole, rtol=1e-5, atol=1e-6)


def test_a_block_without_data_never_enters_the_interpolation():
    from stf_engine.methods.blocks import interpolate

    blocks = torch.full((2, 5, 6), 0.2)
    present = torch.ones(5, 6, dtype=torch.bool)
    present[2] = False
    blocks[:, 2] = 7.0  # what an empty block's value may be (a regression's -b, a fill)
    grown = interpolate(blocks, present, RATIO, (1, 3), (18, 21))  # a tile starting inside a block
    rows = (torch.arange(18) + 1) // RATIO != 2
    torch.testing.assert_close(grown[:, rows], torch.full_like(grown[:, rows], 0.2))


TWO_PAIRS = ("coarse_reference", "fine_reference_2", "coarse_reference_2")
FILL_CASES = [("fitfc", ("coarse_reference",)), ("fitfc", ()), ("delta", ()), ("starfm", ()), ("fsdaf", ()),
              ("estarfm", TWO_PAIRS), ("starfm", ("coarse_reference", "residual"))]
"""(method, the optional inputs given; "residual" turns residual compensation on)."""


def predicted_at_valid(method, given, seed=None):
    """The method's prediction over one whole-image tile, at the valid pixels; its inputs' invalid pixels hold 0 (as
    the reader fills them) or, with a `seed`, random values in the data's range, different in every input."""
    from stf_engine.methods.catalog import get_method, resolved_options
    from stf_engine.methods.contract import MethodContext, TileBatch

    f1, _ = class_scene(48, 52, bands=3, classes=5, seed=2, noise=0.01)
    f2 = (1.3 + 0.2 * np.linspace(0, 1, 52, dtype=np.float32)) * f1 + 0.02
    images = {"fine_reference": f1, "coarse_reference": coarse_on_fine(f1, RATIO),
              "coarse_target": coarse_on_fine(f2, RATIO), "fine_reference_2": f2 * 0.9 + 0.03,
              "coarse_reference_2": coarse_on_fine(f2 * 0.9 + 0.03, RATIO)}
    valid = np.ones((48, 52), bool)
    valid[16:28] = False  # a band of whole coarse pixels and part of one
    valid[np.random.default_rng(4).random((48, 52)) < 0.05] = False  # scattered holes
    roles = {"coarse_target", "fine_reference", *(role for role in given if role != "residual")}
    spec = get_method(method)
    context = MethodContext(ratio=RATIO, bands=3, given=frozenset(roles), device=torch.device("cpu"),
                            fine_std=tuple(float(s) for s in f1[:, valid].std(axis=1)),
                            options=resolved_options(spec, {"residual": "true"} if "residual" in given else {}))
    rng = np.random.default_rng(seed)
    fill = lambda image: rng.uniform(0.0, 0.5, image.shape) if seed is not None else 0.0  # noqa: E731
    batch = TileBatch(valid=torch.from_numpy(valid)[None, None], origins=((0, 0),),
                      **{role: torch.from_numpy(np.where(valid, images[role], fill(images[role])).astype(np.float32))
                         [None] for role in sorted(roles)})
    context = spec.surveyed(context, lambda: [batch])
    return spec.build(context)(batch)[0].numpy()[:, valid]


@pytest.mark.parametrize("method,given", FILL_CASES)
def test_what_lies_under_nodata_never_reaches_a_valid_pixel(method, given):
    np.testing.assert_allclose(predicted_at_valid(method, given, seed=1), predicted_at_valid(method, given),
                               rtol=1e-5, atol=1e-6)


def test_autos_reduced_world_keeps_nodata_out_of_its_coarse_images():
    from stf_engine.methods.auto import reduced_world

    arrays = {role: np.full((3, 80, 80), 0.3, np.float32) for role in ("fine_reference", "coarse_reference",
                                                                       "coarse_target")}
    valid = np.ones((80, 80), bool)
    valid[30:48] = False
    world, _, small_valid, _ = reduced_world({role: np.where(valid, a, 0.0) for role, a in arrays.items()}, valid,
                                             RATIO)
    for role in ("coarse_reference", "coarse_target"):
        np.testing.assert_allclose(world[role][:, small_valid], 0.3, rtol=1e-6)
