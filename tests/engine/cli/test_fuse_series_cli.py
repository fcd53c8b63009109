"""`stf fuse-series`: the closing table on the real Kranj series, and one `error:` line (exit 2) for bad input,
with nothing left in the output folder; each warning once; an interrupted run names the dates it kept; the work
folder of a killed run goes with the next run."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS

from devkit.series import iso, kranj_series, landsat, modis, synthetic_series
from devkit.synthetic import UTM49N, fine_transform, write
from stf_engine import SeriesRequest, StfError, fuse_series, list_series
from stf_engine.cli import main
from stf_engine.cli.main import Stopped
from stf_engine.core.outputs import lock_path, output_lock
from stf_engine.core.progress import Warnings
from stf_engine.series import run as series_run
from stf_engine.raster.grid import Grid
from stf_engine.raster.writer import GeoTiffWriter, geotiff_profile
from stf_engine.series.work import WORK_PREFIX

KRANJ_ARGS = ["--coarse-res", "480", "--scale", "fine=1e-4"]


def run(args, capsys):
    code = main(["fuse-series"] + args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_fuse_series_prints_a_row_per_date_and_writes_them(tmp_path, capsys):
    csv = kranj_series(tmp_path, hide=(77,))
    out = tmp_path / "out"
    code, stdout, _ = run(["--series", str(csv), "--out", str(out), "--from", "2020-03-16", "--to", "2020-03-17",
                           "--method", "delta"] + KRANJ_ARGS, capsys)
    assert code == 0
    rows = [line for line in stdout.splitlines() if line.startswith("2020-")]
    assert [row.split()[:2] for row in rows] == [[iso(76), "fused"], [iso(77), "fused"]]
    assert "2020-03-08 + 2020-04-02" in rows[0]
    assert sorted(os.listdir(out)) == ["fused_2020-03-16.tif", "fused_2020-03-17.tif", "reliability_2020-03-16.tif",
                                       "reliability_2020-03-17.tif", "series.json", "series.vrt"]


@pytest.mark.parametrize("extra, text", [
    (["--mask-rule", "fine=cloudy"], "unknown mask rule 'cloudy'"),
    (["--mask-rule", "pan=landsat-qa"], "pan"),
    (["--dates", "2020-05-05"], "2020-05-05 have no coarse image"),
    (["--dates", " , "], "--dates ' , ' names no date"),
    (["--from", "March"], "--from: 'March' is not a date"),
    (["--to", "2020-02-30"], "--to: '2020-02-30' is not a date"),
    (["--max-gap", "0"], "max-gap"),
    (["--date-batch", "0"], "date-batch must be at least 1"),
    (["--method", "nonsense"], "nonsense"),
    (["--scale", "fine=1e-4:x"], "fine=1e-4:x"),
])
def test_bad_series_arguments_are_one_error_line(tmp_path, capsys, extra, text):
    csv = kranj_series(tmp_path)
    code, _, err = run(["--series", str(csv), "--out", str(tmp_path / "out")] + extra, capsys)
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 2 and len(errors) == 1 and text in errors[0], err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists() or not os.listdir(tmp_path / "out")


def test_a_damaged_mask_names_its_date_and_leaves_no_output(tmp_path, capsys):
    broken = tmp_path / "mask_068.tif"
    broken.write_bytes(b"II*\x00" + b"\x00" * 64)
    csv = kranj_series(tmp_path, hide=(77,), fine_masks={68: broken})
    out = tmp_path / "out"
    code, _, err = run(["--series", str(csv), "--out", str(out), "--dates", iso(77)] + KRANJ_ARGS, capsys)
    assert code == 2 and "fine mask of 2020-03-08" in err and "damaged" in err
    assert not out.exists()  # the run made it, and removes it with nothing in it


def test_a_missing_series_or_one_that_is_no_csv_is_one_line(tmp_path, capsys):
    code, _, err = run(["--series", str(tmp_path / "nowhere.csv"), "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and "series not found" in err
    raster = modis(68)  # picked with the file dialog's "All files"
    code, _, err = run(["--series", str(raster), "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and err.startswith(f"error: {raster} is not a CSV series list (it is not UTF-8 text: a raster,")
    assert "codec" not in err
    assert err.rstrip().endswith("give a CSV with the columns date, coarse, fine, or a folder of dated rasters")


def test_each_warning_is_printed_once_and_a_dates_own_name_their_date(tmp_path, capsys):
    """Without --scale and --coarse-res the series warns about units and the coarse pixel size once, from its
    first pair: not again for each date's fusion of the same images."""
    csv = kranj_series(tmp_path, hide=(77,))
    code, _, err = run(["--series", str(csv), "--out", str(tmp_path / "out"), "--dates", f"{iso(76)},{iso(77)}",
                        "--method", "delta"], capsys)
    lines = re.findall(r"warning: ([^\r\n]*)", err)
    assert code == 0 and len(lines) == len(set(lines)), "\n".join(lines)
    assert sum("the fine reference's pixel size" in line for line in lines) == 1
    assert sum("check units and set --scale" in line for line in lines) == 1, "\n".join(lines)


