"""`evaluate` on rasters: windowed equals whole-array, nodata, seams from the run's tag, files, CLI."""
import csv
import json
import math
import pathlib
import shutil
import sys
import threading

import numpy as np
import pytest
import rasterio
from rasterio.enums import ColorInterp

from stf_engine import EvaluationRequest, FusionCancelled, FusionRequest, StfError, evaluate, fuse
from stf_engine.evaluation.evaluate import measure
from stf_engine.cli import main
from stf_engine.core.tiling import borders as tile_borders

from devkit.synthetic import fine_transform, textured_scene, write
from devkit.memory_probe import HIGH_WATER
from helpers.paths import SAMPLE

NODATA = 32767
TILE = 32


@pytest.fixture
def rasters(tmp_path):
    """int16 truth and prediction (×10000) with nodata holes in each; the prediction tagged as a tiled run."""
    truth = textured_scene(70, 90, seed=2)
    pred = truth * 1.03 + np.random.default_rng(4).normal(0, 0.01, truth.shape).astype(np.float32)
    stored = {name: np.rint(image * 1e4).astype(np.int16) for name, image in (("truth", truth), ("pred", pred))}
    stored["truth"][:, 3:8, 40:52] = NODATA
    stored["pred"][:, 50:66, 2:5] = NODATA
    paths = {
        name: write(tmp_path / f"{name}.tif", array, fine_transform(), nodata=NODATA, dtype="int16")
        for name, array in stored.items()
    }
    with rasterio.open(paths["pred"], "r+") as dataset:
        dataset.update_tags(STF_TILE=str(TILE))
    valid = (stored["truth"] != NODATA).all(0) & (stored["pred"] != NODATA).all(0)
    return paths, stored["pred"] * 1e-4, stored["truth"] * 1e-4, valid


@pytest.mark.parametrize("window", [16, 27])
def test_windowed_equals_whole_array(rasters, window):
    paths, pred, truth, valid = rasters
    report = evaluate(EvaluationRequest(paths["pred"], paths["truth"], ratio=8, window=window))
    overall, bands = measure(pred, truth, valid, ratio=8, borders=tile_borders(70, 90, TILE))
    assert set(report.overall) == set(overall) >= {"rmse", "ssim", "sam", "ergas", "edge", "lbp", "seam_ratio"}
    for name, value in overall.items():
        assert report.overall[name] == pytest.approx(value, rel=1e-6, abs=1e-9), name
    for got, expected in zip(report.bands, bands):
        assert got == pytest.approx(expected, rel=1e-6, abs=1e-9)
    assert report.valid_pixels == int(valid.sum())


def with_alpha(path: str, stored: np.ndarray) -> str:
    """A copy of `path` whose nodata pixels are marked by an alpha band (0 there, 255 elsewhere), without nodata."""
    alpha = np.where((stored == NODATA).any(0), 0, 255)[None]
    copy = write(path.replace(".tif", "_alpha.tif"), np.concatenate([stored, alpha]), fine_transform(), dtype="int16")
    with rasterio.open(copy, "r+") as dataset:
        dataset.colorinterp = [*dataset.colorinterp[:-1], ColorInterp.alpha]
        dataset.set_band_description(1, "red")
    return copy


def test_an_alpha_band_is_a_mask_not_a_band(rasters):
    """Prediction and truth marking their nodata with an alpha band measure as with a nodata value: the alpha band
    is neither compared nor named."""
    paths, pred, truth, valid = rasters
    expected = evaluate(EvaluationRequest(paths["pred"], paths["truth"], ratio=8))
    report = evaluate(EvaluationRequest(*(with_alpha(paths[name], np.rint(image * 1e4).astype(np.int16))
                                          for name, image in (("pred", pred), ("truth", truth))), ratio=8, tile=TILE))
    assert report.band_names == ["red", "band 2", "band 3"] and len(report.bands) == 3
    assert report.valid_pixels == expected.valid_pixels == int(valid.sum())
    for name, value in expected.overall.items():
        assert report.overall[name] == pytest.approx(value, rel=1e-6, abs=1e-9), name


