"""The GPU's channels_last layout (cuDNN's fastest) gives every deep model the output of the default layout;
checked on the CPU by forcing the layout, so a model that cannot run channels_last fails here, not on a GPU."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from devkit.checkpoints import save_random
from devkit.synthetic import scene_set
from stf_engine import FusionRequest, fuse
from stf_engine.methods import deep

from helpers.rasters import pixels

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("name", ["ganstfm", "edcstfn", "marstfn"])
def test_channels_last_gives_the_default_layouts_output(name, tmp_path, monkeypatch):
    paths = scene_set(tmp_path, height=75, width=69, ratio=4, dtype="float32")
    weights = save_random(tmp_path / "w.pt", name, given=("coarse_reference",))
    common = dict(coarse_target=paths["coarse"], fine_reference=paths["fine"], coarse_reference=paths["coarse_ref"],
                  method=name, weights=weights, tile=32, batch=2, device="cpu")
    assert deep.memory_layout(torch.device("cpu")) == torch.contiguous_format
    default = fuse(FusionRequest(output=str(tmp_path / "default.tif"), **common))
    monkeypatch.setattr(deep, "memory_layout", lambda device: torch.channels_last)
    channels_last = fuse(FusionRequest(output=str(tmp_path / "channels_last.tif"), **common))
    np.testing.assert_allclose(pixels(channels_last.output), pixels(default.output), rtol=0, atol=1e-6)


def test_cudnn_autotuning_is_on_only_while_models_run_on_a_gpu(monkeypatch):
    """QGIS plugins share one interpreter: another torch user's cuDNN setting is theirs again once our last run,
    of several overlapping ones (background tasks), has ended."""
    from stf_engine.core.device import cudnn_autotuned

    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    assert deep.memory_layout(torch.device("cuda")) == torch.channels_last and not torch.backends.cudnn.benchmark
    with cudnn_autotuned(torch.device("cpu")):
        assert not torch.backends.cudnn.benchmark
    first, second = cudnn_autotuned(torch.device("cuda")), cudnn_autotuned(torch.device("cuda"))
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)  # the first run ends while the second still runs
    assert torch.backends.cudnn.benchmark
    second.__exit__(None, None, None)
    assert not torch.backends.cudnn.benchmark


def test_a_deep_model_runs_inside_the_autotuning_of_its_batch_device(tmp_path, monkeypatch):
    import contextlib

    paths = scene_set(tmp_path, height=40, width=40, ratio=4, dtype="float32")
    weights = save_random(tmp_path / "w.pt", "ganstfm")
    devices = []
    monkeypatch.setattr(deep, "cudnn_autotuned", lambda device: devices.append(device) or contextlib.nullcontext())
    fuse(FusionRequest(coarse_target=paths["coarse"], fine_reference=paths["fine"], method="ganstfm", weights=weights,
                       tile=32, batch=1, device="cpu", output=str(tmp_path / "o.tif")))
    assert len(devices) == 4 and set(devices) == {torch.device("cpu")}
