"""Output locks ask whether the holder runs without ever signalling it (on Windows, os.kill ends a process)."""
import errno
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest

from stf_engine.core import outputs
from stf_engine.core.outputs import lock_path, output_lock
from stf_engine.errors import StfError


def test_a_lock_held_by_this_process_is_refused_without_signalling_it(tmp_path, monkeypatch):
    out = str(tmp_path / "fused.tif")
    monkeypatch.setattr(outputs.os, "kill", pytest.fail)
    with output_lock(out):
        with pytest.raises(StfError, match=f"another STF run \\(process {os.getpid()}\\) is writing"):
            with output_lock(out):
                pass


@pytest.mark.parametrize("runs", [True, False])
def test_on_windows_the_holder_is_asked_about_through_the_windows_api(tmp_path, monkeypatch, runs):
    other = subprocess.Popen([sys.executable, "-c", "pass"])
    other.wait()
    out = str(tmp_path / "fused.tif")
    with open(lock_path(out), "w") as lock:
        lock.write(f"{other.pid} token")
    asked = []
    monkeypatch.setattr(outputs, "ON_WINDOWS", True)
    monkeypatch.setattr(outputs.os, "kill", pytest.fail)
    monkeypatch.setattr(outputs, "_windows_process_runs", lambda pid: asked.append(pid) or runs)
    if runs:
        with pytest.raises(StfError, match=f"process {other.pid}.*delete its lock {lock_path(out)}\\)$"):
            with output_lock(out):
                pass
    else:
        with output_lock(out):  # the holder is gone: its lock is taken over
            assert open(lock_path(out)).read().startswith(str(os.getpid()))
    assert asked == [other.pid]


@pytest.mark.parametrize("platform", ["win32", "linux"])
def test_an_output_that_cannot_be_replaced_is_one_error_and_the_old_one_stays(tmp_path, monkeypatch, platform):
    """On Windows a file another program holds open (a QGIS layer showing the last result) cannot be replaced."""
    from devkit.synthetic import fine_transform, textured_scene, write
    from stf_engine import FusionRequest, fuse

    image = textured_scene(32, 32, bands=2, seed=1)
    fine = write(tmp_path / "fine.tif", image, fine_transform())
    coarse = write(tmp_path / "coarse.tif", image[:, ::4, ::4], fine_transform(120.0))
    out = tmp_path / "fused.tif"
    out.write_bytes(b"the last result")

    def held_open(source, target):
        raise PermissionError(13, "Access is denied", str(source), 5, str(target))

    monkeypatch.setattr(outputs.os, "replace", held_open)
    monkeypatch.setattr(outputs, "ON_WINDOWS", platform == "win32")
    with pytest.raises(StfError) as raised:
        fuse(FusionRequest(coarse_target=coarse, fine_reference=fine, output=str(out), method="cubic"))
    message = str(raised.value)
    assert message.startswith(f"cannot replace {out}: it is not writable") and "choose another output" in message
    assert ("close it there" in message) == (platform == "win32"), message
    assert out.read_bytes() == b"the last result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["coarse.tif", "fine.tif", "fused.tif"]


def sharing_violation(path, other=None) -> PermissionError:
    """What Windows raises for a file another program (GDAL in QGIS) has open: it can be neither renamed, replaced
    nor removed."""
    refused = PermissionError(13, "The process cannot access the file because it is being used by another process",
                              str(path), None, other and str(other))
    refused.winerror = 32  # ERROR_SHARING_VIOLATION (OSError sets it from its arguments on Windows only)
    return refused


def windows_holds(held: str):
    """os.replace while the file named `held` is open in another program, on Windows."""
    replace = os.replace

    def replace_unless_held(source, target):
        if held in (os.path.basename(source), os.path.basename(target)):
            raise sharing_violation(source, target)
        replace(source, target)

    return replace_unless_held


