"""`fuse_dates`: target dates sharing their references fused together. Methods whose tiles depend on the
references alone run once a batch for every date; the others run per date, sharing their reference survey.
Either way each date's output equals a `fuse` of that date alone."""
from __future__ import annotations

import dataclasses
import os
import shutil
import threading

import numpy as np
import pytest
import rasterio
import torch

from devkit.checkpoints import save_random
from devkit.series import changed_copy
from devkit.synthetic import scene_set
from stf_engine import FusionCancelled, FusionRequest, ReferenceSurveys, StfError, fuse, fuse_dates
from stf_engine.methods import catalog, fsdaf

from helpers.calls import count_calls
from helpers.rasters import pixels

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CHANGES = (lambda v: v, lambda v: v * 1.15, lambda v: v * 0.9 + 0.03)
"""Three target dates: the scene's coarse target and two changed copies of it."""


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dates")
    paths = scene_set(folder, height=84, width=76, bands=3, ratio=4, dtype="float32")
    paths["targets"] = [str(changed_copy(paths["coarse"], folder / f"c2_{i}.tif", change))
                        for i, change in enumerate(CHANGES)]
    return paths


def requests(scene, folder, method, **kwargs):
    return [FusionRequest(coarse_target=target, fine_reference=scene["fine"], coarse_reference=scene["coarse_ref"],
                          output=str(folder / f"{method}_{i}.tif"), method=method, tile=32, batch=2, **kwargs)
            for i, target in enumerate(scene["targets"])]


def counting(monkeypatch, name):
    """The catalog's method `name` with its tile function wrapped to record each call's batch size."""
    sizes = []
    spec = catalog.METHODS[name]

    def build(context):
        method = spec.build(context)

        def run(batch):
            sizes.append(batch.coarse_target.shape[0])
            return method(batch)

        return run

    monkeypatch.setitem(catalog.METHODS, name, dataclasses.replace(spec, build=build))
    return sizes


def assert_same_image(stacked, alone):
    """Equal to float32 rounding; on a GPU relatively so, as the order of its sums (and cuDNN's algorithm) depends on
    the batch size."""
    on_gpu = alone.device.startswith("cuda")
    np.testing.assert_allclose(pixels(stacked.output), pixels(alone.output), rtol=2e-5 if on_gpu else 0, atol=2e-6)


@pytest.mark.parametrize("method", ["starfm", "edcstfn", "marstfn"])
def test_stacked_dates_run_the_method_once_a_batch_and_equal_each_date_alone(scene, tmp_path, monkeypatch, method):
    weights = {} if method == "starfm" else {"weights": save_random(tmp_path / "w.pt", method,
                                                                    given=("coarse_reference",))}
    alone = [fuse(r) for r in requests(scene, tmp_path / "alone", method, **weights)]
    sizes = counting(monkeypatch, method)
    together = fuse_dates(requests(scene, tmp_path / "together", method, **weights))
    tiles = alone[0].tiles
    assert tiles == 9 and sum(sizes) == 3 * tiles and max(sizes) == 3 * 2, "2 tiles of all 3 dates a batch"
    for one, many in zip(alone, together):
        assert_same_image(many, one)
    assert len({many.output for many in together}) == 3


def test_a_method_surveying_the_target_runs_per_date_and_classifies_the_reference_once(scene, tmp_path,
                                                                                      monkeypatch):
    alone = [fuse(r) for r in requests(scene, tmp_path / "alone", "fsdaf")]
    calls = count_calls(monkeypatch, fsdaf, "kmeans")
    surveys = ReferenceSurveys()
    together = fuse_dates(requests(scene, tmp_path / "together", "fsdaf"), surveys=surveys)
    assert len(calls) == 1 and surveys.computed == 1 and len(surveys) == 1
    for one, many in zip(alone, together):
        assert_same_image(many, one)
    fuse(requests(scene, tmp_path, "fsdaf", options={"classes": 4})[0], surveys=surveys)
    assert surveys.computed == 2, "other options are another survey"


def test_the_shared_reference_survey_ignores_a_targets_gaps(scene, tmp_path):
    """A date whose coarse target has a gap (a series' restored target can) does not change the classes the
    other dates get: each still equals a `fuse` of that date alone."""

    gapped = str(tmp_path / "gapped.tif")
    with rasterio.open(scene["targets"][1]) as source:
        values, profile = source.read(), dict(source.profile, nodata=float("nan"))
    values[:, 2:12, 3:15] = np.nan
    with rasterio.open(gapped, "w", **profile) as out:
        out.write(values)
    first, second = requests(scene, tmp_path, "fsdaf")[:2]
    together = fuse_dates([dataclasses.replace(first, coarse_target=gapped), second], surveys=ReferenceSurveys())
    alone = fuse(dataclasses.replace(second, output=str(tmp_path / "alone.tif")))
    np.testing.assert_array_equal(pixels(together[1].output), pixels(alone.output))