def test_perfect_prediction_and_json_without_nan(tmp_path):
    truth = str(SAMPLE / "L72002311_SZ_B432_30m.tif")
    copy = shutil.copy(truth, tmp_path / "copy.tif")
    report = evaluate(EvaluationRequest(str(copy), truth, out_dir=str(tmp_path / "report"), plots=False, window=256))
    overall = report.overall
    assert overall["rmse"] == 0 and overall["ad"] == 0 and overall["sam"] == pytest.approx(0, abs=1e-3)
    assert overall["ssim"] == pytest.approx(1) and overall["cc"] == pytest.approx(1) and overall["r2"] == 1
    assert overall["edge"] == 0 and overall["lbp"] == 0 and overall["psnr"] == float("inf")
    stored = json.loads(pathlib.Path(report.files["metrics.json"]).read_text())
    assert stored["overall"]["psnr"] is None  # JSON has no infinity


@pytest.mark.slow
def test_real_sample_report_files_and_cli(tmp_path, capsys):
    fused = fuse(
        FusionRequest(
            coarse_target=str(SAMPLE / "MOD09_2002311_SZ_B214_250m.tif"),
            fine_reference=str(SAMPLE / "L72000306_SZ_B432_30m.tif"),
            coarse_reference=str(SAMPLE / "MOD09_2000306_SZ_B214_250m.tif"),
            output=str(tmp_path / "delta.tif"),
            method="delta",
            tile=100,
        )
    )
    truth = str(SAMPLE / "L72002311_SZ_B432_30m.tif")
    request = EvaluationRequest(
        fused.output, truth, fine_reference=str(SAMPLE / "L72000306_SZ_B432_30m.tif"),
        coarse=str(SAMPLE / "MOD09_2002311_SZ_B214_250m.tif"), out_dir=str(tmp_path / "report"), ratio=250 / 30,
    )
    report = evaluate(request)
    assert {"metrics.json", "metrics.csv", "scatter", "error_histogram", "apa_diagram", "quicklook"} <= set(report.files)
    for name in ("scatter", "error_histogram", "apa_diagram", "quicklook"):
        assert pathlib.Path(report.files[name]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    stored = json.loads(pathlib.Path(report.files["metrics.json"]).read_text())
    assert list(stored)[:3] == ["overall", "bands", "units"] and len(stored["bands"]) == 3
    assert stored["overall"]["seam_ratio"] == pytest.approx(report.overall["seam_ratio"])  # from STF_TILE=100
    assert 0.01 < report.overall["rmse"] < 0.1 and 0.5 < report.overall["ssim"] < 1
    with open(report.files["metrics.csv"]) as handle:
        rows = list(csv.DictReader(handle))
    assert [row["band"] for row in rows] == ["1", "2", "3", "overall"]
    assert float(rows[-1]["rmse"]) == pytest.approx(report.overall["rmse"])

    code = main(["evaluate", "--pred", fused.output, "--truth", truth, "--ratio", "8.33", "--out", str(tmp_path / "cli"), "--no-plots"])
    out = capsys.readouterr().out
    assert code == 0 and "rmse" in out and "ergas" in out and "metrics.csv" in out
    assert (tmp_path / "cli" / "metrics.json").exists() and not (tmp_path / "cli" / "scatter.png").exists()


def test_band_mismatch_and_cancel(rasters, tmp_path, capsys):
    paths, *_ = rasters
    with rasterio.open(paths["truth"]) as source:
        two = write(tmp_path / "two.tif", source.read([1, 2]), fine_transform(), nodata=NODATA, dtype="int16")
    assert main(["evaluate", "--pred", paths["pred"], "--truth", two]) == 2
    assert capsys.readouterr().err == (f"error: the prediction {paths['pred']} has 3 bands but the truth {two} has 2; "
                                       "give as truth the fine image of the prediction's date with the same bands in "
                                       "the same order\n")
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(FusionCancelled):
        evaluate(EvaluationRequest(paths["pred"], paths["truth"]), cancel=cancel)
    with pytest.raises(StfError, match="prediction: file not found"):
        evaluate(EvaluationRequest(str(tmp_path / "missing.tif"), paths["truth"]))


@pytest.mark.parametrize("stop_at", ["window 1/1", "plots: scatter", "plots: quicklook"])
def test_a_cancel_after_the_last_window_or_during_the_plots_stops_and_writes_no_report(rasters, tmp_path, stop_at):
    paths, *_ = rasters
    cancel, seen = threading.Event(), []

    def progress(fraction, message):
        seen.append(message)
        if message == stop_at:
            cancel.set()

    out = tmp_path / "report"
    with pytest.raises(FusionCancelled):
        evaluate(EvaluationRequest(paths["pred"], paths["truth"], out_dir=str(out)), progress, cancel)
    assert seen[-1] == stop_at and not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".report")]


