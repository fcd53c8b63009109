"""Several reader threads (what a GPU run uses) give the same output as one: each thread reads through dataset
handles of its own, and batches reach the method in order."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from devkit.synthetic import scene_set
from stf_engine import FusionRequest, fuse, fuse_dates
from stf_engine.fusion import predict
from stf_engine.inputs.aligned import AlignedInputs

from helpers.calls import count_calls
from helpers.rasters import pixels


@pytest.fixture
def scene(tmp_path):
    return scene_set(tmp_path, height=90, width=100, bands=3, ratio=4, dtype="int16")


def request(scene, output, tile=24):
    return FusionRequest(coarse_target=scene["coarse"], fine_reference=scene["fine"],
                         coarse_reference=scene["coarse_ref"], output=str(output), method="starfm", tile=tile,
                         batch=2, device="cpu", options={"window": 7})


def test_one_reader_beside_the_cpu_several_for_a_gpu():
    assert predict.reader_threads(torch.device("cpu")) == 1
    assert 1 <= predict.reader_threads(torch.device("cuda")) <= predict.GPU_READERS


def counting_reopens(monkeypatch):
    """Three reader threads as on a GPU, and a list that grows with every set of inputs opened again."""
    monkeypatch.setattr(predict, "reader_threads", lambda device: 3)
    return count_calls(monkeypatch, AlignedInputs, "reopened")


@pytest.mark.parametrize("dates", [1, 2])
def test_three_reader_threads_write_what_one_does(scene, tmp_path, monkeypatch, dates):
    one = [fuse(request(scene, tmp_path / f"one_{d}.tif")) for d in range(dates)]
    reopened = counting_reopens(monkeypatch)
    requests = [request(scene, tmp_path / f"three_{d}.tif") for d in range(dates)]
    three = fuse_dates(requests) if dates > 1 else [fuse(requests[0])]
    assert one[0].tiles >= 16 and reopened, "the other reader threads opened handles of their own"
    for alone, threaded in zip(one, three):
        np.testing.assert_array_equal(pixels(threaded.output), pixels(alone.output))


def test_a_single_batch_opens_no_second_handles(scene, tmp_path, monkeypatch):
    """Per-tile calls (Dask tasks) read one batch: extra reader threads would only reopen files."""
    reopened = counting_reopens(monkeypatch)
    fuse(request(scene, tmp_path / "whole.tif", tile=0))
    assert reopened == []
