"""Progress is reported per batch; cancel stops the run promptly and leaves nothing on disk."""
import inspect
import os
import threading

import pytest

from stf_engine import FusionCancelled, FusionRequest, StfError, fuse
from devkit.synthetic import scene_set


@pytest.fixture
def scene(tmp_path):
    return scene_set(tmp_path, height=64, width=64, bands=2, ratio=4, dtype="int16")


def request_for(scene, out, **kwargs):
    return FusionRequest(coarse_target=scene["coarse"], fine_reference=scene["fine"], output=str(out),
                         method="delta", tile=16, batch=2, error_maps_dir=str(out.parent / "maps"), **kwargs)


def test_progress_called_per_batch_and_reaches_one(scene, tmp_path):
    calls = []
    fuse(request_for(scene, tmp_path / "out" / "f.tif"), progress=lambda f, m: calls.append((f, m)))
    fractions = [f for f, _ in calls]
    tile_messages = [m for _, m in calls if m.startswith("tile ")]
    assert len(tile_messages) == 8  # 16 tiles in batches of 2
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_a_mean_of_methods_reports_progress_that_only_rises(scene, tmp_path):
    """What auto runs when a mean of methods validates best: its members tick one after another within each batch."""
    calls = []
    fuse(FusionRequest(coarse_target=scene["coarse"], fine_reference=scene["fine"],
                       coarse_reference=scene["coarse_ref"], output=str(tmp_path / "f.tif"), method="starfm+fitfc",
                       tile=32, batch=2),
         progress=lambda f, m: calls.append(f))
    assert len(calls) > 8 and calls == sorted(calls) and calls[-1] == 1.0


def test_the_uncertainty_map_has_most_of_the_bar(scene, tmp_path):
    """The uncertainty map runs every other classic method once more: the bar must not sit near 100% meanwhile."""
    calls = []
    request = request_for(scene, tmp_path / "out" / "f.tif", uncertainty=True)
    fuse(request, progress=lambda fraction, message: calls.append((fraction, message)))
    fractions = [fraction for fraction, _ in calls]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    first = next(fraction for fraction, message in calls if "uncertainty" in message)
    assert first < 0.5, calls


def test_cancel_mid_run_stops_and_leaves_no_files(scene, tmp_path):
    cancel = threading.Event()
    seen = []

    def progress(fraction, message):
        seen.append(message)
        if message == "tile 4/16":
            cancel.set()

    out = tmp_path / "out" / "f.tif"
    with pytest.raises(FusionCancelled):
        fuse(request_for(scene, out), progress=progress, cancel=cancel)
    assert seen[-1] == "tile 4/16", "no batch runs after cancel is seen"
    assert not out.parent.exists(), "the run made the output's folder, and removes it with nothing in it"
    assert not [t for t in threading.enumerate() if t.name.startswith("stf-")], "reader and writer threads joined"


def test_cancel_during_error_maps_removes_fused_output_too(scene, tmp_path):
    cancel = threading.Event()

    def progress(fraction, message):
        if message.startswith("error maps"):
            cancel.set()

    out = tmp_path / "out" / "f.tif"
    with pytest.raises(FusionCancelled):
        fuse(request_for(scene, out), progress=progress, cancel=cancel)
    assert not out.parent.exists(), "the run made the folder of the output and its maps, and removes it empty"


class CancelAfter:
    """A cancel that turns set after `checks` calls of is_set(): it lands wherever the run checks next."""

    def __init__(self, checks: int):
        self.remaining = checks

    def is_set(self) -> bool:
        self.remaining -= 1
        return self.remaining < 0


def test_starfm_reports_and_honours_cancel_inside_a_single_tile(tmp_path):
    scene = scene_set(tmp_path, height=120, width=120, bands=2, ratio=4, dtype="int16")
    request = FusionRequest(coarse_target=scene["coarse"], fine_reference=scene["fine"], output=str(tmp_path / "s.tif"),
                            method="starfm", tile=0, threads=1)
    within = []
    fuse(request, progress=lambda f, m: within.append(f) if m == "tile 1/1" and 0 < f < 1 else None)
    assert len(within) == 30  # one report per row of the 31×31 window after the first
    cancel = threading.Event()
    reports = []

    def progress(fraction, message):
        if message == "tile 1/1" and 0 < fraction < 1:
            reports.append(fraction)
            if len(reports) == 3:
                cancel.set()

    request.output = str(tmp_path / "cancelled.tif")
    with pytest.raises(FusionCancelled):
        fuse(request, progress=progress, cancel=cancel)
    assert len(reports) == 3  # the next row of offsets saw the cancel: the tile stopped a tenth of the way in
    assert not os.path.exists(request.output) and not [n for n in os.listdir(tmp_path) if ".partial" in n]


@pytest.mark.parametrize("stop", [FusionCancelled("cancelled"), StfError("no space left on the device")])
def test_a_stopped_run_removes_the_output_folders_it_made_and_keeps_those_that_were_there(tmp_path, monkeypatch, stop):
    from stf_engine.fusion import run as fusion_run

    (tmp_path / "inputs").mkdir()
    scene = scene_set(tmp_path / "inputs", height=48, width=48, bands=2, ratio=4, dtype="int16")

    def first_map_then_stop(fused_path, plan, *rest):
        os.makedirs(plan.request.error_maps_dir, exist_ok=True)  # as the first map's writer does
        raise stop

    monkeypatch.setattr(fusion_run, "write_error_maps", first_map_then_stop)
    (tmp_path / "there").mkdir()
    for output, maps in ((tmp_path / "new" / "deeper" / "o.tif", tmp_path / "maps" / "run"),
                         (tmp_path / "there" / "o.tif", tmp_path / "there" / "maps")):
        request = FusionRequest(coarse_target=scene["coarse"], fine_reference=scene["fine"], output=str(output),
                                method="cubic", error_maps_dir=str(maps))
        with pytest.raises(type(stop)):
            fuse(request)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inputs", "there"]
    assert os.listdir(tmp_path / "there") == []


