"""Never lose or corrupt data: inputs are protected, every fault is one `error:` line, nothing partial is left."""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio

from devkit.series import iso, kranj_series, landsat, modis
from devkit.synthetic import fine_transform, scene_set, write
from helpers.paths import SAMPLE
from stf_engine import EvaluationRequest, FusionRequest, StfError, check, evaluate, fuse
from stf_engine.cli import main
from stf_engine.core.outputs import lock_path, output_lock

C2000, F2000 = SAMPLE / "MOD09_2000306_SZ_B214_250m.tif", SAMPLE / "L72000306_SZ_B432_30m.tif"
C2002, F2002 = SAMPLE / "MOD09_2002311_SZ_B214_250m.tif", SAMPLE / "L72002311_SZ_B432_30m.tif"
TINY_TRAINING = ["--patch", "16", "--batch", "2", "--steps", "1", "--epochs", "1", "--device", "cpu"]


def inputs_in(folder: Path, **size) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    return scene_set(folder, bands=3, ratio=4, **size)


@pytest.fixture
def scene(tmp_path):
    return inputs_in(tmp_path / "in", height=48, width=48, dtype="int16")


def digest(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def one_error_line(capsys, code, text) -> str:
    err = capsys.readouterr().err
    lines = [line.split("\r")[-1] for line in err.splitlines() if line.split("\r")[-1].startswith("error: ")]
    assert code == 2, err
    assert len(lines) == 1 and text in lines[0], err
    assert "Traceback" not in err
    return lines[0]


def leftovers(folder) -> list:
    return [name for name in os.listdir(folder) if ".partial" in name or name.endswith(".lock")]


# Outputs that would replace an input ---------------------------------------------------------------------------

def test_output_equal_to_an_input_is_refused_before_any_work(scene, tmp_path, capsys):
    before = digest(scene["fine"])
    mode = os.stat(scene["fine"]).st_mode
    code = main(["fuse", "--coarse", scene["coarse"], "--fine", scene["fine"], "--out", scene["fine"]])
    one_error_line(capsys, code, "error: the output would overwrite the fine reference: ")
    assert digest(scene["fine"]) == before and os.stat(scene["fine"]).st_mode == mode
    link = tmp_path / "link.tif"
    link.symlink_to(scene["coarse"])
    with pytest.raises(StfError, match="would overwrite the coarse target"):
        fuse(FusionRequest(coarse_target=scene["coarse"], fine_reference=scene["fine"], output=str(link)))
    with pytest.raises(StfError, match="would overwrite the truth"):
        check(FusionRequest(coarse_target=scene["coarse"], fine_reference=scene["fine"], output=scene["coarse_ref"],
                            truth=scene["coarse_ref"], error_maps_dir=str(tmp_path / "maps"), method="cubic"))
    assert leftovers(Path(scene["fine"]).parent) == []


def test_an_output_over_a_file_that_an_input_reads_is_refused(scene, tmp_path, capsys):
    """A VRT input reads its source files: an output over one of them would replace what the run reads."""
    source = Path(scene["fine"])
    vrt = tmp_path / "fine.vrt"
    with rasterio.open(source) as dataset:
        vrt.write_text(f"""<VRTDataset rasterXSize="{dataset.width}" rasterYSize="{dataset.height}">
  <SRS>{dataset.crs.to_wkt()}</SRS><GeoTransform>{", ".join(map(str, dataset.transform.to_gdal()))}</GeoTransform>
""" + "".join(f"""  <VRTRasterBand dataType="Int16" band="{band}"><SimpleSource>
    <SourceFilename relativeToVRT="0">{source}</SourceFilename><SourceBand>{band}</SourceBand>
  </SimpleSource></VRTRasterBand>
""" for band in range(1, dataset.count + 1)) + "</VRTDataset>\n")
    before = digest(source)
    code = main(["fuse", "--coarse", scene["coarse"], "--fine", str(vrt), "--out", str(source), "--method", "cubic"])
    one_error_line(capsys, code, f"error: the output would overwrite the fine reference: {source}")
    assert digest(source) == before


def test_an_output_named_like_a_map_in_another_case_is_refused_where_case_is_not_told_apart(scene, tmp_path,
                                                                                                 monkeypatch):
    """On Windows (and macOS by default) maps/RMS_error.tif is the file maps/rms_error.tif: the map would have been
    written over the fused output."""
    import ntpath

    from stf_engine.fusion import check as checks

    monkeypatch.setattr(checks.os.path, "normcase", ntpath.normcase)
    maps = tmp_path / "maps"
    with pytest.raises(StfError, match="is the error-maps folder or one of its maps"):
        check(FusionRequest(coarse_target=scene["coarse"], fine_reference=scene["fine"], error_maps_dir=str(maps),
                            output=str(tmp_path / "MAPS" / "Coarse_Residual.tif")))


def test_links_error_maps_and_series_files_are_never_overwritten(scene, tmp_path, capsys):
    """A hard link of an input, an output named like one of the error maps (or their folder), and a series
    output or checkpoint over a raster the series lists are refused before any work."""
    linked = tmp_path / "linked.tif"
    os.link(scene["fine"], linked)
    with pytest.raises(StfError, match="the output would overwrite the fine reference"):
        check(FusionRequest(coarse_target=scene["coarse"], fine_reference=str(linked), output=scene["fine"]))
    maps = tmp_path / "maps"
    for output in (maps / "coarse_residual.tif", maps):
        code = main(["fuse", "--coarse", scene["coarse"], "--fine", scene["fine"], "--error-maps", str(maps),
                     "--out", str(output)])
        one_error_line(capsys, code, "is the error-maps folder or one of its maps; give the fused image another name")
    assert not maps.exists() or not os.listdir(maps)
    copies = tmp_path / "kranj"
    copies.mkdir()
    coarse, fine = copies / "modis_068.tif", copies / "landsat_077.tif"  # copies: the repo's files stay out of reach
    coarse.write_bytes(modis(68).read_bytes())
    fine.write_bytes(landsat(77).read_bytes())
    csv = kranj_series(copies, coarse={68: coarse}, fine={77: fine})
    before = digest(coarse)
    os.link(coarse, copies / "model.pt")  # the raster under a checkpoint's name
    code = main(["train", "--model", "ganstfm", "--mode", "series", "--series", str(csv), "--coarse-res", "480",
                 "--scale", "fine=1e-4", "--out", str(copies / "model.pt"), *TINY_TRAINING])
    one_error_line(capsys, code, f"the checkpoint would overwrite the coarse image of {iso(68)}")
    out = tmp_path / "series"
    out.mkdir()
    os.link(fine, out / f"fused_{iso(77)}.tif")
    code = main(["fuse-series", "--series", str(csv), "--out", str(out), "--dates", iso(77), "--overwrite",
                 "--coarse-res", "480", "--scale", "fine=1e-4"])
    one_error_line(capsys, code, f"the fused image of {iso(77)} would overwrite the fine image of {iso(77)}")
    assert digest(coarse) == before and digest(out / f"fused_{iso(77)}.tif") == digest(landsat(77))


def test_checkpoint_and_report_never_replace_inputs(tmp_path, capsys):
    code = main(["train", "--model", "ganstfm", "--coarse", str(C2002), "--fine", str(F2000), "--coarse-res", "250",
                 "--out", str(F2000), *TINY_TRAINING])
    one_error_line(capsys, code, f"the checkpoint is a PyTorch file: give it a name ending in .pt, not {F2000}")
    fine = tmp_path / "fine.tif"
    fine.write_bytes(Path(F2000).read_bytes())
    os.link(fine, tmp_path / "fine.pt")  # the raster under a checkpoint's name
    code = main(["train", "--model", "ganstfm", "--coarse", str(C2002), "--fine", str(fine), "--coarse-res", "250",
                 "--out", str(tmp_path / "fine.pt"), *TINY_TRAINING])
    one_error_line(capsys, code, "the checkpoint would overwrite the fine reference")
    assert fine.read_bytes() == Path(F2000).read_bytes()
    report = tmp_path / "report"
    report.mkdir()
    truth = report / "metrics.csv"
    truth.write_bytes(Path(F2002).read_bytes())
    code = main(["evaluate", "--pred", str(F2000), "--truth", str(truth), "--out", str(report)])
    one_error_line(capsys, code, "the report file metrics.csv would overwrite the truth")


# Folders that cannot take the output --------------------------------------------------------------------------

def test_output_that_is_a_folder_or_below_a_file_is_refused_first(scene, tmp_path, capsys):
    folder = tmp_path / "existing"
    folder.mkdir()
    code = main(["fuse", "--coarse", scene["coarse"], "--fine", scene["fine"], "--out", str(folder)])
    one_error_line(capsys, code, "is an existing folder")
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    code = main(["fuse", "--coarse", scene["coarse"], "--fine", scene["fine"], "--out", str(blocker / "out.tif")])
    one_error_line(capsys, code, "is a file")
    code = main(["fuse", "--coarse", scene["coarse"], "--fine", scene["fine"], "--out", str(tmp_path / "o.tif"),
                 "--error-maps", str(blocker)])
    one_error_line(capsys, code, "the error-maps folder")


@pytest.fixture
def mounted(tmp_path):
    """Mount a tmpfs (root only) with the given options; skip cleanly where that is not possible."""
    points = []

    def mount(options: str) -> Path:
        point = tmp_path / f"mount{len(points)}"
        point.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip() or 'not root'})")
        points.append(point)
        return point

    if os.geteuid() != 0:
        pytest.skip("mounting a small disk needs root")
    yield mount
    for point in points:
        subprocess.run(["umount", "-l", str(point)], capture_output=True)


