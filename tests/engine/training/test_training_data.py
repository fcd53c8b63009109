"""Training data: nodata-free seeded patches, Wald's reduced-resolution scene, series listings."""
from __future__ import annotations

import numpy as np
import pytest

from stf_engine import StfError, roles
from stf_engine.training.patches import PatchSampler
from stf_engine.training.scenes import Aligned, Scene, split_rows
from stf_engine.inputs.series_list import list_series
from stf_engine.training.wald import reduced_scene, wald_factor


def _scene(height=40, width=36, seed=0) -> Scene:
    rng = np.random.default_rng(seed)
    valid = np.ones((height, width), bool)
    valid[5:9, 3:30] = False
    valid[20, 20] = False
    data = lambda: rng.random((3, height, width)).astype(np.float32)  # noqa: E731
    return Scene({roles.COARSE_TARGET: data(), roles.FINE_REFERENCE: data()}, data(), valid, "s")


def test_patches_are_mostly_valid_carry_their_mask_and_repeat_with_the_seed():
    scene = _scene()
    draws = [PatchSampler([scene], 12, np.random.default_rng(7)).draw(30) for _ in range(2)]
    for role in scene.inputs:
        assert np.array_equal(draws[0][0][role], draws[1][0][role])
    assert draws[0][1].shape == (30, 3, 12, 12) and draws[0][2].shape == (30, 1, 12, 12)
    marked = scene.target.copy()
    marked[:, ~scene.valid] = -1.0  # nodata marked: the mask must say exactly where, in every orientation
    sampler = PatchSampler([Scene(scene.inputs, marked, scene.valid, "s")], 12, np.random.default_rng(1))
    _, target, valid = sampler.draw(200)
    assert np.array_equal(target[:, :1] == -1.0, ~valid)
    assert valid.mean(axis=(1, 2, 3)).min() >= 0.5 and not valid.all()


def test_augmentation_turns_inputs_and_target_together():
    scene = _scene()
    scene.inputs[roles.FINE_REFERENCE] = scene.target.copy()
    inputs, target, _ = PatchSampler([scene], 10, np.random.default_rng(3)).draw(40)
    assert np.array_equal(inputs[roles.FINE_REFERENCE], target)
    plain, _, _ = PatchSampler([scene], 10, np.random.default_rng(3)).draw(40, augment=False)
    assert not np.array_equal(plain[roles.FINE_REFERENCE], inputs[roles.FINE_REFERENCE])


def test_a_mostly_nodata_scene_is_a_clear_error():
    scene = _scene()
    scene.valid[:] = False
    scene.valid[::3] = True  # a third of the rows
    with pytest.raises(StfError, match="no 12×12 area with at least 50% of its pixels valid"):
        PatchSampler([scene], 12, np.random.default_rng(0))


def test_reduced_resolution_scene_predicts_the_coarse_target_from_degraded_inputs():
    ratio, height, width = 4, 64, 48
    rng = np.random.default_rng(0)
    arrays = {r: rng.random((2, height, width)).astype(np.float32) for r in (roles.COARSE_TARGET, roles.FINE_REFERENCE)}
    aligned = Aligned(arrays, np.ones((height, width), bool), None, ratio, (None, None), [])
    scene = reduced_scene(aligned, ratio, "bilinear", "wald")
    assert scene.shape == (16, 12) and scene.target.shape == (2, 16, 12)
    blocks = arrays[roles.COARSE_TARGET].reshape(2, 16, 4, 12, 4).mean(axis=(2, 4))
    np.testing.assert_allclose(scene.target, blocks, rtol=1e-5)
    fine = arrays[roles.FINE_REFERENCE].reshape(2, 16, 4, 12, 4).mean(axis=(2, 4))
    np.testing.assert_allclose(scene.inputs[roles.FINE_REFERENCE], fine, rtol=1e-5)
    twice = blocks.reshape(2, 4, 4, 3, 4).mean(axis=(2, 4))
    assert np.abs(scene.inputs[roles.COARSE_TARGET].mean(axis=(1, 2)) - twice.mean(axis=(1, 2))).max() < 0.02
    assert np.std(scene.inputs[roles.COARSE_TARGET]) < np.std(blocks)


