"""`--method auto`: Wald's reduced-resolution validation on the scene picks the method that must win there."""
import json

import numpy as np
import pytest
import rasterio

from devkit.synthetic import class_scene, coarse_on_fine, fine_transform, write
from stf_engine import FusionRequest, fuse, list_methods

from helpers.calls import count_calls

RATIO = 4


def scene_with_local_gain(folder, size=160):
    """A change that is a slowly varying gain: C2 = a·C1 + b holds at every scale, so Fit-FC must win."""
    f1, _ = class_scene(size, size, bands=3, classes=6, seed=11, noise=0.004)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    f2 = (1.6 + 0.4 * x / size) * f1 - 0.05 + 0.02 * y / size
    paths = {
        "fine_reference": write(folder / "f1.tif", f1, fine_transform()),
        "coarse_reference": write(folder / "c1.tif", coarse_on_fine(f1, RATIO), fine_transform()),
        "coarse_target": write(folder / "c2.tif", coarse_on_fine(f2, RATIO), fine_transform()),
    }
    return paths, f2


def test_auto_picks_the_method_built_to_win_and_records_its_validation(tmp_path):
    paths, truth = scene_with_local_gain(tmp_path)
    reports = []
    result = fuse(FusionRequest(output=str(tmp_path / "auto.tif"), method="auto", coarse_resolution=30 * RATIO,
                                **paths), progress=lambda fraction, message: reports.append((fraction, message)))
    assert result.method == "fitfc", result.validation
    fractions = [fraction for fraction, _ in reports]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    validating = {fraction for fraction, message in reports if message == "auto: validating"}
    assert len(validating) > 3 and 0 < max(validating) < 0.5  # the bar moves while auto validates
    scores = dict(result.validation)
    assert scores["fitfc"] < scores["delta"] and set(scores) >= {"delta", "starfm", "fitfc"}
    assert result.choice.startswith("auto takes fitfc: RMSE") and not any("auto" in w for w in result.warnings)
    with rasterio.open(result.output) as fused:
        recorded = json.loads(fused.tags()["STF_AUTO"])
        prediction = fused.read()
    assert recorded["chosen"] == "fitfc" and recorded["validation_rmse"]["delta"] == scores["delta"]
    delta = fuse(FusionRequest(output=str(tmp_path / "delta.tif"), method="delta", coarse_resolution=30 * RATIO,
                               **paths))
    with rasterio.open(delta.output) as baseline:
        rmse = lambda a: float(np.sqrt(np.mean((a - truth)[:, 16:-16, 16:-16] ** 2)))  # noqa: E731
        assert rmse(prediction) < rmse(baseline.read())


def test_auto_registers_once_and_runs_its_pick_with_that_shift(tmp_path, monkeypatch):
    """Coarse rasters georeferenced 3 fine pixels east: the validation's co-registration finds it and is the run's
    (for a pick that reads the coarse reference, the output is the pick's own registered run)."""
    from devkit.synthetic import ORIGIN
    from stf_engine.inputs import aligned

    paths, _ = scene_with_local_gain(tmp_path)
    for role in ("coarse_reference", "coarse_target"):
        with rasterio.open(paths[role]) as source:
            values = source.read()
        write(paths[role], values, fine_transform(origin=(ORIGIN[0] + 3 * 30.0, ORIGIN[1])))
    estimated = count_calls(monkeypatch, aligned, "estimate_offset")
    common = dict(coarse_resolution=30 * RATIO, register=True, **paths)
    chosen = fuse(FusionRequest(output=str(tmp_path / "auto.tif"), method="auto", **common))
    assert len(estimated) == 1
    alone = fuse(FusionRequest(output=str(tmp_path / "alone.tif"), method=chosen.method, **common))
    assert chosen.coarse_shift == alone.coarse_shift and abs(abs(chosen.coarse_shift[0]) - 3) < 0.3, chosen.coarse_shift
    with rasterio.open(chosen.output) as picked, rasterio.open(alone.output) as direct:
        np.testing.assert_array_equal(picked.read(), direct.read())


def test_auto_takes_delta_when_the_scene_is_too_small_to_validate(tmp_path):
    paths, _ = scene_with_local_gain(tmp_path, size=40)
    result = fuse(FusionRequest(output=str(tmp_path / "auto.tif"), method="auto", coarse_resolution=30 * RATIO,
                                **paths))
    assert result.method == "delta" and result.validation == ()
    assert any("too few to validate" in warning for warning in result.warnings)


@pytest.mark.parametrize("covered", [6, 40])
def test_auto_takes_delta_when_the_coarse_target_covers_too_little_of_a_large_scene(tmp_path, covered):
    """A coarse image over a corner of the fine reference (fine pixels a side): the scene is large enough, yet the
    reduced world held almost no data, and FSDAF's classes of no pixels crashed auto ('random_ expects from < to')."""
    paths, _ = scene_with_local_gain(tmp_path)
    with rasterio.open(paths["coarse_target"]) as source:
        values = source.read()
    values[:, covered:, :] = -1.0
    values[:, :, covered:] = -1.0
    write(paths["coarse_target"], values, fine_transform(), nodata=-1.0)
    result = fuse(FusionRequest(output=str(tmp_path / "auto.tif"), method="auto", coarse_resolution=30 * RATIO,
                                **paths))
    assert result.method == "delta" and result.validation == ()
    assert any("holds data in fewer than 16×16 coarse pixels, too few to validate" in warning
               for warning in result.warnings)


def test_auto_is_listed_first_and_checked_without_running_candidates(tmp_path):
    from stf_engine import check

    paths, _ = scene_with_local_gain(tmp_path, size=64)
    report = check(FusionRequest(output=str(tmp_path / "a.tif"), method="auto", **paths))
    assert list(list_methods())[0] == "auto" and report.method == "auto"
    assert not (tmp_path / "a.tif").exists()


@pytest.mark.parametrize("member", ["fitfc", "fsdaf"])
def test_an_ensemble_is_the_mean_of_its_members_and_tiles_seamlessly(tmp_path, member):
    """fsdaf brings its reference and scene surveys into the ensemble: they must reach it merged."""
    paths, _ = scene_with_local_gain(tmp_path, size=72)
    outputs, together = {}, f"{member}+delta"
    for method, tile in ((member, 0), ("delta", 0), (together, 0), (together, 24)):
        result = fuse(FusionRequest(output=str(tmp_path / f"{method}_{tile}.tif"), method=method, tile=tile,
                                    coarse_resolution=30 * RATIO, **paths))
        with rasterio.open(result.output) as fused:
            outputs[method, tile] = fused.read()
    mean = (outputs[member, 0] + outputs["delta", 0]) / 2
    np.testing.assert_allclose(outputs[together, 0], mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(outputs[together, 24], mean, rtol=1e-5, atol=1e-6)


def test_auto_prefers_a_mean_of_methods_the_validation_cannot_tell_from_the_best():
    from stf_engine.methods.auto import Score, pick

    tied = (Score("starfm", 1.000), Score("starfm+fsdaf+fitfc", 1.004), Score("starfm+fsdaf", 1.008),
            Score("fsdaf", 1.02), Score("delta", 1.2))
    assert pick(tied, 1.2).method == "starfm+fsdaf+fitfc"
    clear = (Score("fsdaf", 1.0), Score("fsdaf+delta", 1.07), Score("delta", 1.3))
    assert pick(clear, 1.3).method == "fsdaf"
    baseline = (Score("delta", 1.0), Score("delta+starfm", 1.005), Score("starfm", 1.1))
    assert pick(baseline, 1.0).method == "delta"  # never a mean that validates worse than delta