def test_read_only_output_folder_is_refused_before_any_work(scene, mounted, capsys):
    readonly = mounted("size=1m,ro")
    code = main(["fuse", "--coarse", scene["coarse"], "--fine", scene["fine"], "--out", str(readonly / "o.tif")])
    one_error_line(capsys, code, f"cannot write the output into {readonly}: it is not writable")
    code = main(["fuse", "--coarse", scene["coarse"], "--fine", scene["fine"], "--out",
                 str(readonly / "new" / "o.tif")])  # a folder to make, in a folder that takes none
    one_error_line(capsys, code, f"cannot make the output folder {readonly / 'new'} in {readonly}: it is not writable")


def test_disk_full_while_fusing_is_one_line_and_leaves_nothing(tmp_path, mounted, capsys):
    paths = inputs_in(tmp_path / "big", height=400, width=400, dtype="float32")
    disk = mounted("size=256k")
    out = disk / "fused.tif"
    code = main(["fuse", "--coarse", paths["coarse"], "--fine", paths["fine"], "--method", "delta",
                 "--out", str(out), "--error-maps", str(disk / "maps")])
    one_error_line(capsys, code, "no space left on the device")
    assert not out.exists() and leftovers(disk) == []
    assert not (disk / "maps").exists() or os.listdir(disk / "maps") == []


