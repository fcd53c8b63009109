"""`stf train` on the bundled sample in both modes, for a few steps: checkpoints that `stf fuse` uses."""
from __future__ import annotations

import dataclasses
import signal
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from stf_engine import StfError, TrainingRequest, check_training, train
from stf_engine.cli import main
from stf_engine.cli.main import NOTHING_WRITTEN, Stopped
from stf_engine.models import checkpoint

from helpers.rasters import crop
from helpers.paths import ROOT, SAMPLE

SAMPLE = ROOT / "resources" / "sample"
SERIES = ROOT / "resources" / "weights" / "shenzhen_series.csv"
C2000, F2000 = SAMPLE / "MOD09_2000306_SZ_B214_250m.tif", SAMPLE / "L72000306_SZ_B432_30m.tif"
C2002, F2002 = SAMPLE / "MOD09_2002311_SZ_B214_250m.tif", SAMPLE / "L72002311_SZ_B432_30m.tif"
TINY = ["--patch", "16", "--batch", "2", "--steps", "2", "--device", "cpu"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _fuse_crop(tmp_path, name, weights, with_reference=False) -> np.ndarray:
    folder = tmp_path / "crop"
    folder.mkdir(exist_ok=True)
    args = ["fuse", "--method", name, "--weights", weights, "--coarse-res", "250", "--tile", "0", "--halo", "0",
            "--coarse", crop(C2002, folder, 80), "--fine", crop(F2000, folder, 80), "--out", str(tmp_path / f"{name}.tif")]
    if with_reference:
        args += ["--coarse-ref", crop(C2000, folder, 80)]
    assert main(args) == 0
    with rasterio.open(tmp_path / f"{name}.tif") as fused:
        assert fused.tags()["STF_METHOD"] == name
        return fused.read(masked=True)


@pytest.mark.parametrize("name", ["marstfn", "ganstfm", "edcstfn"])
def test_self_training_writes_a_checkpoint_that_fuse_uses(name, tmp_path, capsys):
    out = str(tmp_path / f"{name}.pt")
    args = ["train", "--model", name, "--mode", "self", "--coarse", str(C2000), "--fine", str(F2002),
            "--coarse-ref", str(C2002), "--coarse-res", "250", "--epochs", "1", "--out", out, *TINY]
    if name == "edcstfn":
        args += ["--option", "extractor_steps=2"]
    assert main(args) == 0, capsys.readouterr().err
    loaded = checkpoint.load(out)
    assert loaded.meta["ratio"] == 8 and loaded.meta["training"]["mode"] == "self"
    assert loaded.meta["validation"]["rmse"] > 0 and loaded.training is not None
    fused = _fuse_crop(tmp_path, name, out, with_reference=name == "edcstfn")
    assert fused.count() > 0.8 * fused.size and 0.0 < float(fused.mean()) < 6000


def test_series_training_resumes_and_fuses(tmp_path):
    out = str(tmp_path / "edc.pt")
    base = ["train", "--model", "edcstfn", "--mode", "series", "--series", str(SERIES), "--targets", "2000-11-01",
            "--coarse-res", "250", "--option", "extractor_steps=2", "--out", out, *TINY]
    assert main(base + ["--epochs", "1"]) == 0
    first = checkpoint.load(out)
    assert first.meta["training"]["scenes"] == ["2000-11-01 from 2002-11-07"]
    assert first.meta["roles"] == ["coarse_reference", "coarse_target", "fine_reference"]
    assert main(base + ["--epochs", "2", "--resume", out]) == 0
    resumed = checkpoint.load(out)
    assert resumed.meta["training"]["epochs"] == 2 and len(resumed.meta["training"]["validation_rmse"]) == 2
    _fuse_crop(tmp_path, "edcstfn", out, with_reference=True)


def test_validation_date_and_seeded_runs_repeat(tmp_path):
    """The dates may be spelt otherwise than the series list spells them (day of year, no dashes)."""
    def run(path, target, held_out):
        return train(TrainingRequest(
            model="ganstfm", output=str(path), mode="series", series=str(SERIES), target_dates=(target,),
            validation_date=held_out, coarse_resolution=250, patch=16, batch=2, epochs=1, steps_per_epoch=2,
            device="cpu", seed=5,
        ))

    first, second = run(tmp_path / "a.pt", "2000-11-01", "2002-11-07"), run(tmp_path / "b.pt", "2000306", "20021107")
    assert first.validation_metrics == second.validation_metrics and set(first.validation_metrics) >= {"rmse", "mae"}
    a, b = checkpoint.load(first.checkpoint).state, checkpoint.load(second.checkpoint).state
    assert all(torch.equal(a[key], b[key]) for key in a)
    assert checkpoint.load(first.checkpoint).meta["training"]["validation"] == ["2002-11-07 from 2000-11-01"]


def test_mask_rules_reach_the_training_request_and_a_wrong_one_is_one_error_line(tmp_path, capsys):
    from stf_engine.cli.main import build_parser
    from stf_engine.cli.train import request_from

    out = str(tmp_path / "m.pt")
    base = ["train", "--model", "ganstfm", "--mode", "series", "--series", str(SERIES), "--out", out, *TINY]
    args = build_parser().parse_args(base + ["--mask-rule", "fine=landsat-qa", "--mask-rule", "coarse=modis-state"])
    assert request_from(args).mask_rules == {"fine": "landsat-qa", "coarse": "modis-state"}
    assert request_from(build_parser().parse_args(base)).mask_rules == {}
    assert main(base + ["--mask-rule", "fine=cloudy"]) == 2
    assert capsys.readouterr().err == ("error: unknown mask rule 'cloudy' for the fine mask; use one of landsat-qa, "
                                       "s2-scl, modis-state, nonzero\n")
    assert not Path(out).exists()


def test_training_errors_are_one_line(tmp_path, capsys):
    out = str(tmp_path / "x.pt")
    assert main(["train", "--model", "ganstfm", "--coarse", str(C2000), "--fine", str(F2002), "--out", out, *TINY]) == 2
    assert "ratio of at least 2" in capsys.readouterr().err
    assert main(["train", "--model", "ganstfm", "--coarse", str(C2000), "--fine", str(F2002), "--coarse-res", "250",
                 "--option", "width=3", "--out", out, *TINY]) == 2
    assert "unknown option 'width'" in capsys.readouterr().err
    assert main(["train", "--model", "edcstfn", "--coarse", str(C2000), "--fine", str(F2002), "--coarse-res", "250",
                 "--out", out, *TINY]) == 2
    assert "error: edcstfn needs a coarse reference (--coarse-ref)\n" in capsys.readouterr().err
    assert not Path(out).exists()
    raster = tmp_path / "truth.tif"
    raster.write_bytes(b"a raster of the user's")
    assert main(["train", "--model", "ganstfm", "--coarse", str(C2000), "--fine", str(F2002), "--coarse-res", "250",
                 "--out", str(raster), *TINY]) == 2
    assert f"give it a name ending in .pt, not {raster}" in capsys.readouterr().err
    assert raster.read_bytes() == b"a raster of the user's"


@pytest.mark.parametrize("changes, problem", [
    ({}, "self-training needs a coarse/fine ratio of at least 2"),
    ({"coarse_resolution": 250, "model": "edcstfn"}, r"edcstfn needs a coarse reference \(--coarse-ref\)"),
    ({"coarse_resolution": 250, "output": "m.tif"}, "give it a name ending in .pt"),
    ({"coarse_resolution": 250, "options": "width=3"}, "unknown option 'width'"),
])
def test_check_training_refuses_what_training_would_before_reading_pixels(tmp_path, monkeypatch, changes, problem):
    """The sample's MODIS is on the fine grid: self-training needs its real pixel size. The check reads no pixel."""
    from stf_engine.training import data

    monkeypatch.setattr(data, "read_aligned", None)  # reading the scene would fail
    fields = dict(model="ganstfm", output=str(tmp_path / "m.pt"), coarse_target=str(C2000), fine_reference=str(F2002))
    check_training(TrainingRequest(**{**fields, "coarse_resolution": 250}))
    with pytest.raises(StfError, match=problem):
        check_training(TrainingRequest(**{**fields, **changes}))
    assert not any(tmp_path.iterdir())


def blow_up_after(monkeypatch, good_steps):
    """Training steps that turn the network's weights to NaN after `good_steps` good ones, as a divergence does;
    the list of steps taken."""
    from stf_engine.training import loop

    step, steps = loop._step, []

    def blowing_up(session, *args):
        steps.append(1)
        if len(steps) > good_steps:
            with torch.no_grad():
                for parameter in session.network.parameters():
                    parameter.fill_(float("nan"))
        return step(session, *args)

    monkeypatch.setattr(loop, "_step", blowing_up)
    return steps


def test_a_diverged_training_writes_no_checkpoint(tmp_path, capsys, monkeypatch):
    """Weights blown up in the first epoch: one line, and no untrained checkpoint left."""
    blow_up_after(monkeypatch, 0)
    out = tmp_path / "x.pt"
    code = main(["train", "--model", "marstfn", "--coarse", str(C2000), "--fine", str(F2002), "--coarse-ref",
                 str(C2002), "--coarse-res", "250", "--epochs", "3", "--out", str(out), *TINY])
    err = capsys.readouterr().err
    assert code == 2 and "training diverged in epoch 1" in err and "lower the learning rate" in err
    assert "Traceback" not in err and not out.exists()


def diverging_request(output, **kwargs):
    return TrainingRequest(model="ganstfm", output=str(output), mode="self", coarse_target=str(C2000),
                           fine_reference=str(F2002), coarse_resolution=250, patch=16, batch=2, steps_per_epoch=2,
                           device="cpu", **kwargs)


def test_a_divergence_after_a_good_epoch_keeps_its_weights_and_warns(tmp_path, monkeypatch):
    """Weights that turn to NaN in the second epoch: training stops there, and the checkpoint holds the first
    epoch's weights without the optimiser state that diverged."""
    steps = blow_up_after(monkeypatch, 2)
    result = train(diverging_request(tmp_path / "g.pt", epochs=4))
    assert result.epochs == 1 and result.best_epoch == 1 and result.stopped_early and len(steps) == 4
    assert any("diverged in epoch 2" in w and "weights of epoch 1" in w for w in result.warnings)
    saved = checkpoint.load(result.checkpoint)
    assert saved.meta["training"]["best_epoch"] == 1 and np.isfinite(saved.meta["validation"]["rmse"])
    assert saved.training is None
    assert all(torch.isfinite(value).all() for value in saved.state.values() if value.is_floating_point())


def test_a_resumed_training_that_diverges_at_once_still_writes_its_output(tmp_path, monkeypatch):
    """Resumed into another file and diverging in its first epoch: that file holds the resumed best weights."""
    first = train(diverging_request(tmp_path / "a.pt", epochs=1))
    blow_up_after(monkeypatch, 0)
    resumed = train(diverging_request(tmp_path / "b.pt", epochs=3, resume=first.checkpoint))
    assert resumed.best_epoch == 1 and any("diverged in epoch 2" in w for w in resumed.warnings)
    before, after = checkpoint.load(first.checkpoint), checkpoint.load(resumed.checkpoint)
    assert after.meta["validation"] == before.meta["validation"]
    assert all(torch.equal(before.state[key], after.state[key]) for key in before.state)


def test_progress_reports_loss_and_validation_and_cancel_stops(tmp_path):
    import threading

    from stf_engine import FusionCancelled

    request = TrainingRequest(model="ganstfm", output=str(tmp_path / "p.pt"), mode="self", coarse_target=str(C2000),
                              fine_reference=str(F2002), coarse_resolution=250, patch=16, batch=2, epochs=2,
                              steps_per_epoch=2, device="cpu")
    messages = []
    result = train(request, progress=lambda fraction, message: messages.append((fraction, message)))
    fractions = [f for f, _ in messages]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any("loss" in m and "val rmse 0.0" in m for _, m in messages)
    assert result.epochs == 2 and len(result.validation_losses) == 2 and result.device == "cpu"
    cancel = threading.Event()
    cancel.set()
    request.output = str(tmp_path / "new" / "c.pt")
    with pytest.raises(FusionCancelled):
        train(request, cancel=cancel)
    assert not (tmp_path / "new").exists(), "the folder made for the checkpoint goes with it"
    resumed = []  # nothing left to train: the run still ends at 1.0
    train(dataclasses.replace(request, output=str(tmp_path / "r.pt"), resume=str(tmp_path / "p.pt")),
          progress=lambda fraction, message: resumed.append(fraction))
    assert resumed[-1] == 1.0


def test_a_cancel_while_edcstfn_prepares_its_loss_stops_there_and_says_nothing_was_written(tmp_path):
    import threading

    from stf_engine import FusionCancelled

    request = TrainingRequest(model="edcstfn", output=str(tmp_path / "e.pt"), mode="self", coarse_target=str(C2000),
                              fine_reference=str(F2002), coarse_reference=str(C2002), coarse_resolution=250, patch=16,
                              batch=2, epochs=1, steps_per_epoch=2, device="cpu",
                              options={"extractor_steps": 100000})
    cancel, seen = threading.Event(), []

    def progress(fraction, message):
        seen.append(message)
        if message == "preparing the loss (0%)":
            cancel.set()

    with pytest.raises(FusionCancelled, match="before this run finished an epoch; it wrote no checkpoint"):
        train(request, progress, cancel)
    assert seen[-1] == "preparing the loss (0%)" and not (tmp_path / "e.pt").exists()


def test_edcstfns_loss_preparation_stops_at_the_time_budget(tmp_path):
    request = TrainingRequest(model="edcstfn", output=str(tmp_path / "e.pt"), mode="self", coarse_target=str(C2000),
                              fine_reference=str(F2002), coarse_reference=str(C2002), coarse_resolution=250, patch=16,
                              batch=2, epochs=1, steps_per_epoch=2, device="cpu", minutes=0.05,
                              options={"extractor_steps": 100000})
    seen = []
    result = train(request, lambda fraction, message: seen.append(message))
    preparing = [m for m in seen if m.startswith("preparing the loss")]
    assert result.epochs == 1 and 1 < len(preparing) < 100000 and (tmp_path / "e.pt").exists()


def test_self_training_given_a_series_says_it_is_ignored(tmp_path):
    from devkit.series import kranj_series

    request = TrainingRequest(model="ganstfm", output=str(tmp_path / "s.pt"), mode="self", coarse_target=str(C2000),
                              fine_reference=str(F2002), coarse_resolution=250, patch=16, batch=2, epochs=1,
                              steps_per_epoch=1, device="cpu", series=str(kranj_series(tmp_path)))
    result = train(request)
    assert any(w.startswith("self-training learns from the layers given; the series ") and
               w.endswith("is ignored (train in series mode to use it)") for w in result.warnings), result.warnings


@pytest.mark.parametrize("ratio", [4, 20])
def test_self_training_takes_small_scenes_with_nodata_borders(tmp_path, capsys, ratio):
    """64×64 fine pixels with a nodata border, coarse/fine ratio up to 20: trains, and says how it compares."""
    from devkit.synthetic import fine_transform, textured_scene, write

    fine = textured_scene(64, 64, bands=3, seed=2)
    fine[:, :6, :] = -1.0
    fine[:, :, -5:] = -1.0
    coarse = textured_scene(64 // 4, 64 // 4, bands=3, seed=3) * 1.05
    fine_path = write(tmp_path / "f.tif", fine, fine_transform(), nodata=-1.0)
    coarse_path = write(tmp_path / "c.tif", coarse, fine_transform(120.0))
    out = tmp_path / "m.pt"
    code = main(["train", "--model", "ganstfm", "--coarse", coarse_path, "--fine", fine_path, "--coarse-res",
                 str(30 * ratio), "--out", str(out), "--epochs", "2", "--minutes", "2", "--device", "cpu"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "held-out RMSE" in printed.out and "delta" in printed.out
    meta = checkpoint.load(str(out)).meta
    assert {"rmse", "rmse_delta"} <= set(meta["validation"]) and meta["training"]["wald_factor"] >= 2
    if ratio == 20:
        assert "learns a smaller step" in printed.err


def test_self_training_takes_a_coarse_image_with_a_nodata_border_on_a_scene_of_two_by_two_coarse_blocks(tmp_path):
    """128×128 fine pixels at a ratio of 8: the reduced scene is 16×16, its coarse image 2×2 blocks. A coarse target
    with a nodata row and column (MODIS not quite covering the Landsat scene) touched all four blocks, which were
    then left out whole: 'no 8×8 area with at least 50% of its pixels valid'."""
    from devkit.synthetic import fine_transform, textured_scene, write

    fine = textured_scene(128, 128, bands=3, seed=2)
    coarse = textured_scene(16, 16, bands=3, seed=3) * 1.05
    coarse[:, 0, :] = coarse[:, :, -1] = -1.0
    request = TrainingRequest(model="ganstfm", output=str(tmp_path / "m.pt"), mode="self", device="cpu",
                              coarse_target=write(tmp_path / "c.tif", coarse, fine_transform(240.0), nodata=-1.0),
                              fine_reference=write(tmp_path / "f.tif", fine, fine_transform()), epochs=1,
                              steps_per_epoch=2, batch=2)
    result = train(request)
    assert result.epochs == 1 and (tmp_path / "m.pt").exists()


def test_series_training_takes_real_gaps_and_reports_delta(tmp_path, capsys):
    """Kranj, two dates with real gaps (unfilled Landsat), MODIS in 0-1 floats: trains without refusing."""
    from helpers.paths import TEST_DATA

    kranj = TEST_DATA / "kranj"
    series = tmp_path / "series.csv"
    series.write_text("date,coarse,fine\n" + "".join(
        f"2020-{day},{kranj / 'modis' / f'modis_2020{day}.tif'},{kranj / 'landsat_unfilled' / f'landsat_2020{day}.tif'}\n"
        for day in ("068", "093")))
    out = tmp_path / "s.pt"
    code = main(["train", "--model", "edcstfn", "--mode", "series", "--series", str(series), "--scale", "fine=1e-4",
                 "--out", str(out), "--epochs", "2", "--minutes", "2", "--device", "cpu", "--option",
                 "extractor_steps=5"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "rmse_delta" in checkpoint.load(str(out)).meta["validation"]


def test_self_training_takes_a_scene_with_a_nodata_strip_along_the_bottom(tmp_path):
    """128×128 fine pixels at a ratio of 4 with the bottom 24 rows nodata: the rows held out for validation are
    taken above the strip (they were the strip, and training was refused as 'mostly nodata')."""
    from devkit.synthetic import fine_transform, textured_scene, write

    fine = textured_scene(128, 128, bands=3, seed=2)
    fine[:, -24:, :] = -1.0
    coarse = textured_scene(32, 32, bands=3, seed=3) * 1.05
    request = TrainingRequest(model="ganstfm", output=str(tmp_path / "m.pt"), mode="self", device="cpu",
                              coarse_target=write(tmp_path / "c.tif", coarse, fine_transform(120.0)),
                              fine_reference=write(tmp_path / "f.tif", fine, fine_transform(), nodata=-1.0),
                              epochs=1, steps_per_epoch=2, batch=2)
    result = train(request)
    assert result.epochs == 1 and 0 < result.validation_metrics["rmse"] < 1


def stop_at_step(monkeypatch, number, stop):
    """Training steps that raise `stop()` (an interrupt, or the command line's stop signal) at step `number`."""
    from stf_engine.training import loop

    step, steps = loop._step, []

    def stopping(session, *args):
        steps.append(1)
        if len(steps) == number:
            raise stop()
        return step(session, *args)

    monkeypatch.setattr(loop, "_step", stopping)


STOPS = [(KeyboardInterrupt, 130, "interrupted"), (lambda: Stopped(signal.SIGTERM), 143, "stopped by SIGTERM")]
"""(a new stop, its exit code, how the command line says it)."""


@pytest.mark.parametrize("stop, code, said", STOPS)
def test_a_stop_after_an_epoch_says_what_the_checkpoint_holds(tmp_path, capsys, monkeypatch, stop, code, said):
    """Ctrl-C or SIGTERM in the second epoch, over an earlier file: the line says the checkpoint now holds this
    run's first epoch and replaced that file (it said that no output was written)."""
    out = tmp_path / "m.pt"
    out.write_bytes(b"an earlier model")
    stop_at_step(monkeypatch, 3, stop)  # two steps an epoch
    assert main(["train", "--model", "ganstfm", "--coarse", str(C2000), "--fine", str(F2002), "--coarse-res", "250",
                 "--epochs", "3", "--out", str(out), *TINY]) == code
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"error: {said}; the checkpoint {out} holds the one epoch finished; the earlier file there was replaced")
    assert checkpoint.load(str(out)).meta["training"]["epochs"] == 1


@pytest.mark.parametrize("stop, code, said", STOPS)
def test_a_stop_in_the_first_epoch_says_nothing_was_written(tmp_path, capsys, monkeypatch, stop, code, said):
    out = tmp_path / "m.pt"
    out.write_bytes(b"an earlier model")
    stop_at_step(monkeypatch, 1, stop)
    assert main(["train", "--model", "ganstfm", "--coarse", str(C2000), "--fine", str(F2002), "--coarse-res", "250",
                 "--epochs", "3", "--out", str(out), *TINY]) == code
    assert capsys.readouterr().err.splitlines()[-1] == f"error: {said}; {NOTHING_WRITTEN}"
    assert out.read_bytes() == b"an earlier model"


def test_a_cancel_after_two_epochs_says_which_the_checkpoint_holds(tmp_path):
    import threading

    from stf_engine import FusionCancelled

    cancel = threading.Event()

    def progress(fraction, message):
        if message.startswith("epoch 2:"):
            cancel.set()

    out = tmp_path / "new.pt"
    with pytest.raises(FusionCancelled) as cancelled:
        train(diverging_request(out, epochs=4), progress, cancel)
    best = checkpoint.load(str(out)).meta["training"]["best_epoch"]
    assert str(cancelled.value) == (f"training cancelled; the checkpoint {out} holds the best of the 2 epochs "
                                    f"finished (epoch {best})")
    assert not hasattr(cancelled.value, "left_behind"), "its message says it: the command line would say it twice"