def test_the_reference_survey_neither_reads_nor_warps_the_coarse_target(scene, tmp_path, monkeypatch):
    """FSDAF's classes come from the references: its two passes over them leave the coarse target out."""
    from stf_engine import roles
    from stf_engine.raster.reader import AlignedRaster

    reads, read = [], AlignedRaster.read
    monkeypatch.setattr(AlignedRaster, "read", lambda self, window: reads.append(self.label) or read(self, window))
    fuse(requests(scene, tmp_path, "fsdaf")[0])
    target, reference = (reads.count(roles.LABELS[role]) for role in (roles.COARSE_TARGET, roles.COARSE_REFERENCE))
    assert 0 < target < reference == reads.count(roles.LABELS[roles.FINE_REFERENCE]), (target, reference)


def test_dates_sharing_their_references_are_registered_once(scene, tmp_path, monkeypatch):
    from stf_engine.inputs import aligned

    alone = [fuse(r) for r in requests(scene, tmp_path / "alone", "starfm", register=True)]
    estimated = count_calls(monkeypatch, aligned, "estimate_offset")
    together = fuse_dates(requests(scene, tmp_path / "together", "starfm", register=True))
    assert len(estimated) == 1
    for one, many in zip(alone, together):
        assert_same_image(many, one)


def test_a_rewritten_reference_is_surveyed_again(scene, tmp_path):
    fine = changed_copy(scene["fine"], tmp_path / "f1.tif", lambda v: v)
    first = dataclasses.replace(requests(scene, tmp_path, "fsdaf")[0], fine_reference=str(fine))
    surveys = ReferenceSurveys()
    fuse(first, surveys=surveys)
    fuse(dataclasses.replace(first, output=str(tmp_path / "again.tif")), surveys=surveys)
    assert surveys.computed == 1
    changed_copy(scene["fine"], fine, lambda v: v * 1.2)
    fuse(dataclasses.replace(first, output=str(tmp_path / "changed.tif")), surveys=surveys)
    assert surveys.computed == 2


def test_dates_must_share_their_references_and_have_outputs_of_their_own(scene, tmp_path):
    many = requests(scene, tmp_path, "starfm")
    with pytest.raises(StfError, match="share everything but the coarse target"):
        fuse_dates([many[0], dataclasses.replace(many[1], fine_reference=scene["truth"])])
    with pytest.raises(StfError, match="an output of its own"):
        fuse_dates([many[0], dataclasses.replace(many[1], output=many[0].output)])
    with pytest.raises(StfError, match="an output of its own"):  # the same file spelled another way
        fuse_dates([many[0], dataclasses.replace(many[1], output=os.path.relpath(many[0].output))])
    with pytest.raises(StfError, match="one or more requests"):
        fuse_dates([])
    with pytest.raises(StfError, match="one or more requests"):
        fuse_dates(many[0])
    with pytest.raises(StfError, match="error maps into one folder"):
        fuse_dates([dataclasses.replace(r, error_maps_dir=str(tmp_path / "maps")) for r in many])
    assert not list(tmp_path.iterdir())


def test_no_date_writes_over_an_input_of_another(scene, tmp_path):
    """A date's output that is the next date's coarse target: each request alone is fine, together they are not."""
    target = tmp_path / "target_1.tif"
    shutil.copy(scene["targets"][1], target)
    before = target.read_bytes()
    first, second = requests(scene, tmp_path, "starfm")[:2]
    with pytest.raises(StfError, match=f"the output {target} would overwrite the coarse target of the date written "
                                       f"to {second.output}"):
        fuse_dates([dataclasses.replace(first, output=str(target)),
                    dataclasses.replace(second, coarse_target=str(target))])
    assert target.read_bytes() == before and sorted(tmp_path.iterdir()) == [target]


def test_cancel_in_stacked_dates_leaves_no_date_behind(scene, tmp_path):
    cancel = threading.Event()

    def progress(fraction, message):
        if message.startswith("tile 4/"):
            cancel.set()

    with pytest.raises(FusionCancelled):
        fuse_dates(requests(scene, tmp_path, "starfm"), progress, cancel)
    assert not list(tmp_path.iterdir())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_stacked_dates_on_the_gpu_equal_the_cpu(scene, tmp_path):
    weights = save_random(tmp_path / "w.pt", "edcstfn", given=("coarse_reference",))
    cpu = fuse_dates(requests(scene, tmp_path / "cpu", "edcstfn", weights=weights, device="cpu"))
    gpu = fuse_dates(requests(scene, tmp_path / "gpu", "edcstfn", weights=weights, device="cuda"))
    assert all(r.device.startswith("cuda") for r in gpu)
    for one, other in zip(cpu, gpu):
        np.testing.assert_allclose(pixels(other.output), pixels(one.output), rtol=0, atol=1e-4)
