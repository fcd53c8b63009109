"""ESTARFM: two reference pairs recover a linear change between them; tiled equals whole; all five inputs matter."""
import numpy as np
import pytest
import rasterio
import torch

from devkit.synthetic import class_scene, coarse_on_fine, fine_transform, write
from stf_engine import FusionRequest, StfError, fuse
from stf_engine.methods.catalog import get_method, resolved_options
from stf_engine.methods.contract import MethodContext, TileBatch

RATIO = 4


def two_pairs(size=64, seed=2):
    """Class patches whose spectra change linearly in time from t1 to t3; the target is halfway."""
    f1, labels = class_scene(size, size, bands=3, classes=5, seed=seed)
    rng = np.random.default_rng(seed + 10)
    later = rng.uniform(0.05, 0.45, size=(5, 3)).astype(np.float32)
    f3 = later[labels].transpose(2, 0, 1)
    f2 = 0.5 * (f1 + f3)
    return f1, f2, f3


def written_pairs(folder, f1, f2, f3) -> dict:
    """The two pairs and the coarse target as files, by role."""
    return {
        "fine_reference": write(folder / "f1.tif", f1, fine_transform()),
        "fine_reference_2": write(folder / "f3.tif", f3, fine_transform()),
        "coarse_reference": write(folder / "c1.tif", coarse_on_fine(f1, RATIO), fine_transform()),
        "coarse_target": write(folder / "c2.tif", coarse_on_fine(f2, RATIO), fine_transform()),
        "coarse_reference_2": write(folder / "c3.tif", coarse_on_fine(f3, RATIO), fine_transform()),
    }


def run_estarfm(f1, f3, c1, c2, c3, tick=lambda fraction=None: None, **options):
    spec = get_method("estarfm")
    tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a))[None]  # noqa: E731
    context = MethodContext(ratio=RATIO, bands=3, given=frozenset(spec.required), device=torch.device("cpu"),
                            fine_std=tuple(float(s) for s in f1.reshape(3, -1).std(axis=1)),
                            options=resolved_options(spec, options), tick=tick)
    batch = TileBatch(coarse_target=tensor(c2), fine_reference=tensor(f1), coarse_reference=tensor(c1),
                      fine_reference_2=tensor(f3), coarse_reference_2=tensor(c3),
                      valid=torch.ones(1, 1, *f1.shape[1:], dtype=torch.bool), origins=((0, 0),))
    return spec.build(context)(batch)[0].numpy()


def test_estarfm_recovers_a_linear_change_between_its_two_pairs():
    f1, f2, f3 = two_pairs()
    c1, c2, c3 = (coarse_on_fine(a, RATIO) for a in (f1, f2, f3))
    predicted = run_estarfm(f1, f3, c1, c2, c3, window=15)
    core = (slice(None), slice(8, -8), slice(8, -8))
    rmse = lambda a: float(np.sqrt(np.mean((a[core] - f2[core]) ** 2)))  # noqa: E731
    delta = min(rmse(f1 + c2 - c1), rmse(f3 + c2 - c3))
    assert rmse(predicted) < 0.01 and rmse(predicted) < 0.35 * delta, (rmse(predicted), delta)


@pytest.mark.parametrize("which", range(5))
def test_estarfm_uses_all_five_inputs(which):
    f1, f2, f3 = two_pairs(size=40, seed=4)
    arrays = [f1, f3, coarse_on_fine(f1, RATIO), coarse_on_fine(f2, RATIO), coarse_on_fine(f3, RATIO)]
    changed = list(arrays)
    changed[which] = arrays[which] + np.random.default_rng(9).normal(0, 0.03, arrays[which].shape).astype(np.float32)
    assert not np.allclose(run_estarfm(*arrays, window=9), run_estarfm(*changed, window=9))


def test_estarfm_tiled_equals_whole_and_needs_its_second_pair(tmp_path):
    f1, f2, f3 = two_pairs(size=72)
    paths = written_pairs(tmp_path, f1, f2, f3)
    options = {"window": 11}
    whole = fuse(FusionRequest(output=str(tmp_path / "w.tif"), method="estarfm", tile=0, options=options, **paths))
    tiled = fuse(FusionRequest(output=str(tmp_path / "t.tif"), method="estarfm", tile=24, options=options, **paths))
    with rasterio.open(whole.output) as a, rasterio.open(tiled.output) as b:
        np.testing.assert_allclose(a.read(), b.read(), rtol=1e-5, atol=1e-6)
    one_pair = {k: v for k, v in paths.items() if not k.endswith("_2")}
    with pytest.raises(StfError, match=r"needs a second fine reference \(--fine2\)"):
        fuse(FusionRequest(output=str(tmp_path / "x.tif"), method="estarfm", **one_pair))
    told = fuse(FusionRequest(output=str(tmp_path / "d.tif"), method="cubic", **paths))
    assert any("does not use the second fine reference" in warning for warning in told.warnings)


