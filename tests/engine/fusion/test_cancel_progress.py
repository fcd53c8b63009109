"""Progress is reported per batch; cancel stops the run promptly and leaves nothing on disk."""
import os
import threading

import pytest

from stf_engine import FusionCancelled, FusionRequest, fuse
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
    assert not out.exists()
    assert os.listdir(out.parent) == []


def test_cancel_during_error_maps_removes_fused_output_too(scene, tmp_path):
    cancel = threading.Event()

    def progress(fraction, message):
        if message.startswith("error maps"):
            cancel.set()

    out = tmp_path / "out" / "f.tif"
    with pytest.raises(FusionCancelled):
        fuse(request_for(scene, out), progress=progress, cancel=cancel)
    assert not out.exists()
    assert [f for f in os.listdir(out.parent) if f.endswith(".tif")] == []
    assert not [f for f in os.listdir(out.parent / "maps") if f.endswith(".tif")]
