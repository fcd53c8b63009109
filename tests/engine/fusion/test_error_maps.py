"""Error maps written by `fuse`: against the truth, temporal change, seam mask, uncertainty (D4 and cut context)."""
import pathlib

import numpy as np
import pytest
import rasterio
import torch

from stf_engine import FusionRequest, fuse
from stf_engine.fusion.error_maps import RAMPS
from stf_engine.core.seams import seam_mask
from stf_engine.fusion.uncertainty import D4, d4_inverse, d4_spread, d4_transform
from stf_engine.cli import main
from stf_engine.core.psf import gaussian_blur
from stf_engine.methods.catalog import METHODS
from stf_engine.methods.contract import MethodSpec, TileBatch

from devkit.synthetic import scene_set
from helpers.paths import SAMPLE



def read(path, masked=True):
    with rasterio.open(path) as dataset:
        return dataset.read(masked=masked), dataset.tags(), dataset.descriptions


@pytest.mark.slow
def test_truth_temporal_change_and_seam_maps_on_the_sample(tmp_path):
    truth = str(SAMPLE / "L72002311_SZ_B432_30m.tif")
    result = fuse(
        FusionRequest(
            coarse_target=str(SAMPLE / "MOD09_2002311_SZ_B214_250m.tif"),
            fine_reference=str(SAMPLE / "L72000306_SZ_B432_30m.tif"),
            coarse_reference=str(SAMPLE / "MOD09_2000306_SZ_B214_250m.tif"),
            output=str(tmp_path / "delta.tif"),
            method="delta",
            tile=128,
            error_maps_dir=str(tmp_path / "maps"),
            truth=truth,
        )
    )
    assert {"coarse_residual", "abs_error", "rms_error", "temporal_change", "seam_mask"} <= set(result.error_maps)
    for name, path in result.error_maps.items():
        _, tags, _ = read(path)
        assert tags["DESCRIPTION"] and tags["UNITS"] and tags["STF_RAMP"] == RAMPS[name]

    predicted = read(result.output)[0].astype(np.float64) * 1e-4
    observed = read(truth)[0].astype(np.float64) * 1e-4
    absolute = read(result.error_maps["abs_error"])[0]
    both = ~(predicted.mask.any(0) | observed.mask.any(0))
    assert np.allclose(absolute[:, both], np.abs(predicted - observed)[:, both], atol=1e-6)
    assert np.isnan(read(result.error_maps["abs_error"], masked=False)[0][:, ~both]).all()
    rms = read(result.error_maps["rms_error"])[0][0]
    assert np.allclose(rms[both], np.sqrt(np.mean((predicted - observed)[:, both] ** 2, axis=0)), atol=1e-6)

    # delta = F1 + (C2 - C1), so |prediction - F1| is the temporal change up to the output's rounding.
    reference = read(str(SAMPLE / "L72000306_SZ_B432_30m.tif"))[0].astype(np.float64) * 1e-4
    change = read(result.error_maps["temporal_change"])[0][0]
    ok = ~(predicted.mask.any(0) | change.mask)
    expected = np.sqrt(np.mean((predicted - reference)[:, ok] ** 2, axis=0))
    assert np.abs(change[ok] - expected).max() < 1e-4

    seams, tags, _ = read(result.error_maps["seam_mask"])
    assert (seams[0].astype(bool) == seam_mask(500, 500, result.tile_borders)).all()


def test_cli_maps_need_the_folder(tmp_path, capsys):
    paths = scene_set(tmp_path)
    code = main(["fuse", "--coarse", paths["coarse"], "--fine", paths["fine"], "--out", str(tmp_path / "o.tif"), "--uncertainty"])
    assert code == 2 and "--error-maps" in capsys.readouterr().err


def test_classic_uncertainty_is_zero_for_pixelwise_and_grows_with_context(tmp_path):
    paths = scene_set(tmp_path)
    common = dict(coarse_target=paths["coarse"], fine_reference=paths["fine"], method="delta", tile=48, uncertainty=True)
    pixelwise = fuse(
        FusionRequest(coarse_reference=paths["coarse_ref"], output=str(tmp_path / "a.tif"),
                      error_maps_dir=str(tmp_path / "a"), **common)
    )
    rounding = read(pixelwise.error_maps["uncertainty"])[0][0].compressed()
    assert pixelwise.halo == 0 and rounding.max() < 1e-4  # only the output's rounding to int16
    contextual = fuse(FusionRequest(output=str(tmp_path / "b.tif"), error_maps_dir=str(tmp_path / "b"), **common))
    spread, tags, _ = read(contextual.error_maps["uncertainty"])
    spread = spread.compressed()
    assert contextual.halo > 0 and "halo" in tags["DESCRIPTION"] and tags["UNITS"] == "reflectance"
    assert np.isfinite(spread).all() and spread.min() >= 0
    assert spread.mean() > 10 * rounding.mean() and spread.max() > 1e-3


def test_d4_views_invert_exactly_and_equivariant_functions_do_not_spread():
    image = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).view(2, 3, 4, 5)
    for rotations, flip in D4:
        assert torch.equal(d4_inverse(d4_transform(image, rotations, flip), rotations, flip), image)
    assert len({tuple(d4_transform(image, r, f).flatten()[:20].tolist()) for r, f in D4}) == 8

    rng = np.random.default_rng(0)
    batch = TileBatch(
        coarse_target=torch.from_numpy(rng.uniform(0, 0.5, (2, 3, 24, 24)).astype(np.float32)),
        fine_reference=torch.from_numpy(rng.uniform(0, 0.5, (2, 3, 24, 24)).astype(np.float32)),
        valid=torch.ones(2, 1, 24, 24, dtype=torch.bool),
    )
    blurred = d4_spread(lambda b: gaussian_blur(b.fine_reference, 1.5, 4) + b.coarse_target, batch)
    assert blurred.abs().max() < 1e-6
    shifted = d4_spread(lambda b: torch.roll(b.fine_reference, 1, dims=-1), batch)
    assert shifted.mean() > 0.05


def test_learned_methods_get_d4_spread_through_the_runner(tmp_path, monkeypatch):
    """A 'learned' method that looks only to its left neighbour is not rotation-invariant: it spreads."""

    def build(context):
        return lambda batch: 0.5 * (batch.fine_reference + torch.roll(batch.fine_reference, 1, dims=-1))

    spec = MethodSpec(
        name="test_left_looking", description="test", required=("coarse_target", "fine_reference"),
        optional=(), halo=lambda context: 2, build=build, needs_weights=True,
    )
    monkeypatch.setitem(METHODS, spec.name, spec)
    paths = scene_set(tmp_path)
    result = fuse(
        FusionRequest(coarse_target=paths["coarse"], fine_reference=paths["fine"], method=spec.name,
                      weights="unused.pt", output=str(tmp_path / "o.tif"), tile=40,
                      error_maps_dir=str(tmp_path / "maps"), uncertainty=True)
    )
    spread, tags, _ = read(result.error_maps["uncertainty"])
    assert "D4" in tags["DESCRIPTION"]
    assert np.isfinite(spread).all() and spread.mean() > 1e-3
