"""Series training honours the series' quality masks as series fusion does (a date's fine mask flags its fine image,
its coarse mask its coarse image, decoded by the request's mask rules), and passes on what the series list skips."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional

import numpy as np
import pytest

from devkit.series import changed_copy, synthetic_dates, synthetic_series, write_mask
from devkit.synthetic import fine_transform, write
from stf_engine import StfError, TrainingRequest, train
from stf_engine.cli import main
from stf_engine.core.progress import Warnings
from stf_engine.models import checkpoint, get_model
from stf_engine.training.scenes import Scene
from stf_engine.training.series import series_scenes

SIDE, RATIO = 64, 4
BLOCK = (slice(20, 36), slice(24, 40))
"""Fine pixels of one date spoilt by a cloud (garbage values) and flagged by its mask."""
COARSE_BLOCK = (slice(4, 8), slice(4, 8))
"""Coarse pixels of one date spoilt and flagged: fine pixels 16:32 both ways."""
ON_FINE_GRID = (slice(16, 32), slice(16, 32))
GARBAGE = 50.0
LANDSAT_CLEAR, LANDSAT_CLOUD = 21824, 22280
"""QA_PIXEL codes: clear (no bit 0-5 set) and cloud (bit 3 set); both are non-zero."""

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def series(tmp_path):
    """series.csv of three dates 5 days apart, each with a 64×64 fine and a 16×16 coarse image (float32)."""
    return synthetic_series(tmp_path, side=SIDE, bands=2, dates=3, fine_dates=3, ratio=RATIO), synthetic_dates(3)


def spoil(path: Path, block) -> Path:
    """The image with garbage values in `block` (a cloud the sensor saw as data)."""

    def change(values: np.ndarray) -> np.ndarray:
        values[(slice(None),) + block] = GARBAGE
        return values

    return changed_copy(path, path, change)


def with_masks(csv: Path, masks: Dict[str, Dict[str, str]], extra_rows: str = "") -> Path:
    """The series list with coarse_mask and fine_mask columns: masks[date][kind] is a file beside it."""
    lines = csv.read_text().splitlines()
    rows = [lines[0] + ",coarse_mask,fine_mask"]
    for line in lines[1:]:
        given = masks.get(line.split(",")[0], {})
        rows.append(f"{line},{given.get('coarse', '')},{given.get('fine', '')}")
    csv.write_text("\n".join(rows) + "\n" + extra_rows)
    return csv


def request(csv: Path, tmp_path: Path, **changes) -> TrainingRequest:
    fields = dict(model="ganstfm", output=str(tmp_path / "m.pt"), mode="series", series=str(csv), patch=16, batch=2,
                  epochs=1, steps_per_epoch=2, device="cpu", seed=3)
    return TrainingRequest(**{**fields, **changes})


def scenes_of(training: TrainingRequest, warnings: Optional[Warnings] = None) -> Dict[str, Scene]:
    """Every training scene of the series, whole, by label ("<date> from <other>")."""
    by_date, _, _ = series_scenes(training, get_model(training.model), Warnings() if warnings is None else warnings)
    return {scene.label: scene for scenes in by_date.values() for scene in scenes}


def test_a_fine_mask_leaves_its_pixels_out_of_every_scene_that_reads_that_fine_image(series, tmp_path):
    csv, dates = series
    cloudy = dates[1]
    fine = spoil(csv.parent / f"fine_{cloudy}.tif", BLOCK)
    write_mask(fine, csv.parent / "cloud.tif", *BLOCK)
    scenes = scenes_of(request(with_masks(csv, {cloudy: {"fine": "cloud.tif"}}), tmp_path))
    assert len(scenes) == 6
    block = np.zeros((SIDE, SIDE), bool)
    block[BLOCK] = True
    for label, scene in scenes.items():
        expected = ~block if cloudy in label else np.ones_like(block)  # as target ("d from x") and as reference
        np.testing.assert_array_equal(scene.valid, expected, err_msg=label)


@pytest.mark.parametrize("model, reads_reference_coarse", [("ganstfm", False), ("edcstfn", True)])
def test_a_coarse_mask_flags_its_coarse_image_where_a_scene_reads_it(series, tmp_path, model, reads_reference_coarse):
    """The coarse image of a date is the coarse target of its own scenes, and the coarse reference of the others'
    when the model reads one (EDCSTFN does, GAN-STFM does not)."""
    csv, dates = series
    cloudy = dates[0]
    coarse = spoil(csv.parent / f"coarse_{cloudy}.tif", COARSE_BLOCK)
    write_mask(coarse, csv.parent / "coarse_cloud.tif", *COARSE_BLOCK)
    scenes = scenes_of(request(with_masks(csv, {cloudy: {"coarse": "coarse_cloud.tif"}}), tmp_path, model=model))
    flagged = np.zeros((SIDE, SIDE), bool)
    flagged[ON_FINE_GRID] = True
    for label, scene in scenes.items():
        target, reference = label.split(" from ")
        masked = target == cloudy or (reference == cloudy and reads_reference_coarse)
        np.testing.assert_array_equal(~scene.valid, flagged if masked else np.zeros_like(flagged), err_msg=label)


@pytest.mark.parametrize("rules, flagged_share", [({"fine": "landsat-qa"}, 16 * 16 / SIDE**2), ({}, 1.0)])
def test_the_mask_rule_decodes_a_qa_band(series, tmp_path, rules, flagged_share):
    """A Landsat QA_PIXEL band: with `fine=landsat-qa` only its cloud is flagged; read with the default rule
    (nonzero) every pixel is, since clear pixels have a non-zero code too."""
    csv, dates = series
    codes = np.full((1, SIDE, SIDE), LANDSAT_CLEAR, np.uint16)
    codes[(0,) + BLOCK] = LANDSAT_CLOUD
    write(csv.parent / "qa.tif", codes, fine_transform())
    scenes = scenes_of(request(with_masks(csv, {dates[2]: {"fine": "qa.tif"}}), tmp_path, mask_rules=rules))
    scene = scenes[f"{dates[2]} from {dates[0]}"]
    assert (~scene.valid).mean() == pytest.approx(flagged_share)
    assert not scene.valid[BLOCK].any()


def test_stf_train_decodes_the_masks_by_its_mask_rule(series, tmp_path, capsys):
    """Every date's fine image has a QA band: read with the default rule every pixel is flagged, and training has
    nothing to learn from; `--mask-rule fine=landsat-qa` flags the clouds only."""
    csv, dates = series
    codes = np.full((1, SIDE, SIDE), LANDSAT_CLEAR, np.uint16)
    codes[(0,) + BLOCK] = LANDSAT_CLOUD
    write(csv.parent / "qa.tif", codes, fine_transform())
    with_masks(csv, {date: {"fine": "qa.tif"} for date in dates})
    args = ["train", "--model", "ganstfm", "--mode", "series", "--series", str(csv), "--patch", "16", "--batch", "2",
            "--steps", "1", "--epochs", "1", "--device", "cpu"]
    assert main(args + ["--out", str(tmp_path / "a.pt")]) == 2
    assert "area with at least 50% of its pixels valid (0% of all are): the scene is mostly nodata or masked" in \
        capsys.readouterr().err
    assert main(args + ["--out", str(tmp_path / "b.pt"), "--mask-rule", "fine=landsat-qa"]) == 0
    assert (tmp_path / "b.pt").exists() and not (tmp_path / "a.pt").exists()
    assert checkpoint.load(str(tmp_path / "b.pt")).meta["mask_rules"] == {"fine": "landsat-qa"}


def test_a_mask_covering_part_of_the_grid_flags_the_rest_and_says_so(series, tmp_path):
    csv, dates = series
    top = write(csv.parent / "top.tif", np.zeros((1, SIDE // 2, SIDE), np.uint8), fine_transform())
    warnings = Warnings()
    scenes = scenes_of(request(with_masks(csv, {dates[0]: {"fine": "top.tif"}}), tmp_path), warnings)
    scene = scenes[f"{dates[0]} from {dates[1]}"]
    assert scene.valid[: SIDE // 2].all() and not scene.valid[SIDE // 2 :].any()
    assert warnings == [f"the fine mask of {dates[0]} covers 50% of the fine grid; the rest counts as masked: {top}"]


def test_masked_garbage_does_not_reach_the_held_out_score(series, tmp_path):
    """The held-out date's fine image holds garbage under its mask: the validation scores stay in reflectance
    (the garbage unmasked would put the RMSE in the tens)."""
    csv, dates = series
    held_out = dates[2]
    fine = spoil(csv.parent / f"fine_{held_out}.tif", BLOCK)
    write_mask(fine, csv.parent / "cloud.tif", *BLOCK)
    result = train(request(with_masks(csv, {held_out: {"fine": "cloud.tif"}}), tmp_path, validation_date=held_out))
    metrics = result.validation_metrics
    assert 0 < metrics["rmse"] < 1 and 0 < metrics["rmse_delta"] < 1 and metrics["mae"] < 1, metrics


def test_what_the_series_list_skips_and_a_partial_mask_reach_the_result_once(series, tmp_path):
    csv, dates = series
    top = write(csv.parent / "top.tif", np.zeros((1, SIDE // 2, SIDE), np.uint8), fine_transform())
    with_masks(csv, {dates[0]: {"fine": "top.tif"}}, extra_rows="2021-03-01,,,,\n")
    result = train(request(csv, tmp_path))
    skipped = f"series list {csv}, row 5: 2021-03-01 has no coarse or fine image; the row is skipped"
    partial = f"the fine mask of {dates[0]} covers 50% of the fine grid; the rest counts as masked: {top}"
    assert result.warnings.count(skipped) == 1 and result.warnings.count(partial) == 1, result.warnings


def test_a_later_dates_units_mismatch_is_said_once_and_named_by_its_date(series, tmp_path):
    """Before, only the first date's reading warnings reached the result."""
    csv, dates = series
    for date in dates[1:]:
        coarse = csv.parent / f"coarse_{date}.tif"
        changed_copy(coarse, coarse, lambda values: values * 10000)
    warnings = Warnings()
    scenes_of(request(csv, tmp_path), warnings)
    units = [said for said in warnings if said.endswith("check units and set --scale")]
    assert len(units) == 1 and units[0].startswith(f"{dates[1]}: coarse target values"), warnings


