"""The held-out bar a trained model must clear: delta at the truth's sharpness, and an honest verdict."""
from __future__ import annotations

import numpy as np
import pytest

from stf_engine import FusionRequest, fuse, roles
from stf_engine.cli import main
from stf_engine.models import checkpoint
from stf_engine.models.held_out import verdict
from stf_engine.training.baseline import fit_smoothing, smoothed

from helpers.paths import TEST_DATA


def _patches(sharpness: float):
    """Patches whose delta is a random texture and whose target is that texture blurred by `sharpness`."""
    rng = np.random.default_rng(0)
    texture = rng.random((24, 2, 20, 20)).astype(np.float32)
    valid = np.ones((24, 1, 20, 20), bool)
    valid[:, :, :3] = False
    flat = np.full_like(texture, 0.3)
    inputs = {roles.FINE_REFERENCE: texture, roles.COARSE_TARGET: flat, roles.COARSE_REFERENCE: flat}
    return inputs, smoothed(texture, valid, sharpness), valid


@pytest.mark.parametrize("sharpness", [0.0, 1.0, 2.0])
def test_delta_is_smoothed_to_the_sharpness_of_the_truth(sharpness):
    assert fit_smoothing(_patches(sharpness), ratio=4) == sharpness


def test_the_verdict_warns_unless_the_model_beats_delta_on_a_scene_that_can_show_it():
    sentence, warning = verdict("ganstfm", {"rmse": 0.010, "rmse_delta": 0.020, "rmse_coarse_input": 0.030})
    assert sentence.endswith("the model beats delta by 50%") and warning is None
    sentence, warning = verdict("ganstfm", {"rmse": 0.025, "rmse_delta": 0.020, "rmse_coarse_input": 0.030})
    assert "does NOT beat delta" in sentence and "does not beat the delta baseline" in warning
    sentence, warning = verdict("ganstfm", {"rmse": 0.010, "rmse_delta": 0.020, "rmse_coarse_input": 0.015})
    assert "cannot show" in sentence and "beats delta by" not in sentence
    assert "coarse image alone (RMSE 0.015)" in warning


@pytest.mark.usefixtures("one_torch_thread")
def test_a_tiny_real_scene_does_not_claim_a_model_beats_delta(tmp_path, capsys):
    """Kranj: 3×3 MODIS pixels. Its reduced-resolution truth is no sharper than the coarse image, so a network that
    reproduces the coarse image beat plain delta there (and then lost to it threefold on the real date)."""
    kranj = TEST_DATA / "kranj"
    out = tmp_path / "k.pt"
    inputs = {"coarse_target": str(kranj / "modis" / "modis_2020093.tif"),
              "fine_reference": str(kranj / "landsat_filled" / "landsat_2020077.tif")}
    code = main(["train", "--model", "ganstfm", "--coarse", inputs["coarse_target"], "--fine", inputs["fine_reference"],
                 "--scale", "fine=1e-4", "--coarse-res", "480", "--out", str(out), "--epochs", "1", "--steps", "2",
                 "--batch", "2", "--device", "cpu"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    held = checkpoint.load(str(out)).meta["validation"]
    assert held["rmse_coarse_input"] <= held["rmse_delta"] and held["delta_smoothing"] > 0
    assert "beats delta by" not in printed.out
    assert "cannot show that the trained ganstfm beats delta" in printed.err or "does not beat" in printed.err

    fused = fuse(FusionRequest(output=str(tmp_path / "k.tif"), method="ganstfm", weights=str(out), tile=0,
                               coarse_resolution=480, scales={"fine_reference": 1e-4}, **inputs))
    assert [w for w in fused.warnings if w.startswith(f"{out}: when it was trained, ")], fused.warnings