@pytest.mark.parametrize("failing", ["f.tif", "uncertainty.tif"])
def test_a_failed_write_joins_the_reader_threads_before_the_error_leaves(scene, tmp_path, monkeypatch, failing):
    """A full disk mid-run: the tiles' reader threads must stop before the inputs they read are closed (a reader
    left reading a closed dataset crashed the process)."""
    from stf_engine.raster.writer import GeoTiffWriter

    write, written = GeoTiffWriter.write, []

    def fail_on_the_second(self, *args, **kwargs):
        written.append(os.path.basename(self.path))
        if written.count(failing) == 2:
            raise StfError(f"cannot write {self.path}: no space left on the device")
        return write(self, *args, **kwargs)

    monkeypatch.setattr(GeoTiffWriter, "write", fail_on_the_second)
    request = request_for(scene, tmp_path / "out" / "f.tif", uncertainty=True)
    with pytest.raises(StfError, match="no space left") as failed:
        fuse(request)
    assert failed.traceback  # still held, with every frame it references
    assert not [t.name for t in threading.enumerate() if t.name.startswith("stf-reader")]


def test_deep_model_honours_cancel_inside_its_forward_pass(tmp_path):
    scene = scene_set(tmp_path, height=64, width=64, bands=3, ratio=4, dtype="int16")
    request = FusionRequest(coarse_target=scene["coarse"], fine_reference=scene["fine"], output=str(tmp_path / "g.tif"),
                            method="ganstfm", tile=0, threads=1)
    with pytest.raises(FusionCancelled) as raised:
        fuse(request, cancel=CancelAfter(checks=12))
    frames = [entry.name for entry in raised.traceback]
    assert "forward" in frames or "_call_impl" in frames, frames  # stopped between two layers of the network
    assert not os.path.exists(request.output)


class CancelInside:
    """A cancel that is set while the run is inside `function` (so it shows whether that function checks)."""

    def __init__(self, function: str):
        self.function = function

    def is_set(self) -> bool:
        return any(frame.function == self.function for frame in inspect.stack(0))


def test_fsdaf_honours_cancel_inside_its_class_survey(scene, tmp_path):
    """The k-means of FSDAF's scene survey takes seconds on a large scene: each of its steps checks cancel."""
    request = request_for(scene, tmp_path / "out" / "f.tif")
    request.method = "fsdaf"
    with pytest.raises(FusionCancelled) as raised:
        fuse(request, cancel=CancelInside("kmeans"))
    assert "kmeans" in [entry.name for entry in raised.traceback]


def test_cancel_is_honoured_while_the_inputs_are_sampled(scene, tmp_path):
    with pytest.raises(FusionCancelled) as raised:
        fuse(request_for(scene, tmp_path / "out" / "f.tif"), cancel=CancelAfter(checks=1))
    assert "open_inputs" in [entry.name for entry in raised.traceback]


def test_threads_are_set_for_the_run_and_restored(scene, tmp_path):
    import torch

    before = torch.get_num_threads()
    result = fuse(request_for(scene, tmp_path / "out" / "f.tif", threads=1))
    assert result.threads == 1 and torch.get_num_threads() == before


def test_fsdafs_scene_surveys_move_the_bar_before_its_tiles(tmp_path):
    """Its classes and unmixing read the scene three times (20 s on 4000²) with the bar held at 0."""
    paths, reports = scene_set(tmp_path, height=128, width=128, bands=2, ratio=4, dtype="int16"), []
    fuse(FusionRequest(coarse_target=paths["coarse"], fine_reference=paths["fine"],
                       coarse_reference=paths["coarse_ref"], output=str(tmp_path / "fused.tif"), method="fsdaf",
                       coarse_resolution=120, tile=64),
         progress=lambda fraction, message: reports.append((fraction, message)))
    surveying = sorted({fraction for fraction, message in reports if message == "fsdaf: surveying the scene"})
    first_tile = min(fraction for fraction, message in reports if message.startswith("tile"))
    assert len(surveying) >= 3 and 0 < surveying[-1] <= first_tile, reports
    fractions = [fraction for fraction, _ in reports]
    assert fractions == sorted(fractions)


def test_the_temporal_change_map_reports_each_window(tmp_path):
    """It reads both coarse images over the whole scene (8 s on 4000²) and said nothing until it was done."""
    paths, reports = scene_set(tmp_path, height=520, width=1030, bands=2, ratio=4, dtype="int16"), []
    fuse(request_for(paths, tmp_path / "fused.tif", coarse_reference=paths["coarse_ref"]),
         progress=lambda fraction, message: reports.append((fraction, message)))
    changing = [fraction for fraction, message in reports if message == "error maps: temporal change"]
    assert len(set(changing)) == 6, reports
    fractions = [fraction for fraction, _ in reports]
    assert fractions == sorted(fractions)
