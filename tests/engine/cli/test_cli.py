"""`stf fuse` and `stf info`: bad input gives one `error:` line, exit code 2 and no output file."""
import logging
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import rasterio
import torch
from rasterio.transform import from_origin

from stf_engine.cli import main
from stf_engine.cli.common import warning_lines
from devkit.synthetic import ORIGIN, fine_transform, scene_set, write
from helpers.option_cases import BAD_OPTIONS
from helpers.paths import TEST_DATA


@pytest.fixture
def scene(tmp_path):
    return scene_set(tmp_path, height=48, width=48, bands=3, ratio=4, dtype="int16")


def run_cli(args, capsys):
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_user_error(code, err, out_path, text):
    lines = [line for line in err.splitlines() if line.strip() and "\r" not in line]
    error_lines = [line for line in lines if line.startswith("error: ")]
    assert code == 2
    assert len(error_lines) == 1 and text in error_lines[0], err
    assert "Traceback" not in err
    assert not os.path.exists(out_path)
    assert not [f for f in os.listdir(os.path.dirname(out_path)) if ".partial" in f]


def test_fuse_writes_output_and_summary(scene, tmp_path, capsys):
    out = tmp_path / "fused.tif"
    code, stdout, _ = run_cli(["fuse", "--coarse", scene["coarse"], "--fine", scene["fine"], "--coarse-ref",
                               scene["coarse_ref"], "--out", str(out), "--tile", "16", "--method", "delta",
                               "--error-maps", str(tmp_path / "maps")], capsys)
    assert code == 0 and out.exists()
    device = "cuda" if torch.cuda.is_available() else "cpu"  # the default device, auto, takes a GPU when there is one
    assert f"delta on {device}" in stdout and "9 tile(s)" in stdout and str(out) in stdout
    assert (tmp_path / "maps" / "coarse_residual_rms.tif").exists()


def test_info_lists_methods_inputs_halo_and_devices(capsys):
    code, stdout, _ = run_cli(["info"], capsys)
    assert code == 0
    for name in ("starfm", "delta", "cubic"):
        assert f"  {name}" in stdout
    assert "requires: coarse target, fine reference" in stdout and "halo at ratio 8" in stdout
    assert "devices: cpu" in stdout


@pytest.mark.parametrize("ratio", ["0", "-5"])
def test_info_refuses_a_ratio_below_one_in_one_line_and_nothing_else(capsys, ratio):
    code, stdout, err = run_cli(["info", "--ratio", ratio], capsys)
    said = f"error: the coarse/fine ratio must be at least 1, a whole number; got {ratio}"
    assert code == 2 and stdout == "" and err.strip() == said


def test_info_given_a_file_says_it_takes_none_and_what_does(capsys, tmp_path):
    """`gdalinfo FILE` and `rio info FILE` describe a file; a GIS user may try the same here."""
    code, stdout, err = run_cli(["info", str(tmp_path / "F1.tif")], capsys)
    said = (f"error: stf info takes no file ({tmp_path / 'F1.tif'}): it lists the methods and the devices found; "
            f"inspect a raster with gdalinfo")
    assert code == 2 and stdout == "" and err.strip() == said


def test_fuse_auto_prints_its_validation_table_and_marks_what_it_ran(tmp_path, capsys):
    """As README and `FusionResult.validation` promise: before, the table was only in the output's STF_AUTO tag."""
    large = scene_set(tmp_path, height=128, width=128, bands=2, ratio=4)
    code, stdout, err = run_cli(["fuse", "--method", "auto", "--coarse", large["coarse"], "--fine", large["fine"],
                                 "--coarse-ref", large["coarse_ref"], "--out", str(tmp_path / "auto.tif")], capsys)
    assert code == 0, err
    lines = stdout.splitlines()
    start = lines.index("auto's validation (RMSE at reduced resolution, best first):") + 1
    table = [line for line in lines[start:] if line.startswith("  ")]
    ran = stdout.splitlines()[0].split(" on ")[0]
    rows = [row.split() for row in table]
    assert [row[0] for row in rows if row[-1] == "ran"] == [ran] and "delta" in [row[0] for row in rows]
    assert [float(row[1]) for row in rows] == sorted(float(row[1]) for row in rows)
    # why it ran that: a note after the table, or a warning when it is delta, which adds nothing
    why = (lines[start + len(table):] if ran != "delta" else
           [line.removeprefix("warning: ") for line in err.splitlines() if "auto takes" in line])
    assert len(why) == 1 and "auto takes" in why[0], (stdout, err)
    assert ("auto takes" in err) == (ran == "delta")