def test_a_date_whose_own_coarse_image_is_in_other_units_is_warned_of_by_its_date(tmp_path, capsys):
    with rasterio.open(modis(76)) as coarse:
        profile, values = coarse.profile, coarse.read().astype(np.float32) * 10000
    profile.update(dtype="float32", nodata=None)
    with rasterio.open(tmp_path / "modis_076_x10000.tif", "w", **profile) as scaled:
        scaled.write(values)
    csv = kranj_series(tmp_path, hide=(77,), coarse={76: tmp_path / "modis_076_x10000.tif"})
    code, _, err = run(["--series", str(csv), "--out", str(tmp_path / "out"), "--dates", f"{iso(75)},{iso(76)}",
                        "--method", "delta"] + KRANJ_ARGS, capsys)
    units = [line for line in err.splitlines() if "check units and set --scale" in line]
    assert code == 0 and units and all(line.startswith(f"warning: {iso(76)}: ") for line in units), err


def test_a_run_into_a_folder_fused_with_other_settings_is_refused_unless_it_fuses_every_date_again(tmp_path, capsys):
    """The folder holds one fusion: other settings are refused even for dates this run does not ask for, and
    --overwrite must ask for every date in the folder."""
    csv, out = kranj_series(tmp_path, hide=(77,)), tmp_path / "out"
    first = ["--series", str(csv), "--out", str(out), "--method", "delta"] + KRANJ_ARGS
    assert run(first + ["--dates", iso(70)], capsys)[0] == 0
    code, printed, err = run(first + ["--dates", f"{iso(70)},{iso(71)}"], capsys)  # the same settings: resumes
    assert code == 0 and f"{iso(70)}  kept" in printed
    other = ["--series", str(csv), "--out", str(out), "--method", "starfm", "--coarse-res", "480", "--scale",
             "fine=2e-4"]
    before = sorted(os.listdir(out))
    said = (f'error: the 2 date(s) already fused in {out} used other settings (method "delta" → "starfm"; scales '
            f'{{"fine_reference": 0.0001, "fine_reference_2": 0.0001}} → '
            f'{{"fine_reference": 0.0002, "fine_reference_2": 0.0002}})')
    code, _, err = run(other + ["--dates", f"{iso(70)},{iso(71)}"], capsys)
    assert code == 2 and err.strip().splitlines()[-1] == (
        f"{said}; add --overwrite to fuse them again with these, or choose another output folder")
    for asked in ([], ["--overwrite"]):  # a date range beside the folder's, or one of its dates fused again
        code, _, err = run(other + ["--dates", f"{iso(71)},{iso(72)}"] + asked, capsys)
        assert code == 2 and err.strip().splitlines()[-1] == (
            f"{said}, and this run does not ask for 1 date of them ({iso(70)}); to fuse them all again with these, "
            f"ask for every date in the folder with --overwrite, or choose another output folder")
    assert sorted(os.listdir(out)) == before
    assert run(other + ["--dates", f"{iso(70)},{iso(71)},{iso(72)}", "--overwrite"], capsys)[0] == 0
    assert {r["method"] for r in json.loads((out / "series.json").read_text())["dates"]} == {"starfm"}