def test_the_wald_factor_is_the_ratio_made_smaller_on_small_scenes_and_refuses_what_self_training_cannot_take():
    assert wald_factor(600, 400, 16) == 16 and wald_factor(64, 90, 16) == 4 and wald_factor(40, 40, 16) == 2
    with pytest.raises(StfError, match="ratio of at least 2"):
        wald_factor(64, 48, 1)
    with pytest.raises(StfError, match="the scene is only 15×40 fine pixels; self-training needs at least 32×32"):
        wald_factor(15, 40, 8)


def test_rows_split_holds_out_the_bottom():
    train, validation = split_rows([_scene(height=40)], 0.25)
    assert train[0].shape == (30, 36) and validation[0].shape == (10, 36)


def test_series_from_csv_and_from_named_files(tmp_path):
    (tmp_path / "series.csv").write_text("date,coarse,fine,pan\n2020-01-02,c1.tif,f1.tif,\n2020-03-04,c2.tif,f2.tif,\n")
    listed = list_series(str(tmp_path / "series.csv"))
    assert [e.date for e in listed] == ["2020-01-02", "2020-03-04"]
    assert listed[0].coarse == str(tmp_path / "c1.tif") and listed[0].pan is None
    folder = tmp_path / "named"
    folder.mkdir()
    for name in ("L8_20200102_coarse.tif", "S2_20200102_fine.tif", "x_20200304_coarse.tif", "x_20200304_fine.tif",
                 "x_20200304_pan.tif", "notes_20200505.txt"):
        (folder / name).write_text("")
    named = list_series(str(folder))
    assert [(e.date, e.pan is not None) for e in named] == [("20200102", False), ("20200304", True)]
    with pytest.raises(StfError, match="at least two dates"):
        (tmp_path / "one.csv").write_text("date,coarse,fine\n2020-01-02,c.tif,f.tif\n")
        list_series(str(tmp_path / "one.csv"))


@pytest.mark.parametrize("height, fraction", [(40, 0.25), (64, 0.1), (17, 0.3), (100, 0.05), (9, 0.5), (256, 0.15)])
def test_a_scene_without_nodata_splits_as_a_share_of_its_rows_as_before(height, fraction):
    """The bench's scenes hold no nodata: their split must not move."""
    scene = _scene(height=max(height, 21)).rows(0, height)
    scene.valid[:] = True
    before = min(max(1, height - 8), max(min(8, height // 2), int(round(height * fraction))))
    train, validation = split_rows([scene], fraction)
    assert train[0].shape[0] == height - before and validation[0].shape[0] == before


def test_the_held_out_rows_hold_the_share_of_valid_pixels_above_a_nodata_strip():
    """A nodata strip along the bottom (12% of the rows) is left out, and the rows above it are held out; a gap
    inside the held-out rows makes them reach further up, to hold their share of the valid pixels."""
    scene = _scene(height=100)
    scene.valid[:] = True
    scene.valid[88:] = False
    train, validation = split_rows([scene], 0.2)
    assert train[0].shape[0] == 70 and validation[0].shape[0] == 18 and validation[0].valid.all()
    scene.valid[80:84] = False
    train, validation = split_rows([scene], 0.2)
    assert train[0].shape[0] == 67 and validation[0].valid.sum() == 17 * 36


def test_a_held_out_part_without_data_is_named_in_the_refusal():
    scene = _scene()
    scene.valid[:] = False
    with pytest.raises(StfError, match=r"^the held-out part \(the bottom rows\) has no 12×12 area .* \(0% of all "
                                       r"are\): it is mostly nodata or masked$"):
        PatchSampler([scene], 12, np.random.default_rng(0), "the held-out part (the bottom rows)")