def test_disk_full_while_training_or_evaluating(tmp_path, mounted, capsys):
    disk = mounted("size=64k")
    code = main(["train", "--model", "ganstfm", "--coarse", str(C2002), "--fine", str(F2000), "--coarse-res", "250",
                 "--out", str(disk / "g.pt"), *TINY_TRAINING])
    one_error_line(capsys, code, "no space left on the device")
    assert os.listdir(disk) == []
    (disk / "filler").write_bytes(b"\0" * (60 * 1024))
    code = main(["evaluate", "--pred", str(F2000), "--truth", str(F2002), "--out", str(disk / "report")])
    one_error_line(capsys, code, "no space left on the device")
    assert sorted(os.listdir(disk)) == ["filler"]


# Damaged inputs ---------------------------------------------------------------------------------------------

def truncated(source, folder: Path, fraction: float) -> str:
    data = Path(source).read_bytes()
    path = folder / f"cut{int(fraction * 100)}_{Path(source).name}"
    path.write_bytes(data[: max(8, int(len(data) * fraction))])
    return str(path)


@pytest.mark.parametrize("fraction", [0.02, 0.5, 0.9])
def test_truncated_inputs_are_damaged_files_for_fuse_train_and_evaluate(tmp_path, capsys, fraction):
    fine = truncated(F2000, tmp_path, fraction)
    code = main(["fuse", "--coarse", str(C2002), "--fine", fine, "--out", str(tmp_path / "o.tif")])
    one_error_line(capsys, code, f"error: fine reference: the file is damaged (")
    code = main(["train", "--model", "ganstfm", "--coarse", str(C2002), "--fine", fine, "--coarse-res", "250",
                 "--out", str(tmp_path / "g.pt"), *TINY_TRAINING])
    one_error_line(capsys, code, "fine reference: the file is damaged (")
    code = main(["evaluate", "--pred", fine, "--truth", str(F2002)])
    one_error_line(capsys, code, "prediction: the file is damaged (")
    with pytest.raises(StfError, match="the file is damaged"):
        fuse(FusionRequest(coarse_target=str(C2002), fine_reference=fine, output=str(tmp_path / "api.tif")))
    assert leftovers(tmp_path) == [] and not (tmp_path / "o.tif").exists()


def test_api_without_output_is_a_user_error(scene):
    with pytest.raises(StfError, match="no output path given"):
        fuse(FusionRequest(coarse_target=scene["coarse"], fine_reference=scene["fine"], output=None))


