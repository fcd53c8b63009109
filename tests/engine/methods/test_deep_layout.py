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


def test_cudnn_autotuning_is_on_only_while_a_model_runs_on_a_gpu(monkeypatch):
    """QGIS plugins share one interpreter: another torch user's cuDNN setting is theirs again after our run."""
    from stf_engine.core.device import cudnn_autotuned

    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    assert deep.memory_layout(torch.device("cuda")) == torch.channels_last and not torch.backends.cudnn.benchmark
    with cudnn_autotuned(torch.device("cuda")):
        assert torch.backends.cudnn.benchmark
    with cudnn_autotuned(torch.device("cpu")):
        assert not torch.backends.cudnn.benchmark
    assert not torch.backends.cudnn.benchmark