def test_self_training_says_it_ignores_mask_rules(tmp_path):
    """Self-training reads no mask rasters: rules given to it are said to be ignored, as a series given to it is."""
    from devkit.synthetic import textured_scene

    fine = write(tmp_path / "f.tif", textured_scene(64, 64, bands=2, seed=2), fine_transform())
    coarse = write(tmp_path / "c.tif", textured_scene(16, 16, bands=2, seed=3), fine_transform(120.0))
    result = train(TrainingRequest(model="ganstfm", output=str(tmp_path / "s.pt"), coarse_target=coarse,
                                   fine_reference=fine, mask_rules="fine=landsat-qa", patch=16, batch=2, epochs=1,
                                   steps_per_epoch=1, device="cpu"))
    assert ("self-training reads no mask rasters; the mask rules (fine=landsat-qa) are ignored (they decode a "
            "series' coarse_mask and fine_mask in series mode)") in result.warnings


@pytest.mark.parametrize("rules, problem", [
    ({"fine": "cloudy"}, "unknown mask rule 'cloudy' for the fine mask"),
    ("pan=landsat-qa", "unknown mask role 'pan'"),
    (["fine=nonzero", "fine=s2-scl"], "the fine mask rule is given twice"),
])
def test_the_request_checks_its_mask_rules_as_a_series_request_does(tmp_path, rules, problem):
    with pytest.raises(StfError, match=problem):
        TrainingRequest(model="ganstfm", output=str(tmp_path / "m.pt"), mode="series", mask_rules=rules)
    assert TrainingRequest(model="ganstfm", output=str(tmp_path / "m.pt"),
                           mask_rules=["fine=s2-scl", "coarse=modis-state"]).mask_rules == {
        "fine": "s2-scl", "coarse": "modis-state"}