def bad_inputs(scene, tmp_path):
    text = tmp_path / "not_a_raster.tif"
    text.write_text("hello")
    far = write(tmp_path / "far.tif", np.ones((3, 12, 12), "float32"), from_origin(ORIGIN[0] + 1e6, ORIGIN[1], 120, 120))
    two_bands = write(tmp_path / "two.tif", np.ones((2, 12, 12), "float32"), fine_transform(120))
    empty = write(tmp_path / "empty.tif", np.full((3, 12, 12), -5, "int16"), fine_transform(120), nodata=-5)
    nan = np.ones((3, 12, 12), "float32")
    nan[0, 3, 3] = np.inf
    nonfinite = write(tmp_path / "inf.tif", nan, fine_transform(120))
    fine = scene["fine"]
    return {
        "missing": (["--coarse", str(tmp_path / "nope.tif"), "--fine", fine], "file not found"),
        "unreadable": (["--coarse", str(text), "--fine", fine], "not a readable raster"),
        "no overlap": (["--coarse", far, "--fine", fine], "does not overlap"),
        "band mismatch": (["--coarse", two_bands, "--fine", fine], "has 2 bands but the fine reference has 3"),
        "bad band map": (["--coarse", scene["coarse"], "--fine", fine, "--bands", "1,2"], "band mismatch"),
        "all nodata": (["--coarse", empty, "--fine", fine], "no valid pixels"),
        "nan/inf": (["--coarse", nonfinite, "--fine", fine, "--method", "cubic"], "NaN or infinite"),
        "unknown method": (["--coarse", scene["coarse"], "--fine", fine, "--method", "magic"], "unknown method"),
    }


@pytest.mark.parametrize(
    "case", ["missing", "unreadable", "no overlap", "band mismatch", "bad band map", "all nodata", "nan/inf", "unknown method"]
)
def test_bad_input_is_one_line_exit_2_and_no_output(scene, tmp_path, capsys, case):
    args, text = bad_inputs(scene, tmp_path)[case]
    out = str(tmp_path / "out" / "fused.tif")
    os.makedirs(os.path.dirname(out))
    code, _, err = run_cli(["fuse", *args, "--out", out], capsys)
    assert_user_error(code, err, out, text)


def test_geographic_crs_warns_but_works(tmp_path, capsys):
    data = str(TEST_DATA / "yanco_lst")
    out = tmp_path / "lst.tif"
    code, _, err = run_cli(["fuse", "--coarse", f"{data}/MOD11A1_LST_cloudrm_20160308.tif",
                            "--fine", f"{data}/Landsat_LST_cloudrm_20160205.tif",
                            "--coarse-ref", f"{data}/MOD11A1_LST_cloudrm_20160205.tif",
                            "--method", "delta", "--out", str(out)], capsys)
    assert code == 0, err
    assert "warning: the fine reference is in a geographic CRS" in err
    with rasterio.open(out) as src:
        assert src.crs.to_epsg() == 4326 and src.dtypes[0] == "float32"