def test_a_stopped_overwrite_leaves_its_dates_to_fuse_when_run_again_without_it(tmp_path, capsys, monkeypatch):
    csv, out = kranj_series(tmp_path, hide=(77,)), tmp_path / "out"
    dates = ",".join(iso(day) for day in (70, 71, 72))
    args = ["--series", str(csv), "--out", str(out), "--dates", dates] + KRANJ_ARGS
    assert run(args + ["--method", "delta"], capsys)[0] == 0
    fuse_dates = series_run.fuse_dates

    def stopped_at_the_second(requests, *rest):
        if iso(71) in requests[0].output:
            raise KeyboardInterrupt()
        return fuse_dates(requests, *rest)

    monkeypatch.setattr(series_run, "fuse_dates", stopped_at_the_second)
    code, _, err = run(args + ["--method", "starfm", "--overwrite"], capsys)
    assert code == 130 and err.splitlines()[-1].endswith("run again without --overwrite to fuse the 2 unfinished")
    records = {r["date"]: r for r in json.loads((out / "series.json").read_text())["dates"]}
    assert [records[iso(day)]["status"] for day in (70, 71, 72)] == ["fused", "outdated", "outdated"]
    monkeypatch.setattr(series_run, "fuse_dates", fuse_dates)
    code, printed, err = run(args + ["--method", "starfm"], capsys)
    assert code == 0, err
    assert [line.split()[1] for line in printed.splitlines() if line.startswith("2020-")] == ["kept", "fused", "fused"]
    for day in (70, 71, 72):
        with rasterio.open(out / f"fused_{iso(day)}.tif") as fused:
            assert fused.tags()["STF_METHOD"] == "starfm"


def test_the_manifest_and_stack_describe_every_date_in_the_folder(tmp_path, capsys):
    csv, out = kranj_series(tmp_path, hide=(77,)), tmp_path / "out"
    args = ["--series", str(csv), "--out", str(out), "--method", "delta"] + KRANJ_ARGS
    for day in (70, 71, 70):  # two runs of one date each, then one that keeps its date
        assert run(args + ["--dates", iso(day)], capsys)[0] == 0
    manifest = json.loads((out / "series.json").read_text())
    assert [(r["date"], r["status"]) for r in manifest["dates"]] == [(iso(70), "kept"), (iso(71), "kept")]
    assert all(r["expected_error"] > 0.001 and r["references"] for r in manifest["dates"])
    assert manifest["validation"]["cross_predictions"]  # kept from the runs that fused
    with rasterio.open(out / "series.vrt") as stack, rasterio.open(out / f"fused_{iso(70)}.tif") as fused:
        assert stack.count == 2 * fused.count
        assert stack.descriptions[fused.count].startswith(iso(71))
        assert stack.scales == fused.scales * 2 and fused.scales[0] == pytest.approx(1e-4)  # as the images read
        assert np.array_equal(stack.read(1), fused.read(1), equal_nan=True)


def test_a_registered_series_says_its_shift_and_keeps_it_in_the_manifest(tmp_path, capsys):
    csv, out = kranj_series(tmp_path, hide=(77,)), tmp_path / "out"
    args = ["--series", str(csv), "--out", str(out), "--method", "delta", "--dates", iso(70), "--register"]
    for _ in range(2):  # fusing the date, then keeping it
        code, printed, err = run(args + KRANJ_ARGS, capsys)
        shift = json.loads((out / "series.json").read_text())["coarse_shift_px"]
        assert code == 0 and shift != [0.0, 0.0], err
        assert f"coarse rasters shifted by {shift[0]:+.2f} px east, {shift[1]:+.2f} px south" in printed


def test_auto_on_a_scene_too_small_to_validate_says_so_once_for_the_series(tmp_path, capsys):
    csv = synthetic_series(tmp_path, side=96, bands=2, dates=6, fine_dates=2, ratio=16)
    code, printed, err = run(["--series", str(csv), "--out", str(tmp_path / "out")], capsys)
    said = [line for line in err.splitlines() if "too few to validate" in line]
    assert code == 0 and len(said) == 1, err
    assert said[0].startswith("warning: the scene holds data in fewer than 16×16 coarse pixels"), err
    assert {line.split()[-6] for line in printed.splitlines() if line.startswith("2021-")} == {"delta"}