def test_outputs_are_replaced_all_or_none_when_one_is_held_open(tmp_path, monkeypatch):
    """A run into the outputs of an earlier one while QGIS shows one of its error maps (Windows): before, the outputs
    listed before the held one were already new, and the folder mixed two runs while reporting a failure."""
    from devkit.synthetic import fine_transform, textured_scene, write
    from stf_engine import FusionRequest, fuse

    image = textured_scene(48, 48, bands=2, seed=1)
    inputs = dict(coarse_target=write(tmp_path / "coarse.tif", image[:, ::4, ::4] * 1.1, fine_transform(120.0)),
                  coarse_reference=write(tmp_path / "coarse_ref.tif", image[:, ::4, ::4], fine_transform(120.0)),
                  fine_reference=write(tmp_path / "fine.tif", image, fine_transform()),
                  output=str(tmp_path / "out" / "fused.tif"), error_maps_dir=str(tmp_path / "out" / "maps"))
    first = fuse(FusionRequest(**inputs, method="delta"))
    written = [first.output, *first.error_maps.values()]
    before = {path: open(path, "rb").read() for path in written}
    held = os.path.basename(written[-1])
    monkeypatch.setattr(outputs.os, "replace", windows_holds(held))
    monkeypatch.setattr(outputs, "ON_WINDOWS", True)
    with pytest.raises(StfError) as raised:
        fuse(FusionRequest(**inputs, method="starfm"))
    assert {path: open(path, "rb").read() for path in written} == before
    assert str(raised.value) == (f"cannot replace {written[-1]}: it is open in another program (a QGIS layer "
                                 f"showing it, a spreadsheet); close it there; or choose another output")
    assert [name for _, _, names in os.walk(tmp_path / "out") for name in names if name.startswith(".")] == []
    monkeypatch.undo()
    stale = f"{first.output}.aux.xml"  # the first output's statistics, as QGIS or gdalinfo -stats leave them
    with open(stale, "w") as statistics:
        statistics.write('<PAMDataset><PAMRasterBand band="1"><Metadata><MDI key="STATISTICS_MINIMUM">-0.0445</MDI>'
                         '</Metadata></PAMRasterBand></PAMDataset>')
    second = fuse(FusionRequest(**inputs, method="starfm"))  # nothing held: all are replaced, nothing is left aside
    assert not os.path.exists(stale), "GDAL would report the old pixels' statistics for the new output"
    assert all(open(path, "rb").read() != before[path] for path in [second.output]) and set(second.error_maps) \
        == set(first.error_maps)
    assert [name for _, _, names in os.walk(tmp_path / "out") for name in names if name.startswith(".")] == []


def test_an_earlier_runs_map_that_cannot_be_removed_is_a_warning_after_the_new_outputs_are_in_place(
        tmp_path, monkeypatch):
    """Another method writes other maps, and the earlier run's extra map goes; when QGIS holds it open (Windows) the
    run has succeeded all the same: it was 'this is a bug' with the new outputs already in place."""
    from devkit.synthetic import fine_transform, textured_scene, write
    from stf_engine import FusionRequest, fuse

    image = textured_scene(48, 48, bands=2, seed=1)
    inputs = dict(coarse_target=write(tmp_path / "coarse.tif", image[:, ::4, ::4] * 1.1, fine_transform(120.0)),
                  fine_reference=write(tmp_path / "fine.tif", image, fine_transform()),
                  output=str(tmp_path / "fused.tif"), error_maps_dir=str(tmp_path / "maps"))
    reference = write(tmp_path / "coarse_ref.tif", image[:, ::4, ::4], fine_transform(120.0))
    stale = fuse(FusionRequest(**inputs, coarse_reference=reference, method="delta")).error_maps["temporal_change"]
    remove = os.remove

    def remove_unless_held(path):
        if path == stale:
            raise sharing_violation(path)
        remove(path)

    monkeypatch.setattr(outputs.os, "remove", remove_unless_held)
    result = fuse(FusionRequest(**inputs, method="cubic"))
    assert "temporal_change" not in result.error_maps and os.path.exists(stale)
    assert f"cannot remove the earlier run's map {stale}: it is open in another program (a QGIS layer showing it, " \
           f"a spreadsheet); close it there; it does not describe the new fused image: remove it by hand" \
           in result.warnings, result.warnings


def test_on_windows_a_file_refused_for_a_moment_after_it_was_written_is_tried_again(tmp_path, monkeypatch):
    """A virus scanner or an indexer opens a new file for a moment: renaming it then fails once or twice."""
    source, target = tmp_path / "new.tif", tmp_path / "out.tif"
    source.write_bytes(b"new")
    replace, refusals = os.replace, [sharing_violation(source, target)] * 2

    def scanned(a, b):
        if refusals:
            raise refusals.pop()
        replace(a, b)

    monkeypatch.setattr(outputs, "ON_WINDOWS", True)
    monkeypatch.setattr(outputs.os, "replace", scanned)
    outputs.replace_output(str(source), str(target))
    assert target.read_bytes() == b"new" and refusals == []


def small_scene(tmp_path):
    """A 48×48 two-band scene with a coarse pair at 120 m, as FusionRequest fields, the outputs in `out/`."""
    from devkit.synthetic import fine_transform, textured_scene, write

    image = textured_scene(48, 48, bands=2, seed=1)
    return dict(coarse_target=write(tmp_path / "coarse.tif", image[:, ::4, ::4] * 1.1, fine_transform(120.0)),
                coarse_reference=write(tmp_path / "coarse_ref.tif", image[:, ::4, ::4], fine_transform(120.0)),
                fine_reference=write(tmp_path / "fine.tif", image, fine_transform()),
                output=str(tmp_path / "out" / "fused.tif"), error_maps_dir=str(tmp_path / "out" / "maps"))