def test_delta_with_two_pairs_weights_the_pair_whose_coarse_image_is_closer_to_the_target(tmp_path):
    f1, f2, f3 = two_pairs(size=48)
    f2 = 0.8 * f3 + 0.2 * f1  # the target's date looks much more like the second pair's
    paths = written_pairs(tmp_path, f1, f2, f3)
    both = fuse(FusionRequest(output=str(tmp_path / "both.tif"), method="delta", tile=16, **paths))
    whole = fuse(FusionRequest(output=str(tmp_path / "whole.tif"), method="delta", tile=0, **paths))
    assert not any("second" in warning for warning in both.warnings)
    c1, c2, c3 = (coarse_on_fine(a, RATIO) for a in (f1, f2, f3))
    first, second = f1 + c2 - c1, f3 + c2 - c3
    with rasterio.open(both.output) as a, rasterio.open(whole.output) as b:
        predicted = a.read()
        np.testing.assert_allclose(predicted, b.read(), atol=1e-6)  # scene-wide weights: tiling changes nothing
    weight = float(np.mean((predicted - first) / np.where(np.abs(second - first) > 1e-3, second - first, np.nan),
                           where=np.abs(second - first) > 1e-3))
    change_1, change_2 = np.abs(c2 - c1).mean(), np.abs(c2 - c3).mean()
    assert weight == pytest.approx(change_1 / (change_1 + change_2), abs=0.02) and weight > 0.7


def test_starfm_takes_both_pairs_into_one_weighted_mean(tmp_path):
    f1, f2, f3 = two_pairs(size=72, seed=5)
    paths = written_pairs(tmp_path, f1, f2, f3)
    options = {"window": 11}
    read = lambda result: rasterio.open(result.output).read()  # noqa: E731
    both = fuse(FusionRequest(output=str(tmp_path / "b.tif"), method="starfm", tile=0, options=options, **paths))
    tiled = fuse(FusionRequest(output=str(tmp_path / "t.tif"), method="starfm", tile=24, options=options, **paths))
    first = {k: v for k, v in paths.items() if not k.endswith("_2")}
    one = fuse(FusionRequest(output=str(tmp_path / "o.tif"), method="starfm", tile=0, options=options, **first))
    np.testing.assert_allclose(read(both), read(tiled), rtol=1e-5, atol=1e-6)
    assert not any("second" in warning for warning in both.warnings)
    core = (slice(None), slice(8, -8), slice(8, -8))
    rmse = lambda a: float(np.sqrt(np.mean((a[core] - f2[core]) ** 2)))  # noqa: E731
    assert not np.allclose(read(both), read(one)) and rmse(read(both)) < 0.1
    with pytest.raises(StfError, match="needs both its fine image and its coarse image"):
        fuse(FusionRequest(output=str(tmp_path / "x.tif"), method="starfm", fine_reference_2=paths["fine_reference_2"],
                           **first))


def test_starfm_with_two_pairs_reports_progress_once_through_the_tile(tmp_path):
    f1, f2, f3 = two_pairs(size=48, seed=6)
    paths = written_pairs(tmp_path, f1, f2, f3)
    fractions = []
    fuse(FusionRequest(output=str(tmp_path / "p.tif"), method="starfm", tile=0, options={"window": 7}, **paths),
         progress=lambda f, m: fractions.append(f) if m == "tile 1/1" else None)
    assert fractions == sorted(fractions) and 0.4 < max(f for f in fractions if f < 1) < 1


def test_each_offset_of_the_window_reports_and_honours_a_cancel():
    """A row of offsets took 5–9 s on a batch of four 512² tiles: a cancel waited that long, the bar stood still."""
    from stf_engine import FusionCancelled

    f1, f2, f3 = two_pairs(size=24)
    ticks = []

    def tick(fraction=None):
        ticks.append(fraction)
        if len(ticks) == 7:
            raise FusionCancelled("cancelled")

    with pytest.raises(FusionCancelled):
        run_estarfm(f1, f3, *(coarse_on_fine(f, RATIO) for f in (f1, f2, f3)), tick=tick, window=5)
    assert ticks == [offset / 25 for offset in range(7)]