def test_a_date_whose_files_in_the_series_list_changed_is_not_kept_silently(tmp_path, capsys):
    out = tmp_path / "out"
    args = ["--out", str(out), "--method", "delta", "--dates", f"{iso(76)},{iso(77)}"] + KRANJ_ARGS
    assert run(["--series", str(kranj_series(tmp_path, hide=(77,)))] + args, capsys)[0] == 0
    (tmp_path / "now").mkdir()
    now = ["--series", str(kranj_series(tmp_path / "now"))] + args  # 2020-03-17 now has its own Landsat image
    code, _, err = run(now, capsys)
    assert code == 2 and err.strip().splitlines()[-1] == (
        f"error: the series list gives other files for 2 date(s) already fused in {out} ({iso(76)}, {iso(77)}: it "
        f"now lists {landsat(77)}); add --overwrite to fuse them again (asking for those dates only keeps the "
        f"others), or choose another output folder")
    code, printed, err = run(now + ["--overwrite"], capsys)
    assert code == 0, err
    row = next(line for line in printed.splitlines() if line.startswith(iso(77)))
    assert row.split()[-1] != "—"  # scored against its own fine image now


def test_a_mask_that_covers_part_of_the_grid_says_so_once(tmp_path, capsys):
    with rasterio.open(landsat(77)) as fine:
        corner = write(tmp_path / "mask_077.tif", np.zeros((1, 20, 20), np.uint8), fine.transform, crs=fine.crs)
    csv = kranj_series(tmp_path, fine_masks={77: corner})
    code, _, err = run(["--series", str(csv), "--out", str(tmp_path / "out"), "--dates", f"{iso(75)},{iso(76)}",
                        "--method", "delta"] + KRANJ_ARGS, capsys)
    notes = [line for line in err.splitlines() if "covers" in line]
    assert code == 0 and notes == [f"warning: the fine mask of {iso(77)} covers 20% of the fine grid; the rest "
                                   f"counts as masked: {corner}"]


def test_a_fine_reference_masked_all_over_is_left_out_with_a_warning(tmp_path, capsys):
    with rasterio.open(landsat(68)) as fine:
        cloud = write(tmp_path / "mask_068.tif", np.ones((1, fine.height, fine.width), np.uint8), fine.transform,
                      crs=fine.crs)
    csv = kranj_series(tmp_path, fine_masks={68: cloud})
    code, printed, err = run(["--series", str(csv), "--out", str(tmp_path / "out"), "--dates", iso(75),
                              "--method", "delta"] + KRANJ_ARGS, capsys)
    assert code == 0, err
    assert f"warning: the fine image of {iso(68)} is 0% clear after its mask (under 5%): it is not used as a " \
           f"reference" in err.splitlines()
    assert f"{iso(77)} + {iso(93)}" in printed


def test_a_series_date_carries_its_tiling_like_a_single_run_and_an_output_folder_is_required(tmp_path, capsys):
    csv, out = kranj_series(tmp_path, hide=(77,)), tmp_path / "out"
    code, _, err = run(["--series", str(csv), "--out", str(out), "--dates", iso(70), "--method", "delta",
                        "--tile", "64"] + KRANJ_ARGS, capsys)
    assert code == 0, err
    with rasterio.open(out / f"fused_{iso(70)}.tif") as fused:
        assert fused.tags()["STF_TILE"] == "64"  # what `stf evaluate` finds the tile borders by
    with pytest.raises(StfError, match="no output folder given"):
        fuse_series(SeriesRequest(str(csv), None))


def test_what_the_series_list_skips_is_among_the_runs_warnings(tmp_path):
    csv = kranj_series(tmp_path, hide=(77,))
    csv.write_text(csv.read_text() + "2020100,,\n")  # a date yet to come: no image
    result = fuse_series(SeriesRequest(str(csv), str(tmp_path / "out"), method="delta", dates=(iso(70),),
                                       coarse_resolution=480, scales={"fine_reference": 1e-4}))
    assert any("2020100 has no coarse or fine image; the row is skipped" in w for w in result.warnings)


def test_a_series_list_saved_with_a_byte_order_mark_is_read(tmp_path):
    csv = kranj_series(tmp_path, hide=(77,))
    marked = tmp_path / "excel.csv"
    marked.write_bytes(b"\xef\xbb\xbf" + csv.read_bytes())
    assert list_series(str(marked)) == list_series(str(csv))