def test_fine_masks_on_the_bottom_rows_leave_held_out_rows_with_data(series, tmp_path):
    """Every date's fine mask flags the bottom 10 of 64 rows: the held-out rows are taken above them (the bottom
    rows held nothing but masked pixels, and training was refused as 'mostly nodata')."""
    csv, dates = series
    write_mask(csv.parent / f"fine_{dates[0]}.tif", csv.parent / "bottom.tif", slice(SIDE - 10, SIDE), slice(None))
    result = train(request(with_masks(csv, {date: {"fine": "bottom.tif"} for date in dates}), tmp_path))
    assert result.epochs == 1 and 0 < result.validation_metrics["rmse"] < 1


def test_a_held_out_date_without_data_is_named_in_the_refusal(series, tmp_path):
    """The held-out date's fine image is masked whole: the refusal names that date, not the training data."""
    csv, dates = series
    write_mask(csv.parent / f"fine_{dates[2]}.tif", csv.parent / "all.tif", slice(None), slice(None))
    training = request(with_masks(csv, {dates[2]: {"fine": "all.tif"}}), tmp_path, validation_date=dates[2])
    with pytest.raises(StfError, match=f"^the held-out date {dates[2]} has no 16×16 area with at least 50% of its "
                                       r"pixels valid \(0% of all are\): it is mostly nodata or masked$"):
        train(training)