def test_stf_command_runs_as_a_program(tmp_path):
    completed = subprocess.run([sys.executable, "-m", "stf_engine", "fuse", "--coarse", str(tmp_path / "x.tif"),
                                "--fine", str(tmp_path / "y.tif"), "--out", str(tmp_path / "o.tif")],
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == 2
    assert completed.stderr.strip().splitlines()[-1].startswith("error: coarse target: file not found")


def test_a_report_standard_output_cannot_take_is_no_bug_report(scene, tmp_path):
    """A pipe whose reader left (`stf … | head`) ends quietly with SIGPIPE's status, as the shell's own tools do; a
    full disk is one line. Before, both were a traceback calling it a bug in STF, after the work was done."""
    command = [sys.executable, "-m", "stf_engine", "fuse", "--coarse", scene["coarse"], "--fine", scene["fine"],
               "--method", "delta", "--out", str(tmp_path / "fused.tif")]
    gone = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    gone.stdout.close()  # the reader leaves before the report is written
    status, err = gone.wait(timeout=120), gone.stderr.read()
    gone.stderr.close()
    assert (status, err) == (141, "")
    with open("/dev/full", "w") as full:
        completed = subprocess.run(command[:-1] + [str(tmp_path / "again.tif")], stdout=full, stderr=subprocess.PIPE,
                                   text=True, timeout=120)
    assert completed.returncode == 2
    assert completed.stderr.splitlines() == [
        "error: cannot write to standard output (No space left on device); the command's report is lost"]
    assert (tmp_path / "fused.tif").is_file() and (tmp_path / "again.tif").is_file()


@pytest.mark.parametrize("method, option, text", BAD_OPTIONS)
def test_bad_method_options_are_one_line_naming_the_valid_ones(scene, tmp_path, capsys, method, option, text):
    out = tmp_path / "fused.tif"
    code, _, err = run_cli(["fuse", "--coarse", scene["coarse"], "--fine", scene["fine"], "--method", method,
                            "--option", option, "--out", str(out)], capsys)
    assert_user_error(code, err, str(out), text)


def test_an_engine_bug_shows_its_traceback_and_says_so(scene, tmp_path, capsys, monkeypatch):
    """Only StfError is a user error: anything else is a bug, exit 1 with the traceback (not one line)."""
    from stf_engine.cli import fuse as fuse_command

    def broken(request, progress=None, cancel=None):
        raise ValueError("an internal numpy problem")

    monkeypatch.setattr(fuse_command, "fuse", broken)
    code, _, err = run_cli(["fuse", "--coarse", scene["coarse"], "--fine", scene["fine"], "--out",
                            str(tmp_path / "o.tif")], capsys)
    assert code == 1
    assert "Traceback" in err and "ValueError: an internal numpy problem" in err and "this is a bug" in err


@pytest.mark.parametrize("flag, value, allowed", [
    ("--steps", "0", "(steps_per_epoch) must be at least 1"),
    ("--patience", "-1", "must be at least 1"),
    ("--epochs", "0", "must be at least 1"),
    ("--patch", "0", "must be at least 8"),
    ("--batch", "0", "must be at least 1"),
    ("--lr", "nan", "must be a finite number > 0"),
    ("--lr", "inf", "must be a finite number > 0"),
    ("--minutes", "-1", "must be a finite number > 0"),
    ("--minutes", "nan", "must be a finite number > 0"),
])
def test_train_refuses_nonsense_numbers_in_one_line(scene, tmp_path, capsys, flag, value, allowed):
    out = tmp_path / "model.pt"
    code, _, err = run_cli(["train", "--model", "ganstfm", "--coarse", scene["coarse"], "--fine", scene["fine"],
                            "--coarse-ref", scene["coarse_ref"], "--out", str(out), flag, value], capsys)
    assert_user_error(code, err, str(out), f"{flag} {allowed}")


@pytest.mark.parametrize("shift, text", [
    ("nan", "--coarse-shift expects two comma-separated numbers, got 'nan'"),
    ("nan,0", "--coarse-shift must be two finite numbers DX,DY"),
    ("1,inf", "--coarse-shift must be two finite numbers DX,DY"),
])
def test_a_coarse_shift_must_be_two_finite_numbers(scene, tmp_path, capsys, shift, text):
    out = tmp_path / "fused.tif"
    code, _, err = run_cli(["fuse", "--coarse", scene["coarse"], "--fine", scene["fine"], "--coarse-ref",
                            scene["coarse_ref"], "--method", "delta", "--out", str(out), f"--coarse-shift={shift}"],
                           capsys)
    assert_user_error(code, err, str(out), text)


@pytest.mark.parametrize("shift", ["-1.5,-2", "-1.5, -2", "-15e-1,-2"])
def test_a_negative_coarse_shift_is_a_value_after_a_space_as_register_prints_it(scene, tmp_path, capsys, shift):
    """argparse took '-1.5,-2' for a flag ('expected one argument'), so the shift `--register` printed could not be
    given back as the README writes it."""
    out = tmp_path / "fused.tif"
    code, printed, err = run_cli(["fuse", "--coarse", scene["coarse"], "--fine", scene["fine"], "--coarse-ref",
                                  scene["coarse_ref"], "--method", "delta", "--out", str(out), "--coarse-shift", shift],
                                 capsys)
    assert code == 0, err
    assert "coarse rasters shifted by -1.50 px east, -2.00 px south" in printed


def all_nodata_fuse(scene, tmp_path):
    """A fuse command that fails in the engine after its progress bar is up."""
    empty = write(tmp_path / "empty.tif", np.full((3, 12, 12), -5, "int16"), fine_transform(120), nodata=-5)
    return ["fuse", "--coarse", empty, "--fine", scene["fine"], "--out", str(tmp_path / "fused.tif")]


def test_no_progress_bar_when_stderr_is_no_terminal(scene, tmp_path, capsys):
    """A captured log holds whole lines: no bar fragments ending in \\r, nor bar text before `error:`."""
    code, _, err = run_cli(all_nodata_fuse(scene, tmp_path), capsys)
    lines = err.splitlines()
    assert code == 2 and "\r" not in err
    assert len(lines) == 1 and lines[0].startswith("error: ") and "no valid pixels" in lines[0], err


def test_the_progress_bar_shows_in_a_terminal(scene, tmp_path, capsys, monkeypatch):
    """In a terminal the bar is drawn, and cleared before the error line."""
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    code, _, err = run_cli(all_nodata_fuse(scene, tmp_path), capsys)
    assert code == 2 and "stf fuse (starfm):" in err and "\r" in err
    assert err.split("\r")[-1].startswith("error: ")  # the bar is cleared before the error line


@pytest.mark.parametrize("args, said", [
    (["fuse", "--tile", "abc"], "--tile: 'abc' is not a whole number"),
    (["fuse", "--batch", "1.5"], "--batch: '1.5' is not a whole number"),
    (["fuse", "--coarse-res", "fine"], "--coarse-res: 'fine' is not a number"),
    (["fuse-series", "--max-gap", "soon"], "--max-gap: 'soon' is not a whole number"),
    (["train", "--lr", "fast"], "--lr: 'fast' is not a number"),
    (["evaluate", "--threads", "all"], "--threads: 'all' is not a whole number"),
    (["info", "--ratio", "1.5"], "--ratio: '1.5' is not a whole number"),
    (["fuse-series", "--series", "nowhere.csv", "--out", "out", "--dates="], "--dates: the value is empty; give one"),
    (["fuse-series", "--series", "nowhere.csv", "--out", "out", "--from="], "--from: the value is empty; give one"),
    (["train", "--model", "ganstfm", "--out", "m.pt", "--targets="], "--targets: the value is empty; give one"),
    (["bogus"], "COMMAND: invalid choice: 'bogus' (choose from 'fuse', 'fuse-series', 'evaluate', 'info', 'train')"),
])
def test_a_flag_argparse_refuses_is_one_error_line_without_the_usage_block(capsys, args, said):
    """A number flag given text, an empty value (not read as the flag left out) or an unknown command."""
    assert run_cli(args, capsys) == (2, "", f"error: {said}\n")


def test_a_date_list_that_names_no_date_is_refused_not_read_as_every_date(capsys):
    said = "error: --targets ',' names no date; give dates such as 2020-03-08,2020-03-17\n"
    assert run_cli(["train", "--model", "ganstfm", "--out", "m.pt", "--targets", ","], capsys) == (2, "", said)


def test_a_warning_logged_twice_in_one_command_is_one_line(capsys):
    """Two steps reading the same series list log its warnings twice; the command prints each once."""
    with warning_lines():
        for _ in range(2):
            logging.getLogger("stf_engine").warning("series list s.csv, row 3: 2020-03-10 has no coarse or fine image")
    assert capsys.readouterr().err == "warning: series list s.csv, row 3: 2020-03-10 has no coarse or fine image\n"


def test_with_a_truth_the_summary_gives_the_rmse_against_it(scene, tmp_path, capsys):
    """The error maps hold the error pixel by pixel; the one number a user with a truth asks for was missing."""
    out = tmp_path / "fused.tif"
    code, printed, err = run_cli(["fuse", "--coarse", scene["coarse"], "--fine", scene["fine"], "--coarse-ref",
                                  scene["coarse_ref"], "--method", "delta", "--out", str(out), "--truth",
                                  scene["truth"], "--error-maps", str(tmp_path / "maps")], capsys)
    assert code == 0, err
    with rasterio.open(out) as fused, rasterio.open(scene["truth"]) as truth:
        error = fused.read(masked=True).astype(np.float64) * fused.scales[0] - truth.read().astype(np.float64) * 1e-4
    said = float(re.search(r"^RMSE against the truth: ([\d.e-]+)$", printed, re.M).group(1))
    assert said == pytest.approx(float(np.sqrt(np.mean(error ** 2))), rel=1e-3)
