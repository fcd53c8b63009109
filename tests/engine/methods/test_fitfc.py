"""Fit-FC: recovers a known local linear change, tiled equals whole, and every declared input matters."""
import numpy as np
import pytest
import rasterio
import torch

from devkit.synthetic import class_scene, coarse_on_fine, fine_transform, scene_set, write
from stf_engine import FusionRequest, fuse
from stf_engine.methods.catalog import get_method, resolved_options
from stf_engine.methods.contract import MethodContext, TileBatch

RATIO = 4


def run_method(name, f1, c1, c2, **options):
    """The method's tile function on one whole-image tile (origin (0, 0)), as numpy."""
    spec = get_method(name)
    context = MethodContext(ratio=RATIO, bands=f1.shape[0], given=frozenset({"coarse_target", "fine_reference",
                            "coarse_reference"}), device=torch.device("cpu"),
                            fine_std=tuple(float(s) for s in f1.reshape(f1.shape[0], -1).std(axis=1)),
                            options=resolved_options(spec, options))
    tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a))[None]  # noqa: E731
    batch = TileBatch(coarse_target=tensor(c2), fine_reference=tensor(f1), coarse_reference=tensor(c1),
                      valid=torch.ones(1, 1, *f1.shape[1:], dtype=torch.bool), origins=((0, 0),))
    return spec.build(context)(batch)[0].numpy()


def test_fitfc_recovers_a_local_linear_change():
    f1, _ = class_scene(64, 72, bands=3, classes=5, seed=3)
    y, x = np.mgrid[0:64, 0:72].astype(np.float32)
    gain = 1.0 + 0.3 * (x / 72.0)  # slowly varying a(x) and b(x): linear within any small window
    offset = 0.02 + 0.03 * (y / 64.0)
    f2 = gain * f1 + offset
    predicted = run_method("fitfc", f1, coarse_on_fine(f1, RATIO), coarse_on_fine(f2, RATIO))
    core = (slice(None), slice(8, -8), slice(8, -8))
    delta = f1 + coarse_on_fine(f2, RATIO) - coarse_on_fine(f1, RATIO)
    error = np.sqrt(np.mean((predicted[core] - f2[core]) ** 2))
    assert error < 0.004, error
    assert error < 0.2 * np.sqrt(np.mean((delta[core] - f2[core]) ** 2))


def test_fitfc_tiled_equals_whole(tmp_path):
    paths = scene_set(tmp_path, height=70, width=90, bands=3, ratio=RATIO, dtype="float32")
    common = dict(coarse_target=paths["coarse"], fine_reference=paths["fine"], coarse_reference=paths["coarse_ref"],
                  method="fitfc")
    whole = fuse(FusionRequest(output=str(tmp_path / "whole.tif"), tile=0, **common))
    tiled = fuse(FusionRequest(output=str(tmp_path / "tiled.tif"), tile=24, **common))
    assert tiled.tiles > 1 and tiled.halo > 0
    with rasterio.open(whole.output) as a, rasterio.open(tiled.output) as b:
        np.testing.assert_allclose(a.read(), b.read(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("role", ["coarse_target", "fine_reference", "coarse_reference"])
def test_fitfc_uses_every_input(role):
    f1, _ = class_scene(40, 40, bands=2, classes=4, seed=5, noise=0.01)
    inputs = {"f1": f1, "c1": coarse_on_fine(f1, RATIO), "c2": coarse_on_fine(f1 * 1.2 + 0.01, RATIO)}
    key = {"coarse_target": "c2", "fine_reference": "f1", "coarse_reference": "c1"}[role]
    changed = dict(inputs)
    changed[key] = inputs[key] + np.random.default_rng(1).normal(0, 0.02, inputs[key].shape).astype(np.float32)
    assert not np.allclose(run_method("fitfc", **inputs), run_method("fitfc", **changed))


@pytest.mark.parametrize("method", ["delta", "starfm", "cubic"])
def test_residual_compensation_makes_every_method_coarse_consistent(method):
    from stf_engine.methods.blocks import block_means

    f1, _ = class_scene(48, 56, bands=3, classes=4, seed=7, noise=0.005)
    f2 = f1 * 1.15 + 0.02
    f2[:, 20:30, 10:40] += 0.1  # a change the reference does not show
    c1, c2 = coarse_on_fine(f1, RATIO), coarse_on_fine(f2, RATIO)
    plain = run_method(method, f1, c1, c2)
    compensated = run_method(method, f1, c1, c2, residual="true")
    valid = torch.ones(48, 56, dtype=torch.bool)
    means = lambda a: block_means(torch.from_numpy(a), valid, RATIO, (0, 0))[0].numpy()  # noqa: E731
    target = means(c2)
    assert np.abs(means(compensated) - target).max() < 1e-5
    assert np.abs(means(plain) - target).max() > 1e-3 or method in ("delta", "cubic")  # already consistent
    assert np.sqrt(np.mean((compensated - f2) ** 2)) <= np.sqrt(np.mean((plain - f2) ** 2)) + 1e-6


def test_residual_compensation_tiled_equals_whole(tmp_path):
    paths = scene_set(tmp_path, height=70, width=90, bands=3, ratio=RATIO, dtype="float32")
    common = dict(coarse_target=paths["coarse"], fine_reference=paths["fine"], method="starfm",
                  options={"residual": True, "window": 7})
    whole = fuse(FusionRequest(output=str(tmp_path / "whole.tif"), tile=0, **common))
    tiled = fuse(FusionRequest(output=str(tmp_path / "tiled.tif"), tile=24, **common))
    with rasterio.open(whole.output) as a, rasterio.open(tiled.output) as b:
        np.testing.assert_allclose(a.read(), b.read(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name, share", [("fitfc", "REGRESSION_SHARE"), ("fsdaf", "DISTRIBUTION_SHARE")])
def test_the_filter_over_similar_pixels_reports_its_rows_and_stops_on_a_cancel(name, share):
    """The filter is most of a batch's time (seconds on a large one): it ticked nothing, so a cancel from QGIS waited
    10–30 s for it, and the bar stood still."""
    from importlib import import_module

    from stf_engine import FusionCancelled

    start = getattr(import_module(f"stf_engine.methods.{name}"), share)
    f1, _ = class_scene(48, 48, bands=3, classes=4, seed=5)
    c1, c2 = coarse_on_fine(f1, RATIO), coarse_on_fine(f1 * 1.1, RATIO)
    filtering = []

    def tick(fraction=None):
        if fraction is not None and fraction > start:
            filtering.append(fraction)
            if len(filtering) == 3:
                raise FusionCancelled("cancelled")

    spec = get_method(name)
    context = MethodContext(ratio=RATIO, bands=3, given=frozenset({"coarse_target", "fine_reference",
                            "coarse_reference"}), device=torch.device("cpu"),
                            fine_std=tuple(float(s) for s in f1.reshape(3, -1).std(axis=1)),
                            options=resolved_options(spec, {}), tick=tick)
    tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a))[None]  # noqa: E731
    batch = TileBatch(coarse_target=tensor(c2), fine_reference=tensor(f1), coarse_reference=tensor(c1),
                      valid=torch.ones(1, 1, 48, 48, dtype=torch.bool), origins=((0, 0),))
    context = spec.surveyed(context, lambda: [batch])
    with pytest.raises(FusionCancelled):
        spec.build(context)(batch)
    assert len(filtering) == 3 and filtering == sorted(filtering) and filtering[-1] < 1
