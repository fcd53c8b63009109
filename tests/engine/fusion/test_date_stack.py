"""Dates stacked into one batch read the shared references once; another reader thread's copy reopens only
what it reads (the first date's inputs and every other date's coarse target) and reads the same batch."""
from __future__ import annotations

from contextlib import ExitStack

import torch

from devkit.series import changed_copy
from devkit.synthetic import scene_set
from stf_engine import FusionRequest, roles
from stf_engine.core import tiling
from stf_engine.fusion.check import prepare
from stf_engine.fusion.predict import DateStack


def test_a_reader_threads_copy_reopens_only_each_dates_coarse_target_and_reads_the_same(tmp_path):
    scene = scene_set(tmp_path, height=64, width=48, bands=2, ratio=4)
    targets = [scene["coarse"]] + [str(changed_copy(scene["coarse"], tmp_path / f"c2_{gain}.tif",
                                                    lambda v, gain=gain: v * gain)) for gain in (1.1, 0.9)]
    with ExitStack() as stack:
        dates = DateStack([prepare(FusionRequest(coarse_target=target, fine_reference=scene["fine"],
                                                 coarse_reference=scene["coarse_ref"], output=f"{target}.out.tif",
                                                 method="starfm", tile=32), stack).inputs for target in targets])
        copy = dates.reopened(stack)
        assert set(copy.dates[0].readers) == set(dates.dates[0].readers) == {
            roles.COARSE_TARGET, roles.FINE_REFERENCE, roles.COARSE_REFERENCE}
        assert [set(inputs.readers) for inputs in copy.dates[1:]] == [{roles.COARSE_TARGET}] * 2
        assert all(copy.dates[d].readers[role] is not dates.dates[d].readers[role]
                   for d in range(3) for role in copy.dates[d].readers)
        group = tiling.plan(64, 48, 32)[:2]
        original, reopened = dates.read_batch(group, 4, "cpu"), copy.read_batch(group, 4, "cpu")
    assert original.origins == reopened.origins
    for name, tensor in original.tensors().items():
        assert torch.equal(tensor, reopened.tensors()[name]), name
    assert not torch.equal(original.coarse_target[:2], original.coarse_target[2:4])  # each date its own target