def test_a_method_of_one_pair_gets_the_nearer_reference_without_a_warning_about_the_other(tmp_path, capsys):
    out = tmp_path / "out"
    code, _, err = run(["--series", str(kranj_series(tmp_path, hide=(77,))), "--out", str(out), "--dates",
                        ",".join((iso(71), iso(90))), "--method", "fitfc"] + KRANJ_ARGS, capsys)
    assert code == 0 and "does not use" not in err, err
    with rasterio.open(out / f"fused_{iso(71)}.tif") as fused, rasterio.open(out / f"fused_{iso(90)}.tif") as later:
        assert fused.tags()["STF_METHOD"] == later.tags()["STF_METHOD"] == "fitfc"


def test_a_date_whose_fusion_fails_shows_the_warnings_it_gave_before_the_error(tmp_path, capsys, monkeypatch):
    def warned_then_failed(requests, *rest):
        Warnings().add("the coarse target covers 40% of the fine reference")  # as a fusion's checks warn
        raise StfError("cannot write the output: no space left on the device")

    monkeypatch.setattr(series_run, "fuse_dates", warned_then_failed)
    code, _, err = run(["--series", str(kranj_series(tmp_path, hide=(77,))), "--out", str(tmp_path / "out"),
                        "--dates", iso(70), "--method", "delta"] + KRANJ_ARGS, capsys)
    lines = err.splitlines()
    assert code == 2 and lines[-1] == "error: cannot write the output: no space left on the device"
    assert lines[-2] == f"warning: {iso(70)}: the coarse target covers 40% of the fine reference"


def test_a_series_that_fails_midway_says_which_dates_it_kept(tmp_path, capsys, monkeypatch):
    fuse_dates = series_run.fuse_dates

    def failed_at_the_second(requests, *rest):
        if iso(71) in requests[0].output:
            raise StfError("cannot write the output: no space left on the device")
        return fuse_dates(requests, *rest)

    monkeypatch.setattr(series_run, "fuse_dates", failed_at_the_second)
    out = tmp_path / "out"
    code, _, err = run(["--series", str(kranj_series(tmp_path, hide=(77,))), "--out", str(out), "--dates",
                        f"{iso(70)},{iso(71)}", "--method", "delta"] + KRANJ_ARGS, capsys)
    assert code == 2 and err.splitlines()[-1] == (
        f"error: cannot write the output: no space left on the device; the finished date {iso(70)} is kept in {out} "
        f"(see series.json), nothing partial was left; run again to fuse the 1 unfinished")


@pytest.mark.parametrize("stop, at, said, kept", [
    (KeyboardInterrupt(), 1, "interrupted", "the finished date 2020-03-10 is kept"),
    (Stopped(signal.SIGTERM), 2, "stopped by SIGTERM", "the 2 finished dates are kept"),
])
def test_an_interrupted_series_says_which_dates_it_kept(tmp_path, capsys, monkeypatch, stop, at, said, kept):
    dates = tuple(iso(day) for day in (70, 71, 72))
    fuse_dates = series_run.fuse_dates

    def stopped_at_date(requests, *rest):
        if dates[at] in requests[0].output:
            raise stop
        return fuse_dates(requests, *rest)

    monkeypatch.setattr(series_run, "fuse_dates", stopped_at_date)
    out = tmp_path / "out"
    code, _, err = run(["--series", str(kranj_series(tmp_path, hide=(77,))), "--out", str(out), "--dates",
                        ",".join(dates), "--method", "delta"] + KRANJ_ARGS, capsys)
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == (130 if isinstance(stop, KeyboardInterrupt) else 143)
    assert errors == [f"error: {said}; {kept} in {out} (see series.json), nothing partial was left; run again to "
                      f"fuse the {len(dates) - at} unfinished"]
    assert sorted(os.listdir(out)) == sorted([f"{kind}_{date}.tif" for kind in ("fused", "reliability")
                                              for date in dates[:at]] + ["series.json"])
    _, _, err = run(["--series", str(kranj_series(tmp_path, hide=(77,))), "--out", str(out), "--dates",
                     ",".join(dates), "--method", "delta", "--overwrite"] + KRANJ_ARGS, capsys)
    assert "run again without --overwrite to fuse the" in err.splitlines()[-1]


