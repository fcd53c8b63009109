"""Checkpoints: identical outputs after a round trip, clear refusals when they do not fit, default weights."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from stf_engine import FusionRequest, StfError, fuse, roles
from stf_engine.models import MODELS, checkpoint, instantiate
from stf_engine.models.normalise import Normalisation
from stf_engine.core.options import defaults
from stf_engine.methods.catalog import METHODS, get_method
from stf_engine.methods.contract import MethodContext, TileBatch

from devkit.checkpoints import save_random
from devkit.synthetic import scene_set
from helpers.paths import WEIGHTS



pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_round_trip_gives_identical_outputs(name, tmp_path):
    path = save_random(tmp_path / "a.pt", name, given=(roles.COARSE_REFERENCE,))
    loaded = checkpoint.load(path)
    model = MODELS[name]
    first = instantiate(model, loaded.meta, loaded.state).eval()
    again = checkpoint.load(path)
    second = instantiate(model, again.meta, again.state).eval()
    inputs = {r: torch.randn(1, 3, 21, 19) for r in loaded.meta["roles"]}
    with torch.no_grad():
        assert torch.equal(first(inputs), second(inputs))
    context = MethodContext(ratio=4, bands=3, given=frozenset(loaded.meta["roles"]), device=torch.device("cpu"),
                            fine_std=(0.05,) * 3, weights=path)
    batch = TileBatch(valid=torch.ones(1, 1, 21, 19, dtype=torch.bool), **{r: 0.2 + 0.05 * v for r, v in inputs.items()})
    with torch.no_grad():
        through_registry = get_method(name).build(context)(batch)
        direct = 0.2 + 0.05 * first(inputs)
    torch.testing.assert_close(through_registry, direct, rtol=1e-5, atol=1e-6)


def test_refuses_checkpoints_that_do_not_fit(tmp_path):
    paths = scene_set(tmp_path, height=48, width=48, ratio=4, dtype="float32")
    base = dict(coarse_target=paths["coarse"], fine_reference=paths["fine"], output=str(tmp_path / "o.tif"), tile=0)
    four_bands = save_random(tmp_path / "b4.pt", "ganstfm", bands=4)
    with pytest.raises(StfError, match="trained on 4 bands but the fine reference has 3"):
        fuse(FusionRequest(method="ganstfm", weights=four_bands, **base))
    no_pan = save_random(tmp_path / "np.pt", "marstfn")
    pan = tmp_path / "pan.tif"  # any raster on the grid: a file of its own (one file in two roles is refused)
    pan.write_bytes(Path(paths["fine"]).read_bytes())
    with pytest.raises(StfError) as refused:
        fuse(FusionRequest(method="marstfn", weights=no_pan, pan=str(pan), **base))
    assert str(refused.value) == (f"{no_pan} does not fit these inputs: it was trained without the pan band; leave "
                                  f"out the pan band (--pan), or give --weights trained with the same inputs "
                                  f"(`stf train`)")
    with pytest.raises(StfError, match="is a 'marstfn' checkpoint; use --method marstfn"):
        fuse(FusionRequest(method="ganstfm", weights=no_pan, **base))
    not_one = tmp_path / "junk.pt"
    not_one.write_bytes(b"not a checkpoint")
    with pytest.raises(StfError, match="is not a checkpoint STF wrote: it is not a PyTorch file at all"):
        fuse(FusionRequest(method="ganstfm", weights=str(not_one), **base))
    with pytest.raises(StfError, match="weights file not found"):
        fuse(FusionRequest(method="ganstfm", weights=str(tmp_path / "missing.pt"), **base))
    with pytest.raises(StfError, match=f"the weights file {tmp_path} is a folder; give the .pt file in it"):
        fuse(FusionRequest(method="ganstfm", weights=str(tmp_path), **base))


def test_a_checkpoint_that_needs_an_input_not_given_says_to_give_it():
    meta = {"model": "ganstfm", "bands": 3,
            "roles": [roles.COARSE_TARGET, roles.FINE_REFERENCE, roles.COARSE_REFERENCE]}
    with pytest.raises(StfError) as refused:
        checkpoint.check_fits(meta, "ganstfm", 3, frozenset({roles.COARSE_TARGET, roles.FINE_REFERENCE}), "c1.pt")
    assert str(refused.value) == ("c1.pt does not fit these inputs: it needs the coarse reference; give the coarse "
                                  "reference (--coarse-ref), or give --weights trained with the same inputs "
                                  "(`stf train`)")


def written(path: Path, content) -> str:
    """`content` at `path`: bytes as they are, anything else as `torch.save` writes it."""
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    return str(path)


@pytest.mark.parametrize("content, why", [
    (b"hello\n", "is not a checkpoint STF wrote: it is not a PyTorch file at all; give the .pt file `stf train` "
                 "wrote (or train one)"),
    (b"", "is not a checkpoint STF wrote: the file is empty; give the .pt file `stf train` wrote (or train one)"),
    (b"\x80\x04\x95" + bytes(20), "is not a checkpoint STF wrote: it is a Python pickle of objects other than "
                                  "weights, which STF does not load; give the .pt file `stf train` wrote (or train "
                                  "one)"),
    (None, "is damaged or incomplete (a copy or download cut short?); copy it again, or train new weights with "
           "`stf train`"),
    ({"weights": torch.zeros(2)}, "is not a checkpoint STF wrote: it is a PyTorch file without STF's checkpoint "
                                  "mark; give the .pt file `stf train` wrote (or train one)"),
    ({"format": checkpoint.FORMAT, "meta": {"bands": 3}, "state": {}},
     "is a damaged STF checkpoint: it holds no model or roles in its metadata; give the .pt file `stf train` wrote "
     "(or train one)"),
], ids=["text", "empty", "pickle", "cut short", "no STF mark", "no model"])
def test_a_file_that_is_no_checkpoint_says_why_in_words(tmp_path, content, why, recwarn):
    """In words only: no warning of PyTorch's about the file's pickle protocol comes before them."""
    if content is None:
        whole = (WEIGHTS / "ganstfm.pt").read_bytes()
        content = whole[: len(whole) // 2]
    path = written(tmp_path / "w.pt", content)
    with pytest.raises(StfError) as refused:
        checkpoint.load(path)
    assert str(refused.value) == f"the weights file {path} {why}"
    assert [str(warning.message) for warning in recwarn] == []


def test_default_weights_are_used_when_none_are_named(tmp_path, monkeypatch):
    paths = scene_set(tmp_path, height=40, width=40, ratio=4, dtype="float32")
    request = dict(coarse_target=paths["coarse"], fine_reference=paths["fine"], tile=0)
    ganstfm = get_method("ganstfm")
    weights = save_random(tmp_path / "g.pt", "ganstfm")
    monkeypatch.setitem(METHODS, "ganstfm-default", dataclasses.replace(ganstfm, name="ganstfm-default",
                                                                        default_weights=weights))
    monkeypatch.setitem(METHODS, "ganstfm-none", dataclasses.replace(ganstfm, name="ganstfm-none", default_weights=None))
    by_default = fuse(FusionRequest(method="ganstfm-default", output=str(tmp_path / "d.tif"), **request))
    named = fuse(FusionRequest(method="ganstfm", weights=weights, output=str(tmp_path / "n.tif"), **request))
    with pytest.raises(StfError, match="needs a weights file"):
        fuse(FusionRequest(method="ganstfm-none", output=str(tmp_path / "x.tif"), **request))
    with rasterio.open(by_default.output) as a, rasterio.open(named.output) as b:
        assert np.array_equal(a.read(), b.read())


@pytest.mark.parametrize("name", sorted(MODELS))
def test_shipped_demo_checkpoints_are_small_slim_and_registered(name):
    path = WEIGHTS / f"{name}.pt"
    assert path.stat().st_size <= 10 * 2**20
    loaded = checkpoint.load(str(path))
    assert loaded.training is None and loaded.meta["model"] == name and loaded.meta["bands"] == 3
    assert "2000" in str(loaded.meta["training"]) and "validation" in loaded.meta
    assert get_method(name).default_weights == str(path)