def test_plots_of_float_rasters_with_a_huge_nodata_value_compute_no_overflow(tmp_path):
    """float32 nodata of -3.4e38 where only the truth lacks data: the quick-look's error leaves it out before
    squaring (the tests turn the engine's RuntimeWarnings into errors)."""
    nodata = -3.4e38
    truth = textured_scene(40, 40, seed=3)
    truth[:, 5:12, 5:12] = nodata
    paths = [write(tmp_path / f"{name}.tif", image, fine_transform(), nodata=nodata)
             for name, image in (("pred", textured_scene(40, 40, seed=4)), ("truth", truth))]
    report = evaluate(EvaluationRequest(*paths, out_dir=str(tmp_path / "report")))
    assert "quicklook" in report.files and report.valid_pixels == 40 * 40 - 49


def test_plots_leave_pyplot_and_its_backend_alone(tmp_path, monkeypatch):
    """In QGIS the plots are drawn beside other plugins' figures: choosing pyplot's backend chose it for them all."""
    import matplotlib

    monkeypatch.setitem(matplotlib.rcParams, "backend", "svg")  # a program's own choice (QGIS: its Qt backend)
    paths = [write(tmp_path / f"{name}.tif", textured_scene(40, 40, seed=seed), fine_transform())
             for name, seed in (("pred", 4), ("truth", 3))]
    report = evaluate(EvaluationRequest(*paths, out_dir=str(tmp_path / "report")))
    assert set(report.files) >= {"scatter", "quicklook"} and matplotlib.get_backend() == "svg"
    with open(report.files["scatter"], "rb") as png:
        assert png.read(8) == b"\x89PNG\r\n\x1a\n"


MEASURE_RSS = HIGH_WATER + """
import sys
from stf_engine import EvaluationRequest, evaluate
evaluate(EvaluationRequest(sys.argv[1], sys.argv[2], device="cpu"))
print(high_water_mb())
"""


@pytest.mark.slow
def test_memory_is_bounded_by_the_window_not_the_raster(tmp_path):
    """A 2500×2500 pair (whole-array SSIM would hold ~750 MB of temporaries) peaks like a 600×600 one."""
    import subprocess
    import sys

    peaks = {}
    for side in (600, 2500):
        truth = np.full((1, side, side), 2000, dtype=np.int16)
        truth[0, ::7, :] = 2500
        pred = truth.copy()
        pred[0, :, ::5] += 100
        paths = [
            write(tmp_path / f"{name}{side}.tif", array, fine_transform(), nodata=NODATA, dtype="int16",
                  tiled=True, blockxsize=256, blockysize=256, compress="deflate")
            for name, array in (("pred", pred), ("truth", truth))
        ]
        done = subprocess.run([sys.executable, "-c", MEASURE_RSS, *paths], capture_output=True, text=True, check=True)
        peaks[side] = float(done.stdout.strip().splitlines()[-1])
    assert peaks[2500] - peaks[600] < 150, peaks


def test_temperature_is_measured_in_its_own_units_and_range(tmp_path):
    """Yanco LST (kelvin): the peak comes from the data and the unit from the raster, not 'reflectance'."""
    import shutil

    from helpers.paths import TEST_DATA

    truth = tmp_path / "truth_K.tif"
    shutil.copy(TEST_DATA / "yanco_lst" / "Landsat_LST_cloudrm_20160308.tif", truth)
    with rasterio.open(truth, "r+") as dataset:
        dataset.set_band_unit(1, "K")
    prediction = str(TEST_DATA / "yanco_lst" / "MOD11A1_LST_cloudrm_20160308.tif")
    report = evaluate(EvaluationRequest(prediction, str(truth), device="cpu", out_dir=str(tmp_path / "report")))
    assert report.units["rmse"] == "K" and report.units["ad"].startswith("K")
    assert 10 < report.data_range < 40 and report.overall["psnr"] > 0
    assert any("not reflectance" in note for note in report.notes)
    reflectance = evaluate(EvaluationRequest(str(SAMPLE / "L72000306_SZ_B432_30m.tif"),
                                             str(SAMPLE / "L72002311_SZ_B432_30m.tif"), device="cpu"))
    assert reflectance.data_range == 1.0 and reflectance.units["rmse"] == "reflectance"