def hidden(folder) -> list:
    return sorted(name for _, _, names in os.walk(folder) for name in names if name.startswith("."))


def test_a_stop_right_after_an_output_moved_aside_still_brings_it_back(tmp_path, monkeypatch):
    """A signal between the rename and its bookkeeping left the output only as a hidden file, and said that nothing
    had changed."""
    from stf_engine import FusionRequest, fuse
    from stf_engine.raster.writer import ASIDE

    inputs = small_scene(tmp_path)
    first = fuse(FusionRequest(**inputs, method="delta"))
    before = open(first.output, "rb").read()
    replace = os.replace

    def stopped_after_moving_aside(source, target):
        replace(source, target)
        if str(target).endswith(ASIDE):
            raise KeyboardInterrupt

    monkeypatch.setattr(outputs.os, "replace", stopped_after_moving_aside)
    with pytest.raises(KeyboardInterrupt):
        fuse(FusionRequest(**inputs, method="starfm"))
    monkeypatch.undo()
    assert open(first.output, "rb").read() == before and hidden(tmp_path / "out") == []


def test_an_output_a_killed_run_left_moved_aside_comes_back_and_its_leftovers_go(tmp_path):
    """SIGKILL between moving the old outputs aside and moving the new ones in: the next run on these outputs, even
    one that then fails, put nothing back and removed the old output with the other hidden files."""
    from stf_engine import FusionRequest, fuse
    from stf_engine.raster.writer import ASIDE

    inputs = small_scene(tmp_path)
    first = fuse(FusionRequest(**inputs, method="delta"))
    before = {path: open(path, "rb").read() for path in [first.output, *first.error_maps.values()]}
    maps = tmp_path / "out" / "maps"
    os.replace(first.output, tmp_path / "out" / f".fused.tif.0123abcd{ASIDE}")  # as the killed commit left them
    os.replace(maps / "temporal_change.tif", maps / f".temporal_change.tif.4567cdef{ASIDE}")
    for leftover in (tmp_path / "out" / ".fused.tif.89abcdef.partial.tif",  # the new outputs, and an old one
                     maps / ".coarse_residual.tif.0a1b2c3d.partial.tif", maps / f".coarse_residual.tif.1b2c3d4e{ASIDE}"):
        leftover.write_bytes(b"II*\0")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with open(lock_path(first.output), "w") as lock:
        lock.write(f"{dead.pid} token")
    with pytest.raises(StfError, match="asks for bands 5, 5, which it does not have"):  # fails once it holds the lock
        fuse(FusionRequest(**inputs, method="delta", bands=[5, 5]))
    assert {path: open(path, "rb").read() for path in before} == before and hidden(tmp_path / "out") == []


def test_a_full_disk_is_told_where_the_system_has_no_statvfs(tmp_path, monkeypatch):
    monkeypatch.delattr(outputs.os, "statvfs", raising=False)
    monkeypatch.setattr(outputs.shutil, "disk_usage", lambda path: SimpleNamespace(total=100, used=100, free=0))
    assert outputs.why_write_failed("write error", str(tmp_path)) == "no space left on the device"


@pytest.mark.parametrize("number, message, said", [
    (errno.EACCES, "Permission denied", "it is not writable"),
    (errno.EPERM, "Operation not permitted", "it is not writable"),
    (errno.EROFS, "Read-only file system", "it is not writable"),
    (errno.ENOENT, "No such file or directory", "No such file or directory"),
    (errno.ENOSPC, "No space left on device", "no space left on the device"),
])
def test_a_folder_reporting_no_free_space_is_not_called_full_when_the_error_says_why(tmp_path, monkeypatch, number,
                                                                                       message, said):
    """Read-only mounts and /sys report no free space: an unwritable folder there was 'no space left'."""
    monkeypatch.setattr(outputs.shutil, "disk_usage", lambda path: SimpleNamespace(total=100, used=100, free=0))
    assert outputs.why_write_failed(message, str(tmp_path), number) == said


def test_a_folder_on_a_drive_that_is_not_there_is_one_error_not_an_endless_search(tmp_path, monkeypatch):
    """On Windows the folder above Q:\\ is Q:\\ itself: with the drive unplugged no folder above the output exists,
    and looking for one never ended (QGIS froze when its dialog checked the output)."""
    monkeypatch.setattr(outputs.os.path, "exists", lambda path: False)
    for check in (lambda: outputs.check_writable_file(str(tmp_path / "out" / "fused.tif")),
                  lambda: outputs.made_folder(str(tmp_path / "out")).__enter__()):
        with pytest.raises(StfError, match="/ is not there \\(a drive or network share that is not connected\\?\\)"):
            check()