@pytest.mark.parametrize("existing", [True, False], ids=["into a folder there", "into new folders"])
def test_an_interrupted_series_with_no_date_finished_leaves_nothing(tmp_path, capsys, monkeypatch, existing):
    monkeypatch.setattr(series_run, "fuse_dates", lambda *args: (_ for _ in ()).throw(KeyboardInterrupt()))
    out = tmp_path / "there" if existing else tmp_path / "new" / "out"
    if existing:
        out.mkdir()
    code, _, err = run(["--series", str(kranj_series(tmp_path, hide=(77,))), "--out", str(out), "--dates",
                        iso(70), "--method", "delta"] + KRANJ_ARGS, capsys)
    assert code == 130
    assert "error: interrupted; no output was written (a file already at the output path is unchanged)" in err
    assert (os.listdir(out) == []) if existing else not (tmp_path / "new").exists()


STALLED_RUN = """
import sys, time
from stf_engine.cli import main
from stf_engine.series import run
run._prepare = lambda *args: time.sleep(600)
sys.exit(main(sys.argv[1:]))
"""
"""`stf` whose series run stalls with its work folder made, to be killed there."""


def _work_folders(out) -> list:
    return [name for name in os.listdir(out) if name.startswith(WORK_PREFIX)] if out.exists() else []


@pytest.mark.slow
def test_the_work_folder_of_a_killed_run_is_removed_by_the_next_run(tmp_path, capsys):
    out = tmp_path / "out"
    args = ["fuse-series", "--series", str(kranj_series(tmp_path, hide=(77,))), "--out", str(out), "--dates",
            iso(70), "--method", "delta"] + KRANJ_ARGS
    process = subprocess.Popen([sys.executable, "-c", STALLED_RUN] + args, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not _work_folders(out) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.kill()
    process.wait()
    assert len(_work_folders(out)) == 1, "the run never made its work folder"
    assert main(args) == 0, capsys.readouterr().err
    assert _work_folders(out) == [] and not os.path.exists(lock_path(str(out / "series.json")))


def test_the_partial_images_of_a_killed_run_are_removed_by_the_next_run_and_other_files_kept(tmp_path, capsys):
    out = tmp_path / "out"
    grid = Grid(CRS.from_string(UTM49N), fine_transform(), 8, 8)
    writer = GeoTiffWriter(str(out / "fused_2020-03-10.tif"), geotiff_profile(grid, 1, "float32", None), None, {})
    writer.dataset.close()  # the run was killed here: its partial file stays
    left = [os.path.basename(writer.partial), ".reliability_2020-03-10.tif.0a1b2c3d.partial.cog.tif"]
    others = [".notes.tif.0a1b2c3d.partial.tif", ".fused_2020-03-10.tif.partial.tif", "fused_notes.txt"]
    for name in left[1:] + others:
        (out / name).write_bytes(b"data")
    assert set(left + others) <= set(os.listdir(out))
    code, _, err = run(["--series", str(kranj_series(tmp_path, hide=(77,))), "--out", str(out), "--dates", iso(70),
                        "--method", "delta"] + KRANJ_ARGS, capsys)
    assert code == 0, err
    assert not set(left) & set(os.listdir(out)) and set(others) <= set(os.listdir(out))


def test_the_work_folder_of_a_live_run_is_left_alone(tmp_path, capsys):
    out = tmp_path / "out"
    live = out / f"{WORK_PREFIX}live"
    live.mkdir(parents=True)
    with output_lock(str(out / "series.json")):  # what a live run holds while its work folder exists
        code, _, err = run(["--series", str(kranj_series(tmp_path, hide=(77,))), "--out", str(out), "--dates",
                            iso(70), "--method", "delta"] + KRANJ_ARGS, capsys)
        assert code == 2 and "another STF run" in err
    assert live.is_dir()


def test_a_date_with_only_its_own_fine_image_says_that_is_no_reference_for_it(tmp_path):
    """The first and last dates have fine images 15 days apart; within a gap of 10 each has only its own, and 'no
    usable fine reference' read as if the series had no fine image there."""
    csv = synthetic_series(tmp_path / "series", side=64, bands=2, dates=4, fine_dates=2, ratio=4)
    result = fuse_series(SeriesRequest(series=str(csv), output_dir=str(tmp_path / "out"), method="delta", max_gap=10,
                                       coarse_resolution=120))
    notes = {date.date: (date.status, date.note) for date in result.dates}
    first, last = result.dates[0].date, result.dates[-1].date
    for day in (first, last):
        assert notes[day] == ("skipped", "no other fine image within 10 days (its own is no reference for it)")
    assert [status for status, _ in notes.values()].count("fused") == 2