@pytest.mark.parametrize("flag, value, allowed", [
    ("--data-range", "0", "a finite number > 0"),
    ("--data-range", "-1", "a finite number > 0"),
    ("--data-range", "nan", "a finite number > 0"),
    ("--ratio", "0", "a finite number > 0"),
    ("--ratio", "inf", "a finite number > 0"),
    ("--tile", "-5", "at least 0, a whole number"),
])
def test_cli_refuses_nonsense_numbers_in_one_line(rasters, tmp_path, capsys, flag, value, allowed):
    paths, *_ = rasters
    out = tmp_path / "report"
    code = main(["evaluate", "--pred", paths["pred"], "--truth", paths["truth"], "--out", str(out), flag, value])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"error: {flag} must be {allowed}; got ") and err.count("\n") == 1, err
    assert not out.exists()


def float_rasters(folder: pathlib.Path, **images: np.ndarray) -> dict:
    """float32 GeoTIFFs of (C, H, W) images in `folder`, their paths by name."""
    return {name: write(folder / f"{name}.tif", image.astype(np.float32), fine_transform())
            for name, image in images.items()}


def no_nan(text: str):
    """json.loads hook for NaN and Infinity, which valid JSON lacks."""
    raise AssertionError(f"{text} in JSON")


def test_a_constant_truth_gives_n_a_for_undefined_measures_with_one_warning_and_draws_plots(tmp_path, capsys):
    scene = textured_scene(24, 24, seed=5)
    paths = float_rasters(tmp_path, pred=scene, truth=np.full_like(scene, 0.2))
    out = tmp_path / "report"
    code = main(["evaluate", "--pred", paths["pred"], "--truth", paths["truth"], "--ratio", "8", "--out", str(out)])
    captured = capsys.readouterr()
    constant = [line for line in captured.err.splitlines() if "constant" in line]
    assert code == 0 and len(constant) == 1, captured.err
    assert constant[0].startswith("warning: the truth is constant in every band") and "r2, cc, edge" in constant[0]
    rows = {line.split()[0]: line.split()[1:] for line in captured.out.splitlines() if line.strip()}
    assert rows["r2"] == rows["cc"] == rows["edge"] == ["n/a"] * 4 and "n/a" not in rows["rmse"] + rows["lbp"]
    stored = json.loads((out / "metrics.json").read_text(), parse_constant=no_nan)
    assert [stored["overall"][k] for k in ("r2", "cc", "edge")] == [None] * 3 and stored["overall"]["rmse"] > 0
    for name in ("scatter", "error_histogram", "apa_diagram", "quicklook"):
        assert (out / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_constant_prediction_leaves_cc_undefined_with_one_warning(tmp_path):
    scene = textured_scene(24, 24, seed=5)
    paths = float_rasters(tmp_path, pred=np.full_like(scene, 0.2), truth=scene)
    report = evaluate(EvaluationRequest(paths["pred"], paths["truth"], ratio=8, out_dir=str(tmp_path / "report")))
    assert math.isnan(report.overall["cc"]) and report.overall["r2"] < 0 and report.overall["edge"] == -1.0
    constant = [note for note in report.notes if "constant" in note]
    assert len(constant) == 1 and constant[0].startswith("the prediction is constant") and constant[0].endswith(": cc")
    assert "quicklook" in report.files


def test_values_a_unit_factor_apart_warn_once_naming_both_files_and_the_scale(tmp_path, capsys):
    """Reflectance against values ×10000 stored as floats (so no integer default scale applies)."""
    scene = textured_scene(24, 24, seed=5)
    paths = float_rasters(tmp_path, pred=scene, truth=scene * 1e4)
    assert main(["evaluate", "--pred", paths["pred"], "--truth", paths["truth"], "--ratio", "8"]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if "10^4" in line]
    assert len(lines) == 1 and lines[0].startswith("warning: the prediction (") and "--scale truth=1e-4" in lines[0]
    assert paths["pred"] in lines[0] and paths["truth"] in lines[0]
    scaled = evaluate(EvaluationRequest(paths["pred"], paths["truth"], scales={"truth": 1e-4}, ratio=8))
    assert not [note for note in scaled.notes if "differ by" in note] and scaled.overall["rmse"] < 1e-6
    swapped = evaluate(EvaluationRequest(paths["truth"], paths["pred"], ratio=8))
    assert [note for note in swapped.notes if "differ by about 10^4" in note and "--scale prediction=1e-4" in note]


@pytest.mark.parametrize("factor, said", [(1, []), (1e4, ["differ by about 10^4: check their units and set "
                                                           "--scale truth=1e-4 if the truth holds reflectance ×10^4"])])
def test_a_truth_mostly_0_is_compared_for_units_by_its_other_values(tmp_path, factor, said):
    """Water in a near-infrared band: 0 on most pixels, which no unit factor changes, so they tell nothing."""
    scene = textured_scene(24, 24, seed=5)
    water = np.random.default_rng(3).random(scene.shape[1:]) < 0.7
    paths = float_rasters(tmp_path, pred=scene, truth=np.where(water, 0, scene * factor))
    report = evaluate(EvaluationRequest(paths["pred"], paths["truth"], ratio=8))
    assert [note[note.index("differ by"):] for note in report.notes if "differ by" in note] == said, report.notes


def test_a_report_without_plots_removes_the_earlier_reports_plots_and_nothing_else(tmp_path):
    scene = textured_scene(24, 24, seed=5)
    paths = float_rasters(tmp_path, pred=scene * 1.02, truth=scene)
    out = tmp_path / "report"
    evaluate(EvaluationRequest(paths["pred"], paths["truth"], ratio=8, out_dir=str(out)))
    (out / "photo.png").write_bytes(b"the user's")
    report = evaluate(EvaluationRequest(paths["pred"], paths["truth"], ratio=8, out_dir=str(out), plots=False))
    assert sorted(path.name for path in out.iterdir()) == ["metrics.csv", "metrics.json", "photo.png"]
    assert set(report.files) == {"metrics.json", "metrics.csv"}
    truth = shutil.copy(paths["truth"], out / "scatter.png")  # an input where a plot would be: refused, kept
    with pytest.raises(StfError, match="report file scatter.png would overwrite the truth"):
        evaluate(EvaluationRequest(paths["pred"], str(truth), ratio=8, out_dir=str(out), plots=False))
    assert pathlib.Path(truth).read_bytes() == pathlib.Path(paths["truth"]).read_bytes()


def test_without_matplotlib_the_metrics_are_written_and_the_plots_left_out_with_a_note(tmp_path, monkeypatch):
    """QGIS does not bring matplotlib everywhere: stf:evaluate (plots on by default) failed after measuring, with a
    traceback and no report."""
    scene = textured_scene(24, 24, seed=5)
    paths = float_rasters(tmp_path, pred=scene * 1.02, truth=scene)
    out = tmp_path / "report"
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as in a Python without it
    report = evaluate(EvaluationRequest(paths["pred"], paths["truth"], ratio=8, out_dir=str(out)))
    assert sorted(path.name for path in out.iterdir()) == ["metrics.csv", "metrics.json"]
    assert report.overall["rmse"] > 0
    assert "the plots are left out: matplotlib is not installed in this Python (on Debian or Ubuntu, the package " \
           "python3-matplotlib); the metrics are written" in report.notes


@pytest.mark.parametrize("tile, seams", [("512", False), ("0", False), (None, False), ("32", True)])
def test_the_seam_ratio_is_left_out_without_a_warning_for_one_tile_or_no_tag(tmp_path, capsys, tile, seams):
    """A 70×90 output of an ordinary run (STF_TILE=512, or 0 = whole raster) has no seams to measure, and an untagged
    prediction is another tool's output: nothing is warned of, and the seam ratio is given only for several tiles."""
    scene = textured_scene(70, 90, seed=5)
    paths = float_rasters(tmp_path, pred=scene * 1.02, truth=scene)
    if tile is not None:
        with rasterio.open(paths["pred"], "r+") as dataset:
            dataset.update_tags(STF_TILE=tile)
    out = tmp_path / "report"
    assert main(["evaluate", "--pred", paths["pred"], "--truth", paths["truth"], "--ratio", "8", "--out", str(out),
                 "--no-plots"]) == 0
    captured = capsys.readouterr()
    rows = [line.split()[0] for line in captured.out.splitlines() if line.strip()]
    assert captured.err == "" and ("seam_ratio" in rows) == seams, captured.err
    stored = json.loads((out / "metrics.json").read_text())
    assert stored["notes"] == [] and ("seam_ratio" in stored["overall"]) == seams


def test_the_prediction_and_the_truth_as_one_file_are_refused_in_one_line(rasters, tmp_path, capsys):
    """The same file by its path, another spelling, a symbolic link or a hard link: it would score perfectly."""
    paths, *_ = rasters
    pred = pathlib.Path(paths["pred"])
    symbolic, hard = tmp_path / "link.tif", tmp_path / "hard.tif"
    symbolic.symlink_to(pred)
    hard.hardlink_to(pred)
    out = tmp_path / "report"
    for truth in (pred, pred.parent / ".." / pred.parent.name / pred.name, symbolic, hard):
        code = main(["evaluate", "--pred", paths["pred"], "--truth", str(truth), "--out", str(out)])
        assert code == 2 and capsys.readouterr().err == (
            f"error: the prediction and the truth are the same file ({truth}); give as truth the fine image observed "
            "at the prediction's date\n")
    assert not out.exists()


def test_sam_of_a_single_band_is_n_a_with_a_note_and_plots_are_drawn(tmp_path, capsys):
    """One band's spectral angle is 0° wherever prediction and truth share a sign, however far apart they are."""
    scene = textured_scene(24, 24, seed=5)[:1]
    paths = float_rasters(tmp_path, pred=scene * 1.5, truth=scene)
    out = tmp_path / "report"
    code = main(["evaluate", "--pred", paths["pred"], "--truth", paths["truth"], "--ratio", "8", "--out", str(out)])
    captured = capsys.readouterr()
    rows = {line.split()[0]: line.split()[1:] for line in captured.out.splitlines() if line.strip()}
    assert code == 0 and rows["sam"] == ["n/a"] and float(rows["rmse"][-1]) > 0
    [note] = [line for line in captured.err.splitlines() if "SAM" in line]
    assert note.startswith("warning: SAM needs at least 2 bands") and note.endswith("(n/a)")
    stored = json.loads((out / "metrics.json").read_text(), parse_constant=no_nan)
    assert stored["overall"]["sam"] is None and stored["overall"]["rmse"] > 0
    with open(out / "metrics.csv") as handle:
        assert [row["sam"] for row in csv.DictReader(handle)] == ["", ""]
    for name in ("scatter", "error_histogram", "apa_diagram", "quicklook"):
        assert (out / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def all_nodata(path: str, rows=slice(None), name="empty") -> str:
    """A copy of `path` with `rows` (all of them by default) set to nodata, named `name` after it."""
    with rasterio.open(path) as source:
        data = source.read()
    data[:, rows] = NODATA
    return write(path.replace(".tif", f"_{name}.tif"), data, fine_transform(), nodata=NODATA, dtype="int16")


def test_no_valid_pixel_in_common_names_the_file_that_holds_none_or_says_the_areas_do_not_meet(rasters, capsys):
    paths, *_ = rasters
    empty_pred, empty_truth = all_nodata(paths["pred"]), all_nodata(paths["truth"])
    top, bottom = all_nodata(paths["pred"], slice(35, None), "top"), all_nodata(paths["truth"], slice(35), "bottom")
    cases = [
        (empty_pred, paths["truth"], f"the prediction {empty_pred} holds no valid pixel (all nodata or masked); "
                                     "check its nodata value and mask, or give another prediction"),
        (paths["pred"], empty_truth, f"the truth {empty_truth} holds no valid pixel where the prediction lies (all "
                                     "nodata or masked); check its nodata value and mask, or give another truth"),
        (top, bottom, f"the prediction {top} and the truth {bottom} share no valid pixel: their valid areas do not "
                      "meet; give a truth with data where the prediction has data"),
    ]
    for pred, truth, said in cases:
        assert main(["evaluate", "--pred", pred, "--truth", truth, "--ratio", "8"]) == 2
        assert capsys.readouterr().err == f"error: {said}\n"


def test_a_ratio_below_1_is_refused_with_its_inverse():
    """ERGAS is often written with h/l, the fine pixel size over the coarse: 30/500 would scale ERGAS 280× down."""
    with pytest.raises(StfError, match=r"^--ratio is the coarse pixel size over the fine one .* got 0.06: give its "
                                       r"inverse, 16.67$"):
        EvaluationRequest("p.tif", "t.tif", ratio=0.06)
    assert EvaluationRequest("p.tif", "t.tif", ratio=500 / 30).ratio == 500 / 30