# Interruption and concurrent runs ---------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_stop_signals_remove_partial_files(tmp_path, signum, code):
    paths = inputs_in(tmp_path / "in", height=700, width=700, dtype="int16")
    out = tmp_path / "out" / "fused.tif"
    process = subprocess.Popen(
        [sys.executable, "-m", "stf_engine", "fuse", "--coarse", paths["coarse"], "--fine", paths["fine"],
         "--method", "starfm", "--tile", "128", "--threads", "1", "--out", str(out)],
        stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 120
    while not (out.parent.exists() and leftovers(out.parent)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert out.parent.exists() and leftovers(out.parent), "the run never started writing"
    process.send_signal(signum)
    _, err = process.communicate(timeout=60)
    assert process.returncode == code, err
    assert f"error: stopped by {signal.Signals(signum).name}" in err and "Traceback" not in err
    assert not out.parent.exists(), "the run made the output's folder, and removes it with nothing in it"


def test_a_second_run_on_the_same_output_is_refused_while_the_first_holds_it(scene, tmp_path, capsys):
    out = tmp_path / "fused.tif"
    with output_lock(str(out)):
        code = main(["fuse", "--coarse", scene["coarse"], "--fine", scene["fine"], "--out", str(out)])
        one_error_line(capsys, code, f"another STF run (process {os.getpid()}) is writing")
        assert Path(lock_path(str(out))).exists()
    assert not Path(lock_path(str(out))).exists() and not out.exists()
    # a lock left by a process that no longer exists is taken over
    # and the partial files its run left are removed; another output's are not touched
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    Path(lock_path(str(out))).write_text(f"{dead.pid} token")
    for name in (".fused.tif.0123abcd.partial.tif", ".fused.tif.4567cdef.partial.cog.tif",
                 ".other.tif.89abcdef.partial.tif"):
        (tmp_path / name).write_bytes(b"II*\0")
    assert main(["fuse", "--coarse", scene["coarse"], "--fine", scene["fine"], "--out", str(out)]) == 0
    assert out.exists() and leftovers(tmp_path) == [".other.tif.89abcdef.partial.tif"]
    (tmp_path / ".other.tif.89abcdef.partial.tif").unlink()
    # and it is released when a run fails
    assert main(["fuse", "--coarse", scene["coarse"], "--fine", scene["fine"], "--out", str(out),
                 "--method", "edcstfn"]) == 2
    assert leftovers(tmp_path) == []


# What is written ------------------------------------------------------------------------------------------------

def test_output_permissions_follow_the_umask(scene, tmp_path):
    previous = os.umask(0o022)
    try:
        result = fuse(FusionRequest(coarse_target=scene["coarse"], fine_reference=scene["fine"],
                                    output=str(tmp_path / "o.tif"), error_maps_dir=str(tmp_path / "maps")))
    finally:
        os.umask(previous)
    for path in [result.output, *result.error_maps.values()]:
        assert os.stat(path).st_mode & 0o777 == 0o644, path


def test_nan_not_marked_as_nodata_is_reported_where_it_is(tmp_path, capsys):
    fine = np.full((3, 60, 70), 0.2, np.float32)
    fine[1, 37, 52] = np.nan
    fine_path = write(tmp_path / "f.tif", fine, fine_transform())
    coarse_path = write(tmp_path / "c.tif", np.full((3, 15, 18), 0.2, np.float32), fine_transform(120.0))
    code = main(["fuse", "--coarse", coarse_path, "--fine", fine_path, "--method", "delta", "--tile", "32",
                 "--out", str(tmp_path / "o.tif")])
    one_error_line(capsys, code, "the first at row 37, column 52; rows and columns count from 0")


@pytest.mark.parametrize("role, kind, text", [
    ("--fine", "no georeference", "fine reference has no coordinate reference system"),
    ("--fine", "complex", "fine reference holds complex numbers (complex64); give a raster of real values"),
    ("--coarse", "complex", "coarse target holds complex numbers (complex64); give a raster of real values"),
])
def test_a_raster_without_georeference_or_of_complex_values_is_one_line_and_nothing_else(scene, tmp_path, role, kind,
                                                                                        text):
    """Run as a user runs it (a process of its own): Python's warnings, such as rasterio's about a missing
    georeference, would reach the terminal as text."""
    values = np.full((3, 24, 24), 0.2, np.float32)
    odd = str(tmp_path / "odd.tif")
    if kind == "complex":
        write(odd, values.astype(np.complex64), fine_transform(30.0 if role == "--fine" else 120.0))
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # this test's own writing of the file
            with rasterio.open(odd, "w", driver="GTiff", width=24, height=24, count=3, dtype="float32") as dataset:
                dataset.write(values)
    given = {"--coarse": scene["coarse"], "--fine": scene["fine"], role: odd}
    done = subprocess.run([sys.executable, "-m", "stf_engine", "fuse", "--coarse", given["--coarse"], "--fine",
                           given["--fine"], "--method", "cubic", "--out", str(tmp_path / "o.tif")],
                          capture_output=True, text=True, timeout=120)
    lines = done.stderr.splitlines()
    assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith(f"error: {text}"), done.stderr


@pytest.mark.parametrize("name", ["fused.png", "fused.vrt", "fused"])
def test_an_output_not_named_as_a_geotiff_is_refused(scene, tmp_path, capsys, name):
    code = main(["fuse", "--coarse", scene["coarse"], "--fine", scene["fine"], "--out", str(tmp_path / name)])
    one_error_line(capsys, code, f"the output is written as a GeoTIFF: give it a name ending in .tif, not {tmp_path}")
    assert os.listdir(tmp_path) == ["in"]  # the inputs' folder only


def test_one_file_in_two_roles_is_refused(scene, tmp_path, capsys):
    """A file picked for two roles (the reference date's coarse image as the target's too, the fine reference as
    the truth, even through a link) is a slip, not a request."""
    out = tmp_path / "o.tif"
    code = main(["fuse", "--coarse", scene["coarse"], "--coarse-ref", scene["coarse"], "--fine", scene["fine"],
                 "--out", str(out)])
    one_error_line(capsys, code, f"the coarse target and the coarse reference are the same file ({scene['coarse']})")
    link = tmp_path / "truth.tif"
    link.symlink_to(scene["fine"])
    with pytest.raises(StfError, match="the fine reference and the truth are the same file"):
        check(FusionRequest(coarse_target=scene["coarse"], fine_reference=scene["fine"], truth=str(link),
                            output=str(out), error_maps_dir=str(tmp_path / "maps")))
    hard_link = tmp_path / "coarse_ref.tif"
    os.link(scene["coarse"], hard_link)
    with pytest.raises(StfError, match="the coarse target and the coarse reference are the same file"):
        check(FusionRequest(coarse_target=scene["coarse"], coarse_reference=str(hard_link),
                            fine_reference=scene["fine"], output=str(out)))
    assert not out.exists()


# Options that make no sense -------------------------------------------------------------------------------------

@pytest.mark.parametrize("extra, text", [
    (["--method", "starfm", "--weights", "w.pt"], "takes no weights file"),
    (["--coarse-res", "-250"], "--coarse-res must be a finite number > 0; got -250.0"),
    (["--coarse-res", "0.5"], "coarse pixel size (--coarse-res) 0.5 is smaller than the fine pixel size"),
    (["--coarse-res", "1e9"], "coarse pixel size (--coarse-res) 1e+09 is larger than the whole fine raster"),
    (["--coarse-res", "inf"], "--coarse-res must be a finite number > 0; got inf"),
    (["--bands", "0,1,2"], "numbered from 1"),
    (["--bands", "a,b"], "comma-separated band numbers"),
    (["--halo", "wide"], "--halo expects"),
    (["--threads", "0"], "threads must be at least 1"),
])
def test_nonsense_options_are_refused(scene, tmp_path, capsys, extra, text):
    out = tmp_path / "o.tif"
    code = main(["fuse", "--coarse", scene["coarse"], "--fine", scene["fine"], "--out", str(out), *extra])
    one_error_line(capsys, code, text)
    assert not out.exists()


def test_a_huge_halo_is_capped_and_an_oversized_run_refused(scene, tmp_path, capsys):
    result = fuse(FusionRequest(coarse_target=scene["coarse"], fine_reference=scene["fine"], method="delta",
                                output=str(tmp_path / "o.tif"), tile=16, halo=5000))
    assert result.halo == 48 and any("more than the raster" in w for w in result.warnings)
    big = tmp_path / "big.tif"
    with rasterio.open(big, "w", driver="GTiff", width=200_000, height=200_000, count=3, dtype="int16",
                       crs="EPSG:32649", transform=fine_transform(), tiled=True, sparse_ok=True, nodata=-1) as dst:
        dst.write(np.full((3, 256, 256), 1500, np.int16), window=rasterio.windows.Window(0, 0, 256, 256))
    code = main(["fuse", "--coarse", scene["coarse"], "--fine", str(big), "--method", "delta", "--tile", "0",
                 "--out", str(tmp_path / "x.tif")])
    one_error_line(capsys, code, "lower the halo (--halo), the tile size (--tile) or the batch (--batch)")


def test_evaluate_takes_the_ratio_as_a_fraction(capsys):
    assert main(["evaluate", "--pred", str(F2000), "--truth", str(F2002), "--ratio", "500/30", "--no-plots"]) == 0
    assert "ergas" in capsys.readouterr().out
